"""Tests of analysis.metrics on small frames whose right answer shows by eye,
plus property tests of the invariants (shares in 0..1, alignment symmetric and
bounded, suppression never leaks, the document is strict JSON)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.spatial.distance import jensenshannon

from analysis import metrics
from analysis.metrics import (
    QUESTION_TAGS,
    QUESTIONS,
    action_list,
    alignment,
    alignment_index,
    analyze,
    classify_gap,
    competition_balance,
    consistency,
    contradictions,
    prevalence,
    rating_gaps,
    suppression,
    theme_gaps,
    trend,
)

# Labels that never contain a group or department name, so a search of the
# serialised document for "leadership" finds only what the analysis put there.
THEMES = pd.DataFrame(
    {
        "theme_id": [1, 2, 3, 4],
        "label": ["Fast replies", "Friendly people", "Pricing", "Training"],
        "keywords": [["fast", "reply"], ["friendly"], ["price"], ["training"]],
    }
)
RATING_ITEMS = [("overall", "Overall experience"), ("consistency", "Same experience whoever you deal with")]


@dataclass
class Survey:
    """A tiny wave built by hand: respondents, their items and ratings."""

    items: list[dict[str, Any]] = field(default_factory=list)
    respondents: list[dict[str, Any]] = field(default_factory=list)
    ratings: list[dict[str, Any]] = field(default_factory=list)

    def respondent(self, group: str, *, department: str = "", members: int = 1) -> int:
        rid = len(self.respondents) + 1
        self.respondents.append(
            {
                "respondent_id": rid,
                "group": group,
                "department": department,
                "members": members if group == "staff" else 1,
            }
        )
        return rid

    def people(self, group: str, n: int, *, department: str = "", members: int = 7) -> list[int]:
        return [self.respondent(group, department=department, members=members) for _ in range(n)]

    def _group(self, rid: int) -> tuple[str, str]:
        row = self.respondents[rid - 1]
        return row["group"], row["department"]

    def item(self, rid: int, question: str, theme_id: int, tag: str = "", text: str = "some words") -> None:
        group, department = self._group(rid)
        self.items.append(
            {
                "item_id": len(self.items) + 1,
                "respondent_id": rid,
                "group": group,
                "department": department,
                "question": question,
                "tag": tag,
                "text": text,
                "theme_id": theme_id,
            }
        )

    def mention(self, rids: list[int], question: str, theme_id: int, tag: str = "") -> None:
        for rid in rids:
            self.item(rid, question, theme_id, tag)

    def rating(self, rid: int, key: str, value: int, votes: int = 1) -> None:
        group, department = self._group(rid)
        self.ratings.append(
            {
                "respondent_id": rid,
                "group": group,
                "department": department,
                "item_key": key,
                "value": value,
                "votes": votes,
            }
        )

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        items = pd.DataFrame(self.items, columns=list(metrics.ITEM_COLUMNS))
        respondents = pd.DataFrame(self.respondents, columns=list(metrics.RESPONDENT_COLUMNS))
        ratings = pd.DataFrame(self.ratings, columns=list(metrics.RATING_COLUMNS))
        return items, respondents, ratings

    def analyze(self, **kwargs: Any) -> dict[str, Any]:
        items, respondents, ratings = self.frames()
        return analyze(items, respondents, ratings, THEMES, RATING_ITEMS, **kwargs)


def occurrences(node: Any, needle: str, path: tuple = ()) -> list[tuple]:
    """Paths where ``needle`` is a key, or inside a string value, of a JSON document.

    Keys must match exactly (``min_staff_sheets`` is a parameter, not the
    staff group); values match as substrings (a sentence naming a group).
    """
    found: list[tuple] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == needle:
                found.append((*path, key))
            found += occurrences(value, needle, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += occurrences(value, needle, (*path, index))
    elif isinstance(node, str) and needle in node:
        found.append(path)
    return found


def values_at(node: Any, keys: set[str]) -> list[Any]:
    """Every value stored under one of ``keys`` anywhere in the document."""
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in keys and not isinstance(value, (dict, list)):
                found.append(value)
            found += values_at(value, keys)
    elif isinstance(node, list):
        for value in node:
            found += values_at(value, keys)
    return found


def gap(gaps: list[dict[str, Any]], question: str, theme_id: int, a: str, b: str) -> dict[str, Any]:
    [found] = [
        g for g in gaps if (g["question"], g["theme_id"], g["group_a"], g["group_b"]) == (question, theme_id, a, b)
    ]
    return found


def leaders_vs_customers(
    question: str, leaders: tuple[int, int], customers: tuple[int, int], theme_id: int = 1
) -> Survey:
    """k of n leaders and k of n customers mention ``theme_id`` under ``question``."""
    survey = Survey()
    lead = survey.people("leadership", leaders[1])
    cust = survey.people("customer", customers[1])
    survey.mention(lead[: leaders[0]], question, theme_id)
    survey.mention(cust[: customers[0]], question, theme_id)
    return survey


# --------------------------------------------------------------------------
# Suppression
# --------------------------------------------------------------------------


class SuppressionTests:
    def test_small_leadership_group_is_suppressed_with_its_count(self) -> None:
        survey = Survey()
        survey.people("leadership", 3)
        survey.people("customer", 5)
        result = suppression(survey.frames()[1])
        assert result.visible_groups == ("customer",)
        assert result.entries == [
            {
                "kind": "group",
                "group": "leadership",
                "name": "leadership",
                "respondents": 3,
                "threshold": 5,
                "reason": "below_threshold",
            },
            {
                "kind": "group",
                "group": "staff",
                "name": "staff",
                "respondents": 0,
                "threshold": 2,
                "reason": "below_threshold",
            },
        ]

    def test_staff_threshold_counts_sheets_not_members(self) -> None:
        survey = Survey()
        survey.respondent("staff", members=8)
        result = suppression(survey.frames()[1], min_staff_sheets=2)
        assert "staff" not in result.visible_groups

    def test_thresholds_are_configurable(self) -> None:
        survey = Survey()
        survey.people("leadership", 3)
        assert "leadership" in suppression(survey.frames()[1], min_individuals=3).visible_groups

    def test_small_department_is_hidden_and_the_remainder_protected(self) -> None:
        # Sales (1 sheet) is under the threshold of 2. Shown alone, Ops and
        # Support (2 sheets each) would give away Sales by subtraction from the
        # staff total, so the smallest shown one (Ops, by name) goes too.
        survey = Survey()
        survey.people("staff", 2, department="Ops")
        survey.people("staff", 2, department="Support")
        survey.people("staff", 1, department="Sales")
        result = suppression(survey.frames()[1])
        assert result.visible_departments["staff"] == ("Support",)
        assert [(e["name"], e["reason"]) for e in result.entries if e["kind"] == "department"] == [
            ("Sales", "below_threshold"),
            ("Ops", "complementary"),
        ]

    def test_remainder_at_threshold_needs_no_complementary_suppression(self) -> None:
        survey = Survey()
        survey.people("staff", 2, department="Ops")
        survey.people("staff", 2, department="Support")
        survey.people("staff", 1, department="Sales")
        survey.people("staff", 1)  # no department: part of the remainder
        result = suppression(survey.frames()[1])
        assert result.visible_departments["staff"] == ("Ops", "Support")

    def test_customer_segments_use_the_individuals_threshold(self) -> None:
        survey = Survey()
        survey.people("customer", 6, department="Retail")
        survey.people("customer", 5, department="Trade")
        survey.people("customer", 4, department="Public")
        survey.people("customer", 5)
        result = suppression(survey.frames()[1])
        assert result.visible_departments["customer"] == ("Retail", "Trade")
        assert [e["name"] for e in result.entries if e["kind"] == "segment"] == ["Public"]

    def test_suppressed_department_still_counts_in_its_group(self) -> None:
        survey = Survey()
        survey.people("staff", 3, department="Ops", members=6)
        survey.people("staff", 1, department="Sales", members=8)
        survey.people("staff", 2, members=7)
        doc = survey.analyze()
        assert doc["groups"]["staff"] == {"respondents": 6, "people": 40, "items": 0, "suppressed": False}
        assert [d["name"] for d in doc["consistency"]["departments"]] == ["Ops"]

    def test_suppressed_leadership_appears_only_where_allowed(self) -> None:
        survey = leaders_vs_customers("strengths", (3, 3), (6, 10))
        lead = [r["respondent_id"] for r in survey.respondents if r["group"] == "leadership"]
        survey.mention(lead, "improvements", 2)
        survey.mention(lead, "continue_start", 3, "start")
        survey.mention(lead, "competition", 4, "good")
        for rid in lead:
            survey.rating(rid, "overall", 5)
        for r in survey.respondents[3:]:
            survey.rating(r["respondent_id"], "overall", 3)
            survey.item(r["respondent_id"], "improvements", 2)

        doc = survey.analyze()
        text = json.dumps(doc, allow_nan=False)

        assert text.count('"leadership"') == 3
        assert set(occurrences(doc, "leadership")) == {
            ("groups", "leadership"),
            ("suppressed", 0, "group"),
            ("suppressed", 0, "name"),
        }
        assert doc["groups"]["leadership"] == {"respondents": None, "people": None, "items": None, "suppressed": True}
        assert doc["ratings"]["headline"]["sentence"] is None  # no headline about them
        assert "your leaders" not in text
        # Themes only the leaders raised are gone with them.
        assert doc["questions"]["continue_start"]["themes"] == []
        assert doc["questions"]["competition"]["themes"] == []
        assert doc["actions"] == []


# --------------------------------------------------------------------------
# Prevalence
# --------------------------------------------------------------------------


class PrevalenceTests:
    def test_share_is_of_all_group_respondents(self) -> None:
        survey = leaders_vs_customers("strengths", (4, 5), (0, 10))
        items, respondents, _ = survey.frames()
        [theme] = prevalence(items, respondents, THEMES)["strengths"]["themes"]
        assert theme["theme_id"] == 1
        assert theme["label"] == "Fast replies"
        assert theme["keywords"] == ["fast", "reply"]
        assert theme["groups"]["leadership"] == {"respondents": 4, "mentions": 4, "share": 0.8, "people_share": None}
        assert theme["groups"]["customer"] == {"respondents": 0, "mentions": 0, "share": 0.0, "people_share": None}
        assert theme["tags"] is None

    def test_a_respondent_counts_once_per_theme(self) -> None:
        survey = Survey()
        [leader, *_] = survey.people("leadership", 5)
        survey.mention([leader, leader, leader], "improvements", 2)
        items, respondents, _ = survey.frames()
        [theme] = prevalence(items, respondents, THEMES)["improvements"]["themes"]
        assert theme["mentions"] == 3
        assert theme["groups"]["leadership"]["respondents"] == 1
        assert theme["groups"]["leadership"]["share"] == 0.2

    def test_staff_people_share_weights_sheets_by_members(self) -> None:
        survey = Survey()
        big = survey.respondent("staff", members=8)
        survey.respondent("staff", members=2)
        survey.item(big, "improvements", 1)
        items, respondents, _ = survey.frames()
        [theme] = prevalence(items, respondents, THEMES)["improvements"]["themes"]
        assert theme["groups"]["staff"]["share"] == 0.5
        assert theme["groups"]["staff"]["people_share"] == 0.8

    def test_themes_sorted_by_mentions_and_unassigned_counted(self) -> None:
        survey = Survey()
        rids = survey.people("customer", 5)
        survey.mention(rids[:1], "strengths", 1)
        survey.mention(rids[:3], "strengths", 2)
        survey.mention(rids[:2], "strengths", -1)
        survey.mention(rids[:1], "strengths", 99)  # not in the themes table
        items, respondents, _ = survey.frames()
        block = prevalence(items, respondents, THEMES)["strengths"]
        assert [t["theme_id"] for t in block["themes"]] == [2, 1]
        assert block["unassigned"] == 3

    def test_tagged_questions_count_items_per_tag(self) -> None:
        survey = Survey()
        rids = survey.people("customer", 5)
        survey.mention(rids[:3], "competition", 3, "good")
        survey.mention(rids[3:4], "competition", 3, "bad")
        survey.mention(rids[4:], "competition", 3)
        items, respondents, _ = survey.frames()
        [theme] = prevalence(items, respondents, THEMES)["competition"]["themes"]
        assert theme["tags"] == {"good": 3, "bad": 1, "neutral": 0, "untagged": 1}

    def test_every_question_present_even_when_empty(self) -> None:
        survey = Survey()
        survey.people("customer", 5)
        items, respondents, _ = survey.frames()
        assert prevalence(items, respondents, THEMES) == {q: {"themes": [], "unassigned": 0} for q in QUESTIONS}


# --------------------------------------------------------------------------
# Theme gaps
# --------------------------------------------------------------------------


class ThemeGapTests:
    @pytest.mark.parametrize(
        ("question", "leaders", "customers", "share_a", "share_b", "testable", "classification"),
        [
            # 4 of 5 leaders call it a strength, no customer does: a claim not confirmed.
            ("strengths", (4, 5), (0, 10), 0.8, 0.0, True, "overestimated"),
            # 6 of 10 customers want it improved, no leader sees it.
            ("improvements", (0, 5), (6, 10), 0.0, 0.6, True, "blind_spot"),
            # Customers praise what leaders do not name: also a blind spot.
            ("strengths", (0, 5), (6, 10), 0.0, 0.6, True, "blind_spot"),
            # Both raise it at similar shares.
            ("strengths", (3, 5), (6, 10), 0.6, 0.6, True, "shared"),
            # Leaders worry about it, customers do not: different, not overclaimed.
            ("improvements", (4, 5), (0, 10), 0.8, 0.0, True, "divergent"),
            # Two mentions in all: nothing can be concluded.
            ("strengths", (1, 5), (1, 10), 0.2, 0.1, False, "none"),
            # 2 of 5 leaders claim it, a single customer agrees: not significant
            # (p = 0.24), but leaders raise it and customers do not.
            ("strengths", (2, 5), (1, 10), 0.4, 0.1, True, "overestimated"),
            # Leaders raise it a little more, customers too: nothing clear.
            ("strengths", (2, 5), (3, 10), 0.4, 0.3, True, "shared"),
            # Leaders worry a little, customers hardly: under the 10-point gap.
            ("improvements", (2, 20), (0, 10), 0.1, 0.0, False, "none"),
        ],
    )
    def test_classification(self, question, leaders, customers, share_a, share_b, testable, classification) -> None:
        items, respondents, _ = leaders_vs_customers(question, leaders, customers).frames()
        found = gap(theme_gaps(items, respondents, THEMES), question, 1, "leadership", "customer")
        assert (found["share_a"], found["share_b"]) == (share_a, share_b)
        assert found["difference"] == round(share_a - share_b, 4)
        assert found["testable"] is testable
        assert found["classification"] == classification

    @pytest.mark.parametrize(("leaders", "customers"), [((4, 5), (0, 10)), ((0, 5), (6, 10)), ((3, 6), (9, 30))])
    def test_p_value_is_fishers_exact_test_on_the_same_table(self, leaders, customers) -> None:
        items, respondents, _ = leaders_vs_customers("improvements", leaders, customers).frames()
        found = gap(theme_gaps(items, respondents, THEMES), "improvements", 1, "leadership", "customer")
        table = [[leaders[0], leaders[1] - leaders[0]], [customers[0], customers[1] - customers[0]]]
        expected = stats.fisher_exact(table, alternative="two-sided").pvalue
        assert found["p_value"] == pytest.approx(expected, rel=1e-3)
        assert found["significant"] is bool(expected < 0.05)
        assert found["q_value"] >= found["p_value"]

    def test_group_under_its_threshold_is_not_testable(self) -> None:
        items, respondents, _ = leaders_vs_customers("strengths", (3, 3), (0, 10)).frames()
        found = gap(theme_gaps(items, respondents, THEMES), "strengths", 1, "leadership", "customer")
        assert found["testable"] is False and found["classification"] == "none"
        lowered = theme_gaps(items, respondents, THEMES, min_group={"leadership": 3})
        assert gap(lowered, "strengths", 1, "leadership", "customer")["testable"] is True

    def test_blind_spot_a_small_leadership_team_cannot_make_significant(self) -> None:
        # No leader of 8 mentions what 45 of 150 customers raise: p = 0.11.
        items, respondents, _ = leaders_vs_customers("improvements", (0, 8), (45, 150)).frames()
        found = gap(theme_gaps(items, respondents, THEMES), "improvements", 1, "leadership", "customer")
        assert found["p_value"] == pytest.approx(stats.fisher_exact([[0, 8], [45, 105]]).pvalue, rel=1e-3)
        assert found["significant"] is False
        assert found["classification"] == "blind_spot"

    def test_untestable_gap_has_no_p_value(self) -> None:
        items, respondents, _ = leaders_vs_customers("strengths", (1, 5), (1, 10)).frames()
        found = gap(theme_gaps(items, respondents, THEMES), "strengths", 1, "leadership", "customer")
        assert found["p_value"] is None and found["q_value"] is None and found["significant"] is False

    def test_staff_vs_customers_difference_is_divergent(self) -> None:
        survey = Survey()
        sheets = survey.people("staff", 4)
        customers = survey.people("customer", 10)
        survey.mention(sheets, "improvements", 1)
        survey.mention(customers[:0], "improvements", 1)
        items, respondents, _ = survey.frames()
        found = gap(theme_gaps(items, respondents, THEMES), "improvements", 1, "staff", "customer")
        assert found["significant"] and found["classification"] == "divergent"

    def test_staff_raising_what_leaders_miss_is_a_blind_spot(self) -> None:
        survey = Survey()
        survey.people("leadership", 5)
        survey.mention(survey.people("staff", 4), "improvements", 1)
        items, respondents, _ = survey.frames()
        assert (
            gap(theme_gaps(items, respondents, THEMES), "improvements", 1, "leadership", "staff")["classification"]
            == "blind_spot"
        )

    def test_pairs_nobody_mentions_are_left_out_and_gaps_sorted_by_size(self) -> None:
        survey = leaders_vs_customers("strengths", (4, 5), (0, 10))
        customers = [r["respondent_id"] for r in survey.respondents if r["group"] == "customer"]
        survey.mention(customers[:3], "improvements", 2)
        items, respondents, _ = survey.frames()
        gaps = theme_gaps(items, respondents, THEMES)
        assert [(g["question"], g["theme_id"]) for g in gaps] == [("strengths", 1), ("improvements", 2)]
        assert [abs(g["difference"]) for g in gaps] == [0.8, 0.3]

    @pytest.mark.parametrize(
        ("question", "a", "b", "k", "share", "significant", "expected"),
        [
            ("strengths", "leadership", "customer", (4, 0), (0.8, 0.0), True, "overestimated"),
            ("strengths", "leadership", "staff", (4, 0), (0.8, 0.0), True, "overestimated"),
            ("competition", "leadership", "customer", (4, 0), (0.8, 0.0), True, "divergent"),
            ("competition", "leadership", "customer", (0, 9), (0.0, 0.9), True, "blind_spot"),
            ("strengths", "staff", "customer", (4, 0), (0.8, 0.0), True, "divergent"),
            ("strengths", "leadership", "customer", (4, 6), (0.8, 0.6), False, "shared"),
            # Not significant, but customers raise it and leaders do not (gap >= 10 points).
            ("improvements", "leadership", "customer", (0, 45), (0.0, 0.3), False, "blind_spot"),
            ("improvements", "leadership", "staff", (1, 3), (0.125, 0.33), False, "blind_spot"),
            ("strengths", "leadership", "customer", (3, 1), (0.6, 0.1), False, "overestimated"),
            ("improvements", "leadership", "customer", (3, 1), (0.6, 0.1), False, "divergent"),
            ("improvements", "staff", "customer", (3, 0), (0.5, 0.0), False, "divergent"),
            # One group raises it, the other not, but the gap is under 10 points.
            ("improvements", "leadership", "customer", (0, 12), (0.0, 0.08), False, "none"),
            ("improvements", "leadership", "customer", (1, 3), (0.09, 0.15), False, "none"),
            # 5% of customers is under the 10% floor: they do not confirm the claim.
            ("strengths", "leadership", "customer", (4, 2), (0.8, 0.05), False, "overestimated"),
            # One leader is an anecdote, even at 20%: leadership does not raise
            # the strength 60% of customers see.
            ("strengths", "leadership", "customer", (1, 6), (0.2, 0.6), False, "blind_spot"),
        ],
    )
    def test_classify_gap_rules(self, question, a, b, k, share, significant, expected) -> None:
        assert (
            classify_gap(
                question,
                a,
                b,
                respondents_a=k[0],
                respondents_b=k[1],
                share_a=share[0],
                share_b=share[1],
                testable=True,
                significant=significant,
            )
            == expected
        )


# --------------------------------------------------------------------------
# Contradictions
# --------------------------------------------------------------------------


class ContradictionTests:
    def test_leaders_praise_what_customers_criticise(self) -> None:
        survey = leaders_vs_customers("strengths", (4, 5), (0, 10))
        customers = [r["respondent_id"] for r in survey.respondents if r["group"] == "customer"]
        survey.mention(customers[:6], "improvements", 1)
        items, respondents, _ = survey.frames()
        assert contradictions(items, respondents, THEMES) == [
            {
                "theme_id": 1,
                "label": "Fast replies",
                "strength_group": "leadership",
                "strength_share": 0.8,
                "strength_respondents": 4,
                "improvement_group": "customer",
                "improvement_share": 0.6,
                "improvement_respondents": 6,
                "severity": 0.48,
            }
        ]

    @pytest.mark.parametrize(
        ("critics", "found"),
        [(0, False), (1, False), (2, True)],  # 1 of 10 is 10% but one voice
    )
    def test_floor_of_two_respondents_and_ten_percent(self, critics: int, found: bool) -> None:
        survey = leaders_vs_customers("strengths", (4, 5), (0, 10))
        customers = [r["respondent_id"] for r in survey.respondents if r["group"] == "customer"]
        survey.mention(customers[:critics], "improvements", 1)
        items, respondents, _ = survey.frames()
        assert bool(contradictions(items, respondents, THEMES)) is found

    def test_share_floor(self) -> None:
        survey = leaders_vs_customers("strengths", (4, 5), (0, 30))
        customers = [r["respondent_id"] for r in survey.respondents if r["group"] == "customer"]
        survey.mention(customers[:2], "improvements", 1)  # 2 of 30 = 6.7%
        items, respondents, _ = survey.frames()
        assert contradictions(items, respondents, THEMES) == []
        assert len(contradictions(items, respondents, THEMES, min_share=0.05)) == 1

    def test_one_group_both_praising_and_criticising_is_not_a_contradiction(self) -> None:
        survey = Survey()
        customers = survey.people("customer", 10)
        survey.mention(customers[:5], "strengths", 1)
        survey.mention(customers[5:], "improvements", 1)
        items, respondents, _ = survey.frames()
        assert contradictions(items, respondents, THEMES) == []

    def test_sorted_by_severity(self) -> None:
        survey = Survey()
        leaders = survey.people("leadership", 5)
        customers = survey.people("customer", 10)
        survey.mention(leaders[:2], "strengths", 1)
        survey.mention(customers[:3], "improvements", 1)  # 0.4 x 0.3 = 0.12
        survey.mention(leaders, "strengths", 2)
        survey.mention(customers[:5], "improvements", 2)  # 1.0 x 0.5 = 0.5
        items, respondents, _ = survey.frames()
        found = contradictions(items, respondents, THEMES)
        assert [(c["theme_id"], c["severity"]) for c in found] == [(2, 0.5), (1, 0.12)]


# --------------------------------------------------------------------------
# Rating gaps
# --------------------------------------------------------------------------


class RatingGapTests:
    def rated(self) -> Survey:
        survey = Survey()
        for value, rid in zip([5, 5, 5, 4, 3], survey.people("leadership", 5)):
            survey.rating(rid, "overall", value)
        agreed = survey.respondent("staff", members=7)
        survey.rating(agreed, "overall", 4, votes=7)  # the sheet agreed on 4
        spread = survey.respondent("staff", members=6)
        survey.rating(spread, "overall", 5, votes=2)  # 2 members said 5,
        survey.rating(spread, "overall", 3, votes=4)  # 4 said 3
        for value, rid in zip([5, 3, 3, 2, 1, 4, 3, 2, 3, 3], survey.people("customer", 10)):
            survey.rating(rid, "overall", value)
        return survey

    def test_group_figures_by_hand(self) -> None:
        ratings = self.rated().frames()[2]
        [item, _] = rating_gaps(ratings, RATING_ITEMS)["items"]
        leaders, staff, customers = (item["groups"][g] for g in ("leadership", "staff", "customer"))
        assert (leaders["n"], leaders["mean"], leaders["top_box"]) == (5, 4.4, 0.6)
        assert leaders["distribution"] == {"1": 0.0, "2": 0.0, "3": 0.2, "4": 0.2, "5": 0.6}
        # Staff: 7 x 4 + 2 x 5 + 4 x 3 = 50 over 13 people.
        assert (staff["n"], staff["respondents"]) == (13, 2)
        assert staff["mean"] == round(50 / 13, 4)
        assert staff["top_box"] == round(2 / 13, 4)
        assert staff["distribution"]["4"] == round(7 / 13, 4)
        assert (customers["n"], customers["mean"], customers["top_box"]) == (10, 2.9, 0.1)

    @staticmethod
    def exact_mann_whitney(a: list[float], b: list[float]) -> float:
        """scipy's Mann-Whitney U over every permutation: exact, ties included."""
        method = stats.PermutationMethod(n_resamples=np.inf)
        return stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue

    def test_pair_differences_and_mann_whitney_on_vote_expanded_values(self) -> None:
        ratings = self.rated().frames()[2]
        [item, _] = rating_gaps(ratings, RATING_ITEMS)["items"]
        pair = {(p["group_a"], p["group_b"]): p for p in item["pairs"]}
        lc = pair[("leadership", "customer")]
        assert (lc["n_a"], lc["n_b"], lc["mean_diff"], lc["top_box_diff"]) == (5, 10, 1.5, 0.5)
        expected = self.exact_mann_whitney([5, 5, 5, 4, 3], [5, 3, 3, 2, 1, 4, 3, 2, 3, 3])
        assert lc["p_value"] == pytest.approx(expected, rel=1e-3)
        assert lc["p_value_respondents"] == lc["p_value"]  # one vote each

        ls = pair[("leadership", "staff")]
        staff_votes = [4] * 7 + [5] * 2 + [3] * 4
        assert ls["p_value"] == pytest.approx(self.exact_mann_whitney([5, 5, 5, 4, 3], staff_votes), rel=1e-3)
        # The conservative reading: one value per sheet (4, and (2 x 5 + 4 x 3) / 6).
        assert ls["p_value_respondents"] == pytest.approx(
            self.exact_mann_whitney([5, 5, 5, 4, 3], [4.0, 22 / 6]), rel=1e-3
        )
        assert (ls["respondents_a"], ls["respondents_b"]) == (5, 2)

    def test_large_samples_use_the_tie_corrected_normal_approximation(self) -> None:
        survey = Survey()
        rng = np.random.default_rng(7)
        leaders, customers = rng.integers(1, 6, 40).tolist(), rng.integers(1, 6, 400).tolist()
        for value, rid in zip(leaders, survey.people("leadership", 40)):
            survey.rating(rid, "overall", value)
        for value, rid in zip(customers, survey.people("customer", 400)):
            survey.rating(rid, "overall", value)
        [item, _] = rating_gaps(survey.frames()[2], RATING_ITEMS)["items"]
        expected = stats.mannwhitneyu(leaders, customers, alternative="two-sided", method="asymptotic").pvalue
        assert item["pairs"][0]["p_value"] == pytest.approx(expected, rel=1e-3)

    def test_significance_needs_the_per_sheet_test_too(self) -> None:
        survey = Survey()
        for rid in survey.people("leadership", 5):
            survey.rating(rid, "overall", 5)
        for rid in survey.people("staff", 2, members=8):
            survey.rating(rid, "overall", 2, votes=8)
        [item, _] = rating_gaps(survey.frames()[2], RATING_ITEMS)["items"]
        [pair] = item["pairs"]
        assert pair["p_value"] < 0.05 <= pair["p_value_respondents"]
        assert pair["significant"] is False

    def test_headline_sentence(self) -> None:
        ratings = self.rated().frames()[2]
        headline = rating_gaps(ratings, RATING_ITEMS)["headline"]
        assert headline["item"] == "overall"
        assert headline["groups"]["leadership"]["top_box"] == 0.6
        assert headline["top_box_diff"] == 0.5
        assert headline["sentence"] == "60% of your leaders rate your CX excellent; 10% of your customers do."
        assert "staff" not in headline["groups"]

    def test_headline_falls_back_to_the_first_item(self) -> None:
        ratings = self.rated().frames()[2].assign(item_key="consistency")
        headline = rating_gaps(ratings, [("consistency", "Same every time")])["headline"]
        assert headline["item"] == "consistency"
        assert headline["sentence"].startswith("60% of your leaders rate “Same every time” excellent")

    def test_item_nobody_rated_has_no_figures(self) -> None:
        ratings = self.rated().frames()[2]
        [_, unrated] = rating_gaps(ratings, RATING_ITEMS)["items"]
        assert unrated["groups"]["customer"] == {
            "n": 0,
            "mean": None,
            "top_box": None,
            "distribution": None,
            "respondents": 0,
        }
        assert all(p["p_value"] is None and p["mean_diff"] is None for p in unrated["pairs"])


# --------------------------------------------------------------------------
# Alignment
# --------------------------------------------------------------------------


class AlignmentTests:
    @pytest.mark.parametrize(
        ("a", "b", "expected"),
        [
            ({"x": 1, "y": 1}, {"x": 1, "y": 1}, 100.0),
            ({"x": 1, "y": 2}, {"x": 3, "y": 6}, 100.0),  # proportions, not counts
            ({"x": 1}, {"y": 1}, 0.0),
            ({"x": 1}, {}, None),
            ({"x": 1, "y": 0}, {"x": 1, "y": 1}, round(100 * (1 - jensenshannon([1, 0], [0.5, 0.5], base=2)), 2)),
        ],
    )
    def test_index(self, a, b, expected) -> None:
        assert alignment_index(a, b) == expected
        assert alignment_index(b, a) == expected

    def test_same_theme_under_opposite_questions_is_not_agreement(self) -> None:
        survey = Survey()
        survey.mention(survey.people("leadership", 5), "strengths", 1)
        survey.mention(survey.people("customer", 5), "improvements", 1)
        items = survey.frames()[0]
        result = alignment(items, THEMES)
        assert result["pairs"] == [
            {
                "group_a": "leadership",
                "group_b": "customer",
                "value": 0.0,
                "by_question": {"strengths": None, "improvements": None, "competition": None, "continue_start": None},
            }
        ]
        assert result["overall"] == 0.0

    def test_group_without_themed_items_has_no_index_and_overall_uses_the_rest(self) -> None:
        survey = Survey()
        leaders = survey.people("leadership", 5)
        customers = survey.people("customer", 5)
        survey.people("staff", 2)
        survey.mention(leaders, "strengths", 1)
        survey.mention(customers[:4], "strengths", 1)
        survey.mention(customers[:4], "strengths", 2)
        items = survey.frames()[0]
        result = alignment(items, THEMES, groups=["leadership", "staff", "customer"])
        values = {(p["group_a"], p["group_b"]): p["value"] for p in result["pairs"]}
        expected = round(100 * (1 - jensenshannon([1, 0], [0.5, 0.5], base=2)), 2)
        assert values == {
            ("leadership", "staff"): None,
            ("leadership", "customer"): expected,
            ("staff", "customer"): None,
        }
        assert result["overall"] == expected

    def test_no_pairs_no_overall(self) -> None:
        survey = Survey()
        survey.people("customer", 5)
        assert alignment(survey.frames()[0], THEMES, groups=["customer"]) == {"pairs": [], "overall": None}


# --------------------------------------------------------------------------
# Consistency
# --------------------------------------------------------------------------


class ConsistencyTests:
    def split_staff(self) -> Survey:
        survey = Survey()
        ops = survey.people("staff", 3, department="Ops", members=6)
        sales = survey.people("staff", 3, department="Sales", members=8)
        survey.mention(ops, "improvements", 1)  # every Ops sheet, no Sales sheet
        survey.mention(ops + sales, "strengths", 2)  # everyone
        return survey

    def test_theme_splitting_departments(self) -> None:
        items, respondents, _ = self.split_staff().frames()
        result = consistency(items, respondents, THEMES)
        assert [(d["name"], d["respondents"], d["people"]) for d in result["departments"]] == [
            ("Ops", 3, 18),
            ("Sales", 3, 24),
        ]
        first, second = result["splits"]
        assert (first["question"], first["theme_id"], first["spread"], first["split"]) == ("improvements", 1, 1.0, True)
        assert first["departments"] == {
            "Ops": {"respondents": 3, "share": 1.0},
            "Sales": {"respondents": 0, "share": 0.0},
        }
        assert first["p_value"] == pytest.approx(stats.fisher_exact([[3, 0], [0, 3]]).pvalue, rel=1e-3)
        assert (second["theme_id"], second["spread"], second["split"], second["p_value"]) == (2, 0.0, False, 1.0)

    def test_alignment_with_the_rest_of_staff(self) -> None:
        items, respondents, _ = self.split_staff().frames()
        result = consistency(items, respondents, THEMES)
        ops, sales = result["departments"]
        # Ops: {strength 2: 3, improvement 1: 3}; the rest (Sales): {strength 2: 3}.
        expected = round(100 * (1 - jensenshannon([3, 3], [3, 0], base=2)), 2)
        assert ops["alignment_with_rest"] == sales["alignment_with_rest"] == expected
        assert result["index"] == expected

    def test_three_departments_test_is_deterministic(self) -> None:
        survey = self.split_staff()
        survey.people("staff", 3, department="Support")
        items, respondents, _ = survey.frames()
        first = consistency(items, respondents, THEMES)
        assert first == consistency(items, respondents, THEMES)
        assert 0.0 < first["splits"][0]["p_value"] <= 1.0

    def test_three_departments_use_a_monte_carlo_test_close_to_chi_square_when_counts_are_large(self) -> None:
        survey = Survey()
        for department, sheets, mentioning in (("Ops", 40, 10), ("Sales", 40, 20), ("Support", 40, 15)):
            rids = survey.people("staff", sheets, department=department)
            survey.mention(rids[:mentioning], "improvements", 1)
        items, respondents, _ = survey.frames()
        [split] = consistency(items, respondents, THEMES)["splits"]
        chi_square = stats.chi2_contingency([[10, 30], [20, 20], [15, 25]], correction=False).pvalue
        assert split["p_value"] == pytest.approx(chi_square, abs=0.01)

    def test_only_the_shown_departments_appear(self) -> None:
        survey = self.split_staff()
        survey.mention(survey.people("staff", 1, department="Legal"), "improvements", 3)
        survey.people("staff", 1)
        doc = survey.analyze()
        assert [d["name"] for d in doc["consistency"]["departments"]] == ["Ops", "Sales"]
        assert [path[0] for path in occurrences(doc, "Legal")] == ["suppressed"]

    def test_suppressed_staff_has_no_consistency(self) -> None:
        survey = Survey()
        survey.people("staff", 1, department="Ops")
        assert survey.analyze()["consistency"] == {"departments": [], "index": None, "splits": []}


# --------------------------------------------------------------------------
# Competition and actions
# --------------------------------------------------------------------------


class CompetitionBalanceTests:
    def test_counts_and_balance(self) -> None:
        survey = Survey()
        customers = survey.people("customer", 6)
        survey.mention(customers[:3], "competition", 3, "good")
        survey.mention(customers[3:4], "competition", 3, "bad")
        survey.mention(customers[4:5], "competition", 4, "neutral")
        survey.mention(customers[5:], "competition", -1)
        survey.people("leadership", 5)
        result = competition_balance(survey.frames()[0], THEMES, groups=["leadership", "customer"])
        assert result["groups"]["customer"] == {
            "good": 3,
            "bad": 1,
            "neutral": 1,
            "untagged": 1,
            "total": 5,
            "balance": 0.4,
        }
        assert result["groups"]["leadership"]["balance"] is None
        assert [
            (t["theme_id"], t["groups"]["customer"]["good"], t["groups"]["customer"]["bad"]) for t in result["themes"]
        ] == [
            (3, 3, 1),
            (4, 0, 0),
        ]


class ActionListTests:
    def test_ranked_by_groups_then_respondents(self) -> None:
        survey = Survey()
        leaders = survey.people("leadership", 5)
        sheets = survey.people("staff", 2, members=7)
        customers = survey.people("customer", 10)
        survey.mention(customers[:6], "continue_start", 1, "start")  # one group, 6 people
        survey.mention(leaders[:1] + sheets[:1] + customers[:1], "continue_start", 2, "continue")  # three groups
        survey.mention(leaders[:2] + customers[:2], "continue_start", 3, "start")  # two groups
        survey.mention(customers[:1] * 2, "continue_start", 4, "start")  # one customer twice
        items, respondents, _ = survey.frames()
        actions = action_list(items, respondents, THEMES)
        assert [(a["theme_id"], a["tag"], a["n_groups"], a["respondents"]) for a in actions] == [
            (2, "continue", 3, 3),
            (3, "start", 2, 4),
            (1, "start", 1, 6),
            (4, "start", 1, 1),
        ]
        assert actions[0]["groups"] == ["leadership", "staff", "customer"]
        assert actions[0]["people"] == 1 + 7 + 1
        assert actions[0]["by_group"] == {"leadership": 1, "staff": 1, "customer": 1}


# --------------------------------------------------------------------------
# Trend
# --------------------------------------------------------------------------


class TrendTests:
    def wave(self, leader_mentions: int, theme_id: int = 1, top_leaders: int = 4) -> dict[str, Any]:
        survey = leaders_vs_customers("strengths", (leader_mentions, 5), (1, 10), theme_id)
        for i, r in enumerate(survey.respondents):
            value = 5 if (r["group"] == "leadership" and i < top_leaders) else 3
            survey.rating(r["respondent_id"], "overall", value)
            survey.item(r["respondent_id"], "improvements", 2)
        return survey.analyze()

    def test_no_previous_wave_no_trend(self) -> None:
        assert self.wave(4)["trend"] is None
        assert trend(self.wave(4), None) is None

    def test_changes_against_the_previous_wave(self) -> None:
        before = self.wave(4, top_leaders=4)
        after = analyze(
            *self._frames_for(2, top_leaders=1), THEMES, RATING_ITEMS, previous=json.loads(json.dumps(before))
        )
        change = after["trend"]
        [lc_gap] = [
            g
            for g in change["gaps"]
            if (g["question"], g["theme_id"], g["group_a"], g["group_b"]) == ("strengths", 1, "leadership", "customer")
        ]
        assert (lc_gap["difference_previous"], lc_gap["difference"], lc_gap["change"], lc_gap["narrowed"]) == (
            0.7,
            0.3,
            -0.4,
            True,
        )
        [lead_rating] = [r for r in change["ratings"] if (r["item"], r["group"]) == ("overall", "leadership")]
        assert (lead_rating["top_box_previous"], lead_rating["top_box"], lead_rating["top_box_change"]) == (
            0.8,
            0.2,
            -0.6,
        )
        assert lead_rating["mean_change"] == pytest.approx(-1.2)
        [pair] = change["alignment"]["pairs"]
        assert pair["change"] == pytest.approx(pair["current"] - pair["previous"], abs=0.011)

    def test_new_and_disappeared_themes(self) -> None:
        before = self.wave(4, theme_id=1)
        after = self.wave(4, theme_id=3)
        change = trend(after, before)
        assert change["themes"]["strengths"] == {
            "new": [{"theme_id": 3, "label": "Pricing"}],
            "disappeared": [{"theme_id": 1, "label": "Fast replies"}],
        }
        assert change["themes"]["improvements"] == {"new": [], "disappeared": []}

    def test_group_suppressed_now_is_absent_from_the_trend(self) -> None:
        before = self.wave(4)
        survey = Survey()
        survey.people("leadership", 2)
        customers = survey.people("customer", 10)
        survey.mention(customers, "improvements", 2)
        for rid in customers:
            survey.rating(rid, "overall", 3)
        after = survey.analyze(previous=before)
        assert occurrences(after["trend"], "leadership") == []
        assert [r["group"] for r in after["trend"]["ratings"]] == ["customer"]

    def _frames_for(self, leader_mentions: int, top_leaders: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        survey = leaders_vs_customers("strengths", (leader_mentions, 5), (1, 10))
        for i, r in enumerate(survey.respondents):
            value = 5 if (r["group"] == "leadership" and i < top_leaders) else 3
            survey.rating(r["respondent_id"], "overall", value)
            survey.item(r["respondent_id"], "improvements", 2)
        return survey.frames()


# --------------------------------------------------------------------------
# The whole document
# --------------------------------------------------------------------------


class AnalyzeTests:
    def test_empty_wave_is_valid_json(self) -> None:
        doc = analyze(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), THEMES, RATING_ITEMS)
        json.dumps(doc, allow_nan=False)
        assert all(doc["groups"][g]["suppressed"] for g in ("leadership", "staff", "customer"))
        assert doc["alignment"] == {"pairs": [], "overall": None}
        assert doc["ratings"]["headline"]["sentence"] is None

    def test_document_keys(self) -> None:
        doc = TrendTests().wave(4)
        assert set(doc) == {
            "groups",
            "ratings",
            "questions",
            "gaps",
            "contradictions",
            "alignment",
            "consistency",
            "competition",
            "actions",
            "trend",
            "suppressed",
            "parameters",
        }

    def test_rows_take_their_respondents_group_and_drafts_are_ignored(self) -> None:
        survey = Survey()
        leaders = survey.people("leadership", 3)  # suppressed
        survey.people("customer", 5)
        survey.mention(leaders, "strengths", 1)
        items, respondents, ratings = survey.frames()
        items.loc[items["respondent_id"] == leaders[0], "group"] = "customer"  # mislabelled row
        draft = pd.DataFrame([{**items.iloc[0].to_dict(), "item_id": 999, "respondent_id": 999, "group": "customer"}])
        items = pd.concat([items, draft], ignore_index=True)
        doc = analyze(items, respondents, ratings, THEMES, RATING_ITEMS)
        assert doc["questions"]["strengths"]["themes"] == []
        # The customers are shown, with nothing of the leaders' in their name.
        assert doc["groups"]["customer"] == {"respondents": 5, "people": 5, "items": 0, "suppressed": False}


# --------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------

DEPARTMENTS = ("dept-north", "dept-south", "dept-east")
SEGMENTS = ("seg-retail", "seg-trade")
PROPERTY_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def surveys(draw: st.DrawFn) -> tuple[Survey, int, int]:
    survey = Survey()
    for group, most in (("leadership", 8), ("staff", 6), ("customer", 14)):
        for _ in range(draw(st.integers(0, most))):
            if group == "staff":
                rid = survey.respondent(
                    "staff", department=draw(st.sampled_from((*DEPARTMENTS, ""))), members=draw(st.integers(2, 9))
                )
            elif group == "customer":
                rid = survey.respondent("customer", department=draw(st.sampled_from((*SEGMENTS, ""))))
            else:
                rid = survey.respondent("leadership")
            for _ in range(draw(st.integers(0, 4))):
                question = draw(st.sampled_from(QUESTIONS))
                tags = QUESTION_TAGS[question]
                tag = draw(st.sampled_from(tags)) if tags else ""
                survey.item(rid, question, draw(st.sampled_from([-1, 1, 2, 3, 4])), tag)
            members = survey.respondents[rid - 1]["members"]
            for key, _ in RATING_ITEMS:
                if draw(st.booleans()):
                    if group == "staff" and draw(st.booleans()):
                        high = draw(st.integers(0, members))
                        if high:
                            survey.rating(rid, key, 5, votes=high)
                        if members - high:
                            survey.rating(rid, key, draw(st.integers(1, 4)), votes=members - high)
                    else:
                        survey.rating(rid, key, draw(st.integers(1, 5)), votes=members)
    return survey, draw(st.integers(1, 6)), draw(st.integers(1, 3))


SHARE_KEYS = {
    "share",
    "people_share",
    "top_box",
    "share_a",
    "share_b",
    "strength_share",
    "improvement_share",
    "severity",
    "p_value",
    "q_value",
    "p_value_respondents",
    "spread",
    "1",
    "2",
    "3",
    "4",
    "5",
}
INDEX_KEYS = {
    "value",
    "overall",
    "alignment_with_rest",
    "index",
    "strengths",
    "improvements",
    "competition",
    "continue_start",
}


class PropertyTests:
    @PROPERTY_SETTINGS
    @given(surveys())
    def test_document_is_strict_json_and_shares_within_0_and_1(self, drawn: tuple[Survey, int, int]) -> None:
        survey, min_individuals, min_staff_sheets = drawn
        doc = survey.analyze(min_individuals=min_individuals, min_staff_sheets=min_staff_sheets)
        assert json.loads(json.dumps(doc, allow_nan=False)) == doc
        for value in values_at(doc, SHARE_KEYS):
            assert value is None or 0.0 <= value <= 1.0
        for pair in doc["alignment"]["pairs"]:
            for value in [pair["value"], *pair["by_question"].values()]:
                assert value is None or 0.0 <= value <= 100.0
        for value in values_at(doc["consistency"], {"alignment_with_rest", "index"}) + [doc["alignment"]["overall"]]:
            assert value is None or 0.0 <= value <= 100.0
        for entry in doc["competition"]["groups"].values():
            assert entry["balance"] is None or -1.0 <= entry["balance"] <= 1.0

    @PROPERTY_SETTINGS
    @given(surveys())
    def test_suppressed_groups_and_departments_never_appear(self, drawn: tuple[Survey, int, int]) -> None:
        survey, min_individuals, min_staff_sheets = drawn
        # The previous wave showed every group, so the trend is tempted to compare them.
        previous = survey.analyze(min_individuals=1, min_staff_sheets=1)
        doc = survey.analyze(min_individuals=min_individuals, min_staff_sheets=min_staff_sheets, previous=previous)
        threshold = {"leadership": min_individuals, "staff": min_staff_sheets, "customer": min_individuals}
        respondents = pd.DataFrame(survey.respondents, columns=list(metrics.RESPONDENT_COLUMNS))
        sizes = respondents.groupby("group").size()
        listed = {(e["kind"], e["group"], e["name"]) for e in doc["suppressed"]}

        for group in ("leadership", "staff", "customer"):
            if sizes.get(group, 0) >= threshold[group]:
                assert doc["groups"][group]["respondents"] == sizes[group]
                continue
            assert ("group", group, group) in listed
            assert doc["groups"][group] == {"respondents": None, "people": None, "items": None, "suppressed": True}
            for path in occurrences(doc, group):
                assert path == ("groups", group) or path[0] == "suppressed", path

        for group in ("staff", "customer"):
            frame = respondents[(respondents["group"] == group) & (respondents["department"] != "")]
            for name, size in frame.groupby("department").size().items():
                if size < threshold[group] and sizes[group] >= threshold[group]:
                    assert (("department" if group == "staff" else "segment"), group, name) in listed
        for kind, _group, name in listed:
            if kind != "group":
                for path in occurrences(doc, name):
                    assert path[0] == "suppressed", path

        # Complementary suppression: the staff total minus the shown
        # departments never isolates fewer sheets than the threshold.
        shown = sum(d["respondents"] for d in doc["consistency"]["departments"])
        if shown:
            remainder = doc["groups"]["staff"]["respondents"] - shown
            assert remainder == 0 or remainder >= min_staff_sheets

    @PROPERTY_SETTINGS
    @given(surveys())
    def test_alignment_is_symmetric_when_groups_swap(self, drawn: tuple[Survey, int, int]) -> None:
        survey, min_individuals, min_staff_sheets = drawn
        items, respondents, ratings = survey.frames()
        swap = {"leadership": "customer", "customer": "leadership", "staff": "staff"}
        swapped = [frame.assign(group=frame["group"].map(swap)) for frame in (items, respondents, ratings)]
        kwargs = {"min_individuals": min_individuals, "min_staff_sheets": min_staff_sheets}
        doc = analyze(items, respondents, ratings, THEMES, RATING_ITEMS, **kwargs)
        mirror = analyze(*swapped, THEMES, RATING_ITEMS, **kwargs)

        def values(document: dict[str, Any]) -> dict[frozenset[str], Any]:
            return {frozenset((p["group_a"], p["group_b"])): p["value"] for p in document["alignment"]["pairs"]}

        assert values(mirror) == {frozenset(swap[g] for g in pair): v for pair, v in values(doc).items()}
        assert mirror["alignment"]["overall"] == doc["alignment"]["overall"]

    @PROPERTY_SETTINGS
    @given(surveys())
    def test_alignment_is_100_for_identical_groups(self, drawn: tuple[Survey, int, int]) -> None:
        # The customers are an exact copy of the leaders (new ids, same items).
        items, respondents, _ = drawn[0].frames()
        offset = int(respondents["respondent_id"].max() if len(respondents) else 0) + 1
        twin_items = items[items["group"] == "leadership"].assign(
            respondent_id=lambda f: f["respondent_id"] + offset, group="customer"
        )
        both_items = pd.concat([items[items["group"] == "leadership"], twin_items], ignore_index=True)
        result = alignment(both_items, THEMES, groups=["leadership", "customer"])
        themed = both_items["theme_id"].isin(THEMES["theme_id"]).any()
        assert result["pairs"][0]["value"] == (100.0 if themed else None)

    @PROPERTY_SETTINGS
    @given(st.integers(1, 40), st.integers(1, 40), st.data())
    def test_fisher_matches_scipy(self, n_a: int, n_b: int, data: st.DataObject) -> None:
        k_a, k_b = data.draw(st.integers(0, n_a)), data.draw(st.integers(0, n_b))
        expected = stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]]).pvalue
        assert metrics._fisher_2x2(k_a, n_a, k_b, n_b) == pytest.approx(expected, rel=1e-9, abs=1e-15)

    @PROPERTY_SETTINGS
    @given(
        st.lists(st.integers(1, 5), min_size=2, max_size=7),
        st.lists(st.integers(1, 5), min_size=2, max_size=7),
    )
    def test_exact_rank_test_matches_scipy_over_every_permutation(self, a: list[int], b: list[int]) -> None:
        expected = RatingGapTests.exact_mann_whitney(a, b)
        assert metrics._mann_whitney(np.array(a), np.array(b)) == pytest.approx(expected, rel=1e-9)

    @PROPERTY_SETTINGS
    @given(
        st.dictionaries(st.integers(0, 8), st.floats(0, 50, allow_nan=False), max_size=8),
        st.dictionaries(st.integers(0, 8), st.floats(0, 50, allow_nan=False), max_size=8),
    )
    def test_alignment_index_symmetric_and_bounded(self, a: dict[int, float], b: dict[int, float]) -> None:
        value = alignment_index(a, b)
        assert value == alignment_index(b, a)
        assert value is None or 0.0 <= value <= 100.0
        if sum(a.values()) > 0:
            assert alignment_index(a, a) == 100.0
            assert alignment_index(a, {k: 3 * v for k, v in a.items()}) == 100.0
