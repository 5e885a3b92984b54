"""The leadership workshop: a session with a join code, leaders answering on their phones."""

import pytest
from django.test import Client
from django.urls import reverse

from surveys import services
from surveys.models import Group, Respondent, WorkshopSession
from surveys.services import JOIN_CODE_ALPHABET

from .factories import (
    answer_post_data,
    answer_row_counts,
    consultant_create,
    engagement_create,
    first_wave,
    stored_items,
    stored_ratings,
    submission_key,
)

LEADER_ITEMS = {
    "strengths": [("Friendly people on the phone", ""), ("Deliveries arrive on time", "")],
    "improvements": [("Slow to reply to emails", "")],
    "competition": [("Rivals offer live chat", "good"), ("Rivals hide their fees", "bad")],
    "continue_start": [("Keep the follow-up calls", "continue"), ("Start a loyalty scheme", "start")],
}
LEADER_RATINGS = {"overall": 5, "consistency": 4, "problem_handling": 2, "customer_centricity": 5}


@pytest.mark.django_db
class WorkshopTests:
    @pytest.fixture(autouse=True)
    def setup(self, client):
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace)
        self.wave = first_wave(self.engagement)
        self.client = client
        self.client.force_login(self.consultant)
        # Leaders use their own phones: a separate browser, not logged in.
        self.leader = Client()

    def _wave_url(self, name, *args):
        return reverse(f"surveys:{name}", args=[self.engagement.slug, self.wave.number, *args])

    def _open_session(self) -> WorkshopSession:
        response = self.client.post(self._wave_url("session_open"), {"name": "Board away day"})
        session = WorkshopSession.objects.get(wave=self.wave)
        assert response.status_code == 302
        assert response.url == self._wave_url("session_detail", session.pk)
        return session

    def _answer_url(self, session):
        return reverse("public:leader_answer", args=[session.code])

    def _leader_posts(self, session, client=None, **kwargs):
        client = client or self.leader
        key = submission_key(client, self._answer_url(session))
        data = answer_post_data(self.wave, items=LEADER_ITEMS, ratings=LEADER_RATINGS, extra={"submission_key": key})
        return client.post(self._answer_url(session), data, **kwargs), data

    def _live_count(self, session) -> int:
        response = self.client.get(self._wave_url("session_status", session.pk))
        assert response.status_code == 200
        return response.json()["submitted"]

    def test_predictions_are_chosen_when_the_session_opens(self):
        page = self.client.get(self._wave_url("wave_detail"))
        assert 'name="predict_customers" id="id_predict_customers" checked' in page.content.decode()

        self.client.post(self._wave_url("session_open"), {"name": "With forecasts", "predict_customers": "on"})
        self.client.post(self._wave_url("session_open"), {"name": "Answers only"})

        sessions = {s.name: (s.predict_customers, s.predict_staff) for s in WorkshopSession.objects.filter(wave=self.wave)}
        assert sessions == {"With forecasts": (True, False), "Answers only": (False, False)}
        page = self.client.get(self._wave_url("wave_detail"))
        assert self._wave_url("predictions_accuracy") in page.content.decode()

    def test_opening_a_session_gives_a_six_character_code_and_a_qr_code(self):
        session = self._open_session()

        assert session.status == WorkshopSession.Status.OPEN
        assert session.name == "Board away day"
        assert session.opened_by == self.consultant
        assert len(session.code) == 6
        assert set(session.code) <= set(JOIN_CODE_ALPHABET)

        page = self.client.get(self._wave_url("session_detail", session.pk))
        assert session.code in page.content.decode()

        qr = self.client.get(self._wave_url("session_qr", session.pk))
        assert qr.status_code == 200
        assert qr["Content-Type"] == "image/svg+xml"
        assert b"<svg" in qr.content

    def test_leader_joins_with_a_lowercase_code_typed_with_spaces(self):
        session = self._open_session()
        typed = f"{session.code[:3].lower()} {session.code[3:].lower()}"

        response = self.leader.post(reverse("public:join"), {"code": typed})

        assert response.status_code == 302
        assert response.url == self._answer_url(session)
        page = self.leader.get(response.url)
        assert page.status_code == 200
        assert self.wave.questions.get(key="strengths").text_leadership in page.content.decode()

    def test_leader_answer_is_stored_with_exactly_the_posted_items_and_ratings(self):
        session = self._open_session()

        response, _ = self._leader_posts(session)

        assert response.status_code == 302
        assert response.url == reverse("public:leader_thanks", args=[session.code])
        respondent = Respondent.objects.get()
        assert respondent.wave == self.wave
        assert respondent.group == Group.LEADERSHIP
        assert respondent.channel == Respondent.Channel.WORKSHOP
        assert respondent.session == session
        assert respondent.status == Respondent.Status.SUBMITTED
        assert respondent.submitted_at is not None
        assert stored_items(respondent) == [
            (key, tag, text) for key, rows in LEADER_ITEMS.items() for text, tag in rows
        ]
        assert stored_ratings(respondent) == {key: [(value, 1)] for key, value in LEADER_RATINGS.items()}

    def test_live_count_goes_up_as_leaders_submit(self):
        session = self._open_session()
        assert self._live_count(session) == 0

        self._leader_posts(session)
        assert self._live_count(session) == 1

        self._leader_posts(session, client=Client())
        assert self._live_count(session) == 2
        assert self.client.get(self._wave_url("session_status", session.pk)).json()["status"] == "open"

    def test_same_form_posted_twice_stores_one_respondent(self):
        session = self._open_session()

        first, data = self._leader_posts(session)
        second = self.leader.post(self._answer_url(session), data)

        assert first.status_code == second.status_code == 302
        assert Respondent.objects.count() == 1
        assert answer_row_counts() == (1, 7, 4)

    def test_reloading_the_answer_page_after_answering_shows_the_thanks_page(self):
        session = self._open_session()
        self._leader_posts(session)

        response = self.leader.get(self._answer_url(session))

        assert response.status_code == 302
        assert response.url == reverse("public:leader_thanks", args=[session.code])

    def test_closed_session_refuses_answers(self):
        session = self._open_session()
        key = submission_key(self.leader, self._answer_url(session))

        response = self.client.post(self._wave_url("session_close", session.pk))
        assert response.status_code == 302
        session.refresh_from_db()
        assert session.status == WorkshopSession.Status.CLOSED
        assert session.closed_at is not None

        data = answer_post_data(self.wave, items=LEADER_ITEMS, ratings=LEADER_RATINGS, extra={"submission_key": key})
        response = self.leader.post(self._answer_url(session), data)

        assert response.status_code == 200
        assert "This session has ended" in response.content.decode()
        assert answer_row_counts() == (0, 0, 0)
        assert self._live_count(session) == 0

    def test_join_page_says_no_open_session_for_a_closed_code(self):
        session = self._open_session()
        services.session_close(session=session)

        response = self.leader.post(reverse("public:join"), {"code": session.code})

        assert response.status_code == 200
        assert "No open session has this code" in response.content.decode()

    def test_unknown_code_on_the_join_page_shows_an_error(self):
        session = self._open_session()
        guess = "ZZZZZZ" if session.code != "ZZZZZZ" else "YYYYYY"

        response = self.leader.post(reverse("public:join"), {"code": guess})

        assert response.status_code == 200
        assert "No open session has this code" in response.content.decode()

    def test_guessed_code_in_the_answer_link_is_not_found_and_stores_nothing(self):
        session = self._open_session()
        guess = "ZZZZZZ" if session.code != "ZZZZZZ" else "YYYYYY"
        url = reverse("public:leader_answer", args=[guess])

        assert self.leader.get(url).status_code == 404
        data = answer_post_data(self.wave, items=LEADER_ITEMS, ratings=LEADER_RATINGS)
        assert self.leader.post(url, data).status_code == 404
        assert answer_row_counts() == (0, 0, 0)
