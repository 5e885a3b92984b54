"""
Forecast accuracy of the workshop reveal: how far the leaders' predictions of
the customers' (and staff's) view were from what that group actually said.
Plain Python and numpy over the analysis document, no ORM; the service hands
in the predictions, the document and the item vectors.

Ratings. Per rating item and leader i, the error of a prediction is
``e_i = predicted_i - actual`` for the top-box share (share rating 5) and for
the mean. Per item the team gets:

- ``predicted``: the leaders' average prediction;
- ``mae``: mean absolute error, mean over leaders of ``|e_i|`` (how far off
  the leaders were, one by one);
- ``over_optimism``: mean over leaders of ``e_i``, which equals the team's
  average prediction minus the actual (positive: leaders expected better than
  customers gave).

The summary averages those over the rating items with an actual figure; each
leader's own figures (consultant only) average their ``|e_i|`` and ``e_i``
over the items.

Items. Each predicted item is matched to the theme of the same question whose
centroid of the predicted group's items is nearest (see ``match_items`` for
the rule and threshold). A prediction is a *hit* when the matched theme is one
the group raised (``metrics`` rule: at least 10% and two respondents); the
*hit rate* is hits / predicted items. *Blind spots* are the themes the group
raised that no leader's item matched, ranked by the group's share.

Anonymity. Nothing is computed from fewer leaders than the engagement's
threshold for individuals (the leadership group's own rule): with fewer, the
block says so and holds no figures. The predicted group's actual figures come
from the analysis document, so a group too small to show has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .metrics import DECIMALS, MIN_RESPONDENTS, MIN_SHARE

LEADERSHIP = "leadership"
CUSTOMER = "customer"
STAFF = "staff"
TARGETS: tuple[str, ...] = (CUSTOMER, STAFF)
PREDICTED_QUESTIONS: tuple[str, ...] = ("strengths", "improvements")
GROUP_NOUNS = {CUSTOMER: "customers", STAFF: "staff"}
POSSESSIVES = {CUSTOMER: "customers'", STAFF: "staff's"}
NO_ANSWERS = {CUSTOMER: "No customer answers yet in this wave.", STAFF: "No staff sheets yet in this wave."}

# The matching rule: a predicted item takes the theme (of its question) whose
# centroid of the predicted group's items has the highest cosine similarity to
# it, if that similarity reaches the engine's threshold; otherwise no theme.
# Thresholds chosen on the demo's paraphrase sets (leaders' "we" wording of
# each strength and improvement against the customers' wording of every theme
# of that question): with MiniLM 0.40 matches 76% of the paraphrases, 92% of
# them to the right theme, while unrelated sentences ("the coffee machine is
# broken") score at most 0.33; the TF-IDF fallback sees only shared words, so
# its scores are lower throughout: 0.10 matches 70%, 92% rightly, unrelated
# sentences at most 0.03.
MATCH_THRESHOLDS = {"minilm": 0.40, "tfidf": 0.10}
MATCH_RULE = (
    "cosine similarity to the centroid of the predicted group's items in each theme of the same question; "
    "the best theme if it reaches the threshold, else none"
)

# Short names of the default rating items for the reveal's sentences
# ("You expected 45% of customers to call our customer experience excellent").
RATING_PHRASES = {
    "overall": "our customer experience",
    "consistency": "our consistency",
    "problem_handling": "the way we handle problems",
    "customer_centricity": "our customer-centricity",
}


def rating_name(key: str, label: str) -> str:
    """A rating item's short name for a projector ("Our consistency"); its wording when it has none."""
    phrase = RATING_PHRASES.get(key)
    return phrase[0].upper() + phrase[1:] if phrase else label


def match_threshold(engine: str) -> float:
    """The threshold of the engine that embedded the items (by its name's prefix)."""
    return MATCH_THRESHOLDS["tfidf" if engine.startswith("tfidf") else "minilm"]


def _round(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), DECIMALS)


def _pct(share: float | None) -> str:
    return "–" if share is None else f"{round(share * 100)}%"


def _raised(entry: Mapping[str, Any] | None) -> bool:
    if not entry or entry.get("share") is None:
        return False
    return entry.get("respondents", 0) >= MIN_RESPONDENTS and entry["share"] >= MIN_SHARE


# --------------------------------------------------------------------------
# Matching predicted items to themes
# --------------------------------------------------------------------------


def theme_centroids(
    vectors: np.ndarray, questions: Sequence[str], theme_ids: Sequence[int], groups: Sequence[str], *, target: str
) -> dict[tuple[str, int], np.ndarray]:
    """Unit centroid of ``target``'s item vectors per (question, theme); unassigned items (-1) are left out."""
    rows: dict[tuple[str, int], list[int]] = {}
    for index, (question, theme_id, group) in enumerate(zip(questions, theme_ids, groups)):
        if group == target and int(theme_id) >= 0:
            rows.setdefault((str(question), int(theme_id)), []).append(index)
    centroids = {}
    for key, indices in rows.items():
        centroid = np.asarray(vectors[indices], dtype=np.float64).mean(axis=0)
        norm = np.linalg.norm(centroid)
        if norm > 0:
            centroids[key] = centroid / norm
    return centroids


def match_items(
    vectors: np.ndarray, candidates: Mapping[int, np.ndarray], *, threshold: float
) -> list[tuple[int | None, float]]:
    """
    For each row of ``vectors`` (unit vectors of predicted items of one
    question), the candidate theme with the most similar centroid and the
    similarity, or ``(None, best similarity)`` below ``threshold``.
    """
    if not len(vectors):
        return []
    if not candidates:
        return [(None, 0.0) for _ in range(len(vectors))]
    ids = list(candidates)
    matrix = np.vstack([candidates[t] for t in ids]).astype(np.float64)
    scores = np.asarray(vectors, dtype=np.float64) @ matrix.T
    out: list[tuple[int | None, float]] = []
    for row in scores:
        best = int(np.argmax(row))
        score = float(row[best])
        out.append((ids[best] if score >= threshold else None, round(score, 4)))
    return out


# --------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------


def _actual_status(result: Mapping[str, Any], target: str) -> tuple[str, str]:
    """Whether the document has the target group's answers: ("ok", "") or a status and what is missing."""
    info = (result.get("groups") or {}).get(target) or {}
    if info and not info.get("suppressed"):
        return "ok", ""
    hidden = next(
        (s for s in result.get("suppressed", []) if s.get("kind") == "group" and s.get("group") == target), None
    )
    n = (hidden or {}).get("respondents") or 0
    if n == 0:
        return "no_actual", NO_ANSWERS[target]
    threshold = (hidden or {}).get("threshold")
    unit = "staff sheets" if target == STAFF else GROUP_NOUNS[target]
    return (
        "actual_suppressed",
        f"Only {n} {unit} have answered so far; their view is shown from {threshold} (the anonymity threshold).",
    )


def _errors(predicted: list[float], actual: float | None) -> dict[str, float | None]:
    if actual is None or not predicted:
        return {"mae": None, "over_optimism": None}
    errors = np.asarray(predicted, dtype=np.float64) - actual
    return {"mae": _round(np.abs(errors).mean()), "over_optimism": _round(errors.mean())}


def _mean(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return _round(float(np.mean(present))) if present else None


def gap_sentence(target: str, key: str, label: str, predicted: float | None, actual: float | None) -> str:
    """The reveal's one line per rating item: "You expected 45% of customers to call ... excellent. 8% did." """
    noun = GROUP_NOUNS[target]
    phrase = RATING_PHRASES.get(key) or f"“{label}”"
    if predicted is None:
        return ""
    if actual is None:
        return f"You expected {_pct(predicted)} of {noun} to call {phrase} excellent."
    return f"You expected {_pct(predicted)} of {noun} to call {phrase} excellent. {_pct(actual)} did."


def _leader_names(predictions: Sequence[Mapping[str, Any]], answered: Sequence[int] = ()) -> dict[int, str]:
    """
    Pseudonyms L1, L2, ... (the leaders are never named or numbered by database
    id), numbered as the item export numbers leaders: by respondent id among
    the leaders whose own answers hold items (``answered``), so L2's forecast
    is the forecast of the L2 whose answers a consultant reads in the export.
    A leader who predicted without giving items of their own comes after them.
    """
    names = {int(respondent_id): f"L{n}" for n, respondent_id in enumerate(sorted(set(answered)), start=1)}
    for respondent_id in sorted({int(p["respondent_id"]) for p in predictions} - set(names)):
        names[respondent_id] = f"L{len(names) + 1}"
    return names


def target_accuracy(
    predictions: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    matches: Mapping[int, tuple[int | None, float]],
    *,
    target: str,
    min_individuals: int,
    answered: Sequence[int] = (),
) -> dict[str, Any]:
    """
    The accuracy block of one predicted group (see the module docstring).
    ``answered``: the ids of the leaders whose answers hold items, which
    number the leaders as the item export does.
    """
    mine = [p for p in predictions if p["target"] == target]
    leaders = len({p["respondent_id"] for p in mine})
    block: dict[str, Any] = {"group": target, "leaders": leaders, "threshold": min_individuals}
    if leaders == 0:
        return {**block, "status": "no_predictions", "message": f"No leader has predicted the {POSSESSIVES[target]} view."}
    if leaders < min_individuals:
        return {
            **block,
            "status": "too_few_leaders",
            "message": (
                f"Only {leaders} leader{'s' if leaders != 1 else ''} predicted the {POSSESSIVES[target]} view; "
                f"forecasts are shown from {min_individuals} leaders (the anonymity threshold)."
            ),
        }
    status, message = _actual_status(result, target)
    available = status == "ok"
    names = _leader_names(mine, answered)

    ratings: list[dict[str, Any]] = []
    per_leader: dict[int, dict[str, list[float]]] = {p["respondent_id"]: {"top_box": [], "mean": []} for p in mine}
    for entry in (result.get("ratings") or {}).get("items", []):
        key, label = entry["key"], entry.get("label", entry["key"])
        given = [(p["respondent_id"], p["ratings"][key]) for p in mine if key in p["ratings"]]
        if not given:
            continue
        groups = entry.get("groups") or {}
        own = groups.get(LEADERSHIP)
        actual = groups.get(target) if available else None
        if actual is not None and not actual.get("n"):
            actual = None
        row: dict[str, Any] = {
            "key": key,
            "label": label,
            "own": {"top_box": own.get("top_box"), "mean": own.get("mean")} if own and own.get("n") else None,
            "predicted": {
                "top_box": _mean(g["top_box"] for _, g in given),
                "mean": _mean(g["mean"] for _, g in given),
                "leaders": len(given),
            },
            "actual": {"top_box": actual["top_box"], "mean": actual["mean"], "n": actual["n"]} if actual else None,
        }
        for measure in ("top_box", "mean"):
            values = [g[measure] for _, g in given]
            row[measure] = _errors(values, actual[measure] if actual else None)
            if actual:
                for respondent_id, g in given:
                    per_leader[respondent_id][measure].append(g[measure] - actual[measure])
        row["sentence"] = gap_sentence(
            target, key, label, row["predicted"]["top_box"], actual["top_box"] if actual else None
        )
        ratings.append(row)

    questions = {
        question: _question_accuracy(mine, result, matches, question=question, target=target, available=available, names=names)
        for question in PREDICTED_QUESTIONS
    }
    summary = {
        measure: {
            "mae": _mean(r[measure]["mae"] for r in ratings),
            "over_optimism": _mean(r[measure]["over_optimism"] for r in ratings),
        }
        for measure in ("top_box", "mean")
    }
    predicted_items = sum(q["predicted_items"] for q in questions.values())
    hits = sum(q["hits"] or 0 for q in questions.values())
    summary["hit_rate"] = _round(hits / predicted_items) if available and predicted_items else None

    leaders_block = []
    if available:
        for p in mine:
            respondent_id = p["respondent_id"]
            errors = per_leader[respondent_id]
            items = [i for q in questions.values() for i in q["items"] if i["leader"] == names[respondent_id]]
            leaders_block.append(
                {
                    "leader": names[respondent_id],
                    "top_box": {
                        "mae": _mean(abs(e) for e in errors["top_box"]),
                        "over_optimism": _mean(errors["top_box"]),
                    },
                    "mean": {"mae": _mean(abs(e) for e in errors["mean"]), "over_optimism": _mean(errors["mean"])},
                    "predicted_items": len(items),
                    "hit_rate": _round(sum(i["hit"] for i in items) / len(items)) if items else None,
                }
            )
        leaders_block.sort(key=lambda row: int(row["leader"][1:]))
    return {
        **block,
        "status": status,
        "message": message,
        "ratings": ratings,
        "summary": summary,
        "questions": questions,
        "per_leader": leaders_block,
    }


def _question_accuracy(
    mine: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    matches: Mapping[int, tuple[int | None, float]],
    *,
    question: str,
    target: str,
    available: bool,
    names: Mapping[int, str],
) -> dict[str, Any]:
    themes = {
        t["theme_id"]: t for t in ((result.get("questions") or {}).get(question) or {}).get("themes", [])
    }
    raised = {tid: t for tid, t in themes.items() if available and _raised((t.get("groups") or {}).get(target))}
    items = []
    predicted_by: dict[int, set[int]] = {}
    for p in mine:
        for item in p["items"]:
            if item["question"] != question:
                continue
            theme_id, score = matches.get(item["item_id"], (None, 0.0)) if available else (None, None)
            if theme_id is not None and theme_id not in themes:
                theme_id = None  # a theme the document does not show (never for a shown group's items)
            if theme_id is not None:
                predicted_by.setdefault(theme_id, set()).add(p["respondent_id"])
            items.append(
                {
                    "item_id": item["item_id"],
                    "leader": names[p["respondent_id"]],
                    "text": item["text"],
                    "theme_id": theme_id,
                    "theme": themes[theme_id]["label"] if theme_id is not None else None,
                    "score": score,
                    "hit": theme_id in raised,
                }
            )

    def share(theme_id: int) -> float | None:
        return ((themes[theme_id].get("groups") or {}).get(target) or {}).get("share")

    predicted_themes = [
        {
            "theme_id": theme_id,
            "label": themes[theme_id]["label"],
            "leaders": len(who),
            "share": share(theme_id),
            "raised": theme_id in raised,
        }
        for theme_id, who in predicted_by.items()
    ]
    predicted_themes.sort(key=lambda t: (-t["leaders"], -(t["share"] or 0), t["theme_id"]))
    blind = [
        {
            "theme_id": theme_id,
            "label": theme["label"],
            "share": share(theme_id),
            "respondents": theme["groups"][target]["respondents"],
        }
        for theme_id, theme in raised.items()
        if theme_id not in predicted_by
    ]
    blind.sort(key=lambda t: (-(t["share"] or 0), t["theme_id"]))
    hits = sum(i["hit"] for i in items)
    return {
        "predicted_items": len(items),
        "hits": hits if available else None,
        "hit_rate": _round(hits / len(items)) if available and items else None,
        "items": items,
        "predicted_themes": predicted_themes,
        "blind_spots": blind,
    }


def accuracy(
    predictions: Sequence[Mapping[str, Any]],
    result: Mapping[str, Any],
    matches: Mapping[int, tuple[int | None, float]],
    *,
    min_individuals: int,
    engine: str,
    answered: Sequence[int] = (),
) -> dict[str, Any]:
    """
    The document's ``predictions`` block: ``{match: {...}, targets:
    {customer: {...}, staff: {...}}}``, one ``target_accuracy`` block per
    predicted group. ``matches`` maps a predicted item id to (theme id or
    None, similarity), as ``match_items`` gives them; ``answered`` (the ids
    of leaders whose answers hold items) numbers the leaders as the export does.
    """
    return {
        "match": {"engine": engine, "rule": MATCH_RULE, "threshold": match_threshold(engine)},
        "leaders": len({p["respondent_id"] for p in predictions}),
        "targets": {
            target: target_accuracy(
                predictions, result, matches, target=target, min_individuals=min_individuals, answered=answered
            )
            for target in TARGETS
        },
    }
