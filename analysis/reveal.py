"""
The ORM edge of the workshop reveal: load a wave's leader predictions, embed
their items with the engine that found the themes, and hand everything to
``analysis.predictions``, whose block the run stores under ``predictions``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pandas as pd

from surveys.models import Wave
from surveys.selectors import wave_predictions

from . import predictions


def predictions_fingerprint(wave: Wave) -> str:
    """A digest of everything the ``predictions`` block depends on besides the answers."""
    return hashlib.sha256(repr(wave_predictions(wave)).encode()).hexdigest()


def predictions_for_run(
    *,
    wave: Wave,
    result: dict,
    items: pd.DataFrame,
    vectors: np.ndarray,
    embed: Callable[[list[str]], np.ndarray],
    engine: str,
    cacheable: bool,
) -> dict:
    """
    The ``predictions`` block of a run. ``items`` are the run's answer items
    with their ``theme_id`` (row i embedded as ``vectors[i]``); ``embed`` is
    the run's embedder. An engine whose vectors depend on what is embedded
    together (TF-IDF, ``cacheable`` False) embeds the answers and the
    predicted items in one call, so the two are comparable.
    """
    found = wave_predictions(wave)
    predicted = [
        (item["item_id"], item["question"], item["text"])
        for p in found
        for item in p["items"]
        if item["question"] in predictions.PREDICTED_QUESTIONS
    ]
    matches: dict[int, tuple[int | None, float]] = {}
    if predicted and len(items):
        texts = [text for _, _, text in predicted]
        if cacheable:
            answer_vectors, predicted_vectors = vectors, embed(texts)
        else:
            together = embed(items["text"].tolist() + texts)
            answer_vectors, predicted_vectors = together[: len(items)], together[len(items) :]
        threshold = predictions.match_threshold(engine)
        questions = items["question"].tolist()
        theme_ids = items["theme_id"].astype(int).tolist()
        groups = items["group"].tolist()
        for target in predictions.TARGETS:
            centroids = predictions.theme_centroids(answer_vectors, questions, theme_ids, groups, target=target)
            target_ids = {p["prediction_id"] for p in found if p["target"] == target}
            target_items = {i["item_id"] for p in found if p["prediction_id"] in target_ids for i in p["items"]}
            for question in predictions.PREDICTED_QUESTIONS:
                rows = [n for n, (item_id, q, _) in enumerate(predicted) if q == question and item_id in target_items]
                candidates = {theme_id: c for (q, theme_id), c in centroids.items() if q == question}
                for n, match in zip(rows, predictions.match_items(predicted_vectors[rows], candidates, threshold=threshold)):
                    matches[predicted[n][0]] = match
    answered = items.loc[items["group"] == predictions.LEADERSHIP, "respondent_id"].astype(int).unique().tolist()
    return predictions.accuracy(
        found, result, matches, min_individuals=wave.engagement.min_individuals, engine=engine, answered=answered
    )


# --- Reading the reveal -------------------------------------------------------------

# The reveal lists this many unpredicted themes and contradictions.
REVEAL_TOP = 5


def _percent(share: float | None) -> int | None:
    return None if share is None else round(share * 100)


def reveal_state(wave: Wave) -> dict:
    """
    What the facilitator's screens need to know about the reveal of ``wave``:
    the served run, whether a newer one is being computed, and the
    ``predictions`` block of each predicted group with what is missing.
    """
    from .selectors import run_in_progress, run_served

    run = run_served(wave)
    pending = run_in_progress(wave)
    block = ((run.result or {}).get("predictions") if run else None) or None
    targets = (block or {}).get("targets", {})
    return {"run": run, "pending": pending, "computed": block is not None, "targets": targets}


def reveal_steps(result: dict, target: str) -> dict:
    """
    The projector's content for one predicted group: team figures only (no
    leader's own accuracy, no verbatim of a leader), in the order the
    facilitator reveals them.
    """
    from .dashboard import contradiction_sentences

    block = ((result.get("predictions") or {}).get("targets") or {}).get(target) or {}
    ratings = []
    for row in block.get("ratings", []):
        own, predicted, actual = row.get("own") or {}, row.get("predicted") or {}, row.get("actual") or {}
        ratings.append(
            {
                "key": row["key"],
                "label": predictions.rating_name(row["key"], row["label"]),
                "own_top_box": _percent(own.get("top_box")),
                "own_mean": own.get("mean"),
                "predicted_top_box": _percent(predicted.get("top_box")),
                "predicted_mean": predicted.get("mean"),
                "actual_top_box": _percent(actual.get("top_box")),
                "actual_mean": actual.get("mean"),
                "sentence": row.get("sentence", ""),
            }
        )
    questions = block.get("questions") or {}
    blind_spots = sorted(
        (
            {**spot, "question": question, "percent": _percent(spot.get("share"))}
            for question, info in questions.items()
            for spot in info.get("blind_spots", [])
        ),
        key=lambda spot: -(spot.get("share") or 0),
    )[:REVEAL_TOP]
    predicted_themes = {
        question: [
            {**theme, "percent": _percent(theme.get("share"))} for theme in info.get("predicted_themes", [])[:REVEAL_TOP]
        ]
        for question, info in questions.items()
    }
    actual_themes = {}
    for question in predictions.PREDICTED_QUESTIONS:
        themes = ((result.get("questions") or {}).get(question) or {}).get("themes", [])
        shown = [
            {"label": t["label"], "percent": _percent(((t.get("groups") or {}).get(target) or {}).get("share"))}
            for t in themes
            if ((t.get("groups") or {}).get(target) or {}).get("share")
        ]
        actual_themes[question] = sorted(shown, key=lambda t: -t["percent"])[:REVEAL_TOP]
    summary = block.get("summary") or {}
    points = _percent((summary.get("top_box") or {}).get("over_optimism"))
    hit_rate = _percent(summary.get("hit_rate"))
    sentence = ""
    if points is not None:
        noun = predictions.GROUP_NOUNS[target]
        if points == 0:
            sentence = "On average your forecast of “excellent” ratings was spot on."
        else:
            more = "more" if points > 0 else "fewer"
            sentence = f"On average you expected {abs(points)} points {more} “excellent” ratings than the {noun} gave."
        if hit_rate is not None:
            sentence += f" {hit_rate}% of the items you predicted are among what they raised."
    return {
        "status": block.get("status"),
        "message": block.get("message", ""),
        "leaders": block.get("leaders", 0),
        "ratings": ratings,
        "predicted_themes": predicted_themes,
        "actual_themes": actual_themes,
        "blind_spots": blind_spots,
        "contradictions": contradiction_sentences(result)[:REVEAL_TOP],
        "summary_sentence": sentence,
        "available": block.get("status") == "ok",
        "figures": bool(block.get("ratings")),
    }
