"""
Forecast accuracy of the workshop reveal (analysis/predictions.py): the
arithmetic on small hand-checked cases, the matching of predicted items to
themes on paraphrase sets, and the block a real analysis run stores.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from django.core.management import call_command
from django.urls import reverse

from analysis import predictions
from analysis.embeddings import TfidfEmbedder, get_embedder
from analysis.services import analysis_run_now
from surveys import services
from surveys.models import Group
from surveys.services import Answers, ItemInput, PredictedRatingInput, PredictionInput, RatingInput
from tests.surveys.factories import consultant_create, engagement_create, first_wave

# --- Small documents whose right answer can be seen by eye -----------------------------


def document(*, customers: int | None = 10, top_box: float = 0.1, mean: float = 2.5, threshold: int = 5) -> dict:
    """An analysis document with one rating item and one theme per question.

    ``customers`` None or under ``threshold``: the customer group is suppressed as the metrics do it.
    """
    shown = customers is not None and customers >= threshold
    groups = {
        "leadership": {"respondents": 5, "suppressed": False},
        "customer": {"respondents": customers, "suppressed": False}
        if shown
        else {"respondents": None, "suppressed": True},
        "staff": {"respondents": None, "suppressed": True},
    }
    suppressed = [{"kind": "group", "group": "staff", "respondents": 0, "threshold": 2}]
    if not shown:
        suppressed.append({"kind": "group", "group": "customer", "respondents": customers or 0, "threshold": threshold})
    rating_groups = {"leadership": {"n": 5, "top_box": 0.8, "mean": 4.6, "respondents": 5}}
    if shown:
        rating_groups["customer"] = {"n": customers, "top_box": top_box, "mean": mean, "respondents": customers}

    def theme(theme_id: int, label: str, share: float, respondents: int) -> dict:
        entry = {"theme_id": theme_id, "label": label, "groups": {"leadership": {"respondents": 0, "share": 0.0}}}
        if shown:
            entry["groups"]["customer"] = {"respondents": respondents, "share": share}
        return entry

    return {
        "groups": groups,
        "suppressed": suppressed,
        "ratings": {"items": [{"key": "overall", "label": "Overall", "groups": rating_groups}]},
        "questions": {
            "strengths": {"themes": [theme(1, "Friendly staff", 0.5, 5), theme(2, "Fast replies", 0.1, 1)]},
            "improvements": {"themes": [theme(3, "Billing surprises", 0.4, 4), theme(4, "Slow replies", 0.3, 3)]},
        },
    }


def forecast(respondent_id: int, top_box: float, mean: float, items=(), target: str = "customer") -> dict:
    return {
        "prediction_id": respondent_id * 10,
        "respondent_id": respondent_id,
        "target": target,
        "ratings": {"overall": {"top_box": top_box, "mean": mean}},
        "items": [{"item_id": item_id, "question": q, "text": text} for item_id, q, text in items],
    }


FIVE_LEADERS = [
    forecast(1, 0.5, 4.0, [(11, "strengths", "Our friendly people")]),
    forecast(2, 0.4, 3.5, [(21, "strengths", "We reply fast")]),
    forecast(3, 0.6, 4.0, [(31, "improvements", "Slow to answer emails")]),
    forecast(4, 0.0, 2.0),
    forecast(5, 0.5, 4.0, [(51, "strengths", "The car park")]),
]
# Predicted item -> (matched theme, similarity), as match_items gives them.
MATCHES = {11: (1, 0.7), 21: (2, 0.6), 31: (4, 0.65), 51: (None, 0.1)}


class AccuracyArithmeticTests:
    def test_team_errors_per_rating_item_by_hand(self):
        block = predictions.target_accuracy(FIVE_LEADERS, document(), MATCHES, target="customer", min_individuals=5)

        assert block["status"] == "ok"
        (row,) = block["ratings"]
        # Top box: errors 0.4, 0.3, 0.5, -0.1, 0.4 -> |e| mean 1.7/5, signed mean 1.5/5.
        assert row["predicted"] == {"top_box": 0.4, "mean": 3.5, "leaders": 5}
        assert row["actual"] == {"top_box": 0.1, "mean": 2.5, "n": 10}
        assert row["own"] == {"top_box": 0.8, "mean": 4.6}
        assert row["top_box"] == {"mae": 0.34, "over_optimism": 0.3}
        # Mean: errors 1.5, 1.0, 1.5, -0.5, 1.5 -> |e| 6/5, signed 5/5.
        assert row["mean"] == {"mae": 1.2, "over_optimism": 1.0}
        assert row["sentence"] == "You expected 40% of customers to call our customer experience excellent. 10% did."
        assert block["summary"]["top_box"] == {"mae": 0.34, "over_optimism": 0.3}

    def test_hits_and_blind_spots_by_hand(self):
        block = predictions.target_accuracy(FIVE_LEADERS, document(), MATCHES, target="customer", min_individuals=5)

        strengths, improvements = block["questions"]["strengths"], block["questions"]["improvements"]
        # "Fast replies" is mentioned by one customer only: matched, but not a theme customers raised.
        assert [(i["text"], i["theme_id"], i["hit"]) for i in strengths["items"]] == [
            ("Our friendly people", 1, True),
            ("We reply fast", 2, False),
            ("The car park", None, False),
        ]
        assert (strengths["hits"], strengths["predicted_items"], strengths["hit_rate"]) == (1, 3, 0.3333)
        assert strengths["blind_spots"] == []
        assert (improvements["hits"], improvements["hit_rate"]) == (1, 1.0)
        assert [(b["label"], b["share"]) for b in improvements["blind_spots"]] == [("Billing surprises", 0.4)]
        assert block["summary"]["hit_rate"] == 0.5  # 2 hits of 4 predicted items

    def test_each_leader_gets_their_own_errors_under_a_pseudonym(self):
        block = predictions.target_accuracy(FIVE_LEADERS, document(), MATCHES, target="customer", min_individuals=5)

        leaders = {row["leader"]: row for row in block["per_leader"]}
        assert list(leaders) == ["L1", "L2", "L3", "L4", "L5"]
        assert leaders["L4"]["top_box"] == {"mae": 0.1, "over_optimism": -0.1}
        assert leaders["L4"]["mean"] == {"mae": 0.5, "over_optimism": -0.5}
        assert (leaders["L1"]["predicted_items"], leaders["L1"]["hit_rate"]) == (1, 1.0)
        assert leaders["L4"]["hit_rate"] is None  # predicted no items

    def test_no_customers_yet_gives_predictions_without_actuals_and_says_so(self):
        block = predictions.target_accuracy(
            FIVE_LEADERS, document(customers=None), MATCHES, target="customer", min_individuals=5
        )

        assert block["status"] == "no_actual"
        assert block["message"] == "No customer answers yet in this wave."
        (row,) = block["ratings"]
        assert row["predicted"]["top_box"] == 0.4
        assert row["actual"] is None and row["top_box"] == {"mae": None, "over_optimism": None}
        assert row["sentence"] == "You expected 40% of customers to call our customer experience excellent."
        assert block["per_leader"] == []
        assert block["summary"]["hit_rate"] is None
        assert all(i["theme_id"] is None for q in block["questions"].values() for i in q["items"])

    def test_customers_under_the_threshold_are_never_compared(self):
        block = predictions.target_accuracy(
            FIVE_LEADERS, document(customers=3), MATCHES, target="customer", min_individuals=5
        )

        assert block["status"] == "actual_suppressed"
        assert "Only 3 customers have answered" in block["message"]
        assert block["ratings"][0]["actual"] is None
        assert block["questions"]["improvements"]["blind_spots"] == []
        assert block["per_leader"] == []

    def test_fewer_leaders_than_the_threshold_give_no_figures_at_all(self):
        block = predictions.target_accuracy(FIVE_LEADERS[:4], document(), MATCHES, target="customer", min_individuals=5)

        assert block["status"] == "too_few_leaders"
        assert block["leaders"] == 4
        assert "Only 4 leaders predicted" in block["message"]
        assert "ratings" not in block and "per_leader" not in block and "questions" not in block

    def test_a_group_nobody_predicted_is_reported_as_such_beside_the_other(self):
        result = predictions.accuracy(FIVE_LEADERS, document(), MATCHES, min_individuals=5, engine="minilm-l6-v2-int8")

        assert result["targets"]["customer"]["status"] == "ok"
        assert result["targets"]["staff"] == {
            "group": "staff",
            "leaders": 0,
            "threshold": 5,
            "status": "no_predictions",
            "message": "No leader has predicted the staff's view.",
        }
        assert result["match"]["threshold"] == 0.4
        json.dumps(result, allow_nan=False)  # plain JSON for the stored document

    @pytest.mark.parametrize(
        "top_box, mean, leaders_expected",
        [(1.0, 5.0, 0.9), (0.0, 1.0, -0.1)],
        ids=["everyone-excellent", "nobody-excellent"],
    )
    def test_extreme_forecasts_stay_within_the_scale(self, top_box, mean, leaders_expected):
        leaders = [forecast(n, top_box, mean) for n in range(1, 6)]

        block = predictions.target_accuracy(leaders, document(), {}, target="customer", min_individuals=5)

        row = block["ratings"][0]
        assert row["top_box"]["over_optimism"] == pytest.approx(leaders_expected)
        assert 0 <= row["top_box"]["mae"] <= 1
        assert 0 <= row["mean"]["mae"] <= 4


shares = st.integers(min_value=0, max_value=100).map(lambda n: n / 100)


class AccuracyPropertyTests:
    @settings(max_examples=60, deadline=None)
    @given(
        forecasts=st.lists(st.tuples(shares, st.integers(10, 50).map(lambda n: n / 10)), min_size=5, max_size=12),
        actual_top_box=shares,
        actual_mean=st.integers(10, 50).map(lambda n: n / 10),
    )
    def test_absolute_error_bounds_the_over_optimism_and_stays_on_the_scale(self, forecasts, actual_top_box, actual_mean):
        leaders = [forecast(n, top_box, mean) for n, (top_box, mean) in enumerate(forecasts, start=1)]

        block = predictions.target_accuracy(
            leaders, document(top_box=actual_top_box, mean=actual_mean), {}, target="customer", min_individuals=5
        )

        row = block["ratings"][0]
        for measure, span in (("top_box", 1.0), ("mean", 4.0)):
            errors = row[measure]
            assert abs(errors["over_optimism"]) <= errors["mae"] + 1e-9 <= span + 1e-9
        team = row["predicted"]["top_box"] - actual_top_box
        assert row["top_box"]["over_optimism"] == pytest.approx(team, abs=1e-3)
        assert len(block["per_leader"]) == len(leaders)


# --- Matching predicted items to themes -------------------------------------------------

# Customers' words per theme (the centroids), a leader's paraphrase of each, and unrelated items.
CUSTOMER_THEMES = {
    1: ["Unexpected charges on my bill", "My bill went up without warning", "Hidden fees on the invoice"],
    2: ["I waited two weeks for a reply", "They are slow to answer emails", "Took ages to hear back"],
    3: ["The engineer never turned up", "Missed my installation appointment", "Technician didn't come on the day"],
}
PARAPHRASES = [
    ("Customers get surprised by extra costs on their bills", 1),
    ("We take too long to respond to emails", 2),
    ("Our engineers miss appointments", 3),
]
UNRELATED = ["The office coffee machine is broken", "Our chief executive enjoys golf"]


def match_with(embedder) -> tuple[list[tuple[int | None, float]], list[tuple[int | None, float]]]:
    texts = [t for ts in CUSTOMER_THEMES.values() for t in ts]
    queries = [p for p, _ in PARAPHRASES] + UNRELATED
    vectors = embedder.embed(texts + queries)  # one call: TF-IDF vectors compare only within a call
    theme_ids = [tid for tid, ts in CUSTOMER_THEMES.items() for _ in ts]
    centroids = predictions.theme_centroids(
        vectors[: len(texts)], ["improvements"] * len(texts), theme_ids, ["customer"] * len(texts), target="customer"
    )
    candidates = {tid: c for (_, tid), c in centroids.items()}
    found = predictions.match_items(
        vectors[len(texts) :], candidates, threshold=predictions.match_threshold(embedder.name)
    )
    return found[: len(PARAPHRASES)], found[len(PARAPHRASES) :]


class MatchingTests:
    def test_minilm_matches_each_paraphrase_to_its_theme_and_unrelated_items_to_none(self):
        embedder = get_embedder("minilm")
        if embedder.name.startswith("tfidf"):
            pytest.skip(f"MiniLM is not available here: {embedder.fallback_reason}")

        paraphrases, unrelated = match_with(embedder)

        assert [theme for theme, _ in paraphrases] == [theme for _, theme in PARAPHRASES]
        assert [theme for theme, _ in unrelated] == [None, None]
        assert all(score >= 0.4 for _, score in paraphrases)

    def test_tfidf_fallback_matches_paraphrases_that_share_words_and_not_unrelated_items(self):
        embedder = TfidfEmbedder()
        texts = [t for ts in CUSTOMER_THEMES.values() for t in ts]
        shared_words = ["Charges on the bill came as a surprise", "Slow to answer emails", "The engineer missed the appointment"]
        vectors = embedder.embed(texts + shared_words + UNRELATED)
        theme_ids = [tid for tid, ts in CUSTOMER_THEMES.items() for _ in ts]
        centroids = predictions.theme_centroids(
            vectors[: len(texts)], ["improvements"] * len(texts), theme_ids, ["customer"] * len(texts), target="customer"
        )
        candidates = {tid: c for (_, tid), c in centroids.items()}

        found = predictions.match_items(vectors[len(texts) :], candidates, threshold=predictions.match_threshold(embedder.name))

        assert [theme for theme, _ in found] == [1, 2, 3, None, None]

    def test_centroids_use_only_the_predicted_groups_assigned_items(self):
        vectors = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.6, 0.8]], dtype=np.float32)

        centroids = predictions.theme_centroids(
            vectors, ["strengths"] * 4, [7, 7, -1, 8], ["customer", "leadership", "customer", "customer"], target="customer"
        )

        assert set(centroids) == {("strengths", 7), ("strengths", 8)}
        assert centroids[("strengths", 7)] == pytest.approx([1.0, 0.0])

    def test_no_candidate_theme_matches_nothing(self):
        assert predictions.match_items(np.ones((2, 3)) / np.sqrt(3), {}, threshold=0.4) == [(None, 0.0), (None, 0.0)]


# --- The block a real run stores -------------------------------------------------------

SLOW = ["Replies take far too long", "I waited two weeks for an answer", "They are slow to get back to me"]
FRIENDLY = ["Friendly people on the phone", "The staff on the phone are kind", "Polite and helpful phone agents"]


@pytest.mark.django_db
class StoredPredictionsTests:
    @pytest.fixture(autouse=True)
    def setup(self, settings):
        settings.ANALYSIS_ENGINE = "tfidf"  # fast; the matching tests above cover MiniLM
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace)
        self.wave = first_wave(self.engagement)
        self.keys = list(self.wave.rating_items.values_list("key", flat=True))
        self.session = services.session_open(wave=self.wave, opened_by=self.consultant)
        services.session_predictions_set(session=self.session, predict_customers=True, predict_staff=False)

    def _leaders_predict(self, n: int, top_box: int = 50) -> None:
        for _ in range(n):
            leader = services.leader_submit(
                session=self.session,
                answers=Answers(
                    items=[ItemInput("strengths", "Our friendly phone team")],
                    ratings=[RatingInput(key, 5) for key in self.keys],
                ),
            )
            services.prediction_submit(
                session=self.session,
                respondent=leader,
                target=Group.CUSTOMER,
                prediction=PredictionInput(
                    ratings=[PredictedRatingInput(key, top_box, services.mean_bounds(top_box)[0]) for key in self.keys],
                    items=[ItemInput("strengths", "Friendly people on the phone")],
                ),
            )

    def _customers_answer(self, n: int) -> None:
        for i in range(n):
            services.open_link_submit(
                wave=self.wave,
                answers=Answers(
                    items=[ItemInput("strengths", FRIENDLY[i % 3]), ItemInput("improvements", SLOW[i % 3])],
                    ratings=[RatingInput(key, 5 if i == 0 else 2) for key in self.keys],
                ),
            )

    def test_analyze_json_and_the_api_carry_the_predictions_block(self, client):
        self._leaders_predict(5)
        self._customers_answer(10)

        out = io.StringIO()
        call_command("analyze", self.engagement.slug, "--json", stdout=out, stderr=io.StringIO())
        document = json.loads(out.getvalue())

        block = document["predictions"]["targets"]["customer"]
        assert block["status"] == "ok" and block["leaders"] == 5
        overall = next(r for r in block["ratings"] if r["key"] == "overall")
        assert overall["predicted"]["top_box"] == 0.5
        assert overall["actual"]["top_box"] == 0.1  # one customer of ten gave 5
        assert overall["top_box"] == {"mae": 0.4, "over_optimism": 0.4}
        assert overall["sentence"] == "You expected 50% of customers to call our customer experience excellent. 10% did."
        strengths = block["questions"]["strengths"]
        assert strengths["hit_rate"] == 1.0
        assert [b["label"] for b in block["questions"]["improvements"]["blind_spots"]]
        client.force_login(self.consultant)
        api = client.get(reverse("analysis:api_analysis", args=[self.engagement.slug])).json()
        assert api["predictions"] == document["predictions"]

    def test_a_new_prediction_is_not_skipped_as_unchanged_answers(self):
        self._customers_answer(6)
        first = analysis_run_now(wave=self.wave)
        self._leaders_predict(5)

        second = analysis_run_now(wave=self.wave)

        assert first.result["predictions"]["targets"]["customer"]["status"] == "no_predictions"
        assert second.status == "done"
        assert second.result["predictions"]["targets"]["customer"]["leaders"] == 5
