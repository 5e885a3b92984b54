"""
Every public answer form refuses bad input with a visible message and stores
nothing; a closed wave refuses answers on every channel until it is reopened.
"""

from dataclasses import dataclass

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse
from pytest_django.asserts import assertTemplateUsed

from surveys import services
from surveys.models import AnswerItem, Invitation, Rating, Respondent, Wave
from surveys.services import Answers, Contact, ItemInput, SheetDetails

from .factories import (
    ALL_FOURS,
    answer_post_data,
    answer_row_counts,
    consultant_create,
    engagement_create,
    first_wave,
    sheet_details,
    submission_key,
)

MAX_LEN = settings.GAPSURVEY_ITEM_MAX_LENGTH
MAX_ITEMS = settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION

GOOD_ITEMS = {
    "strengths": [("Friendly staff", "")],
    "competition": [("Rivals deliver on Sundays", "good")],
    "continue_start": [("Keep the newsletter", "continue")],
}
ALL_RATINGS = {"overall": 4, "consistency": 4, "problem_handling": 4, "customer_centricity": 4}
# Shown above the sheet whenever any answer on it has an error.
ERROR_BANNER = "Please check the highlighted answers."

# name -> (items, ratings, the message the page must show[, fields posted over the sheet's])
BAD_INPUTS = {
    "no items at all": ({}, ALL_RATINGS, "Add at least one item to one of the questions."),
    "an over-long item": (
        {**GOOD_ITEMS, "improvements": [("x" * (MAX_LEN + 1), "")]},
        ALL_RATINGS,
        f"Ensure this value has at most {MAX_LEN} characters (it has {MAX_LEN + 1}).",
    ),
    "a rating of 0": (GOOD_ITEMS, {**ALL_RATINGS, "overall": 0}, "Select a valid choice. 0 is not one of"),
    "a rating of 6": (GOOD_ITEMS, {**ALL_RATINGS, "overall": 6}, "Select a valid choice. 6 is not one of"),
    "a rating of abc": (GOOD_ITEMS, {**ALL_RATINGS, "overall": "abc"}, "Select a valid choice. abc is not one of"),
    "a missing rating": (
        GOOD_ITEMS,
        {k: v for k, v in ALL_RATINGS.items() if k != "problem_handling"},
        "Choose a rating from 1 (poor) to 5 (excellent).",
    ),
    "a competition item without a tag": (
        {**GOOD_ITEMS, "competition": [("Rivals deliver on Sundays", "")]},
        ALL_RATINGS,
        "Choose good or bad or neutral.",
    ),
    "a tag that does not fit the question": (
        {**GOOD_ITEMS, "competition": [("Rivals deliver on Sundays", "start")]},
        ALL_RATINGS,
        "Select a valid choice. start is not one of the available choices.",
    ),
    "more items than allowed": (
        {**GOOD_ITEMS, "strengths": [(f"Strength number {n}", "") for n in range(MAX_ITEMS + 1)]},
        ALL_RATINGS,
        f"at most {MAX_ITEMS}",
    ),
    "a forged row count far above the limit": (
        GOOD_ITEMS,
        ALL_RATINGS,
        f"at most {MAX_ITEMS}",
        {"strengths-TOTAL_FORMS": "100000"},
    ),
}
# Bad even in a staff draft, which may otherwise lack items and ratings.
BAD_IN_A_DRAFT = [
    "an over-long item",
    "a rating of 0",
    "a rating of 6",
    "a rating of abc",
    "a competition item without a tag",
    "a tag that does not fit the question",
    "more items than allowed",
    "a forged row count far above the limit",
]


CHANNELS = ["leader", "staff start", "staff draft link", "customer token", "open link"]


@dataclass
class Channel:
    name: str
    url: str
    extra: dict  # fields the channel's page has besides the answer sheet
    has_submission_key: bool = True


@pytest.mark.django_db
class BadInputTests:
    @pytest.fixture(autouse=True)
    def setup(self):
        self.consultant, workspace = consultant_create()
        self.engagement = engagement_create(workspace=workspace)
        self.wave = first_wave(self.engagement)
        self.session = services.session_open(wave=self.wave, opened_by=self.consultant)
        services.invitations_create(wave=self.wave, contacts=[Contact(email="ana@example.com", segment="Retail")])
        self.invitation = Invitation.objects.get()
        self.draft = services.staff_sheet_save(
            wave=self.wave,
            details=SheetDetails(group_name="Team Red", department="Sales", members=6),
            answers=Answers(items=[ItemInput(question_key="strengths", text="We know our products")]),
            submit=False,
        )
        # Every test starts from one staff draft with one item, no ratings.
        assert answer_row_counts() == (1, 1, 0)
        self.browser = Client()

    def _channel(self, name: str, *, staff_button: str = "submit") -> Channel:
        staff_fields = {**sheet_details(), staff_button: "1"}
        return {
            "leader": lambda: Channel(name, reverse("public:leader_answer", args=[self.session.code]), {}),
            "staff start": lambda: Channel(
                name, reverse("public:staff_start", args=[self.wave.staff_token]), staff_fields
            ),
            "staff draft link": lambda: Channel(
                name, reverse("public:staff_sheet", args=[self.draft.edit_token]), staff_fields
            ),
            "customer token": lambda: Channel(
                name,
                reverse("public:customer_answer", args=[self.invitation.token]),
                {},
                has_submission_key=False,
            ),
            "open link": lambda: Channel(
                name, reverse("public:open_answer", args=[self.wave.open_link_token]), {"segment": "Kiosk"}
            ),
        }[name]()

    def _post(self, channel: Channel, items, ratings, forged=None):
        extra = dict(channel.extra)
        if channel.has_submission_key:
            extra["submission_key"] = submission_key(self.browser, channel.url)
        else:
            assert self.browser.get(channel.url).status_code == 200
        data = answer_post_data(self.wave, items=items, ratings=ratings, extra=extra)
        return self.browser.post(channel.url, {**data, **(forged or {})})

    @staticmethod
    def _everything_stored():
        """All answer rows as they are, to prove a refused post changed none of them."""
        return (
            answer_row_counts(),
            list(Respondent.objects.values_list("id", "status", "group_name", "members", "submitted_at")),
            list(AnswerItem.objects.values_list("id", "respondent_id", "question_key", "tag", "text")),
            list(Rating.objects.values_list("id", "respondent_id", "item_id", "value", "votes")),
            list(Invitation.objects.values_list("id", "completed_at")),
        )

    @pytest.mark.parametrize("channel_name", CHANNELS)
    @pytest.mark.parametrize("bad_input", list(BAD_INPUTS))
    def test_bad_input_shows_an_error_and_stores_nothing(self, channel_name, bad_input):
        channel = self._channel(channel_name)
        items, ratings, message, *forged = BAD_INPUTS[bad_input]
        before = self._everything_stored()

        response = self._post(channel, items, ratings, *forged)

        assert response.status_code == 200
        html = response.content.decode()
        assert ERROR_BANNER in html
        assert message in html
        assert self._everything_stored() == before

    @pytest.mark.parametrize("channel_name", ["staff start", "staff draft link"])
    @pytest.mark.parametrize("bad_input", BAD_IN_A_DRAFT)
    def test_bad_input_in_a_staff_draft_shows_an_error_and_stores_nothing(self, channel_name, bad_input):
        channel = self._channel(channel_name, staff_button="draft")
        items, ratings, message, *forged = BAD_INPUTS[bad_input]
        before = self._everything_stored()

        response = self._post(channel, items, ratings, *forged)

        assert response.status_code == 200
        html = response.content.decode()
        assert ERROR_BANNER in html
        assert message in html
        assert self._everything_stored() == before

    @pytest.mark.parametrize("channel_name", CHANNELS)
    def test_good_input_is_stored_on_every_channel(self, channel_name):
        # The counterpart of the refusals above: the same posts with good input are taken.
        channel = self._channel(channel_name)

        response = self._post(channel, GOOD_ITEMS, ALL_FOURS)

        assert response.status_code in (200, 302)
        assert ERROR_BANNER not in response.content.decode()
        assert Respondent.objects.filter(status=Respondent.Status.SUBMITTED).count() == 1

    @pytest.mark.parametrize("channel_name", CHANNELS)
    def test_closed_wave_refuses_answers_with_the_polite_closed_page(self, channel_name):
        channel = self._channel(channel_name)
        # The form was shown while the wave was open; it is sent after the wave closed.
        extra = dict(channel.extra)
        if channel.has_submission_key:
            extra["submission_key"] = submission_key(self.browser, channel.url)
        services.wave_close(wave=self.wave)
        before = self._everything_stored()

        page = self.browser.get(channel.url)
        response = self.browser.post(
            channel.url, answer_post_data(self.wave, items=GOOD_ITEMS, ratings=ALL_FOURS, extra=extra)
        )

        for r in (page, response):
            assert r.status_code == 200
            assertTemplateUsed(r, "public/closed.html")
            assert 'name="submission_key"' not in r.content.decode()
        assert self._everything_stored() == before

    @pytest.mark.parametrize("channel_name", CHANNELS)
    def test_reopened_wave_takes_answers_again(self, channel_name):
        services.wave_close(wave=self.wave)
        services.wave_open(wave=self.wave)
        if channel_name == "leader":
            # wave_close also ends the wave's open workshop sessions; leaders answer in a new one.
            self.session = services.session_open(wave=self.wave, opened_by=self.consultant)
        channel = self._channel(channel_name)

        response = self._post(channel, GOOD_ITEMS, ALL_FOURS)

        assert response.status_code in (200, 302)
        assert ERROR_BANNER not in response.content.decode()
        assert Wave.objects.get().is_open
        assert Respondent.objects.filter(status=Respondent.Status.SUBMITTED).count() == 1
