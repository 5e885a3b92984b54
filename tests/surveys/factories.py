"""
Test data made through the app's own services, and POST bodies shaped like
the answer forms the app renders, so view tests post what a browser would.
"""

from __future__ import annotations

import re
import smtplib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail.backends.base import BaseEmailBackend
from django.test import TestCase, override_settings

from surveys import mailing, services
from surveys.forms import EXTRA_ITEM_ROWS
from surveys.models import AnswerItem, Engagement, Rating, Respondent, Wave, Workspace

PASSWORD = "correct horse battery staple"

# ``answer_post_data(..., ratings=ALL_FOURS)``: a 4 for every rating item of the wave.
ALL_FOURS = "all 4s"

_SUBMISSION_KEY = re.compile(r'<input[^>]*name="submission_key"[^>]*value="([^"]*)"')


def consultant_create(*, username: str = "consultant", workspace_name: str = "Acme Consulting"):
    """A consultant user and the workspace they belong to."""
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    workspace: Workspace = services.workspace_create(name=workspace_name, owner=user)
    return user, workspace


def engagement_create(*, workspace: Workspace, name: str = "Northwind Traders") -> Engagement:
    """An engagement with its first wave, open, with the default questions and rating items."""
    return services.engagement_create(workspace=workspace, name=name)


def first_wave(engagement: Engagement) -> Wave:
    return engagement.waves.get(number=1)


def sheet_details(*, group_name: str = "Team Blue", department: str = "Support", members: int | str = 7) -> dict:
    """The "Your group" fields of a staff sheet, as posted."""
    return {"group_name": group_name, "department": department, "members": str(members)}


def answer_post_data(
    wave: Wave,
    items: dict[str, list] | None = None,
    ratings: dict[str, object] | str | None = ALL_FOURS,
    extra: dict | None = None,
    initial_forms: dict[str, int] | None = None,
) -> dict[str, str]:
    """
    The POST body of an answer sheet as the rendered form sends it.

    ``items`` maps a question key to ``[(text, tag), ...]`` (a bare string is
    an untagged item). Every question gets its management form and at least
    the empty rows the page shows; empty rows are posted empty, as a browser
    does. ``ratings`` is ``{item_key: value}`` (values posted as given, so
    bad ones can be tried), ``ALL_FOURS`` or None. ``initial_forms`` gives a
    question's INITIAL_FORMS as a page showing saved items (a reopened draft)
    renders it; otherwise it is 0. ``extra`` is merged last and wins.
    """
    items = items or {}
    initial_forms = initial_forms or {}
    max_items = settings.GAPSURVEY_MAX_ITEMS_PER_QUESTION
    data: dict[str, str] = {}
    for question in wave.questions.all():
        key, rows = question.key, items.get(question.key, [])
        initial = initial_forms.get(key, 0)
        total = max(len(rows), min(initial + EXTRA_ITEM_ROWS, max_items))
        data.update(
            {
                f"{key}-TOTAL_FORMS": str(total),
                f"{key}-INITIAL_FORMS": str(initial),
                f"{key}-MIN_NUM_FORMS": "0",
                f"{key}-MAX_NUM_FORMS": str(max_items),
            }
        )
        for n in range(total):
            row = rows[n] if n < len(rows) else ("", "")
            text, tag = (row, "") if isinstance(row, str) else row
            data[f"{key}-{n}-text"] = text
            if question.tags or tag:
                data[f"{key}-{n}-tag"] = tag
    if ratings == ALL_FOURS:
        ratings = {item.key: 4 for item in wave.rating_items.all()}
    for item_key, value in (ratings or {}).items():
        data[f"r-rating_{item_key}"] = str(value)
    data.update(extra or {})
    return data


def submission_key(client, url: str) -> str:
    """GET an answer page and return the hidden submission_key it rendered for this visit."""
    response = client.get(url)
    assert response.status_code == 200, f"GET {url} gave {response.status_code}"
    match = _SUBMISSION_KEY.search(response.content.decode())
    assert match, f"no submission_key on {url}"
    return match.group(1)


def stored_items(respondent: Respondent) -> list[tuple[str, str, str]]:
    """A respondent's items as (question_key, tag, text), in question order then item order."""
    order = {q.key: q.order for q in respondent.wave.questions.all()}
    rows = respondent.items.values_list("question_key", "tag", "text", "order")
    return [(k, tag, text) for k, tag, text, _ in sorted(rows, key=lambda r: (order[r[0]], r[3]))]


def stored_ratings(respondent: Respondent) -> dict[str, list[tuple[int, int]]]:
    """A respondent's ratings as {item_key: [(value, votes), ...]}."""
    result: dict[str, list[tuple[int, int]]] = {}
    for key, value, votes in respondent.ratings.values_list("item__key", "value", "votes").order_by(
        "item__key", "value"
    ):
        result.setdefault(key, []).append((value, votes))
    return result


def answer_row_counts() -> tuple[int, int, int]:
    """How many Respondent, AnswerItem and Rating rows exist: compare before and after a refused post."""
    return Respondent.objects.count(), AnswerItem.objects.count(), Rating.objects.count()


class RefusingEmailBackend(BaseEmailBackend):
    """A mail server that refuses every recipient for good (a 5xx: no retry helps)."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPRecipientsRefused({m.to[0]: (550, b"5.1.1 No such user here") for m in email_messages})


def invitations_send_refused(wave: Wave) -> int:
    """Press "Send invitations" with a mail server that refuses them all: each invitation email ends failed."""
    with (
        override_settings(EMAIL_BACKEND=f"{__name__}.RefusingEmailBackend", GAPSURVEY_EMAIL_RATE=0),
        TestCase.captureOnCommitCallbacks(execute=True),
    ):
        return mailing.invitations_send(wave=wave)
