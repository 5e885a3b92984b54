"""
The workshop reveal through the app's pages: the facilitator switches
predictions on, leaders answer and then predict on their phones, closing the
session computes the reveal, and the consultant reads the forecast accuracy
and exports the predicted items.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from analysis.models import AnalysisRun
from analysis.selectors import run_served
from analysis.services import analysis_run_now
from surveys import demo, services
from surveys.models import Engagement, Group, PredictedItem, PredictedRating, Prediction, WorkshopSession
from surveys.services import Answers, ItemInput, RatingInput

from .factories import answer_post_data, consultant_create, engagement_create, first_wave, submission_key

LEADER_ITEMS = {"strengths": ["Friendly people on the phone"], "improvements": ["Slow to reply to emails"]}
PREDICTED_ITEMS = {
    "strengths": ["Customers love our friendly phone team", "Quick answers"],
    "improvements": ["Replies to emails take too long"],
}
FRIENDLY = ["Friendly people on the phone", "The staff on the phone are kind", "Polite and helpful phone agents"]
SLOW = ["Replies take far too long", "I waited two weeks for an answer", "They are slow to get back to me"]
BILLING = ["Unexpected charges on my bill", "My bill went up without warning", "Hidden fees on the invoice"]


def prediction_post_data(wave, *, top_box=45, mean="3.5", items=None, skip: set[str] = frozenset()) -> dict[str, str]:
    """The POST body of the prediction page as the rendered form sends it (empty rows included)."""
    items = PREDICTED_ITEMS if items is None else items
    data: dict[str, str] = {}
    for item in wave.rating_items.all():
        if item.key in skip:
            continue
        data[f"p-top_box_{item.key}"] = str(top_box)
        data[f"p-mean_{item.key}"] = str(mean)
    for key in ("strengths", "improvements"):
        rows = items.get(key, [])
        total = max(len(rows), 3)
        data.update(
            {
                f"predict_{key}-TOTAL_FORMS": str(total),
                f"predict_{key}-INITIAL_FORMS": "0",
                f"predict_{key}-MIN_NUM_FORMS": "0",
                f"predict_{key}-MAX_NUM_FORMS": "5",
            }
        )
        for n in range(total):
            data[f"predict_{key}-{n}-text"] = rows[n] if n < len(rows) else ""
    return data


def prediction_rows() -> tuple[int, int, int]:
    return Prediction.objects.count(), PredictedRating.objects.count(), PredictedItem.objects.count()


@pytest.mark.django_db
class PredictionFlowTests:
    @pytest.fixture(autouse=True)
    def setup(self, client, settings):
        settings.ANALYSIS_ENGINE = "tfidf"  # closing a session computes the analysis: keep it quick
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace)
        self.wave = first_wave(self.engagement)
        self.client = client
        self.client.force_login(self.consultant)

    def _wave_url(self, name, *args):
        return reverse(f"surveys:{name}", args=[self.engagement.slug, self.wave.number, *args])

    def _open_session(self, *, customers=True, staff=False) -> WorkshopSession:
        self.client.post(self._wave_url("session_open"), {"name": "Board away day"})
        session = WorkshopSession.objects.get(wave=self.wave)
        data = {"predict_customers": "on"} if customers else {}
        if staff:
            data["predict_staff"] = "on"
        response = self.client.post(self._wave_url("session_predictions", session.pk), data)
        assert response.status_code == 302
        session.refresh_from_db()
        return session

    def _leader_answers(self, session, leader: Client):
        url = reverse("public:leader_answer", args=[session.code])
        key = submission_key(leader, url)
        data = answer_post_data(self.wave, items=LEADER_ITEMS, ratings={k: 5 for k in self._keys()}, extra={"submission_key": key})
        return leader.post(url, data)

    def _keys(self) -> list[str]:
        return list(self.wave.rating_items.values_list("key", flat=True))

    def _predict_url(self, session, group="customer"):
        return reverse("public:leader_predict", args=[session.code, group])

    def _leaders_predict_and_close(self, n: int, capture) -> WorkshopSession:
        """``n`` leaders answer and predict the customers; the facilitator closes the session (computing the reveal)."""
        session = self._open_session()
        for _ in range(n):
            leader = Client()
            self._leader_answers(session, leader)
            leader.post(self._predict_url(session), prediction_post_data(self.wave))
        with capture(execute=True):
            self.client.post(self._wave_url("session_close", session.pk))
        return session

    def _customers_answer(self, n: int) -> None:
        for i in range(n):
            services.open_link_submit(
                wave=self.wave,
                answers=Answers(
                    items=[
                        ItemInput("strengths", FRIENDLY[i % 3]),
                        ItemInput("improvements", SLOW[i % 3]),
                        ItemInput("improvements", BILLING[i % 3]),
                    ],
                    ratings=[RatingInput(key, 5 if i == 0 else 2) for key in self._keys()],
                ),
            )

    # --- The facilitator's switch ---------------------------------------------------

    def test_facilitator_switches_predictions_on_and_staff_needs_customers_first(self):
        session = self._open_session(customers=False)
        assert session.predicted_groups == []

        response = self.client.post(self._wave_url("session_predictions", session.pk), {"predict_staff": "on"}, follow=True)

        assert "switch on the customers&#x27; too" in response.content.decode()
        session.refresh_from_db()
        assert (session.predict_customers, session.predict_staff) == (False, False)

        self.client.post(self._wave_url("session_predictions", session.pk), {"predict_customers": "on", "predict_staff": "on"})
        session.refresh_from_db()
        assert session.predicted_groups == [Group.CUSTOMER, Group.STAFF]

    # --- Leaders -----------------------------------------------------------------------

    def test_leader_answers_then_predicts_customers_then_staff(self):
        session = self._open_session(staff=True)
        leader = Client()

        response = self._leader_answers(session, leader)
        assert response.url == self._predict_url(session)
        page = leader.get(response.url)
        assert page.status_code == 200
        assert "What did customers say about Northwind Traders?" in page.content.decode()

        response = leader.post(self._predict_url(session), prediction_post_data(self.wave))
        assert response.status_code == 302
        assert response.url == self._predict_url(session, "staff")
        response = leader.post(self._predict_url(session, "staff"), prediction_post_data(self.wave, top_box=20, mean="3.0"))
        assert response.url == reverse("public:leader_thanks", args=[session.code])

        customer = Prediction.objects.get(target=Group.CUSTOMER)
        assert customer.respondent.group == Group.LEADERSHIP and customer.session == session and customer.wave == self.wave
        assert {(r.item.key, r.top_box_percent, r.mean) for r in customer.ratings.all()} == {
            (key, 45, Decimal("3.5")) for key in self._keys()
        }
        assert [(i.question_key, i.text) for i in customer.items.all()] == [
            ("improvements", "Replies to emails take too long"),
            ("strengths", "Customers love our friendly phone team"),
            ("strengths", "Quick answers"),
        ]
        staff = Prediction.objects.get(target=Group.STAFF)
        assert set(staff.ratings.values_list("top_box_percent", flat=True)) == {20}
        assert staff.respondent == customer.respondent

    def test_predicting_again_replaces_the_first_forecast(self):
        session = self._open_session()
        leader = Client()
        self._leader_answers(session, leader)
        leader.post(self._predict_url(session), prediction_post_data(self.wave))

        page = leader.get(self._predict_url(session)).content.decode()
        assert 'value="45"' in page and "Quick answers" in page  # the stored forecast, to correct
        leader.post(self._predict_url(session), prediction_post_data(self.wave, top_box=10, mean="2.5", items={"strengths": ["Nothing"]}))

        assert prediction_rows() == (1, len(self._keys()), 1)
        assert set(PredictedRating.objects.values_list("top_box_percent", flat=True)) == {10}

    @pytest.mark.parametrize(
        "changes, message",
        [
            ({"top_box": 120}, "Ensure this value is less than or equal to 100."),
            ({"top_box": 45, "mean": "1.5"}, "If 45% give 5, the average is between 2.8 and 4.45."),
            ({"mean": "6"}, "Ensure this value is less than or equal to 5."),
            ({"skip": {"overall"}}, "Give a share from 0 to 100%."),
            ({"items": {"strengths": ["One", "Two", "Three", "Four", "Five", "Six"]}}, "Add at most 5 items"),
        ],
        ids=["share-over-100", "average-impossible-for-share", "average-over-5", "rating-item-missing", "six-items"],
    )
    def test_bad_prediction_gets_a_clear_message_and_stores_nothing(self, changes, message):
        session = self._open_session()
        leader = Client()
        self._leader_answers(session, leader)

        response = leader.post(self._predict_url(session), prediction_post_data(self.wave, **changes))

        assert response.status_code == 200
        assert message in response.content.decode()
        assert prediction_rows() == (0, 0, 0)

    def test_predicting_before_answering_sends_the_leader_to_their_own_answers(self):
        session = self._open_session()
        stranger = Client()

        response = stranger.post(self._predict_url(session), prediction_post_data(self.wave))

        assert response.status_code == 302
        assert response.url == reverse("public:leader_answer", args=[session.code])
        assert prediction_rows() == (0, 0, 0)

    def test_a_group_the_session_does_not_ask_for_is_not_found(self):
        session = self._open_session()
        leader = Client()
        self._leader_answers(session, leader)

        assert leader.post(self._predict_url(session, "staff"), prediction_post_data(self.wave)).status_code == 404
        assert leader.get(self._predict_url(session, "leadership")).status_code == 404
        assert prediction_rows() == (0, 0, 0)

    def test_closed_session_refuses_predictions(self):
        session = self._open_session()
        leader = Client()
        self._leader_answers(session, leader)
        services.session_close(session=session)

        response = leader.post(self._predict_url(session), prediction_post_data(self.wave))

        assert "This session has ended" in response.content.decode()
        assert prediction_rows() == (0, 0, 0)

    def test_without_predictions_the_leader_goes_straight_to_thanks(self):
        session = self._open_session(customers=False)

        response = self._leader_answers(session, Client())

        assert response.url == reverse("public:leader_thanks", args=[session.code])

    def test_live_status_counts_answers_and_predictions(self):
        session = self._open_session()
        first, second = Client(), Client()
        self._leader_answers(session, first)
        self._leader_answers(session, second)
        first.post(self._predict_url(session), prediction_post_data(self.wave))

        status = self.client.get(self._wave_url("session_status", session.pk)).json()

        assert status["submitted"] == 2
        assert status["predicted"] == {"customer": 1, "staff": 0}
        assert status["predicting"] == ["customer"]
        page = self.client.get(self._wave_url("session_detail", session.pk)).content.decode()
        assert 'id="live-predicted-customer"' in page

    # --- Predictions stay out of the leaders' own answers ------------------------------

    def test_predictions_do_not_change_the_leadership_groups_analysis(self):
        session = self._open_session()
        leaders = [Client() for _ in range(5)]
        for leader in leaders:
            self._leader_answers(session, leader)
        self._customers_answer(6)
        before = analysis_run_now(wave=self.wave).result

        for leader in leaders:
            leader.post(self._predict_url(session), prediction_post_data(self.wave))
        after = analysis_run_now(wave=self.wave).result

        assert after["run"]["id"] != before["run"]["id"]  # recomputed, not skipped
        for key in ("groups", "ratings", "questions", "gaps", "contradictions", "alignment"):
            assert after[key] == before[key], key
        assert after["predictions"]["targets"]["customer"]["leaders"] == 5

    # --- Closing and revealing ------------------------------------------------------------

    def test_closing_without_customers_computes_the_reveal_and_says_what_is_missing(self, django_capture_on_commit_callbacks):
        session = self._open_session()
        for _ in range(5):
            leader = Client()
            self._leader_answers(session, leader)
            leader.post(self._predict_url(session), prediction_post_data(self.wave))

        with django_capture_on_commit_callbacks(execute=True):
            response = self.client.post(self._wave_url("session_close", session.pk), follow=True)

        page = response.content.decode()
        assert "5 predicted the customers" in page
        assert "No customer answers yet in this wave." in page
        run = run_served(self.wave)
        assert run is not None and run.trigger == AnalysisRun.Trigger.MANUAL
        assert run.result["predictions"]["targets"]["customer"]["status"] == "no_actual"
        reveal = self.client.get(self._wave_url("session_reveal", session.pk)).content.decode()
        assert "The customers&#x27; answers are not in yet" in reveal
        assert "No customer answers yet in this wave." in reveal

    def test_reveal_shows_team_figures_and_the_accuracy_page_each_leader(self, django_capture_on_commit_callbacks):
        self._customers_answer(10)
        session = self._leaders_predict_and_close(5, django_capture_on_commit_callbacks)

        reveal = self.client.get(self._wave_url("session_reveal", session.pk)).content.decode()
        assert "You expected 45% of customers to call our customer experience excellent. 10% did." in reveal
        assert "What nobody predicted" in reveal
        assert ">L1<" not in reveal and "Customers love our friendly phone team" not in reveal  # team figures only
        accuracy = self.client.get(self._wave_url("predictions_accuracy")).content.decode()
        assert "Each leader (consultant only)" in accuracy
        assert ">L5<" in accuracy
        report = self.client.get(reverse("analysis:report", args=[self.engagement.slug, self.wave.number])).content.decode()
        assert "Forecast and reality" in report
        assert "You expected 45% of customers to call our customer experience excellent. 10% did." in report

    def test_accuracy_page_shows_no_leader_when_fewer_than_the_threshold_predicted(self, django_capture_on_commit_callbacks):
        self._customers_answer(10)
        session = self._leaders_predict_and_close(4, django_capture_on_commit_callbacks)

        accuracy = self.client.get(self._wave_url("predictions_accuracy")).content.decode()
        reveal = self.client.get(self._wave_url("session_reveal", session.pk)).content.decode()

        assert "Only 4 leaders predicted" in accuracy and "Only 4 leaders predicted" in reveal
        assert ">L1<" not in accuracy and "Each leader (consultant only)" not in accuracy
        assert "45%" not in reveal

    # --- The opt-in export ----------------------------------------------------------------

    def test_predicted_items_export_is_opt_in_and_the_same_from_command_and_page(self, django_capture_on_commit_callbacks):
        self._customers_answer(10)
        session = self._leaders_predict_and_close(5, django_capture_on_commit_callbacks)

        out = io.StringIO()
        call_command("export_items", self.engagement.slug, "--predictions", stdout=out, stderr=io.StringIO())
        page = self.client.get(self._wave_url("predictions_export_csv"))
        default = io.StringIO()
        call_command("export_items", self.engagement.slug, stdout=default, stderr=io.StringIO())

        rows = list(csv.DictReader(io.StringIO(out.getvalue())))
        assert page.status_code == 200 and page["Content-Disposition"].endswith('-predicted-items.csv"')
        assert page.content.decode() == out.getvalue()
        assert len(rows) == 15
        assert {r["group"] for r in rows} == {"leadership-prediction:customer"}
        assert [r["respondent"] for r in rows[:3]] == ["L1", "L1", "L1"]
        assert {r["question"] for r in rows} == {"strengths", "improvements"}
        assert all(r["department"] == "" and r["tag"] == "" for r in rows)
        assert any(r["theme_id"] for r in rows)
        assert not any(r["group"].startswith("leadership-prediction") for r in csv.DictReader(io.StringIO(default.getvalue())))
        xlsx = self.client.get(self._wave_url("predictions_export_xlsx"))
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

    def test_a_leaders_forecast_carries_the_same_pseudonym_as_their_answers_in_the_export(
        self, django_capture_on_commit_callbacks
    ):
        self._customers_answer(10)
        session = self._open_session()
        # Six leaders answer, each with an item of their own; all but the first predict.
        for n in range(6):
            leader = Client()
            url = reverse("public:leader_answer", args=[session.code])
            own = {"strengths": [f"Answer of leader number {n}"], "improvements": ["Slow to reply to emails"]}
            data = answer_post_data(self.wave, items=own, extra={"submission_key": submission_key(leader, url)})
            assert leader.post(url, data).status_code == 302
            if n:
                forecast = {"strengths": [f"Forecast of leader number {n}"], "improvements": []}
                assert leader.post(self._predict_url(session), prediction_post_data(self.wave, items=forecast)).status_code == 302
        with django_capture_on_commit_callbacks(execute=True):
            self.client.post(self._wave_url("session_close", session.pk))

        def pseudonyms(*options: str, prefix: str) -> dict[str, str]:
            out = io.StringIO()
            call_command("export_items", self.engagement.slug, *options, stdout=out, stderr=io.StringIO())
            rows = csv.DictReader(io.StringIO(out.getvalue()))
            return {r["text"].removeprefix(prefix): r["respondent"] for r in rows if r["text"].startswith(prefix)}

        answers = pseudonyms(prefix="Answer of leader number ")
        forecasts = pseudonyms("--predictions", prefix="Forecast of leader number ")
        assert sorted(answers.values()) == ["L1", "L2", "L3", "L4", "L5", "L6"]
        assert set(forecasts) == {"1", "2", "3", "4", "5"}
        assert {n: answers[n] for n in forecasts} == forecasts
        block = run_served(self.wave).result["predictions"]["targets"]["customer"]
        assert sorted(row["leader"] for row in block["per_leader"]) == sorted(forecasts.values())


@pytest.mark.django_db
class DemoRevealTests:
    def test_demo_leaders_predict_an_over_optimistic_customer_view(self, settings):
        settings.ANALYSIS_ENGINE = "tfidf"
        call_command("seed_demo", "--password", "demo-password-for-tests", stdout=io.StringIO())
        demo_engagement = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)
        wave = first_wave(demo_engagement)

        block = analysis_run_now(wave=wave).result["predictions"]["targets"]["customer"]

        assert demo_engagement.min_individuals <= block["leaders"] == demo.LEADERS
        assert block["status"] == "ok"
        # The planted gap: every item's "excellent" share over-predicted by more than 20 points.
        assert all(row["top_box"]["over_optimism"] > 0.2 for row in block["ratings"])
        planted = {text for key in demo.PLANTED["blind_spots"] for text in demo.THEMES[key].internal}
        predicted = {item["text"] for q in block["questions"].values() for item in q["items"]}
        assert predicted and not predicted & planted
        assert block["questions"]["improvements"]["blind_spots"]
