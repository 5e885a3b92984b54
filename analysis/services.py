"""
The ORM edge of the analysis: queue runs (debounced), claim and compute them,
keep theme identity from run to run, and apply consultants' theme edits.

The number-crunching lives in plain modules without the ORM:
``analysis.embeddings`` (texts to vectors), ``analysis.themes`` (vectors to
themes), ``analysis.metrics`` (themes and ratings to gaps) and
``analysis.charts`` (results to Plotly figures).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from surveys.models import AnswerItem, Engagement, QuestionKey, Wave

from . import charts, metrics, reveal
from .embeddings import Embedder, get_embedder
from .models import AnalysisRun, RunThemeItems, TextEmbedding, Theme, ThemeDetail, ThemePin
from .selectors import WaveFrames, previous_wave_result, run_served, wave_frames
from .themes import DEFAULT_DETAIL, ThemeParams, cluster_texts_by_question, describe_themes, grow_themes

logger = logging.getLogger(__name__)

# Bump when the meaning of a result changes, so unchanged answers are recomputed once.
ANALYSIS_VERSION = "11"
# A cluster takes over an existing theme when at least this share of its items
# (those the served run had assigned) sat in that theme: a re-run keeps ids.
OVERLAP_SHARE = 0.5
# Otherwise a cluster takes over the theme whose centroid is this close (cosine).
# Paraphrases of one idea sit around 0.4-0.65 item to item, so two centroids of
# the same topic are far closer; 0.8 keeps distinct topics apart.
CENTROID_MATCH = 0.8
# Rows per query when reading or writing the embedding cache.
CACHE_CHUNK = 2000
# A re-run places new items among the served run's themes (nothing else moves)
# until the items added since the themes were last found from scratch reach
# this share of the items they were found on; then they are found afresh (ids
# still carried over by overlap). A tenth: a few percent more answers must not
# reshuffle a slide, but themes found on 1,000 answers should not have to hold
# 3,000 without the engine looking again.
GROWTH_SHARE = 0.1


# --- Queueing -----------------------------------------------------------------


def analysis_request(*, wave: Wave, trigger: str = AnalysisRun.Trigger.SUBMISSION, countdown: int | None = None) -> AnalysisRun:
    """
    Queue a run of ``wave``'s analysis after the current transaction commits.
    Debounced: while a run is still queued, later requests share it (the run
    reads the answers when it starts, so it sees them all). A burst of
    submissions therefore causes one run per debounce window, not one each.
    """
    if countdown is None:
        countdown = settings.ANALYSIS_DEBOUNCE_SECONDS
    for _ in range(3):
        pending = AnalysisRun.objects.filter(wave=wave, status=AnalysisRun.Status.PENDING).first()
        if pending is not None:
            return pending
        try:
            with transaction.atomic():
                run = AnalysisRun.objects.create(wave=wave, trigger=trigger)
        except IntegrityError:
            continue  # another request queued one at the same moment: share it
        transaction.on_commit(lambda: _enqueue(run.pk, countdown))
        return run
    raise RuntimeError("Could not queue an analysis run.")  # pragma: no cover


def _enqueue(run_id: int, countdown: int) -> None:
    from .tasks import analysis_run_task

    try:
        analysis_run_task.apply_async(args=[run_id], countdown=countdown, retry=False)
    except Exception:  # the broker is down: the sweep re-queues pending runs later
        logger.warning("Could not queue analysis run %s; the sweep will retry.", run_id, exc_info=True)


def analysis_after_submission(*, wave_id: int) -> None:
    """
    Called after an answer commits. Never raises: an answer is stored whether
    or not the analysis can be queued (the periodic sweep catches up).
    """
    if not settings.ANALYSIS_ON_SUBMIT:
        return
    try:
        analysis_request(wave=Wave.objects.get(pk=wave_id), trigger=AnalysisRun.Trigger.SUBMISSION)
    except Exception:
        logger.warning("Could not request analysis for wave %s.", wave_id, exc_info=True)


def analysis_sweep(*, older_than_seconds: int = 120, now: datetime | None = None) -> int:
    """
    Re-queue runs left behind: pending ones (the broker was down when they were
    requested) and running ones past the hard time limit (their worker died, and
    the broker's redelivery came while the run still looked alive, or never).
    ``analysis_claim`` takes either. Returns how many.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=older_than_seconds)
    abandoned = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    stale = list(
        AnalysisRun.objects.filter(
            Q(status=AnalysisRun.Status.PENDING, requested_at__lt=cutoff)
            | Q(status=AnalysisRun.Status.RUNNING, started_at__lt=abandoned)
        ).values_list("pk", flat=True)
    )
    for run_id in stale:
        _enqueue(run_id, 0)
    return len(stale)


# --- Claiming and computing -------------------------------------------------------


def analysis_claim(*, run_id: int) -> AnalysisRun | None:
    """
    Take a queued run for this worker, or None when another worker has it or
    it is finished. One conditional UPDATE decides, so a task delivered twice
    computes once. A run left ``running`` past the hard time limit (its worker
    died) can be claimed again.
    """
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 60)
    claimed = (
        AnalysisRun.objects.filter(pk=run_id)
        .filter(Q(status=AnalysisRun.Status.PENDING) | Q(status=AnalysisRun.Status.RUNNING, started_at__lt=stale))
        .update(status=AnalysisRun.Status.RUNNING, started_at=now, attempts=F("attempts") + 1, error="")
    )
    if claimed != 1:
        return None
    return AnalysisRun.objects.select_related("wave__engagement").get(pk=run_id)


def analysis_fail(*, run_id: int, error: str) -> None:
    """Mark a run failed; the previous finished run stays the one served."""
    AnalysisRun.objects.filter(pk=run_id).update(
        status=AnalysisRun.Status.FAILED, finished_at=timezone.now(), error=error[:5000]
    )


def analysis_release(*, run_id: int) -> None:
    """Give a claimed run back to the queue (before a retry)."""
    AnalysisRun.objects.filter(pk=run_id, status=AnalysisRun.Status.RUNNING).update(status=AnalysisRun.Status.PENDING)


def _progress(run: AnalysisRun, step: int, label: str) -> None:
    AnalysisRun.objects.filter(pk=run.pk).update(progress={"step": step, "steps": 5, "label": label})


def analysis_compute(*, run: AnalysisRun) -> AnalysisRun:
    """
    Compute a claimed run: load the answers, find themes, compute the
    metrics and figures, and store them. Inputs identical to the served run's
    (same fingerprint) skip the work.
    """
    wave = run.wave
    engagement = wave.engagement
    _progress(run, 1, "Loading answers")
    frames = wave_frames(wave)
    embedder = get_embedder(settings.ANALYSIS_ENGINE)
    previous = previous_wave_result(wave)
    fingerprint = _fingerprint(wave, frames, embedder.name, previous)
    served = run_served(wave)
    if served is not None and served.fingerprint == fingerprint:
        AnalysisRun.objects.filter(pk=run.pk).update(
            status=AnalysisRun.Status.SKIPPED, fingerprint=fingerprint, finished_at=timezone.now(), progress={}
        )
        run.refresh_from_db()
        return run

    _progress(run, 2, "Reading the answers' meaning")
    texts = frames.items["text"].tolist()
    vectors = embed_texts(embedder, texts)
    _progress(run, 3, "Finding themes")
    shown = metrics.suppression(
        frames.respondents, min_individuals=engagement.min_individuals, min_staff_sheets=engagement.min_staff_sheets
    ).visible_groups
    theme_ids, themes, theme_method = themes_assign(
        engagement=engagement, items=frames.items, vectors=vectors, embedder=embedder, served=served, shown_groups=shown
    )
    items = frames.items.assign(theme_id=theme_ids)
    curated = set(themes.loc[themes["curated"].astype(bool), "theme_id"])
    question_labels = _question_labels(items[items["group"].isin(shown)], vectors, curated=curated)
    _progress(run, 4, "Measuring the gaps")
    result = metrics.analyze(
        items,
        frames.respondents,
        frames.ratings,
        themes,
        frames.rating_items,
        min_individuals=engagement.min_individuals,
        min_staff_sheets=engagement.min_staff_sheets,
        previous=previous,
    )
    result = {
        "engagement": {"slug": engagement.slug, "name": engagement.name},
        "wave": {"number": wave.number, "title": wave.title},
        "run": {"id": run.pk, "fingerprint": fingerprint, "generated_at": timezone.now().isoformat()},
        "engine": {
            "name": embedder.name,
            "fallback_reason": getattr(embedder, "fallback_reason", "") or None,
            "analysis_version": ANALYSIS_VERSION,
            "themes": theme_method,
        },
        "thresholds": {"min_individuals": engagement.min_individuals, "min_staff_sheets": engagement.min_staff_sheets},
        **_with_question_labels(result, question_labels),
    }
    # The workshop reveal: the leaders' predictions against this run's answers and themes.
    result["predictions"] = reveal.predictions_for_run(
        wave=wave,
        result=result,
        items=items,
        vectors=vectors,
        embed=lambda texts: embed_texts(embedder, texts),
        engine=embedder.name,
        cacheable=embedder.cacheable,
    )
    for question, block in result.get("questions", {}).items():
        block["detail"] = theme_method["details"].get(question, DEFAULT_DETAIL)
    _progress(run, 5, "Drawing the charts")
    figures = charts.build_figures(result)
    assignments = {str(item_id): (int(t) if t >= 0 else None) for item_id, t in zip(items["item_id"], theme_ids)}
    with transaction.atomic():
        RunThemeItems.objects.bulk_create(theme_listings(run, items))
        AnalysisRun.objects.filter(pk=run.pk).update(
            status=AnalysisRun.Status.DONE,
            finished_at=timezone.now(),
            fingerprint=fingerprint,
            engine=embedder.name,
            result=result,
            figures=figures,
            assignments=assignments,
            progress={},
        )
    run.refresh_from_db()
    return run


def theme_listings(run: AnalysisRun, items: pd.DataFrame) -> list[RunThemeItems]:
    """One row per theme: its items as ``[id, group]`` in the theme page's order (question, group, id)."""
    assigned = items[items["theme_id"] >= 0].sort_values(["question", "group", "item_id"], kind="stable")
    return [
        RunThemeItems(run=run, theme_id=int(theme_id), items=[[int(i), g] for i, g in zip(rows["item_id"], rows["group"])])
        for theme_id, rows in assigned.groupby("theme_id", sort=True)
    ]


def analysis_run_now(*, wave: Wave, trigger: str = AnalysisRun.Trigger.COMMAND) -> AnalysisRun:
    """Compute synchronously in this process (the ``analyze`` command)."""
    run = AnalysisRun.objects.create(wave=wave, trigger=trigger, status=AnalysisRun.Status.RUNNING, started_at=timezone.now())
    try:
        return analysis_compute(run=run)
    except Exception as exc:
        analysis_fail(run_id=run.pk, error=f"{type(exc).__name__}: {exc}")
        raise


def _question_labels(
    items: pd.DataFrame, vectors: np.ndarray, *, curated: set[int]
) -> dict[tuple[str, int], tuple[str | None, str]]:
    """
    A label and the most representative item per (question, theme). A theme
    is a topic across the questions, so its overall label may come from
    another question's wording ("price" naming the theme under "what we do
    well"); under each question the theme is named after that question's own
    items (labels unique within the question, see ``themes.describe_themes``)
    and shows its item closest to the centroid. A consultant's name (curated
    themes) is kept everywhere (label ``None``).
    """
    labels: dict[tuple[str, int], tuple[str | None, str]] = {}
    for question, frame in items[items["theme_id"] >= 0].groupby("question"):
        # The frame's index is the item's row in ``vectors``.
        rows = frame.index.to_numpy()
        described = describe_themes(frame["text"].tolist(), frame["theme_id"].to_numpy(), vectors[rows])
        texts = frame["text"].tolist()
        for theme_id, info in described.items():
            label = None if theme_id in curated else info.label[:200]
            representative = texts[info.representative[0]] if info.representative else ""
            labels[(str(question), int(theme_id))] = (label, representative)
    return labels


def _with_question_labels(result: dict, named: dict[tuple[str, int], tuple[str | None, str]]) -> dict:
    """Name themes per question in the document; ``theme_label`` keeps the overall name."""
    labels = {key: label for key, (label, _) in named.items() if label is not None}
    for question, block in result.get("questions", {}).items():
        for theme in block.get("themes", []):
            theme["theme_label"] = theme["label"]
            theme["label"] = labels.get((question, theme["theme_id"]), theme["label"])
            theme["representative"] = named.get((question, theme["theme_id"]), (None, ""))[1]
    for gap in result.get("gaps", []):
        gap["theme_label"] = gap["label"]
        gap["label"] = labels.get((gap["question"], gap["theme_id"]), gap["label"])
    for split in (result.get("consistency") or {}).get("splits", []):
        split["label"] = labels.get((split["question"], split["theme_id"]), split["label"])
    for action in result.get("actions", []):
        action["label"] = labels.get(("continue_start", action["theme_id"]), action["label"])
    for contradiction in result.get("contradictions", []):
        theme_id, label = contradiction["theme_id"], contradiction["label"]
        contradiction["strength_label"] = labels.get(("strengths", theme_id), label)
        contradiction["improvement_label"] = labels.get(("improvements", theme_id), label)
    return result


def _fingerprint(wave: Wave, frames: WaveFrames, engine: str, previous: dict | None) -> str:
    """Everything a result depends on; equal fingerprints give equal results."""
    digest = hashlib.sha256()
    for frame in (frames.items, frames.respondents, frames.ratings):
        digest.update(frame.to_csv(index=False).encode())
    digest.update(repr(frames.rating_items).encode())
    engagement = wave.engagement
    digest.update(f"{engagement.min_individuals}/{engagement.min_staff_sheets}/{engine}/{ANALYSIS_VERSION}".encode())
    digest.update(repr(sorted(theme_details(engagement=engagement).items())).encode())
    curation = Theme.objects.filter(engagement=engagement).exclude(custom_label="", merged_into=None)
    digest.update(repr(list(curation.order_by("pk").values_list("pk", "custom_label", "merged_into_id"))).encode())
    pins = ThemePin.objects.filter(item__respondent__wave=wave).order_by("item_id")
    digest.update(repr(list(pins.values_list("item_id", "theme_id"))).encode())
    digest.update(str((previous or {}).get("run", {}).get("id")).encode())
    digest.update(reveal.predictions_fingerprint(wave).encode())
    return digest.hexdigest()


# --- Embeddings -------------------------------------------------------------------


def _text_key(text: str) -> str:
    return hashlib.sha256(" ".join(text.split()).encode()).hexdigest()


def embed_texts(embedder: Embedder, texts: list[str]) -> np.ndarray:
    """
    One vector per text. With a model whose vectors are stable (MiniLM), each
    distinct text is embedded once ever: vectors are cached in the database by
    the text's hash, so a re-run embeds only new or changed items.
    """
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    if not embedder.cacheable:
        return embedder.embed(texts)
    keys = [_text_key(t) for t in texts]
    unique = dict(zip(keys, texts))
    cached: dict[str, np.ndarray] = {}
    key_list = list(unique)
    for start in range(0, len(key_list), CACHE_CHUNK):
        chunk = key_list[start : start + CACHE_CHUNK]
        for key, blob in TextEmbedding.objects.filter(embedder=embedder.name, text_hash__in=chunk).values_list(
            "text_hash", "vector"
        ):
            cached[key] = np.frombuffer(bytes(blob), dtype=np.float32)
    missing = [key for key in key_list if key not in cached]
    if missing:
        fresh = embedder.embed([unique[key] for key in missing]).astype(np.float32)
        rows = [TextEmbedding(embedder=embedder.name, text_hash=key, vector=vec.tobytes()) for key, vec in zip(missing, fresh)]
        TextEmbedding.objects.bulk_create(rows, batch_size=CACHE_CHUNK, ignore_conflicts=True)
        cached.update(zip(missing, fresh))
    return np.vstack([cached[key] for key in keys]).astype(np.float32)


# --- Theme identity -----------------------------------------------------------------


def _vector(blob) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(bytes(blob), dtype=np.float32)


def _final_theme(theme_id: int, merged: dict[int, int | None]) -> int:
    """Follow merges to the theme that now holds the items."""
    seen = set()
    while merged.get(theme_id) and theme_id not in seen:
        seen.add(theme_id)
        theme_id = merged[theme_id]
    return theme_id


def theme_details(*, engagement: Engagement) -> dict[str, str]:
    """The detail each question's themes are cut at, for questions a consultant changed from the standard."""
    return dict(
        ThemeDetail.objects.filter(engagement=engagement)
        .exclude(detail=DEFAULT_DETAIL)
        .values_list("question_key", "detail")
    )


@transaction.atomic
def theme_detail_set(*, engagement: Engagement, question: str, detail: str) -> ThemeDetail:
    """Ask for coarser or finer themes under one question; the next analysis applies it."""
    if question not in QuestionKey.values:
        raise ValidationError({"question": f"There is no question “{question}”."})
    if detail not in ThemeDetail.Level.values:
        raise ValidationError({"detail": "Choose coarser, standard or finer."})
    setting, _ = ThemeDetail.objects.update_or_create(
        engagement=engagement, question_key=question, defaults={"detail": detail}
    )
    return setting


def _growth_base(served: AnalysisRun | None, *, engine: str, details: dict[str, str]) -> dict | None:
    """How the served run found its themes, when this run may grow them instead of finding them afresh."""
    if served is None or not served.assignments:
        return None
    engine_block = (served.result or {}).get("engine") or {}
    method = engine_block.get("themes") or {}
    same = (
        engine_block.get("name") == engine
        and engine_block.get("analysis_version") == ANALYSIS_VERSION
        and method.get("details") == details
        and method.get("found_on")
    )
    return method if same else None


@transaction.atomic
def themes_assign(
    *,
    engagement: Engagement,
    items: pd.DataFrame,
    vectors: np.ndarray,
    embedder: Embedder,
    served: AnalysisRun | None,
    shown_groups: Sequence[str] | None = None,
) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """
    Give every item a lasting theme id. When the served run's themes were
    found on the same engine and detail settings and few items have come
    since (``GROWTH_SHARE``), the items keep their themes and only the new or
    unassigned ones are placed (``themes.grow_themes``): nothing reshuffles.
    Otherwise the items are clustered afresh and each cluster takes the theme
    the served run had most of its items in, else an existing theme with a
    very close centroid, else a new theme. Merges and consultants' pins then
    apply. Themes are named only from the answers of ``shown_groups``: a group
    under the anonymity threshold is clustered with the rest but never quoted.
    Returns the theme id per item (-1 unassigned), the themes' table, and how
    the themes were found (stored with the run).
    """
    n = len(items)
    details = theme_details(engagement=engagement)
    if n == 0:
        empty = pd.DataFrame({"theme_id": [], "label": [], "keywords": [], "curated": []})
        return np.zeros(0, dtype=int), empty, {"method": "none", "details": details, "found_on": 0, "added": 0}
    texts = items["text"].tolist()
    params = ThemeParams.for_engine(embedder.name)
    previous = {int(k): v for k, v in ((served.assignments or {}) if served else {}).items() if v is not None}
    seen = {int(k) for k in ((served.assignments or {}) if served else {})}
    merged = dict(Theme.objects.filter(engagement=engagement).values_list("pk", "merged_into_id"))
    item_ids = items["item_id"].to_numpy()
    base = _growth_base(served, engine=embedder.name, details=details)
    new_items = int(sum(1 for i in item_ids if int(i) not in seen))
    if base is not None and base["added"] + new_items <= GROWTH_SHARE * base["found_on"]:
        theme_ids = _themes_grown(engagement, items, texts, vectors, previous, merged, params)
        method = {"method": "grown", "details": details, "found_on": base["found_on"], "added": base["added"] + new_items}
    else:
        theme_ids = _themes_found(engagement, items, texts, vectors, embedder, previous, merged, params, details)
        method = {"method": "found", "details": details, "found_on": n, "added": 0}

    # By the items' engagement rather than a list of every item id: one cheap join instead of a huge IN list.
    pins = dict(
        ThemePin.objects.filter(item__respondent__wave__engagement=engagement).values_list("item_id", "theme_id")
    )
    for index, item_id in enumerate(item_ids):
        if int(item_id) in pins:
            theme_ids[index] = _final_theme(pins[int(item_id)], merged)

    # Describe the final themes (after merges and pins) and remember their centroids.
    used = sorted({int(t) for t in theme_ids if t >= 0})
    described = describe_themes(texts, theme_ids, vectors)
    if shown_groups is not None:
        # Names and keywords from shown answers only; a theme only hidden groups raised keeps a neutral name.
        visible = items["group"].isin(list(shown_groups)).to_numpy()
        if visible.all():
            named = described  # every group shown: the same description (it costs seconds at 60,000 items)
        else:
            named = describe_themes([t for t, v in zip(texts, visible) if v], theme_ids[visible], vectors[visible])
        for theme_id, info in described.items():
            shown_info = named.get(theme_id)
            info.label = shown_info.label if shown_info else f"Theme {theme_id}"
            info.keywords = list(shown_info.keywords) if shown_info else []
    themes_by_id = Theme.objects.in_bulk(used)
    rows = []
    for theme_id in used:
        theme, info = themes_by_id[theme_id], described[theme_id]
        theme.label = info.label[:200]
        theme.keywords = list(info.keywords)
        theme.centroid = info.centroid.astype(np.float32).tobytes()
        theme.embedder = embedder.name
        rows.append(
            {
                "theme_id": theme_id,
                "label": theme.display_label,
                "keywords": list(info.keywords),
                "curated": bool(theme.custom_label),
            }
        )
    Theme.objects.bulk_update(themes_by_id.values(), ["label", "keywords", "centroid", "embedder", "updated_at"])
    return theme_ids, pd.DataFrame(rows, columns=["theme_id", "label", "keywords", "curated"]), method


def _themes_grown(
    engagement: Engagement,
    items: pd.DataFrame,
    texts: list[str],
    vectors: np.ndarray,
    previous: dict[int, int],
    merged: dict[int, int | None],
    params: ThemeParams,
) -> np.ndarray:
    """The served run's theme per item, the new and unassigned items placed among them (``grow_themes``)."""
    item_ids = items["item_id"].to_numpy()
    known = np.array([_final_theme(previous[int(i)], merged) if int(i) in previous else -1 for i in item_ids], dtype=np.int64)
    labels, rest, new = grow_themes(texts, vectors, known, known < 0, params=params)
    for cluster_id, info in new.themes.items():
        theme = Theme.objects.create(engagement=engagement, label=info.label[:200], keywords=info.keywords)
        labels[rest[new.labels == cluster_id]] = theme.pk
    return labels


def _themes_found(
    engagement: Engagement,
    items: pd.DataFrame,
    texts: list[str],
    vectors: np.ndarray,
    embedder: Embedder,
    previous: dict[int, int],
    merged: dict[int, int | None],
    params: ThemeParams,
    details: dict[str, str],
) -> np.ndarray:
    """Cluster afresh and carry theme ids over: by the served run's items, else by a very close centroid."""
    clusters = cluster_texts_by_question(texts, items["question"].tolist(), vectors, params=params, details=details)
    existing = list(Theme.objects.filter(engagement=engagement, merged_into=None))
    existing_centroids = {
        t.pk: _vector(t.centroid) for t in existing if t.centroid is not None and t.embedder == embedder.name
    }
    # A consultant's theme (renamed, or holding merged themes) may take several
    # clusters: the consultant said they belong together. Any other theme
    # takes one, so the engine can still split a topic as answers grow.
    curated = {target for target in merged.values() if target}
    curated |= set(Theme.objects.filter(engagement=engagement).exclude(custom_label="").values_list("pk", flat=True))

    # Score every (cluster, existing theme) candidate, then match greedily, best first, one to one.
    item_ids = items["item_id"].to_numpy()
    candidates: list[tuple[float, int, int]] = []
    for cluster_id, info in clusters.themes.items():
        members = item_ids[clusters.labels == cluster_id]
        known = Counter(_final_theme(previous[i], merged) for i in members if i in previous)
        if known:
            theme_id, count = known.most_common(1)[0]
            share = count / sum(known.values())
            if share >= OVERLAP_SHARE:
                candidates.append((1.0 + share, cluster_id, theme_id))  # overlap outranks centroid similarity
        for theme_id, centroid in existing_centroids.items():
            if centroid is not None and centroid.shape == info.centroid.shape:
                similarity = float(np.dot(centroid, info.centroid))
                if similarity >= CENTROID_MATCH:
                    candidates.append((similarity, cluster_id, theme_id))
    cluster_theme: dict[int, int] = {}
    taken: set[int] = set()
    for _score, cluster_id, theme_id in sorted(candidates, reverse=True):
        if cluster_id in cluster_theme or (theme_id in taken and theme_id not in curated):
            continue
        cluster_theme[cluster_id] = theme_id
        taken.add(theme_id)
    for cluster_id, info in clusters.themes.items():
        if cluster_id not in cluster_theme:
            theme = Theme.objects.create(engagement=engagement, label=info.label[:200], keywords=info.keywords)
            cluster_theme[cluster_id] = theme.pk
    return np.array([_final_theme(cluster_theme[c], merged) if c >= 0 else -1 for c in clusters.labels], dtype=int)


# --- Curation ---------------------------------------------------------------------


def _curated(theme: Theme) -> None:
    theme.curated_at = timezone.now()


@transaction.atomic
def theme_rename(*, theme: Theme, label: str) -> Theme:
    label = " ".join(label.split())
    if not label:
        raise ValidationError({"label": "Give the theme a name."})
    if len(label) > 200:
        raise ValidationError({"label": "Keep the name under 200 characters."})
    theme.custom_label = label
    _curated(theme)
    theme.save(update_fields=["custom_label", "curated_at", "updated_at"])
    return theme


@transaction.atomic
def theme_merge(*, source: Theme, target: Theme) -> Theme:
    """Merge ``source`` into ``target``: its items, pins and future matches go there."""
    if source.engagement_id != target.engagement_id:
        raise ValidationError("Themes of different engagements cannot be merged.")
    if source.pk == target.pk:
        raise ValidationError("Choose a different theme to merge into.")
    target_final = Theme.objects.get(pk=_final_theme(target.pk, dict(
        Theme.objects.filter(engagement_id=target.engagement_id).values_list("pk", "merged_into_id")
    )))
    if target_final.pk == source.pk:
        raise ValidationError("That theme was merged into this one; merge the other way round.")
    source.merged_into = target_final
    _curated(source)
    source.save(update_fields=["merged_into", "curated_at", "updated_at"])
    ThemePin.objects.filter(theme=source).update(theme=target_final)
    # Themes merged into the source earlier now point straight at the target.
    Theme.objects.filter(merged_into=source).update(merged_into=target_final)
    return target_final


@transaction.atomic
def items_move(*, items: list[AnswerItem], theme: Theme, user: AbstractBaseUser | None = None) -> list[ThemePin]:
    """Move several items to ``theme`` at once: all of them or, on a refusal, none."""
    return [item_move(item=item, theme=theme, user=user) for item in items]


@transaction.atomic
def item_move(*, item: AnswerItem, theme: Theme, user: AbstractBaseUser | None = None) -> ThemePin:
    if theme.engagement_id != item.respondent.wave.engagement_id:
        raise ValidationError("The theme belongs to another engagement.")
    if theme.merged_into_id:
        raise ValidationError("That theme was merged into another; move the item there.")
    pin, _ = ThemePin.objects.update_or_create(item=item, defaults={"theme": theme, "pinned_by": user})
    return pin
