"""
The metrics of a wave's analysis: plain Python over pandas DataFrames, no ORM.

The loader (a service) hands in frames of items already assigned to themes;
``analyze`` returns the JSON result document the dashboard, the API and
``manage.py analyze --json`` serve. Each metric is also a function of its own
so it can be tested alone.

Input frames (see the docstring of ``analyze`` for the full contract):

- ``items``: item_id, respondent_id, group, department, question, tag, text,
  theme_id (-1 = unassigned)
- ``respondents``: respondent_id, group, department, members (every submitted
  respondent of the wave, including those who gave no item)
- ``ratings``: respondent_id, group, department, item_key, value (1-5), votes
- ``themes``: theme_id, label, keywords

Counting unit. A "respondent" is a leader, a customer or a staff *sheet*.
A staff sheet is one group's agreed answer (6-8 people), so for prevalence it
counts once, like an individual: the sheet either raised a theme or did not.
Where it matters we also give the members-weighted figure (``people_share``)
and ratings count votes (people), because a sheet records how many members
gave each value.

Anonymity. ``analyze`` is the only entry point that applies suppression. The
individual functions take the ``groups`` (and ``departments``) to report on;
with ``groups=None`` they report every group present, which is right for tests
and wrong for anything shown to a person.

Statistical choices, in one place (each is explained where it is used):

- ``ALPHA`` 0.05: the conventional significance level. The tests here screen
  for gaps worth discussing in a workshop, so we report raw p-values and
  classify on them (with a descriptive route for small groups, see
  ``classify_gap``); the Benjamini-Hochberg ``q_value`` is there for a
  stricter reading when many themes are tested.
- ``MIN_SHARE`` 10% and ``MIN_RESPONDENTS`` 2: a group "raises" a theme when at
  least a tenth of it and at least two respondents mention it. One voice is an
  anecdote; under a tenth is noise in groups of 5-50.
- ``MIN_GAP`` 10 points: the smallest difference in shares that counts as a
  gap when one group raises a theme and the other does not (see
  ``classify_gap``); below it the two are within what a workshop would call
  the same.
- ``MIN_TEST_MENTIONS`` 3: with fewer than three mentioning respondents in a
  pair, Fisher's exact test cannot reach p < 0.05 for the group sizes this
  product sees (5 leaders vs 10 customers: 2 vs 0 gives p = 0.095), so the gap
  is reported as not testable rather than "not significant".
- ``SPLIT_SPREAD`` 0.5: a theme splits staff departments when the shares of the
  departments raising it most and least differ by half or more. Departments
  hold a handful of sheets, too few for a test to have power, so the flag is
  descriptive and the p-value is given alongside.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon
from scipy.special import gammaln

# Fixed vocabularies (mirrors surveys.models, which this module must not import:
# it is pure Python and loads without Django settings).
LEADERSHIP = "leadership"
STAFF = "staff"
CUSTOMER = "customer"
GROUPS: tuple[str, ...] = (LEADERSHIP, STAFF, CUSTOMER)
QUESTIONS: tuple[str, ...] = ("strengths", "improvements", "competition", "continue_start")
QUESTION_TAGS: dict[str, tuple[str, ...]] = {
    "strengths": (),
    "improvements": (),
    "competition": ("good", "bad", "neutral"),
    "continue_start": ("continue", "start"),
}
UNASSIGNED = -1
RATING_VALUES: tuple[int, ...] = (1, 2, 3, 4, 5)
# "Excellent" on the 1-5 scale: the headline top-box figure of the research
# behind the product (80% of businesses vs 8% of customers).
TOP_BOX_VALUE = 5
HEADLINE_ITEM = "overall"

# Anonymity defaults, the product's own (SPEC "Anonymity"; Engagement model
# defaults): five individuals is the usual floor in employee and customer
# research below which answers can be tied to a person; a staff sheet is
# already a group of 6-8, so two sheets (12+ people) suffice.
DEFAULT_MIN_INDIVIDUALS = 5
DEFAULT_MIN_STAFF_SHEETS = 2
DEFAULT_THRESHOLDS: dict[str, int] = {
    LEADERSHIP: DEFAULT_MIN_INDIVIDUALS,
    STAFF: DEFAULT_MIN_STAFF_SHEETS,
    CUSTOMER: DEFAULT_MIN_INDIVIDUALS,
}

ALPHA = 0.05
MIN_SHARE = 0.10
MIN_RESPONDENTS = 2
MIN_GAP = 0.10
MIN_TEST_MENTIONS = 3
SPLIT_SPREAD = 0.5
# The test across 3+ staff departments is a Monte Carlo one. A fixed seed
# keeps a re-run's document identical (the run fingerprint and the tests rely
# on that); 4999 resamples put the standard error of a p near 0.05 at 0.003.
MONTE_CARLO_RESAMPLES = 4999
MONTE_CARLO_SEED = 20_240_601

# The exact rank test costs about k^2 x n^2 operations (k the smaller sample,
# n both); up to 2e7 that is a few milliseconds. Beyond, both samples are
# large enough (k >= 15 at n = 300) for the normal approximation.
EXACT_RANK_WORK = 20_000_000

# Rounding of the document: shares, means and differences to 4 decimals
# (0.01 percentage point); p-values to 4 significant digits, so a tiny p stays
# distinguishable from zero; the 0-100 alignment index to 2 decimals.
DECIMALS = 4
P_DIGITS = 4
INDEX_DECIMALS = 2

ITEM_COLUMNS: dict[str, str] = {
    "item_id": "int",
    "respondent_id": "int",
    "group": "str",
    "department": "str",
    "question": "str",
    "tag": "str",
    "text": "str",
    "theme_id": "int",
}
RESPONDENT_COLUMNS: dict[str, str] = {
    "respondent_id": "int",
    "group": "str",
    "department": "str",
    "members": "int",
}
RATING_COLUMNS: dict[str, str] = {
    "respondent_id": "int",
    "group": "str",
    "department": "str",
    "item_key": "str",
    "value": "int",
    "votes": "int",
}

ThemeLookup = dict[int, tuple[str, list[str]]]
Cell = tuple[str, str, int]


# --------------------------------------------------------------------------
# Small numeric and frame helpers
# --------------------------------------------------------------------------


def _r(value: float | None, digits: int = DECIMALS) -> float | None:
    """A float rounded for the document; None for missing, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return round(value, digits)


def _p(value: float | None) -> float | None:
    """A p-value to ``P_DIGITS`` significant digits, clipped to 0..1."""
    value = _r(value, 12)
    if value is None:
        return None
    value = min(max(value, 0.0), 1.0)
    return float(f"{value:.{P_DIGITS}g}")


def _share(part: float, whole: float) -> float | None:
    return None if whole <= 0 else part / whole


def _normalise(frame: pd.DataFrame | None, columns: Mapping[str, str], name: str) -> pd.DataFrame:
    """The frame's contract columns with clean types; an empty frame may lack columns."""
    if frame is None or (len(frame) == 0 and not set(columns) <= set(frame.columns)):
        return pd.DataFrame(
            {col: pd.Series([], dtype="int64" if kind == "int" else "str") for col, kind in columns.items()}
        )
    missing = [col for col in columns if col not in frame.columns]
    if missing:
        raise ValueError(f"{name} frame lacks columns: {', '.join(missing)}")
    out = frame.loc[:, list(columns)].copy()
    for col, kind in columns.items():
        if kind == "int":
            out[col] = pd.to_numeric(out[col]).astype("int64")
        else:
            out[col] = out[col].fillna("").astype(str)
    return out.reset_index(drop=True)


def _items(items: pd.DataFrame | None) -> pd.DataFrame:
    return _normalise(items, ITEM_COLUMNS, "items")


def _respondents(respondents: pd.DataFrame | None) -> pd.DataFrame:
    if respondents is not None and "members" in respondents.columns:
        # Leaders and customers are one person each whatever the loader put there.
        respondents = respondents.assign(members=pd.to_numeric(respondents["members"]).fillna(1))
    out = _normalise(respondents, RESPONDENT_COLUMNS, "respondents")
    out["members"] = out["members"].where(out["group"] == STAFF, 1).clip(lower=1)
    unknown = set(out["group"]) - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown groups: {', '.join(sorted(unknown))}")
    return out.drop_duplicates("respondent_id")


def _ratings(ratings: pd.DataFrame | None) -> pd.DataFrame:
    out = _normalise(ratings, RATING_COLUMNS, "ratings")
    return out[out["value"].isin(RATING_VALUES) & (out["votes"] > 0)]


def _theme_lookup(themes: pd.DataFrame | None) -> ThemeLookup:
    """theme_id -> (label, keywords)."""
    if themes is None or len(themes) == 0:
        return {}
    lookup: ThemeLookup = {}
    for theme_id, label, keywords in zip(themes["theme_id"], themes["label"], themes["keywords"]):
        if keywords is None or (isinstance(keywords, float) and math.isnan(keywords)):
            words: list[str] = []
        elif isinstance(keywords, str):
            words = [keywords]
        else:
            words = [str(word) for word in keywords]
        lookup[int(theme_id)] = ("" if label is None else str(label), words)
    lookup.pop(UNASSIGNED, None)
    return lookup


def _default_groups(respondents: pd.DataFrame) -> list[str]:
    present = set(respondents["group"])
    return [group for group in GROUPS if group in present]


def _ordered(groups: Iterable[str]) -> list[str]:
    wanted = set(groups)
    return [group for group in GROUPS if group in wanted]


def _pairs(groups: Sequence[str]) -> list[tuple[str, str]]:
    """Group pairs in the fixed order leadership < staff < customer.

    Differences are always ``a - b``, so with leadership first a positive gap
    means leadership says it more, and with customers last a negative gap
    means customers say it more.
    """
    return list(combinations(_ordered(groups), 2))


def _group_sizes(respondents: pd.DataFrame, groups: Sequence[str]) -> dict[str, tuple[int, int]]:
    """group -> (respondents, people); every requested group gets an entry."""
    sizes = {group: (0, 0) for group in groups}
    subset = respondents[respondents["group"].isin(list(groups))]
    for group, frame in subset.groupby("group"):
        sizes[str(group)] = (int(frame["respondent_id"].nunique()), int(frame["members"].sum()))
    return sizes


def _assigned(items: pd.DataFrame, lookup: ThemeLookup) -> pd.Series:
    """Items that carry a known theme (-1 and ids missing from ``themes`` do not)."""
    return items["theme_id"].isin(list(lookup))


def _mention_counts(
    items: pd.DataFrame, respondents: pd.DataFrame, lookup: ThemeLookup, groups: Sequence[str]
) -> pd.DataFrame:
    """One row per (question, theme_id, group) with ``respondents`` mentioning,
    their ``people`` (members) and the ``mentions`` (items)."""
    columns = ["question", "theme_id", "group", "respondents", "people", "mentions"]
    subset = items[items["group"].isin(list(groups)) & _assigned(items, lookup)]
    if subset.empty:
        return pd.DataFrame(
            {col: pd.Series([], dtype="int64" if col not in ("question", "group") else "str") for col in columns}
        )
    keys = ["question", "theme_id", "group"]
    mentions = subset.groupby(keys).size().rename("mentions")
    unique = subset.drop_duplicates([*keys, "respondent_id"])[[*keys, "respondent_id"]]
    unique = unique.merge(respondents[["respondent_id", "members"]], on="respondent_id", how="left")
    unique["members"] = unique["members"].fillna(1).astype("int64")
    counts = unique.groupby(keys).agg(respondents=("respondent_id", "size"), people=("members", "sum"))
    return counts.join(mentions).reset_index()[columns]


def _raised(respondents: int, share: float | None) -> bool:
    """A group raises a theme: at least MIN_RESPONDENTS of it and MIN_SHARE of it mention it."""
    return share is not None and respondents >= MIN_RESPONDENTS and share >= MIN_SHARE


def _mention_cells(items: pd.DataFrame, lookup: ThemeLookup) -> pd.DataFrame:
    """Unique (question, tag, theme_id, respondent_id) rows of themed items."""
    subset = items[_assigned(items, lookup)]
    return subset.drop_duplicates(["question", "tag", "theme_id", "respondent_id"])


def _distribution(cells: pd.DataFrame) -> dict[Cell, float]:
    """Theme-mention distribution: how many respondents said each (question, tag, theme)."""
    if cells.empty:
        return {}
    counts = cells.groupby(["question", "tag", "theme_id"]).size()
    return {(str(q), str(t), int(th)): float(n) for (q, t, th), n in counts.items()}


def _distributions(cells: pd.DataFrame, by: str) -> dict[str, dict[Cell, float]]:
    """``_distribution`` of each value of column ``by``, in one pass."""
    out: dict[str, dict[Cell, float]] = {}
    if cells.empty:
        return out
    for (key, q, t, th), n in cells.groupby([by, "question", "tag", "theme_id"]).size().items():
        out.setdefault(str(key), {})[(str(q), str(t), int(th))] = float(n)
    return out


def _only(dist: Mapping[Cell, float], question: str) -> dict[Cell, float]:
    return {cell: n for cell, n in dist.items() if cell[0] == question}


# --------------------------------------------------------------------------
# Anonymity
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Suppression:
    """What may be shown: the visible groups and, per group, the departments
    (staff) or segments (customers) that may appear in a breakdown.
    ``entries`` is the document's ``suppressed`` list."""

    visible_groups: tuple[str, ...]
    visible_departments: dict[str, tuple[str, ...]]
    entries: list[dict[str, Any]] = field(default_factory=list)
    group_threshold: dict[str, int] = field(default_factory=dict)


def suppression(
    respondents: pd.DataFrame,
    *,
    min_individuals: int = DEFAULT_MIN_INDIVIDUALS,
    min_staff_sheets: int = DEFAULT_MIN_STAFF_SHEETS,
) -> Suppression:
    """Decide which groups, departments and segments may be shown.

    Rules:

    - leadership and customers are suppressed with fewer than
      ``min_individuals`` respondents, staff with fewer than
      ``min_staff_sheets`` sheets (a group with nobody is suppressed too);
    - within a shown group, a staff department (threshold in sheets) or a
      customer segment (threshold in individuals) under the threshold never
      gets a breakdown of its own, but its respondents still count in the
      group's totals;
    - complementary suppression: the group's total is published, so if the
      respondents left outside the shown departments (suppressed ones plus
      those with no department) number more than zero and fewer than the
      threshold, subtracting the shown departments from the total would reveal
      them. The smallest shown departments are then suppressed too until the
      remainder reaches the threshold (reason ``complementary``).

    Formula: visible(g) = n_g >= threshold(g); visible(d) = n_d >= threshold(g)
    and the remainder rule above.
    """
    if min_individuals < 1 or min_staff_sheets < 1:
        raise ValueError("anonymity thresholds must be at least 1")
    respondents = _respondents(respondents)
    thresholds = {LEADERSHIP: min_individuals, STAFF: min_staff_sheets, CUSTOMER: min_individuals}
    entries: list[dict[str, Any]] = []
    visible: list[str] = []
    departments: dict[str, tuple[str, ...]] = {}
    for group in GROUPS:
        threshold = thresholds[group]
        frame = respondents[respondents["group"] == group]
        n = int(frame["respondent_id"].nunique())
        if n < threshold:
            entries.append(
                {
                    "kind": "group",
                    "group": group,
                    "name": group,
                    "respondents": n,
                    "threshold": threshold,
                    "reason": "below_threshold",
                }
            )
            continue
        visible.append(group)
        if group == LEADERSHIP:
            # Leadership has no breakdown by department.
            continue
        kind = "department" if group == STAFF else "segment"
        sizes = frame[frame["department"] != ""].groupby("department")["respondent_id"].nunique()
        shown = {str(name): int(size) for name, size in sizes.items() if size >= threshold}
        for name, size in sorted(sizes.items()):
            if size < threshold:
                entries.append(
                    {
                        "kind": kind,
                        "group": group,
                        "name": str(name),
                        "respondents": int(size),
                        "threshold": threshold,
                        "reason": "below_threshold",
                    }
                )
        remainder = n - sum(shown.values())
        while shown and 0 < remainder < threshold:
            name = min(shown, key=lambda d: (shown[d], d))
            size = shown.pop(name)
            remainder += size
            entries.append(
                {
                    "kind": kind,
                    "group": group,
                    "name": name,
                    "respondents": size,
                    "threshold": threshold,
                    "reason": "complementary",
                }
            )
        departments[group] = tuple(sorted(shown))
    return Suppression(
        visible_groups=tuple(visible),
        visible_departments=departments,
        entries=entries,
        group_threshold=thresholds,
    )


# --------------------------------------------------------------------------
# Prevalence
# --------------------------------------------------------------------------


def prevalence(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    themes: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per question, each theme's prevalence in each group.

    Formula: share(g, q, t) = |{respondents of g with >= 1 item on theme t
    under question q}| / |respondents of g|; the denominator is every
    submitted respondent of the group, including those who left the question
    blank, so shares of different questions and groups are comparable.
    For staff, people_share = members of the mentioning sheets / members of
    all sheets (a sheet of 8 weighs more than a sheet of 3); None for the
    other groups, where it would equal ``share``.

    Why respondents and not items: a respondent who writes three variants of
    "slow replies" is still one person raising it; counting items would let
    the wordiest respondents set the agenda. ``mentions`` (items) is given for
    reference. ``tags`` counts items per tag for the tagged questions, every
    tag of the question listed plus ``untagged`` (None for strengths and
    improvements). Themes are sorted by mentions, descending;
    a theme no shown group mentions is left out (its label would come from
    suppressed answers only). ``unassigned`` counts shown groups' items with
    no theme (theme_id -1, or an id missing from ``themes``).
    """
    items, respondents, lookup = _items(items), _respondents(respondents), _theme_lookup(themes)
    groups = _ordered(groups) if groups is not None else _default_groups(respondents)
    sizes = _group_sizes(respondents, groups)
    counts = _mention_counts(items, respondents, lookup, groups)
    shown_items = items[items["group"].isin(groups)]
    found = {
        (q, int(t), g): (int(k), int(people), int(m))
        for q, t, g, k, people, m in zip(
            counts["question"],
            counts["theme_id"],
            counts["group"],
            counts["respondents"],
            counts["people"],
            counts["mentions"],
        )
    }
    themed = shown_items[_assigned(shown_items, lookup)]
    tag_counts = {
        (q, int(t), tag): int(n) for (q, t, tag), n in themed.groupby(["question", "theme_id", "tag"]).size().items()
    }
    unassigned = shown_items[~_assigned(shown_items, lookup)]["question"].value_counts()
    result: dict[str, dict[str, Any]] = {}
    for question in QUESTIONS:
        tagged = QUESTION_TAGS[question]
        theme_entries: list[dict[str, Any]] = []
        for theme_id in sorted({t for q, t, _ in found if q == question}):
            label, keywords = lookup[theme_id]
            group_entries: dict[str, dict[str, Any]] = {}
            total = 0
            for group in groups:
                n, people = sizes[group]
                k, k_people, mentions = found.get((question, theme_id, group), (0, 0, 0))
                total += mentions
                group_entries[group] = {
                    "respondents": k,
                    "mentions": mentions,
                    "share": _r(_share(k, n)),
                    "people_share": _r(_share(k_people, people)) if group == STAFF else None,
                }
            tags: dict[str, int] | None = None
            if tagged:
                tags = {tag: tag_counts.get((question, theme_id, tag), 0) for tag in tagged}
                tags["untagged"] = total - sum(tags.values())
            theme_entries.append(
                {
                    "theme_id": theme_id,
                    "label": label,
                    "keywords": list(keywords),
                    "mentions": total,
                    "groups": group_entries,
                    "tags": tags,
                }
            )
        theme_entries.sort(key=lambda e: (-e["mentions"], e["theme_id"]))
        result[question] = {"themes": theme_entries, "unassigned": int(unassigned.get(question, 0))}
    return result


# --------------------------------------------------------------------------
# Theme gaps
# --------------------------------------------------------------------------


def classify_gap(
    question: str,
    group_a: str,
    group_b: str,
    *,
    respondents_a: int,
    respondents_b: int,
    share_a: float,
    share_b: float,
    testable: bool,
    significant: bool,
) -> str:
    """Classify one theme gap between groups a and b (a before b in GROUPS order).

    "Raises" means at least MIN_SHARE (10%) and MIN_RESPONDENTS (2) of the
    group mention the theme. A difference is *clear* when it is significant
    (Fisher p < ALPHA) or when the higher group raises the theme, the lower
    one does not, and the shares differ by at least MIN_GAP (10 points).
    The second route exists because leadership teams are small: 0 of 8
    leaders against 30% of customers gives p = 0.11 (the chance that 8 people
    drawn from a 30% population all stay silent is 0.7^8 = 0.058), so a test
    alone would hide the very blind spots the product is there to show.
    ``significant`` in the gap tells which route applied.

    - ``none`` if not testable (too few mentions for any conclusion);
    - a clear difference:
        - ``blind_spot``: the pair includes leadership and the other group
          (staff or customers) raises the theme more, under any question:
          the others see something leadership does not (a problem, an
          unrecognised strength, a competitor's move, an ask);
        - ``overestimated``: the pair includes leadership, the question is
          ``strengths``, and leadership raises it more: a claimed strength
          the people delivering (staff) or receiving (customers) the
          experience do not confirm;
        - ``divergent``: any other clear difference (staff vs customers;
          leadership worrying about an improvement others do not raise;
          a significant difference where the higher share is under the
          floor);
    - otherwise:
        - ``shared``: both groups raise it;
        - ``none``: at most one group raises it, and not clearly more.
    """
    if not testable:
        return "none"
    raised_a = _raised(respondents_a, share_a)
    raised_b = _raised(respondents_b, share_b)
    a_higher = share_a > share_b
    raised_high, raised_low = (raised_a, raised_b) if a_higher else (raised_b, raised_a)
    clear = significant or (raised_high and not raised_low and abs(share_a - share_b) >= MIN_GAP)
    if clear:
        if group_a == LEADERSHIP:
            if not a_higher and share_b > share_a and raised_b:
                return "blind_spot"
            if a_higher and raised_a and question == "strengths":
                return "overestimated"
        return "divergent"
    if raised_a and raised_b:
        return "shared"
    return "none"


def _fisher_2x2(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """Two-sided Fisher's exact test on [[k_a, n_a - k_a], [k_b, n_b - k_b]].

    The sum of the hypergeometric probabilities of every table with the same
    margins that is no more likely than the observed one (the definition
    scipy's ``fisher_exact`` and R's ``fisher.test`` use; the 1e-7 relative
    tolerance is R's, so ties in probability count as "as extreme"). Written
    out with log-gamma because it runs once per theme, group pair and
    question: scipy's function costs a millisecond a call.
    """
    total, size = k_a + k_b, n_a + n_b
    if n_a == 0 or n_b == 0 or total == 0 or total == size:
        return 1.0
    low, high = max(0, total - n_b), min(total, n_a)
    x = np.arange(low, high + 1)
    log_pmf = _log_choose(n_a, x) + _log_choose(n_b, total - x) - _log_choose(size, np.array([total]))[0]
    pmf = np.exp(log_pmf)
    observed = pmf[k_a - low]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum()))


def _log_choose(n: int, k: np.ndarray) -> np.ndarray:
    return gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)


def theme_gaps(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    themes: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
    min_group: Mapping[str, int] | None = None,
    min_mentions: int = MIN_TEST_MENTIONS,
    alpha: float = ALPHA,
) -> list[dict[str, Any]]:
    """Per question, theme and group pair: the difference in prevalence and its test.

    difference = share_a - share_b (a before b in leadership, staff, customer
    order). Test: Fisher's exact test, two-sided, on the 2x2 table
    [[k_a, n_a - k_a], [k_b, n_b - k_b]] (mentioned / not, per group).
    Fisher's test is exact at any size, where a chi-square or z-test of two
    proportions is unreliable with expected counts under 5 — the usual case
    with 5-10 leaders or a few staff sheets.

    Guard: ``testable`` needs both groups at their anonymity threshold
    (``min_group``, by default 5 individuals / 2 staff sheets; always true for
    the groups ``analyze`` shows) and k_a + k_b >= ``min_mentions`` (3 by default:
    with fewer, Fisher cannot reach p < 0.05 at these group sizes, so "not
    significant" would say nothing). ``q_value`` is the Benjamini-Hochberg
    adjusted p-value over all testable gaps of the run; classification uses
    the raw p-value (see the module docstring). Pairs where neither group
    mentions the theme are left out. Sorted by |difference| descending, then
    by p-value.
    """
    items, respondents, lookup = _items(items), _respondents(respondents), _theme_lookup(themes)
    groups = _ordered(groups) if groups is not None else _default_groups(respondents)
    sizes = _group_sizes(respondents, groups)
    floor = {**DEFAULT_THRESHOLDS, **(min_group or {})}
    counts = _mention_counts(items, respondents, lookup, groups)
    k_of = {(r.question, int(r.theme_id), r.group): int(r.respondents) for r in counts.itertuples(index=False)}
    gaps: list[dict[str, Any]] = []
    for question, theme_id in sorted({(r.question, int(r.theme_id)) for r in counts.itertuples(index=False)}):
        for group_a, group_b in _pairs(groups):
            k_a, k_b = k_of.get((question, theme_id, group_a), 0), k_of.get((question, theme_id, group_b), 0)
            if k_a + k_b == 0:
                continue
            n_a, n_b = sizes[group_a][0], sizes[group_b][0]
            share_a, share_b = k_a / n_a, k_b / n_b
            testable = k_a + k_b >= min_mentions and n_a >= max(floor[group_a], 1) and n_b >= max(floor[group_b], 1)
            p_value = _fisher_2x2(k_a, n_a, k_b, n_b) if testable else None
            significant = p_value is not None and p_value < alpha
            gaps.append(
                {
                    "question": question,
                    "theme_id": theme_id,
                    "label": lookup[theme_id][0],
                    "group_a": group_a,
                    "group_b": group_b,
                    "respondents_a": k_a,
                    "respondents_b": k_b,
                    "n_a": n_a,
                    "n_b": n_b,
                    "share_a": share_a,
                    "share_b": share_b,
                    "difference": share_a - share_b,
                    "p_value": p_value,
                    "q_value": None,
                    "testable": testable,
                    "significant": significant,
                    "classification": classify_gap(
                        question,
                        group_a,
                        group_b,
                        respondents_a=k_a,
                        respondents_b=k_b,
                        share_a=share_a,
                        share_b=share_b,
                        testable=testable,
                        significant=significant,
                    ),
                }
            )
    tested = [gap for gap in gaps if gap["p_value"] is not None]
    if tested:
        q_values = stats.false_discovery_control([gap["p_value"] for gap in tested], method="bh")
        for gap, q_value in zip(tested, q_values):
            gap["q_value"] = _p(q_value)
    gaps.sort(
        key=lambda g: (
            -abs(g["difference"]),
            2.0 if g["p_value"] is None else g["p_value"],
            g["question"],
            g["theme_id"],
        )
    )
    for gap in gaps:
        for key in ("share_a", "share_b", "difference"):
            gap[key] = _r(gap[key])
        gap["p_value"] = _p(gap["p_value"])
    return gaps


# --------------------------------------------------------------------------
# Contradictions
# --------------------------------------------------------------------------


def contradictions(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    themes: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
    min_share: float = MIN_SHARE,
    min_respondents: int = MIN_RESPONDENTS,
) -> list[dict[str, Any]]:
    """Themes one group lists as a strength and another as needing improvement.

    A contradiction is an ordered pair of different groups (S, I) and a theme
    t with share(S, strengths, t) >= ``min_share`` and >= ``min_respondents``
    respondents, and the same floor for share(I, improvements, t). The floor
    (10% and 2 respondents) keeps a lone dissenter from making a headline.

    severity = strength_share x improvement_share: the chance that a random
    member of S praises the theme while a random member of I criticises it;
    high only when both sides hold it widely. Sorted by severity descending.
    """
    items, respondents, lookup = _items(items), _respondents(respondents), _theme_lookup(themes)
    groups = _ordered(groups) if groups is not None else _default_groups(respondents)
    sizes = _group_sizes(respondents, groups)
    counts = _mention_counts(items, respondents, lookup, groups)

    def raised(question: str) -> dict[int, list[tuple[str, int, float]]]:
        out: dict[int, list[tuple[str, int, float]]] = {}
        for row in counts[counts["question"] == question].itertuples(index=False):
            k, n = int(row.respondents), sizes[row.group][0]
            share = _share(k, n)
            if share is not None and k >= min_respondents and share >= min_share:
                out.setdefault(int(row.theme_id), []).append((row.group, k, share))
        return out

    strengths, improvements = raised("strengths"), raised("improvements")
    found: list[dict[str, Any]] = []
    for theme_id in sorted(set(strengths) & set(improvements)):
        for s_group, s_k, s_share in strengths[theme_id]:
            for i_group, i_k, i_share in improvements[theme_id]:
                if s_group == i_group:
                    continue
                found.append(
                    {
                        "theme_id": theme_id,
                        "label": lookup[theme_id][0],
                        "strength_group": s_group,
                        "strength_share": _r(s_share),
                        "strength_respondents": s_k,
                        "improvement_group": i_group,
                        "improvement_share": _r(i_share),
                        "improvement_respondents": i_k,
                        "severity": _r(s_share * i_share),
                    }
                )
    found.sort(
        key=lambda c: (
            -c["severity"],
            c["theme_id"],
            GROUPS.index(c["strength_group"]),
            GROUPS.index(c["improvement_group"]),
        )
    )
    return found


# --------------------------------------------------------------------------
# Rating gaps
# --------------------------------------------------------------------------


def _rating_summary(values: np.ndarray, votes: np.ndarray) -> dict[str, Any]:
    n = int(votes.sum())
    if n == 0:
        return {"n": 0, "mean": None, "top_box": None, "distribution": None}
    return {
        "n": n,
        "mean": _r(float((values * votes).sum()) / n),
        "top_box": _r(float(votes[values == TOP_BOX_VALUE].sum()) / n),
        "distribution": {str(v): _r(float(votes[values == v].sum()) / n) for v in RATING_VALUES},
    }


def rating_gaps(
    ratings: pd.DataFrame,
    rating_items: Sequence[tuple[str, str]],
    *,
    groups: Sequence[str] | None = None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Per rating item: each group's figures and each pair's gap, plus the headline.

    Per group, over votes (people): n = sum(votes); mean = sum(value x votes)
    / n; top_box = votes with value 5 / n (the research's "excellent" share);
    distribution = share of votes per value. A staff sheet's agreed value
    carries votes = its members, so a sheet of 8 weighs as 8 people, as the
    sheet records.

    Per pair (a before b): mean_diff = mean_a - mean_b, top_box_diff likewise,
    and ``p_value``, the two-sided Mann-Whitney U test on the vote-expanded
    values (each value repeated ``votes`` times). A rank test because the
    scale is ordinal (the distance from 4 to 5 is not that from 1 to 2);
    exact with ties for small samples, see ``_mann_whitney``.

    Caveat: a staff sheet's agreed value expanded to its members is one
    judgement, not independent observations, so with staff in the pair
    ``p_value`` overstates the evidence (3 sheets of 7 agreeing on 4 look like
    21 independent 4s). Hence ``p_value_respondents``: the same test with one
    observation per respondent (a sheet's vote-weighted mean), the
    conservative reading; ``significant`` requires both below ``alpha``. For
    leaders and customers (one vote each) the two p-values are identical.

    headline: leadership vs customer on ``overall`` (or the first item): "N%
    of your leaders rate your CX excellent; M% of your customers do". Only
    shown groups appear; the sentence needs both.
    """
    ratings = _ratings(ratings)
    if groups is None:
        groups = _ordered(set(ratings["group"]))
    groups = _ordered(groups)
    ratings = ratings[ratings["group"].isin(groups)]
    by_key = {str(key): frame for key, frame in ratings.groupby("item_key")}
    entries: list[dict[str, Any]] = []
    for key, label in rating_items:
        frame = by_key.get(str(key), ratings.iloc[0:0])
        per_group: dict[str, dict[str, Any]] = {}
        expanded: dict[str, np.ndarray] = {}
        per_respondent: dict[str, np.ndarray] = {}
        for group in groups:
            g = frame[frame["group"] == group]
            values, votes = g["value"].to_numpy(dtype="int64"), g["votes"].to_numpy(dtype="int64")
            per_group[group] = _rating_summary(values, votes)
            per_group[group]["respondents"] = int(g["respondent_id"].nunique())
            expanded[group] = np.repeat(values, votes)
            weighted = g.assign(total=g["value"] * g["votes"]).groupby("respondent_id")[["total", "votes"]].sum()
            per_respondent[group] = (weighted["total"] / weighted["votes"]).to_numpy(dtype="float64")
        pairs: list[dict[str, Any]] = []
        for group_a, group_b in _pairs(groups):
            a, b = per_group[group_a], per_group[group_b]
            both = bool(a["n"] and b["n"])
            p_value = _mann_whitney(expanded[group_a], expanded[group_b]) if both else None
            p_respondents = _mann_whitney(per_respondent[group_a], per_respondent[group_b]) if both else None
            pairs.append(
                {
                    "group_a": group_a,
                    "group_b": group_b,
                    "n_a": a["n"],
                    "n_b": b["n"],
                    "respondents_a": a["respondents"],
                    "respondents_b": b["respondents"],
                    "mean_diff": _r(a["mean"] - b["mean"]) if both else None,
                    "top_box_diff": _r(a["top_box"] - b["top_box"]) if both else None,
                    "p_value": _p(p_value),
                    "p_value_respondents": _p(p_respondents),
                    "significant": p_value is not None
                    and p_respondents is not None
                    and max(p_value, p_respondents) < alpha,
                }
            )
        entries.append({"key": str(key), "label": str(label), "groups": per_group, "pairs": pairs})
    return {"items": entries, "headline": _headline(entries, groups)}


def _mann_whitney(a: np.ndarray, b: np.ndarray) -> float | None:
    """Two-sided Mann-Whitney U p-value; None if either sample is empty.

    Ratings on a 1-5 scale are full of ties, and scipy's exact method
    ignores ties while its normal approximation is poor for the small
    samples here (2 staff sheets against 5 leaders all at the extremes gives
    0.027 by the approximation, 0.095 exactly). So when it is cheap we use
    the exact permutation distribution of the rank sum with mid-ranks (the
    conditional exact test, as ``PermutationMethod`` with every permutation
    would give), and the tie-corrected normal approximation otherwise, when
    both samples are large enough for it.
    """
    if len(a) == 0 or len(b) == 0:
        return None
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    k, n = len(small), len(small) + len(large)
    if k * k * n * n <= EXACT_RANK_WORK:
        return _exact_rank_sum_p(np.asarray(small, dtype=float), np.asarray(large, dtype=float))
    p_value = float(stats.mannwhitneyu(a, b, alternative="two-sided", method="asymptotic").pvalue)
    return p_value if math.isfinite(p_value) else None


def _exact_rank_sum_p(small: np.ndarray, large: np.ndarray) -> float:
    """Exact two-sided p of the Wilcoxon rank sum of ``small``, ties as mid-ranks.

    Under the null every choice of len(small) of the pooled observations is
    equally likely to be ``small``. Doubled mid-ranks are integers, so the
    number of subsets of each size by rank sum is a knapsack count:
    ways[j, s] for j chosen observations with doubled rank sum s.
    p = min(1, 2 x min(P(S <= s_obs), P(S >= s_obs))), the rank sum being
    an affine function of U.
    """
    pooled = np.concatenate([small, large])
    ranks = np.rint(2 * stats.rankdata(pooled)).astype(np.int64)
    k = len(small)
    observed = int(ranks[:k].sum())
    ceiling = int(np.sort(ranks)[-k:].sum())
    ways = np.zeros((k + 1, ceiling + 1))
    ways[0, 0] = 1.0
    for rank in ranks:
        # Right-hand side first: each observation is used at most once.
        ways[1:, rank:] = ways[1:, rank:] + ways[:-1, : ceiling + 1 - rank]
    counts = ways[k]
    total = counts.sum()
    lower = counts[: observed + 1].sum() / total
    upper = counts[observed:].sum() / total
    return float(min(1.0, 2.0 * min(lower, upper)))


def _headline(entries: list[dict[str, Any]], groups: Sequence[str]) -> dict[str, Any] | None:
    if not entries:
        return None
    entry = next((e for e in entries if e["key"] == HEADLINE_ITEM), entries[0])
    shown = {
        group: {key: entry["groups"][group][key] for key in ("n", "mean", "top_box")}
        for group in (LEADERSHIP, CUSTOMER)
        if group in groups
    }
    leaders = shown.get(LEADERSHIP, {}).get("top_box")
    customers = shown.get(CUSTOMER, {}).get("top_box")
    sentence = None
    top_box_diff = None
    if leaders is not None and customers is not None:
        top_box_diff = _r(leaders - customers)
        what = "your CX" if entry["key"] == HEADLINE_ITEM else f"“{entry['label']}”"
        sentence = (
            f"{round(leaders * 100)}% of your leaders rate {what} excellent; "
            f"{round(customers * 100)}% of your customers do."
        )
    return {
        "item": entry["key"],
        "label": entry["label"],
        "groups": shown,
        "top_box_diff": top_box_diff,
        "sentence": sentence,
    }


# --------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------


def alignment_index(a: Mapping[Hashable, float], b: Mapping[Hashable, float]) -> float | None:
    """100 x (1 - Jensen-Shannon distance, base 2) between two distributions.

    The inputs are non-negative weights over any keys (normalised here).
    The JS distance is symmetric, bounded to 0..1 in base 2 and finite even
    when one group never mentions what the other does (unlike KL divergence),
    so the index is 100 for identical distributions, 0 for groups talking
    about entirely different things, and the same whichever group comes first.
    None when either side has nothing to compare (no themed mention): "no
    basis" is not "total disagreement".
    """
    keys = sorted(set(a) | set(b), key=repr)
    p = np.array([float(a.get(k, 0.0)) for k in keys])
    q = np.array([float(b.get(k, 0.0)) for k in keys])
    if not keys or p.sum() <= 0 or q.sum() <= 0:
        return None
    with np.errstate(invalid="ignore"):
        # Rounding can leave the divergence a hair below 0 for (nearly)
        # identical inputs; its square root is then NaN, meaning distance 0.
        distance = float(jensenshannon(p, q, base=2))
    if not math.isfinite(distance):
        distance = 0.0
    distance = min(max(distance, 0.0), 1.0)
    return round(100.0 * (1.0 - distance), INDEX_DECIMALS)


def alignment(items: pd.DataFrame, themes: pd.DataFrame, *, groups: Sequence[str] | None = None) -> dict[str, Any]:
    """Alignment index 0-100 per group pair (overall and per question) and overall.

    Each group's distribution: for every (question, tag, theme) cell, the
    number of the group's respondents with an item there (each respondent
    counts once per cell; unassigned items are left out). The question is
    part of the cell because a theme praised under strengths and criticised
    under improvements is disagreement, not agreement; the tag likewise
    (competitors' "good" vs "bad", "continue" vs "start").

    pair value = ``alignment_index`` of the two distributions (None when a
    group has no themed item); overall = mean of the available pair values
    (None if none). The index compares what each group talks about and in
    what proportion, not how many of them do: prevalence levels are the
    business of ``theme_gaps``.
    """
    items, lookup = _items(items), _theme_lookup(themes)
    if groups is None:
        groups = _ordered(set(items["group"]))
    groups = _ordered(groups)
    cells = _mention_cells(items[items["group"].isin(groups)], lookup)
    found = _distributions(cells, "group")
    dists = {group: found.get(group, {}) for group in groups}
    per_question = {question: {group: _only(dists[group], question) for group in groups} for question in QUESTIONS}
    pairs: list[dict[str, Any]] = []
    for group_a, group_b in _pairs(groups):
        pairs.append(
            {
                "group_a": group_a,
                "group_b": group_b,
                "value": alignment_index(dists[group_a], dists[group_b]),
                "by_question": {
                    question: alignment_index(per_question[question][group_a], per_question[question][group_b])
                    for question in QUESTIONS
                },
            }
        )
    available = [pair["value"] for pair in pairs if pair["value"] is not None]
    overall = round(sum(available) / len(available), INDEX_DECIMALS) if available else None
    return {"pairs": pairs, "overall": overall}


# --------------------------------------------------------------------------
# Consistency across staff departments
# --------------------------------------------------------------------------


class _DepartmentsTest:
    """p-value of independence between department and mentioning a theme.

    ``k[d]`` of ``n[d]`` sheets of department d mention it. Two departments:
    Fisher's exact test. More: a Monte Carlo test with margins fixed (Hope
    1968; R's ``chisq.test(simulate.p.value = TRUE)``): tables drawn from the
    multivariate hypergeometric null, ordered by the Pearson statistic, which
    for a departments x 2 table is proportional to sum((k_d - E_d)^2 / n_d)
    with E_d = n_d K / N; p = (1 + #{simulated >= observed}) / (B + 1).
    Unlike the chi-square approximation it stays valid with the expected
    counts under 5 that a few sheets per department produce. The seed is
    fixed so a re-run gives the same document.

    The department sizes are the same for every theme, so the simulated
    null depends only on K, the number of mentioning sheets: it is drawn once
    per K and reused.

    A degenerate table (every or no sheet mentions it) shows no dependence: 1.
    """

    def __init__(self, n: np.ndarray) -> None:
        self.n = n.astype(np.int64)
        self.sheets = int(self.n.sum())
        self._null: dict[int, np.ndarray] = {}

    def _statistic(self, tables: np.ndarray, total: int) -> np.ndarray:
        expected = self.n * total / self.sheets
        return (((tables - expected) ** 2) / self.n).sum(axis=-1)

    def __call__(self, k: np.ndarray) -> float:
        total = int(k.sum())
        if total == 0 or total == self.sheets:
            return 1.0
        if len(k) == 2:
            return _fisher_2x2(int(k[0]), int(self.n[0]), int(k[1]), int(self.n[1]))
        if total not in self._null:
            rng = np.random.default_rng(MONTE_CARLO_SEED)
            simulated = rng.multivariate_hypergeometric(self.n, total, size=MONTE_CARLO_RESAMPLES)
            self._null[total] = np.sort(self._statistic(simulated, total))
        observed = float(self._statistic(k, total))
        # A relative tolerance so that tables exactly as extreme as the
        # observed one are not lost to floating-point noise.
        extreme = len(self._null[total]) - int(np.searchsorted(self._null[total], observed * (1 - 1e-9), side="left"))
        return (1 + extreme) / (MONTE_CARLO_RESAMPLES + 1)


def consistency(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    themes: pd.DataFrame,
    *,
    departments: Sequence[str] | None = None,
    min_respondents: int = MIN_RESPONDENTS,
    split_spread: float = SPLIT_SPREAD,
) -> dict[str, Any]:
    """How much staff departments agree (silos), from the staff sheets.

    ``departments`` are the departments that may be shown (``analyze`` passes
    the non-suppressed ones, none if staff is suppressed); None means every
    named staff department.

    - departments: per department its sheets (``respondents``), ``people``
      (members) and ``alignment_with_rest`` = ``alignment_index`` between the
      department's theme-mention distribution and that of all other staff
      sheets (None when either has no themed item);
    - index: mean of the pairwise alignment between shown departments — a
      silo indicator, 100 when every department talks about the same things
      in the same proportions (None with fewer than two comparable);
    - splits: per (question, theme) mentioned by >= ``min_respondents``
      sheets of the shown departments, each department's share (mentioning
      sheets / its sheets), spread = max share - min share, and the p-value
      of a test of independence across departments (``_DepartmentsTest``:
      Fisher's exact for two, Monte Carlo for more). ``split`` is
      spread >= ``split_spread`` (0.5): departments a handful of sheets each
      leave any test little power, so the flag is descriptive. Sorted by
      spread descending, then p-value.
    """
    items, respondents, lookup = _items(items), _respondents(respondents), _theme_lookup(themes)
    staff = respondents[respondents["group"] == STAFF]
    if departments is None:
        departments = sorted(set(staff["department"]) - {""})
    departments = sorted(set(departments) & set(staff["department"]))
    empty: dict[str, Any] = {"departments": [], "index": None, "splits": []}
    if not departments:
        return empty
    dept_of = dict(zip(staff["respondent_id"], staff["department"]))
    staff_items = items[items["respondent_id"].isin(staff["respondent_id"])].copy()
    staff_items["department"] = staff_items["respondent_id"].map(dept_of)
    cells = _mention_cells(staff_items, lookup)
    found = _distributions(cells, "department")
    dists = {d: found.get(d, {}) for d in departments}
    everyone = _distribution(cells)

    entries: list[dict[str, Any]] = []
    for d in departments:
        sheets = staff[staff["department"] == d]
        rest = {cell: n - dists[d].get(cell, 0.0) for cell, n in everyone.items() if n > dists[d].get(cell, 0.0)}
        entries.append(
            {
                "name": d,
                "respondents": len(sheets),
                "people": int(sheets["members"].sum()),
                "alignment_with_rest": alignment_index(dists[d], rest),
            }
        )
    pair_values = [v for a, b in combinations(departments, 2) if (v := alignment_index(dists[a], dists[b])) is not None]
    index = round(sum(pair_values) / len(pair_values), INDEX_DECIMALS) if pair_values else None

    splits: list[dict[str, Any]] = []
    sheets_per_dept = staff.groupby("department")["respondent_id"].nunique()
    n = np.array([int(sheets_per_dept[d]) for d in departments])
    shown_cells = cells[cells["department"].isin(departments)]
    if len(departments) >= 2 and not shown_cells.empty:
        test = _DepartmentsTest(n)
        # A sheet counts once per (question, theme) whatever the tags.
        mentioning = (
            shown_cells.drop_duplicates(["question", "theme_id", "respondent_id"])
            .groupby(["question", "theme_id", "department"])
            .size()
            .unstack("department", fill_value=0)
            .reindex(columns=departments, fill_value=0)
        )
        mentioning = mentioning[mentioning.sum(axis=1) >= min_respondents]
        counts = mentioning.to_numpy(dtype=np.int64)
        shares = counts / n
        for (question, theme_id), k, row_shares in zip(mentioning.index, counts, shares):
            splits.append(
                {
                    "question": str(question),
                    "theme_id": int(theme_id),
                    "label": lookup[int(theme_id)][0],
                    "spread": float(row_shares.max() - row_shares.min()),
                    "p_value": test(k),
                    "departments": {
                        d: {"respondents": int(k[i]), "share": _r(row_shares[i])} for i, d in enumerate(departments)
                    },
                }
            )
    splits.sort(key=lambda s: (-s["spread"], s["p_value"], s["question"], s["theme_id"]))
    for split in splits:
        split["split"] = split["spread"] >= split_spread
        split["spread"] = _r(split["spread"])
        split["p_value"] = _p(split["p_value"])
    return {"departments": entries, "index": index, "splits": splits}


# --------------------------------------------------------------------------
# Competition and actions
# --------------------------------------------------------------------------


def competition_balance(
    items: pd.DataFrame, themes: pd.DataFrame, *, groups: Sequence[str] | None = None
) -> dict[str, Any]:
    """How each group judges what competitors do differently.

    Per group, over items of the ``competition`` question: good, bad and
    neutral counts, ``untagged`` (no tag, left out of the balance) and
    balance = (good - bad) / (good + bad + neutral), in -1..1: +1 when every
    remark about competitors is that they do it well (a threat), -1 when all
    are that they do it badly (our edge); None with no tagged item. Items,
    not respondents, because each item is one judgement of one difference.
    Per theme (themed items only), the same counts per group, sorted by total
    items descending.
    """
    items, lookup = _items(items), _theme_lookup(themes)
    if groups is None:
        groups = _ordered(set(items["group"]))
    groups = _ordered(groups)
    comp = items[(items["question"] == "competition") & items["group"].isin(groups)]
    tags = QUESTION_TAGS["competition"]

    # Any other tag (or none) is "untagged".
    comp = comp.assign(tag=comp["tag"].where(comp["tag"].isin(tags), "untagged"))
    columns = [*tags, "untagged"]

    def table(frame: pd.DataFrame, keys: list[str]) -> dict[Any, dict[str, int]]:
        counted = (
            frame.groupby([*keys, "tag"]).size().unstack("tag", fill_value=0).reindex(columns=columns, fill_value=0)
        )
        return {
            key: {tag: int(row[i]) for i, tag in enumerate(columns)}
            for key, row in zip(counted.index, counted.to_numpy())
        }

    nothing = dict.fromkeys(columns, 0)
    by_group = table(comp, ["group"])
    per_group: dict[str, dict[str, Any]] = {}
    for group in groups:
        c = by_group.get(group, nothing)
        total = c["good"] + c["bad"] + c["neutral"]
        per_group[group] = {**c, "total": total, "balance": _r(_share(c["good"] - c["bad"], total))}
    themed = comp[_assigned(comp, lookup)]
    by_theme = table(themed, ["theme_id", "group"])
    theme_entries: list[dict[str, Any]] = []
    for theme_id, total in themed.groupby("theme_id").size().items():
        theme_entries.append(
            {
                "theme_id": int(theme_id),
                "label": lookup[int(theme_id)][0],
                "total": int(total),
                "groups": {group: dict(by_theme.get((theme_id, group), nothing)) for group in groups},
            }
        )
    theme_entries.sort(key=lambda e: (-e["total"], e["theme_id"]))
    return {"groups": per_group, "themes": theme_entries}


def action_list(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    themes: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """The continue/start action list.

    One entry per (theme, tag) of the ``continue_start`` question (tag None
    for an untagged item): the shown groups raising it, ``respondents``
    raising it (each once), ``people`` (staff sheets count their members,
    others 1) and per-group respondents. Ranked by the number of groups
    (an action leadership, staff and customers all ask for is the safest
    bet), then respondents, then people. Unassigned items are left out: an
    action needs a theme to be named.
    """
    items, respondents, lookup = _items(items), _respondents(respondents), _theme_lookup(themes)
    groups = _ordered(groups) if groups is not None else _default_groups(respondents)
    subset = items[(items["question"] == "continue_start") & items["group"].isin(groups) & _assigned(items, lookup)]
    subset = subset.drop_duplicates(["theme_id", "tag", "respondent_id"])
    subset = subset.merge(respondents[["respondent_id", "members"]], on="respondent_id", how="left")
    subset["members"] = subset["members"].fillna(1).astype("int64")
    # Each respondent appears once per (theme, tag) now, so sizes are counts of respondents.
    per_group = subset.groupby(["theme_id", "tag", "group"]).size()
    totals = subset.groupby(["theme_id", "tag"]).agg(respondents=("respondent_id", "size"), people=("members", "sum"))
    by_group: dict[tuple[int, str], dict[str, int]] = {}
    for (theme_id, tag, group), count in per_group.items():
        by_group.setdefault((int(theme_id), str(tag)), {})[str(group)] = int(count)
    entries: list[dict[str, Any]] = []
    for (theme_id, tag), respondent_count, people in zip(totals.index, totals["respondents"], totals["people"]):
        counts = by_group[(int(theme_id), str(tag))]
        raising = [group for group in groups if counts.get(group)]
        entries.append(
            {
                "theme_id": int(theme_id),
                "label": lookup[int(theme_id)][0],
                "tag": str(tag) or None,
                "groups": raising,
                "n_groups": len(raising),
                "respondents": int(respondent_count),
                "people": int(people),
                "by_group": {group: counts[group] for group in raising},
            }
        )
    entries.sort(key=lambda e: (-e["n_groups"], -e["respondents"], -e["people"], e["theme_id"], e["tag"] or ""))
    return entries


# --------------------------------------------------------------------------
# Trend
# --------------------------------------------------------------------------


def _change(current: float | None, previous: float | None, digits: int = DECIMALS) -> float | None:
    if current is None or previous is None:
        return None
    return round(float(current) - float(previous), digits)


def trend(current: Mapping[str, Any], previous: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Change from the previous wave's result document to this one.

    Theme ids are stable across an engagement's waves, so themes match by id.
    Everything compares figures present in both documents, so a group shown
    only in one wave (suppressed in the other) never appears:

    - alignment: per pair, previous, current and change (current - previous)
      of the index; the same for overall;
    - ratings: per rating item and group, top_box and mean with their change;
    - gaps: per (question, theme, pair) present in both, the difference then
      and now, change = now - then, and ``narrowed`` = |now| < |then|
      (the gap the product exists to close got smaller);
    - themes: per question, ``new`` (mentioned now, not then) and
      ``disappeared`` (then, not now).

    None without a previous document.
    """
    if not previous:
        return None

    def pair_map(doc: Mapping[str, Any]) -> dict[tuple[str, str], float | None]:
        return {(p["group_a"], p["group_b"]): p.get("value") for p in (doc.get("alignment") or {}).get("pairs", [])}

    now_pairs, then_pairs = pair_map(current), pair_map(previous)
    alignment_trend = [
        {
            "group_a": a,
            "group_b": b,
            "previous": then_pairs[(a, b)],
            "current": now_pairs[(a, b)],
            "change": _change(now_pairs[(a, b)], then_pairs[(a, b)], INDEX_DECIMALS),
        }
        for (a, b) in now_pairs
        if (a, b) in then_pairs and now_pairs[(a, b)] is not None and then_pairs[(a, b)] is not None
    ]
    now_overall = (current.get("alignment") or {}).get("overall")
    then_overall = (previous.get("alignment") or {}).get("overall")

    def rating_map(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        return {entry["key"]: entry["groups"] for entry in ((doc.get("ratings") or {}).get("items") or [])}

    now_ratings, then_ratings = rating_map(current), rating_map(previous)
    ratings_trend: list[dict[str, Any]] = []
    for key, now_groups in now_ratings.items():
        for group, now in now_groups.items():
            then = then_ratings.get(key, {}).get(group)
            if not then or not now.get("n") or not then.get("n"):
                continue
            ratings_trend.append(
                {
                    "item": key,
                    "group": group,
                    "top_box_previous": then.get("top_box"),
                    "top_box": now.get("top_box"),
                    "top_box_change": _change(now.get("top_box"), then.get("top_box")),
                    "mean_previous": then.get("mean"),
                    "mean": now.get("mean"),
                    "mean_change": _change(now.get("mean"), then.get("mean")),
                }
            )

    def gap_map(doc: Mapping[str, Any]) -> dict[tuple[str, int, str, str], dict[str, Any]]:
        return {(g["question"], int(g["theme_id"]), g["group_a"], g["group_b"]): g for g in doc.get("gaps") or []}

    now_gaps, then_gaps = gap_map(current), gap_map(previous)
    gaps_trend: list[dict[str, Any]] = []
    for key, now in now_gaps.items():
        then = then_gaps.get(key)
        if then is None or now.get("difference") is None or then.get("difference") is None:
            continue
        gaps_trend.append(
            {
                "question": key[0],
                "theme_id": key[1],
                "label": now.get("label"),
                "group_a": key[2],
                "group_b": key[3],
                "difference_previous": then["difference"],
                "difference": now["difference"],
                "change": _change(now["difference"], then["difference"]),
                "narrowed": abs(now["difference"]) < abs(then["difference"]),
            }
        )
    gaps_trend.sort(key=lambda g: (-abs(g["change"]), g["question"], g["theme_id"], g["group_a"], g["group_b"]))

    def theme_map(doc: Mapping[str, Any], question: str) -> dict[int, str]:
        block = (doc.get("questions") or {}).get(question) or {}
        return {int(t["theme_id"]): t.get("label", "") for t in block.get("themes", [])}

    themes_trend: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for question in QUESTIONS:
        now_themes, then_themes = theme_map(current, question), theme_map(previous, question)
        themes_trend[question] = {
            "new": [{"theme_id": t, "label": now_themes[t]} for t in sorted(set(now_themes) - set(then_themes))],
            "disappeared": [
                {"theme_id": t, "label": then_themes[t]} for t in sorted(set(then_themes) - set(now_themes))
            ],
        }
    return {
        "alignment": {
            "pairs": alignment_trend,
            "overall": {
                "previous": then_overall,
                "current": now_overall,
                "change": _change(now_overall, then_overall, INDEX_DECIMALS),
            },
        },
        "ratings": ratings_trend,
        "gaps": gaps_trend,
        "themes": themes_trend,
    }


# --------------------------------------------------------------------------
# The whole document
# --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Plain JSON types only: numpy scalars converted, NaN/inf to None, str keys."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _r(float(value), 12)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def analyze(
    items: pd.DataFrame,
    respondents: pd.DataFrame,
    ratings: pd.DataFrame,
    themes: pd.DataFrame,
    rating_items: Sequence[tuple[str, str]],
    *,
    min_individuals: int = DEFAULT_MIN_INDIVIDUALS,
    min_staff_sheets: int = DEFAULT_MIN_STAFF_SHEETS,
    previous: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Every metric of a wave, as the JSON result document, anonymity applied.

    Inputs:

    - ``items``: item_id, respondent_id, group, department ('' if none),
      question, tag ('' or good/bad/neutral/continue/start), text, theme_id
      (-1 = unassigned);
    - ``respondents``: respondent_id, group, department, members (staff: the
      sheet's member count; others 1) — every submitted respondent, also
      those with no item;
    - ``ratings``: respondent_id, group, department, item_key, value 1-5,
      votes (1 for an individual; a staff sheet's votes sum to its members);
    - ``themes``: theme_id, label, keywords (list of str);
    - ``rating_items``: (key, label) in display order;
    - thresholds: see ``suppression``; ``previous``: the previous wave's
      document for ``trend``.

    Items and ratings of respondents missing from ``respondents`` (drafts)
    are ignored, and each row's group and department are taken from its
    respondent, so a mislabelled row can never carry a suppressed group's
    answer into a shown one.

    A suppressed group appears only in ``suppressed`` and as
    ``groups[g] = {respondents: None, people: None, items: None,
    suppressed: True}``; a suppressed department or segment only in
    ``suppressed``.
    """
    items, respondents, ratings = _items(items), _respondents(respondents), _ratings(ratings)
    known = set(respondents["respondent_id"])
    group_of = dict(zip(respondents["respondent_id"], respondents["group"]))
    dept_of = dict(zip(respondents["respondent_id"], respondents["department"]))
    items = items[items["respondent_id"].isin(known)].copy()
    items["group"] = items["respondent_id"].map(group_of)
    items["department"] = items["respondent_id"].map(dept_of)
    ratings = ratings[ratings["respondent_id"].isin(known)].copy()
    ratings["group"] = ratings["respondent_id"].map(group_of)
    ratings["department"] = ratings["respondent_id"].map(dept_of)

    hidden = suppression(respondents, min_individuals=min_individuals, min_staff_sheets=min_staff_sheets)
    groups = list(hidden.visible_groups)
    sizes = _group_sizes(respondents, groups)
    item_counts = items["group"].value_counts()
    groups_block: dict[str, dict[str, Any]] = {}
    for group in GROUPS:
        if group in groups:
            n, people = sizes[group]
            groups_block[group] = {
                "respondents": n,
                "people": people,
                "items": int(item_counts.get(group, 0)),
                "suppressed": False,
            }
        else:
            groups_block[group] = {"respondents": None, "people": None, "items": None, "suppressed": True}

    shown_departments = list(hidden.visible_departments.get(STAFF, ())) if STAFF in groups else []
    document: dict[str, Any] = {
        "groups": groups_block,
        "ratings": rating_gaps(ratings, rating_items, groups=groups),
        "questions": prevalence(items, respondents, themes, groups=groups),
        "gaps": theme_gaps(items, respondents, themes, groups=groups, min_group=hidden.group_threshold),
        "contradictions": contradictions(items, respondents, themes, groups=groups),
        "alignment": alignment(items, themes, groups=groups),
        "consistency": consistency(items, respondents, themes, departments=shown_departments),
        "competition": competition_balance(items, themes, groups=groups),
        "actions": action_list(items, respondents, themes, groups=groups),
        "suppressed": hidden.entries,
        "parameters": {
            "min_individuals": min_individuals,
            "min_staff_sheets": min_staff_sheets,
            "alpha": ALPHA,
            "min_share": MIN_SHARE,
            "min_respondents": MIN_RESPONDENTS,
            "min_gap": MIN_GAP,
            "min_test_mentions": MIN_TEST_MENTIONS,
            "split_spread": SPLIT_SPREAD,
        },
    }
    document = _jsonable(document)
    document["trend"] = _jsonable(trend(document, previous))
    return document
