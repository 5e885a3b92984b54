"""
Customer invitation emails as the consultant and the customer meet them: the
wording page and its preview, the send and retry buttons, what reaches each
inbox and what its links do, unsubscribing, the "started" beacon, reminders,
the funnel on the wave page and the contact list's email status and filter.

Emails go to Django's in-memory outbox; tasks run eagerly, and a test runs the
after-commit hooks (which queue the tasks) with django_capture_on_commit_callbacks.
The text itself and delivery failures are in test_mailing.py.
"""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.template.defaultfilters import date as date_filter
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pytest_django.asserts import assertContains, assertNotContains, assertRedirects

from surveys import mailing, selectors, services
from surveys.contacts import MAX_CONTACTS
from surveys.models import Invitation, InvitationEmail, Respondent
from surveys.services import Contact

from .factories import (
    answer_post_data,
    consultant_create,
    engagement_create,
    first_wave,
    invitations_send_refused,
)

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"

Status = InvitationEmail.Status
Kind = InvitationEmail.Kind

ANA = Contact("ana@example.com", "Ana Ruiz", "Retail")
BEN = Contact("ben@example.com", "Ben Okafor", "Retail")
CLEO = Contact("cleo@example.com", "Cleo", "Wholesale")
DAN = Contact("dan@example.com", "", "")


class InvitationEmailsBase:
    """A consultant logged in, a wave of Northwind Traders, emails to the in-memory outbox."""

    @pytest.fixture(autouse=True)
    def setup(self, db, client, django_capture_on_commit_callbacks):
        with override_settings(EMAIL_BACKEND=LOCMEM, GAPSURVEY_EMAIL_RATE=0):
            self.consultant, workspace = consultant_create()
            self.engagement = engagement_create(workspace=workspace, name="Northwind Traders")
            self.wave = first_wave(self.engagement)
            self.client = client
            self.client.force_login(self.consultant)
            # Customers answer in their own browsers, not logged in.
            self.customer = Client()
            self.on_commit = django_capture_on_commit_callbacks
            yield

    def url(self, name: str) -> str:
        return reverse(f"surveys:{name}", args=[self.engagement.slug, self.wave.number])

    def invite(self, *contacts: Contact) -> list[Invitation]:
        services.invitations_create(wave=self.wave, contacts=list(contacts))
        return [Invitation.objects.get(wave=self.wave, email=c.email) for c in contacts]

    def press_send(self):
        """Press "Send invitations"; the emails go out when the request's transaction commits."""
        with self.on_commit(execute=True):
            return self.client.post(self.url("invitations_send"), follow=True)

    def answer(self, invitation: Invitation):
        url = reverse("public:customer_answer", args=[invitation.token])
        return self.customer.post(url, answer_post_data(self.wave, items={"strengths": ["Quick delivery"]}))

    def unsubscribe(self, invitation: Invitation):
        return self.customer.post(reverse("public:customer_unsubscribe", args=[invitation.token]))

    def outbox(self) -> list[str]:
        return sorted(message.to[0] for message in mail.outbox)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


# --- The wording page -------------------------------------------------------------------


class InvitationWordingTests(InvitationEmailsBase):
    def wording(self, **changes) -> dict:
        return {
            "invite_subject": "{company} wants your view",
            "invite_body": "Dear {name},\n\nTell us how we do: {link}\n\nThank you",
            "reminders": "2",
            "reminder_after_days": "7",
            **changes,
        }

    def test_saved_wording_and_reminder_plan_are_stored_and_shown_in_the_preview(self):
        (ana,) = self.invite(ANA)

        response = self.client.post(self.url("invitation_email"), self.wording())

        assertRedirects(response, self.url("invitation_email"), fetch_redirect_response=False)
        self.wave.refresh_from_db()
        assert self.wave.invite_subject == "{company} wants your view"
        assert self.wave.invite_body == "Dear {name},\n\nTell us how we do: {link}\n\nThank you"
        assert (self.wave.reminders, self.wave.reminder_after_days) == (2, 7)
        page = self.client.get(self.url("invitation_email"))
        assertContains(page, "Invitation email saved.")
        assertContains(page, "Northwind Traders wants your view")
        link, _ = mailing.invitation_links(ana)
        assertContains(page, f"Dear Ana Ruiz,\n\nTell us how we do: {link}")

    @pytest.mark.parametrize(
        ("field", "value", "error"),
        [
            ("invite_body", "Hello {first_name}, answer here: {link}", "Unknown placeholder {first_name}"),
            ("invite_subject", "A word from {firm}", "Unknown placeholder {firm}"),
            ("invite_body", "Hello {name}, please answer our survey.", "The text must contain {link}"),
        ],
    )
    def test_bad_wording_is_shown_on_its_field_and_nothing_is_saved(self, field, value, error):
        response = self.client.post(self.url("invitation_email"), self.wording(**{field: value}))

        assert response.status_code == 200
        assert error in " ".join(response.context["form"].errors[field])
        assertContains(response, error)
        self.wave.refresh_from_db()
        # Nothing saved: not the bad field, nor the valid reminder plan posted with it.
        assert (self.wave.invite_subject, self.wave.invite_body) == ("", "")
        assert (self.wave.reminders, self.wave.reminder_after_days) == (1, 4)
        # The preview shows what is saved (the default), not the rejected text.
        assert "Unknown" not in response.context["preview"].composed.text
        assert response.context["preview"].composed.subject == "How is your experience with Northwind Traders?"

    def test_days_between_reminders_out_of_range_are_refused(self):
        response = self.client.post(self.url("invitation_email"), self.wording(reminder_after_days="0"))

        assert response.status_code == 200
        assert response.context["form"].errors["reminder_after_days"]
        self.wave.refresh_from_db()
        assert self.wave.reminder_after_days == 4

    def test_blank_wording_means_the_default_text_which_the_page_shows(self):
        self.client.post(self.url("invitation_email"), self.wording())

        self.client.post(self.url("invitation_email"), self.wording(invite_subject=" ", invite_body=""))

        self.wave.refresh_from_db()
        assert (self.wave.invite_subject, self.wave.invite_body) == ("", "")
        page = self.client.get(self.url("invitation_email"))
        assertContains(page, "How is your experience with Northwind Traders?")
        # The default text and the placeholders are there to read while editing.
        assertContains(page, "wants to know how it really serves you")
        for placeholder in ("{company}", "{name}", "{link}"):
            assertContains(page, placeholder)

    def test_preview_shows_the_chosen_contact_with_their_personal_link(self):
        ana, ben = self.invite(ANA, BEN)
        ben_link, ben_unsubscribe = mailing.invitation_links(ben)

        first = self.client.get(self.url("invitation_email"))
        chosen = self.client.get(self.url("invitation_email"), {"contact": ben.pk})

        # Without a choice: the first contact by address.
        assert first.context["preview"].invitation == ana
        assertContains(first, "Hello Ana Ruiz,")
        assert chosen.context["preview"].invitation == ben
        text = chosen.context["preview"].composed.text
        assert text.startswith("Hello Ben Okafor,")
        assert ben_link in text and ben_unsubscribe in text
        assert re.search(r'<pre [^>]*id="preview-text">([^<]*)</pre>', chosen.content.decode()).group(1) == text
        # The HTML part, in a sandboxed frame of its own, links the same personal address.
        frame = re.search(r'<iframe [^>]*src="([^"]+)"', chosen.content.decode()).group(1).replace("&amp;", "&")
        assertContains(self.client.get(frame), f'<a href="{ben_link}">')

    def test_preview_without_contacts_uses_a_sample_contact(self):
        page = self.client.get(self.url("invitation_email"))

        assert page.context["preview"].sample
        assertContains(page, "Hello Alex Example,")
        assert not Invitation.objects.exists()

    def test_preview_of_another_waves_contact_falls_back_to_this_waves_first(self):
        (ana,) = self.invite(ANA)
        other = services.wave_create(engagement=self.engagement, title="Spring")
        services.invitations_create(wave=other, contacts=[BEN])
        ben = Invitation.objects.get(wave=other)

        page = self.client.get(self.url("invitation_email"), {"contact": ben.pk})

        assert page.context["preview"].invitation == ana
        assertNotContains(page, "Ben Okafor")


# --- Sending --------------------------------------------------------------------------------


class InvitationSendTests(InvitationEmailsBase):
    def test_send_button_states_how_many_contacts_will_get_the_invitation(self):
        self.invite(ANA, BEN, CLEO)

        assertContains(self.client.get(self.url("invitation_email")), "3 contacts will get the invitation now.")

    def test_send_emails_each_contact_once_with_text_html_and_a_link_that_takes_the_answers(self):
        ana, ben, cleo = self.invite(ANA, BEN, CLEO)

        response = self.press_send()

        assert "3 invitations queued." in messages_of(response)[0]
        assert self.outbox() == ["ana@example.com", "ben@example.com", "cleo@example.com"]
        message = next(m for m in mail.outbox if m.to == ["ana@example.com"])
        link, unsubscribe_link = mailing.invitation_links(ana)
        assert message.subject == "How is your experience with Northwind Traders?"
        assert message.body.startswith("Hello Ana Ruiz,")
        assert link in message.body
        [(html, mimetype)] = message.alternatives
        assert mimetype == "text/html" and f'<a href="{link}">' in html
        assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe_link}>"
        assert set(InvitationEmail.objects.values_list("kind", "status")) == {(Kind.INVITATION, Status.SENT)}

        # The customer follows the link from the email and answers.
        path = urlsplit(re.search(r"https?://\S+/c/[\w-]+/(?=\s)", message.body).group(0)).path
        assert path == reverse("public:customer_answer", args=[ana.token])
        assertContains(self.customer.get(path), "Hello Ana Ruiz")
        answered = self.customer.post(path, answer_post_data(self.wave, items={"strengths": ["Quick delivery"]}))
        assertRedirects(answered, reverse("public:customer_done", args=[ana.token]))
        ana.refresh_from_db()
        assert ana.completed_at and ana.opened_at and ana.started_at
        assert Respondent.objects.get().invitation == ana

    def test_pressing_send_twice_sends_nothing_more(self):
        self.invite(ANA, BEN)
        self.press_send()

        again = self.press_send()

        assert len(mail.outbox) == 2
        assert InvitationEmail.objects.count() == 2
        assert "Nothing to send" in messages_of(again)[0]
        assertContains(again, "Every contact has had the invitation, answered or unsubscribed.")

    def test_contacts_added_later_are_the_only_ones_sent_next_time(self):
        self.invite(ANA)
        self.press_send()
        self.invite(BEN)

        response = self.press_send()

        assert "1 invitation queued." in messages_of(response)[0]
        assert self.outbox() == ["ana@example.com", "ben@example.com"]

    def test_contacts_who_unsubscribed_or_answered_are_not_sent(self):
        ana, ben, _cleo = self.invite(ANA, BEN, CLEO)
        self.unsubscribe(ana)
        self.answer(ben)
        assertContains(self.client.get(self.url("invitation_email")), "1 contact will get the invitation now.")

        self.press_send()

        assert self.outbox() == ["cleo@example.com"]
        assert not InvitationEmail.objects.filter(invitation__in=[ana, ben]).exists()

    def test_closed_wave_refuses_to_send_and_queues_nothing(self):
        self.invite(ANA, BEN)
        self.client.post(self.url("wave_close"), follow=True)

        response = self.press_send()

        assert messages_of(response) == ["The wave is closed: reopen it to send invitations."]
        assert not InvitationEmail.objects.exists()
        assert mail.outbox == []
        assertContains(response, "The wave is closed, so no invitations can go out.")

    def test_emails_caught_by_closing_are_not_sent_and_go_after_reopening_with_working_links(self):
        (ana,) = self.invite(ANA)
        link_path = reverse("public:customer_answer", args=[ana.token])
        with self.on_commit(execute=False) as queued:
            self.client.post(self.url("invitations_send"))
        self.client.post(self.url("wave_close"), follow=True)

        for hand_over in queued:  # the worker's turn comes after the wave closed
            hand_over()

        assert mail.outbox == []
        contacts = self.client.get(self.url("invitation_list"))
        assertContains(contacts, "Not sent:</strong> The survey was closed before this email")
        assertContains(self.customer.get(link_path), "This survey is closed")

        self.client.post(self.url("wave_open"), follow=True)
        assertContains(self.client.get(self.url("invitation_email")), "1 contact will get the invitation now.")
        self.press_send()

        assert self.outbox() == ["ana@example.com"]
        assertContains(self.customer.get(link_path), "Hello Ana Ruiz")

    def test_retry_sends_the_failed_emails_again(self):
        self.invite(ANA, BEN)
        invitations_send_refused(self.wave)
        assert set(InvitationEmail.objects.values_list("status", flat=True)) == {Status.FAILED}
        assertContains(self.client.get(self.url("invitation_email")), "Retry 2 failed")
        assertContains(
            self.client.get(self.url("invitation_list")),
            "Failed:</strong> SMTPRecipientsRefused: 550 5.1.1 No such user here",
        )

        with self.on_commit(execute=True):
            response = self.client.post(self.url("invitation_emails_retry"), follow=True)

        assert messages_of(response) == ["2 failed emails queued again."]
        assert self.outbox() == ["ana@example.com", "ben@example.com"]
        assert set(InvitationEmail.objects.values_list("status", flat=True)) == {Status.SENT}
        assertNotContains(response, "Retry")


# --- The customer's side ----------------------------------------------------------------


class UnsubscribeTests(InvitationEmailsBase):
    def test_unsubscribe_link_asks_first_and_changes_nothing_on_a_visit(self):
        (ana,) = self.invite(ANA)

        page = self.customer.get(reverse("public:customer_unsubscribe", args=[ana.token]))

        assertContains(page, "Stop emails about this survey?")
        ana.refresh_from_db()
        assert ana.unsubscribed_at is None

    def test_unsubscribe_form_with_its_csrf_token_unsubscribes(self):
        (ana,) = self.invite(ANA)
        url = reverse("public:customer_unsubscribe", args=[ana.token])
        browser = Client(enforce_csrf_checks=True)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', browser.get(url).content.decode()).group(1)

        page = browser.post(url, {"csrfmiddlewaretoken": token})

        assertContains(page, "You are unsubscribed")
        ana.refresh_from_db()
        assert ana.unsubscribed_at is not None

    def test_one_click_unsubscribe_from_the_mail_client_needs_no_csrf_token(self):
        (ana,) = self.invite(ANA)
        self.press_send()
        header = mail.outbox[0].extra_headers["List-Unsubscribe"]
        assert mail.outbox[0].extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        mail_client = Client(enforce_csrf_checks=True)

        # RFC 8058: the mail client posts this body to the header's address, with no cookie or token.
        response = mail_client.post(urlsplit(header.strip("<>")).path, {"List-Unsubscribe": "One-Click"})

        assert response.status_code == 200
        ana.refresh_from_db()
        assert ana.unsubscribed_at is not None

    def test_unsubscribing_cancels_queued_emails_and_the_survey_link_still_works(self):
        (ana,) = self.invite(ANA)
        with self.on_commit(execute=False) as queued:
            self.client.post(self.url("invitations_send"))

        self.unsubscribe(ana)
        for hand_over in queued:
            hand_over()

        assert mail.outbox == []
        email = InvitationEmail.objects.get()
        assert (email.status, email.error) == (Status.CANCELLED, "The contact unsubscribed.")
        assertContains(self.client.get(self.url("invitation_email")), "Every contact has had the invitation")
        response = self.answer(ana)
        assertRedirects(response, reverse("public:customer_done", args=[ana.token]))
        ana.refresh_from_db()
        assert ana.completed_at is not None

    def test_unsubscribing_twice_keeps_the_first_time(self):
        (ana,) = self.invite(ANA)
        self.unsubscribe(ana)
        first = Invitation.objects.get().unsubscribed_at

        again = self.unsubscribe(ana)

        assertContains(again, "You are unsubscribed")
        assert Invitation.objects.get().unsubscribed_at == first


class StartedBeaconTests(InvitationEmailsBase):
    def test_only_the_personal_answer_page_carries_the_started_address(self):
        (ana,) = self.invite(ANA)
        started = reverse("public:customer_started", args=[ana.token])

        personal = self.customer.get(reverse("public:customer_answer", args=[ana.token]))
        open_link = self.customer.get(reverse("public:open_answer", args=[self.wave.open_link_token]))

        assertContains(personal, f'data-started-url="{started}"')
        assertContains(personal, "js/answer_sheet.js")
        assertNotContains(open_link, "data-started-url")

    def test_started_beacon_with_the_pages_csrf_token_sets_started_once(self):
        (ana,) = self.invite(ANA)
        browser = Client(enforce_csrf_checks=True)
        page = browser.get(reverse("public:customer_answer", args=[ana.token])).content.decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        started = reverse("public:customer_started", args=[ana.token])

        # As the page's script sends it: the form's token in the X-CSRFToken header.
        first = browser.post(started, headers={"X-CSRFToken": token})
        ana.refresh_from_db()
        started_at = ana.started_at
        second = browser.post(started, headers={"X-CSRFToken": token})

        assert (first.status_code, second.status_code) == (204, 204)
        assert started_at is not None
        ana.refresh_from_db()
        assert ana.started_at == started_at
        assert ana.opened_at is not None and ana.completed_at is None

    def test_started_beacon_without_a_csrf_token_is_refused(self):
        (ana,) = self.invite(ANA)

        response = Client(enforce_csrf_checks=True).post(reverse("public:customer_started", args=[ana.token]))

        assert response.status_code == 403
        assert Invitation.objects.get().started_at is None

    def test_posting_the_answer_form_counts_as_started(self):
        (ana,) = self.invite(ANA)

        # A form with a missing item comes back with errors: begun, not answered.
        self.customer.post(reverse("public:customer_answer", args=[ana.token]), answer_post_data(self.wave))

        ana.refresh_from_db()
        assert ana.started_at is not None
        assert ana.completed_at is None


# --- Reminders ------------------------------------------------------------------------------


class ReminderTests(InvitationEmailsBase):
    def plan(self, reminders: int, days: int = 4) -> None:
        mailing.invitation_wording_update(
            wave=self.wave, subject="", body="", reminders=reminders, reminder_after_days=days
        )

    def remind(self, *, days_from_now: float) -> int:
        """The periodic reminder job, run as if it were ``days_from_now`` later."""
        with self.on_commit(execute=True):
            return mailing.invitation_reminders_queue(now=timezone.now() + timedelta(days=days_from_now))

    def reminders_to(self) -> list[tuple[str, str]]:
        return sorted((m.to[0], m.subject) for m in mail.outbox if m.subject.startswith("Reminder: "))

    def test_first_reminder_goes_after_the_days_only_to_sent_unanswered_subscribed_contacts(self):
        self.plan(reminders=1, days=4)
        ana, ben, cleo = self.invite(ANA, BEN, CLEO)
        self.press_send()
        self.invite(DAN)  # added after the send: never invited, so never reminded
        self.answer(ben)
        self.unsubscribe(cleo)

        assert self.remind(days_from_now=3) == 0
        assert self.remind(days_from_now=4.1) == 1

        subject = "Reminder: How is your experience with Northwind Traders?"
        assert self.reminders_to() == [("ana@example.com", subject)]
        reminder = next(m for m in mail.outbox if m.subject == subject)
        assert reminder.body.startswith(mailing.REMINDER_LEAD)
        assert mailing.invitation_links(ana)[0] in reminder.body
        assertContains(self.client.get(self.url("invitation_list")), '<td class="text-end">1</td>', html=True)

    def test_a_reminder_is_never_sent_twice_and_one_planned_reminder_means_one(self):
        self.plan(reminders=1)
        self.invite(ANA)
        self.press_send()
        self.remind(days_from_now=5)

        assert self.remind(days_from_now=5) == 0
        assert self.remind(days_from_now=30) == 0
        assert len(self.reminders_to()) == 1
        assert not InvitationEmail.objects.filter(kind=Kind.REMINDER_2).exists()

    def test_second_reminder_comes_the_planned_days_after_the_first(self):
        self.plan(reminders=2, days=4)
        ana, ben = self.invite(ANA, BEN)
        self.press_send()
        self.remind(days_from_now=4.1)  # first reminders go out now (their sent_at is the real time)
        self.answer(ben)  # answers between the reminders

        assert self.remind(days_from_now=3) == 0
        assert self.remind(days_from_now=4.1) == 1
        assert self.remind(days_from_now=20) == 0

        kinds = {(e.invitation.email, e.kind) for e in InvitationEmail.objects.filter(status=Status.SENT)}
        assert kinds == {
            ("ana@example.com", Kind.INVITATION),
            ("ana@example.com", Kind.REMINDER_1),
            ("ana@example.com", Kind.REMINDER_2),
            ("ben@example.com", Kind.INVITATION),
            ("ben@example.com", Kind.REMINDER_1),
        }
        assert [to for to, _ in self.reminders_to()] == ["ana@example.com", "ana@example.com", "ben@example.com"]

    def test_no_reminders_planned_or_a_closed_wave_sends_none(self):
        self.plan(reminders=0)
        self.invite(ANA)
        self.press_send()
        assert self.remind(days_from_now=10) == 0

        self.plan(reminders=2)
        services.wave_close(wave=self.wave)
        assert self.remind(days_from_now=10) == 0
        assert self.reminders_to() == []


# --- The funnel and the contact list ------------------------------------------------------


class InvitationFunnelTests(InvitationEmailsBase):
    def make_funnel(self) -> None:
        """
        Retail: Ana answered, Ben opened. Wholesale: Cleo unsubscribed.
        Online: Eve's email failed, Fay not emailed. No segment: Dan, sent, silent.
        """
        ana, ben, cleo, _dan = self.invite(ANA, BEN, CLEO, DAN)
        self.press_send()
        self.answer(ana)
        self.customer.get(reverse("public:customer_answer", args=[ben.token]))
        self.unsubscribe(cleo)
        self.invite(Contact("eve@example.com", "Eve", "Online"))
        invitations_send_refused(self.wave)
        self.invite(Contact("fay@example.com", "Fay", "Online"))

    def test_funnel_counts_each_step_and_each_segments_response_rate(self):
        self.make_funnel()

        funnel = selectors.invitation_funnel(self.wave)

        steps = ("invited", "queued", "sent", "failed", "opened", "started", "completed", "unsubscribed")
        assert [funnel[step] for step in steps] == [6, 0, 4, 1, 2, 1, 1, 1]
        assert funnel["response_rate"] == 0.25
        columns = ("name", "invited", "sent", "opened", "started", "completed", "response_rate")
        assert [tuple(segment[c] for c in columns) for segment in funnel["segments"]] == [
            ("Online", 2, 0, 0, 0, 0, None),
            ("Retail", 2, 2, 2, 1, 1, 0.5),
            ("Wholesale", 1, 1, 0, 0, 0, 0.0),
            ("No segment", 1, 1, 0, 0, 0, 0.0),
        ]

    def test_wave_page_shows_the_funnel_and_the_segment_table(self):
        self.make_funnel()

        page = self.client.get(self.url("wave_detail"))

        assertContains(page, "Customer invitations")
        assertContains(page, 'aria-label="Email sent: 4 of 6"')
        assertContains(page, 'aria-label="Answered: 1 of 6"')
        assertContains(page, "1 failed</a> · 1 unsubscribed · response rate 25%")
        row = '<tr><th scope="row" class="fw-normal">{}</th>' + '<td class="text-end">{}</td>' * 6 + "</tr>"
        assertContains(page, row.format("Retail", 2, 2, 2, 1, 1, "50%"), html=True)
        assertContains(page, row.format("Online", 2, 0, 0, 0, 0, "–"), html=True)
        assertContains(page, row.format("No segment", 1, 1, 0, 0, 0, "0%"), html=True)

    def test_wave_without_contacts_shows_no_funnel(self):
        assertNotContains(self.client.get(self.url("wave_detail")), "Customer invitations")


class ContactListTests(InvitationEmailsBase):
    def test_each_contact_shows_its_email_status_reminders_and_progress(self):
        ana, ben, _cleo = self.invite(ANA, BEN, CLEO)
        self.press_send()
        self.answer(ana)
        self.unsubscribe(ben)
        self.invite(DAN)
        sent_at = InvitationEmail.objects.get(invitation=ana).sent_at

        page = self.client.get(self.url("invitation_list"))

        rows = {i.email: i for i in page.context["page"].object_list}
        assert {e: (rows[e].email_status, rows[e].reminders_sent) for e in rows} == {
            "ana@example.com": (Status.SENT, 0),
            "ben@example.com": (Status.SENT, 0),
            "cleo@example.com": (Status.SENT, 0),
            "dan@example.com": (None, 0),
        }
        html = page.content.decode()
        assert html.count('<span class="text-success">Sent</span> ') == 3
        shown_at = date_filter(timezone.localtime(sent_at), "j M, H:i")
        assert f'<span class="text-success">Sent</span> <span class="text-nowrap">{shown_at}</span>' in html
        assertContains(page, '<span class="text-muted">Not sent</span>', count=1, html=True)
        assertContains(page, '<span class="badge text-bg-success">Answered</span>', count=1, html=True)
        assertContains(page, '<span class="badge text-bg-warning">Unsubscribed</span>', count=1, html=True)
        assertContains(page, self.url("invitation_email"))
        # Each personal link has its own copy field.
        assertContains(page, f'id="link-{ana.pk}"')
        assertContains(page, f'data-copy="#link-{ana.pk}"')

    def test_filter_shows_only_the_contacts_in_that_state(self):
        ana, ben, cleo, _dan = self.invite(ANA, BEN, CLEO, DAN)
        self.press_send()
        self.answer(ana)
        self.customer.get(reverse("public:customer_answer", args=[ben.token]))
        self.unsubscribe(cleo)
        self.invite(Contact("eve@example.com"))
        invitations_send_refused(self.wave)
        self.invite(Contact("fay@example.com"))
        with self.on_commit(execute=False):
            self.client.post(self.url("invitations_send"))  # queued: the worker has not had it yet
        self.invite(Contact("gus@example.com"))

        expected = {
            "all": ["ana", "ben", "cleo", "dan", "eve", "fay", "gus"],
            "not_sent": ["gus"],
            "queued": ["fay"],
            "sent": ["ana", "ben", "cleo", "dan"],
            "failed": ["eve"],
            "opened": ["ana", "ben"],
            "started": ["ana"],
            "answered": ["ana"],
            "unsubscribed": ["cleo"],
        }
        for status, names in expected.items():
            page = self.client.get(self.url("invitation_list"), {"status": status})
            shown = [i.email.split("@")[0] for i in page.context["page"].object_list]
            assert shown == names, status
            assertContains(page, f'aria-current="page" href="?status={status}"')
        assert [count for _, _, count in page.context["filters"]] == [len(n) for n in expected.values()]

    def test_unknown_filter_shows_everyone(self):
        self.invite(ANA, BEN)

        page = self.client.get(self.url("invitation_list"), {"status": "nonsense"})

        assert page.context["status"] == "all"
        assert len(page.context["page"].object_list) == 2

    def test_pages_of_a_filtered_list_stay_within_the_filter(self):
        self.invite(*[Contact(f"c{n:02}@example.com") for n in range(55)])
        self.press_send()
        self.invite(Contact("late@example.com"))

        first = self.client.get(self.url("invitation_list"), {"status": "sent"})
        assertContains(first, 'href="?status=sent&amp;page=2"')
        second = self.client.get(self.url("invitation_list"), {"status": "sent", "page": 2})

        assert len(first.context["page"].object_list) == 50
        assert [i.email for i in second.context["page"].object_list] == [f"c{n:02}@example.com" for n in range(50, 55)]

    def test_contact_list_queries_do_not_grow_with_the_contacts(self):
        def queries() -> int:
            with CaptureQueriesContext(connection) as captured:
                assert self.client.get(self.url("invitation_list")).status_code == 200
            return len(captured)

        self.invite(ANA, BEN)
        self.press_send()
        few = queries()
        self.invite(*[Contact(f"c{n:02}@example.com") for n in range(30)])
        self.press_send()
        with self.on_commit(execute=True):
            mailing.invitation_reminders_queue(now=timezone.now() + timedelta(days=5))

        assert queries() == few


# --- Who may use the pages -------------------------------------------------------------------


class InvitationEmailAccessTests(InvitationEmailsBase):
    PAGES = [
        ("invitation_email", "get"),
        ("invitation_email", "post"),
        ("invitations_send", "post"),
        ("invitation_emails_retry", "post"),
    ]

    def test_every_page_sends_anonymous_visitors_to_login(self):
        self.invite(ANA)
        for name, method in self.PAGES:
            response = getattr(Client(), method)(self.url(name))
            assert response.status_code == 302, name
            assert urlsplit(response["Location"]).path == reverse("login")
        assert not InvitationEmail.objects.exists()

    def test_another_workspaces_consultant_gets_404_and_changes_nothing(self):
        self.invite(ANA)
        invitations_send_refused(self.wave)
        outsider, _ = consultant_create(username="bob", workspace_name="Beta Advisory")
        client = Client()
        client.force_login(outsider)
        wording = {"invite_subject": "Hi", "invite_body": "{link}", "reminders": "2", "reminder_after_days": "9"}

        for name, method in self.PAGES:
            with self.on_commit(execute=True):
                response = getattr(client, method)(self.url(name), wording if method == "post" else None)
            assert response.status_code == 404, name
            assertNotContains(response, "Northwind", status_code=404)

        self.wave.refresh_from_db()
        assert (self.wave.invite_subject, self.wave.reminders) == ("", 1)
        assert list(InvitationEmail.objects.values_list("status", flat=True)) == [Status.FAILED]
        assert mail.outbox == []


# --- Contact lists that are not ---------------------------------------------------------------


class ContactUploadTests(InvitationEmailsBase):
    def upload(self, content: bytes):
        return self.client.post(
            self.url("invitation_list"),
            {"pasted": "", "upload": SimpleUploadedFile("contacts.csv", content, content_type="text/csv")},
        )

    def test_enormous_upload_is_refused_with_a_clear_message_and_imports_nothing(self):
        line = b"someone@example.com,Some One,Retail\n"
        content = b"email,name,segment\n" + line * (3 * 1024 * 1024 // len(line))

        response = self.upload(content)

        assert response.status_code == 200
        assertContains(response, "Nothing was imported.")
        assertContains(response, "The file is larger than 2 MB; split it into smaller files.")
        assert not Invitation.objects.exists()

    def test_more_contacts_than_allowed_are_refused_and_none_imported(self):
        rows = "".join(f"c{n}@example.com\n" for n in range(MAX_CONTACTS + 1))

        response = self.upload(("email\n" + rows).encode())

        assertContains(response, f"More than {MAX_CONTACTS} contacts: split the list into smaller files.")
        assert not Invitation.objects.exists()

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            ("email,name\nana@example.com,Ana\n".encode("utf-16"), "The file is not UTF-8 text"),
            (b"mail,name\nana@example.com,Ana\n", "the header has no “email” column"),
        ],
    )
    def test_file_that_is_not_a_contact_csv_is_refused_and_none_imported(self, content, message):
        response = self.upload(content)

        assertContains(response, message)
        assert not Invitation.objects.exists()
