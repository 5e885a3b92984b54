"""
The invitation email itself and delivery failures, in-process: the text and
HTML a contact receives, the consultant's wording rules, and what happens when
the mail server is unreachable (tasks run eagerly here; the real worker and a
real SMTP server are in test_invitation_smtp.py).
"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from surveys import mailing, services
from surveys.models import InvitationEmail
from surveys.services import Contact
from tests.surveys.factories import consultant_create, engagement_create, first_wave

LOCMEM = "django.core.mail.backends.locmem.EmailBackend"
SMTP = "django.core.mail.backends.smtp.EmailBackend"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def wave(db):
    _user, workspace = consultant_create()
    return first_wave(engagement_create(workspace=workspace, name="Northwind <Fibre> & Co"))


def invite(wave, *contacts: tuple[str, str]) -> None:
    services.invitations_create(wave=wave, contacts=[Contact(email=e, name=n, segment="") for e, n in contacts])


class EmailTextTests:
    def test_default_email_greets_by_name_and_carries_both_links_in_both_parts(self, wave):
        composed = mailing.email_compose(
            wave=wave, name="Ada", link="https://x.test/c/TOKEN/", unsubscribe_link="https://x.test/c/TOKEN/unsubscribe/"
        )

        assert composed.subject == "How is your experience with Northwind <Fibre> & Co?"
        assert composed.text.startswith("Hello Ada,")
        for part in (composed.text, composed.html):
            assert "https://x.test/c/TOKEN/" in part
            assert "https://x.test/c/TOKEN/unsubscribe/" in part
        assert '<a href="https://x.test/c/TOKEN/">' in composed.html

    def test_html_part_escapes_company_and_contact_names(self, wave):
        composed = mailing.email_compose(
            wave=wave, name="<script>alert(1)</script>", link="https://x.test/c/T/", unsubscribe_link="https://x.test/u"
        )

        assert "<script>" not in composed.html
        assert "&lt;script&gt;" in composed.html
        assert "Northwind &lt;Fibre&gt; &amp; Co" in composed.html

    def test_contact_without_a_name_gets_a_plain_greeting(self, wave):
        composed = mailing.email_compose(wave=wave, name="  ", link="L", unsubscribe_link="U")

        assert composed.text.startswith("Hello,")

    def test_reminder_says_so_in_subject_and_text(self, wave):
        composed = mailing.email_compose(
            wave=wave, name="Ada", link="L", unsubscribe_link="U", kind=InvitationEmail.Kind.REMINDER_1
        )

        assert composed.subject.startswith("Reminder: ")
        assert composed.text.startswith(mailing.REMINDER_LEAD)

    def test_consultants_wording_replaces_the_default(self, wave):
        mailing.invitation_wording_update(
            wave=wave, subject="{name}, five minutes for {company}?", body="Dear {name}\n\nPlease: {link}",
            reminders=2, reminder_after_days=3,
        )

        composed = mailing.email_compose(wave=wave, name="Ada", link="https://x.test/c/T/", unsubscribe_link="U")

        assert composed.subject == "Ada, five minutes for Northwind <Fibre> & Co?"
        assert composed.text.startswith("Dear Ada\n\nPlease: https://x.test/c/T/")

    @pytest.mark.parametrize(
        ("subject", "body", "field"),
        [
            ("Hi {firstname}", "Go: {link}", "invite_subject"),
            ("Hi", "Go somewhere", "invite_body"),
            ("Line one\nLine two", "Go: {link}", "invite_subject"),
        ],
    )
    def test_bad_wording_is_refused_and_nothing_changes(self, wave, subject, body, field):
        with pytest.raises(ValidationError) as raised:
            mailing.invitation_wording_update(
                wave=wave, subject=subject, body=body, reminders=1, reminder_after_days=4
            )

        assert field in raised.value.message_dict
        wave.refresh_from_db()
        assert (wave.invite_subject, wave.invite_body) == ("", "")

    def test_refused_reminder_plan_leaves_the_callers_wave_as_stored(self, wave):
        with pytest.raises(ValidationError):
            mailing.invitation_wording_update(wave=wave, subject="Hi", body="Go: {link}", reminders=1, reminder_after_days=0)

        assert (wave.invite_subject, wave.reminder_after_days) == ("", 4)

    def test_name_leading_the_text_drops_cleanly_for_a_contact_without_one(self, wave):
        mailing.invitation_wording_update(
            wave=wave, subject="Hi", body="{name}, please answer: {link}", reminders=1, reminder_after_days=4
        )

        assert mailing.email_compose(wave=wave, name="", link="L", unsubscribe_link="U").text.startswith(
            "please answer: L"
        )

    @pytest.mark.parametrize(
        ("hosts", "expected"),
        [
            (["*", ".example.com", "survey.example.com"], "https://survey.example.com"),
            (["*"], "http://127.0.0.1:8000"),
        ],
    )
    def test_links_without_site_url_use_the_first_real_host(self, settings, hosts, expected):
        settings.SITE_URL, settings.DEBUG, settings.ALLOWED_HOSTS = "", False, hosts

        assert mailing.site_url() == expected


class QueueAndDeliverTests:
    @pytest.fixture(autouse=True)
    def _locmem(self, settings):
        settings.EMAIL_BACKEND = LOCMEM
        settings.GAPSURVEY_EMAIL_RATE = 0
        settings.SITE_URL = "https://survey.example.com"

    def test_every_contact_gets_one_email_with_its_own_link_and_unsubscribe_header(
        self, wave, django_capture_on_commit_callbacks
    ):
        invite(wave, ("ada@example.com", "Ada"), ("bob@example.com", ""))

        with django_capture_on_commit_callbacks(execute=True):
            assert mailing.invitations_send(wave=wave) == 2

        by_address = {message.to[0]: message for message in mail.outbox}
        assert sorted(by_address) == ["ada@example.com", "bob@example.com"]
        for invitation in wave.invitations.all():
            message = by_address[invitation.email]
            link, unsubscribe = mailing.invitation_links(invitation)
            assert link == f"https://survey.example.com/c/{invitation.token}/"
            assert link in message.body
            assert message.extra_headers["List-Unsubscribe"] == f"<{unsubscribe}>"
            assert message.alternatives[0].mimetype == "text/html"
        assert set(InvitationEmail.objects.values_list("status", flat=True)) == {InvitationEmail.Status.SENT}

    def test_sending_again_emails_nobody_twice(self, wave, django_capture_on_commit_callbacks):
        invite(wave, ("ada@example.com", "Ada"))
        with django_capture_on_commit_callbacks(execute=True):
            mailing.invitations_send(wave=wave)
        invite(wave, ("cy@example.com", "Cy"))

        with django_capture_on_commit_callbacks(execute=True):
            assert mailing.invitations_send(wave=wave) == 1

        assert sorted(m.to[0] for m in mail.outbox) == ["ada@example.com", "cy@example.com"]

    def test_a_batch_delivered_twice_sends_once(self, wave, django_capture_on_commit_callbacks):
        from surveys.tasks import invitation_emails_deliver_task

        invite(wave, ("ada@example.com", "Ada"), ("bob@example.com", "Bob"))
        with django_capture_on_commit_callbacks(execute=False):
            mailing.invitations_send(wave=wave)  # queued, the batch not handed over
        ids = list(InvitationEmail.objects.values_list("pk", flat=True))

        first = invitation_emails_deliver_task.apply(args=[ids]).get()
        second = invitation_emails_deliver_task.apply(args=[ids]).get()

        assert (first["sent"], second["sent"]) == (2, 0)
        assert len(mail.outbox) == 2

    def test_closing_the_wave_cancels_what_has_not_gone_yet(self, wave, django_capture_on_commit_callbacks):
        invite(wave, ("ada@example.com", "Ada"))
        with django_capture_on_commit_callbacks(execute=False):
            mailing.invitations_send(wave=wave)
        services.wave_close(wave=wave)

        mailing.invitation_emails_deliver(email_ids=list(InvitationEmail.objects.values_list("pk", flat=True)))

        email = InvitationEmail.objects.get()
        assert email.status == InvitationEmail.Status.CANCELLED and "closed" in email.error
        assert mail.outbox == []
        with pytest.raises(ValidationError):
            mailing.invitations_send(wave=wave)

        services.wave_open(wave=wave)
        with django_capture_on_commit_callbacks(execute=True):
            assert mailing.invitations_send(wave=wave) == 1
        assert [m.to[0] for m in mail.outbox] == ["ada@example.com"]

    def test_retry_is_refused_while_the_wave_is_closed(self, wave):
        services.wave_close(wave=wave)

        with pytest.raises(ValidationError):
            mailing.invitation_emails_retry(wave=wave)

    def test_a_reminder_cancelled_by_closing_goes_after_reopening(self, wave, django_capture_on_commit_callbacks):
        invite(wave, ("ada@example.com", "Ada"))
        with django_capture_on_commit_callbacks(execute=True):
            mailing.invitations_send(wave=wave)
        later = timezone.now() + timedelta(days=wave.reminder_after_days, hours=1)
        with django_capture_on_commit_callbacks(execute=False):
            assert mailing.invitation_reminders_queue(now=later) == 1
        services.wave_close(wave=wave)
        mailing.invitation_emails_deliver(email_ids=list(InvitationEmail.objects.values_list("pk", flat=True)))
        assert InvitationEmail.objects.get(kind=InvitationEmail.Kind.REMINDER_1).status == InvitationEmail.Status.CANCELLED

        services.wave_open(wave=wave)
        with django_capture_on_commit_callbacks(execute=True):
            assert mailing.invitation_reminders_queue(now=later) == 1

        assert [m.subject.startswith("Reminder:") for m in mail.outbox] == [False, True]

    def test_sweep_gives_up_on_an_email_whose_worker_died_at_every_try(
        self, wave, settings, django_capture_on_commit_callbacks
    ):
        invite(wave, ("ada@example.com", "Ada"))
        with django_capture_on_commit_callbacks(execute=False):
            mailing.invitations_send(wave=wave)  # queued, not handed over
        email = InvitationEmail.objects.get()
        later = timezone.now()
        for _ in range(settings.GAPSURVEY_EMAIL_MAX_ATTEMPTS):
            assert mailing._claim(email.pk) is not None  # a worker takes it... and dies mid-send
            later += timedelta(seconds=settings.GAPSURVEY_EMAIL_STALE_SECONDS + 1)
            # Tries left: back to the queue, for the next worker (which dies too: its batch is
            # never run here); none left: failed.
            with django_capture_on_commit_callbacks(execute=False):
                mailing.invitation_emails_sweep(now=later)

        email.refresh_from_db()
        assert email.status == InvitationEmail.Status.FAILED
        assert "worker stopped" in email.error
        assert mail.outbox == []

    def test_sweep_hands_over_emails_a_down_broker_never_took(self, wave, django_capture_on_commit_callbacks):
        invite(wave, ("ada@example.com", "Ada"))
        with django_capture_on_commit_callbacks(execute=False):
            mailing.invitations_send(wave=wave)  # as if the broker had been down: queued, never handed over

        assert mailing.invitation_emails_sweep() == 0  # not stale yet
        later = timezone.now() + timedelta(hours=1)
        with django_capture_on_commit_callbacks(execute=True):
            assert mailing.invitation_emails_sweep(now=later) == 1

        assert [m.to[0] for m in mail.outbox] == ["ada@example.com"]


class UnreachableMailServerTests:
    def test_email_fails_with_the_reason_after_bounded_tries_and_others_are_untouched(
        self, wave, django_capture_on_commit_callbacks, settings
    ):
        settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT = SMTP, "127.0.0.1", closed_port()
        settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT = False, 5
        settings.GAPSURVEY_EMAIL_RATE, settings.GAPSURVEY_EMAIL_MAX_ATTEMPTS = 0, 3
        settings.GAPSURVEY_EMAIL_RETRY_SECONDS = 0
        invite(wave, ("ada@example.com", "Ada"))
        _user, other_workspace = consultant_create(username="other", workspace_name="Other")
        other = first_wave(engagement_create(workspace=other_workspace, name="Other Co"))
        invite(other, ("zed@example.com", "Zed"))

        with django_capture_on_commit_callbacks(execute=True):
            mailing.invitations_send(wave=wave)

        email = InvitationEmail.objects.get(invitation__wave=wave)
        assert email.status == InvitationEmail.Status.FAILED
        assert email.attempts == 3
        assert "refused" in email.error.lower()
        assert not InvitationEmail.objects.filter(invitation__wave=other).exists()
