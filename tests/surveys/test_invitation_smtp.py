"""
Invitation emails end to end: ``mailing.invitations_send`` in this process,
a real Celery worker (Redis, the PostgreSQL test database) doing the sending,
and a real SMTP server (aiosmtpd on 127.0.0.1) receiving, refusing or
stalling. Runs only with DATABASE_URL (PostgreSQL) and REDIS_URL set; skipped
otherwise, and a failure in CI (see ``celery_worker_factory`` in conftest.py).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.test import Client, override_settings
from django.urls import reverse
from django.utils import timezone

from surveys import mailing, services
from surveys.models import Invitation, InvitationEmail, Wave
from surveys.tasks import invitation_emails_deliver_task
from tests.conftest import CeleryWorker, SmtpServer, WorkerFactory, free_port
from tests.surveys.factories import answer_post_data, engagement_create, first_wave

Status = InvitationEmail.Status
Kind = InvitationEmail.Kind

# The worker's retry settings in these tests: three tries, 1 s then 2 s apart.
MAX_ATTEMPTS = 3
# A bound on any one wait, not a pace: the polls return as soon as the outcome is there.
TIMEOUT = 30
POLL = 0.1
# The links' base, the same in this process and the worker (settings.SITE_URL), so they can be compared.
SITE_URL = "http://testserver"
# "http://host/c/<token>/" on a line of its own (the unsubscribe link continues with "unsubscribe/").
ANSWER_LINK = re.compile(r"^(https?://\S+/c/[\w-]+/)$", re.MULTILINE)


@pytest.fixture(autouse=True)
def _site_url_as_in_the_worker() -> Iterator[None]:
    with override_settings(SITE_URL=SITE_URL):
        yield


def wait_until(condition: Callable[[], object], *, what: str, state: Callable[[], object] = lambda: None) -> object:
    deadline = time.monotonic() + TIMEOUT
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {TIMEOUT} s; state: {state()}", pytrace=False)
        time.sleep(POLL)
    return value


def mail_worker(factory: WorkerFactory, smtp: SmtpServer, *, port: int | None = None, **env: str) -> CeleryWorker:
    """A worker sending through ``smtp`` (or to ``port`` on its host), unpaced, with short retries."""
    defaults = {
        "SITE_URL": SITE_URL,
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": smtp.host,
        "EMAIL_PORT": str(port or smtp.port),
        "EMAIL_USE_TLS": "0",
        "EMAIL_USE_SSL": "0",
        "EMAIL_HOST_USER": "",
        "EMAIL_HOST_PASSWORD": "",
        "EMAIL_TIMEOUT": "10",
        "GAPSURVEY_EMAIL_RATE": "0",
        "GAPSURVEY_EMAIL_RETRY_SECONDS": "1",
        "GAPSURVEY_EMAIL_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
    }
    return factory(**{**defaults, **env})


def worker_idle(worker: CeleryWorker) -> bool:
    """The worker runs, holds and has scheduled no task."""
    from gapsurvey.celery import app

    inspect = app.control.inspect(destination=[worker.nodename], timeout=1.0)
    replies = [inspect.active(), inspect.reserved(), inspect.scheduled()]
    return all(reply and not any(reply.values()) for reply in replies)


def wave_with_contacts(*, contacts: int, name: str = "Northwind Traders", domain: str = "example.com") -> Wave:
    """An engagement's open first wave with ``contacts`` contacts: customer00@<domain>, customer01@<domain>..."""
    workspace = services.workspace_create(name=f"Consultants of {name}")
    wave = first_wave(engagement_create(workspace=workspace, name=name))
    services.invitations_create(
        wave=wave,
        contacts=[services.Contact(email=f"customer{n:02d}@{domain}", name=f"Customer {n}") for n in range(contacts)],
    )
    return wave


def emails(wave: Wave, kind: str = Kind.INVITATION):
    return InvitationEmail.objects.filter(invitation__wave=wave, kind=kind)


def statuses(wave: Wave, kind: str = Kind.INVITATION) -> dict[str, int]:
    return dict(Counter(emails(wave, kind).values_list("status", flat=True)))


def all_settled(wave: Wave, kind: str = Kind.INVITATION) -> bool:
    """Every email of the kind has its final status (nothing queued or being sent)."""
    rows = emails(wave, kind)
    return rows.exists() and not rows.filter(status__in=[Status.QUEUED, Status.SENDING]).exists()


def wait_settled(wave: Wave, kind: str = Kind.INVITATION) -> None:
    wait_until(lambda: all_settled(wave, kind), what=f"settled {kind} emails of {wave.engagement}",
               state=lambda: statuses(wave, kind))


def contact_addresses(wave: Wave) -> set[str]:
    return set(wave.invitations.values_list("email", flat=True))


def answer_through_link(client: Client, wave: Wave, link: str) -> None:
    """Open the emailed link and post the answer sheet, as the customer's browser does."""
    path = urlsplit(link).path
    assert client.get(path).status_code == 200
    response = client.post(path, answer_post_data(wave, items={"strengths": ["They answer the phone"]}))
    assert response.status_code == 302, response.content.decode()[:500]
    assert response.url == reverse("public:customer_done", args=[path.rstrip("/").rsplit("/", 1)[-1]])


@pytest.mark.django_db(transaction=True)
class InvitationDeliveryTests:
    def test_each_contact_gets_one_email_with_both_parts_and_a_link_that_takes_the_answers(
        self, smtp_server, celery_worker_factory
    ):
        wave = wave_with_contacts(contacts=12)
        rate = 20
        mail_worker(celery_worker_factory, smtp_server, GAPSURVEY_EMAIL_RATE=str(rate))

        assert mailing.invitations_send(wave=wave) == 12
        wait_settled(wave)

        received = smtp_server.received
        assert smtp_server.per_recipient() == {address: 1 for address in contact_addresses(wave)}
        links = {}
        for mail in received:
            message = mail.message
            invitation = Invitation.objects.get(wave=wave, email=mail.recipients[0])
            assert message["To"] == invitation.email
            assert message["Subject"] == "How is your experience with Northwind Traders?"
            assert message.get_content_type() == "multipart/alternative"
            text = message.get_body(("plain",)).get_content()
            html = message.get_body(("html",)).get_content()
            answer, unsubscribe = mailing.invitation_links(invitation)
            assert ANSWER_LINK.findall(text) == [answer]
            assert f'href="{answer}"' in html and f'href="{unsubscribe}"' in html
            # strip(): a header this long is folded right after its colon.
            assert message["List-Unsubscribe"].strip() == f"<{unsubscribe}>"
            assert message["Message-ID"] == emails(wave).get(invitation=invitation).message_id
            links[invitation.email] = answer
        assert len(set(links.values())) == 12
        # One worker process, paced: 12 messages take at least 11 intervals.
        times = sorted(mail.received_at for mail in received)
        assert times[-1] - times[0] >= 11 / rate * 0.9
        assert statuses(wave) == {Status.SENT: 12}
        assert set(emails(wave).values_list("attempts", flat=True)) == {1}

        answering = "customer03@example.com"
        answer_through_link(Client(), wave, links[answering])

        invitation = Invitation.objects.get(wave=wave, email=answering)
        assert invitation.completed_at is not None
        assert invitation.respondent.wave == wave
        assert wave.invitations.filter(completed_at__isnull=False).count() == 1

    @override_settings(GAPSURVEY_EMAIL_BATCH_SIZE=5)
    def test_a_batch_goes_over_one_smtp_connection(self, smtp_server, celery_worker_factory):
        wave = wave_with_contacts(contacts=10)
        mail_worker(celery_worker_factory, smtp_server, GAPSURVEY_EMAIL_BATCH_SIZE="5")

        mailing.invitations_send(wave=wave)
        wait_settled(wave)

        assert len(smtp_server.received) == 10
        assert len({mail.connection for mail in smtp_server.received}) == 2

    @override_settings(GAPSURVEY_EMAIL_BATCH_SIZE=4)
    def test_sending_twice_and_a_batch_queued_twice_email_each_contact_once(
        self, smtp_server, celery_worker_factory
    ):
        wave = wave_with_contacts(contacts=8)
        # Two processes, so the duplicated batches really run side by side.
        worker = mail_worker(celery_worker_factory, smtp_server, concurrency=2)

        assert mailing.invitations_send(wave=wave) == 8
        assert mailing.invitations_send(wave=wave) == 0
        ids = sorted(emails(wave).values_list("pk", flat=True))
        for _ in range(2):
            invitation_emails_deliver_task.delay(ids)

        wait_settled(wave)
        wait_until(lambda: worker_idle(worker), what="an idle worker")

        assert smtp_server.per_recipient() == {address: 1 for address in contact_addresses(wave)}
        assert len(smtp_server.received) == 8
        assert statuses(wave) == {Status.SENT: 8}
        assert set(emails(wave).values_list("attempts", flat=True)) == {1}

    def test_a_worker_killed_mid_batch_loses_and_repeats_no_one(self, smtp_server, celery_worker_factory):
        wave = wave_with_contacts(contacts=30)
        gate = smtp_server.gate(nth=10)
        first = mail_worker(celery_worker_factory, smtp_server)

        mailing.invitations_send(wave=wave)  # one batch of 30
        assert gate.reached.wait(TIMEOUT), statuses(wave)
        first.kill()  # while it waits for the server's answer to its 10th MAIL FROM
        smtp_server.release(gate)

        assert len(smtp_server.received) == 9
        assert statuses(wave) == {Status.SENT: 9, Status.SENDING: 1, Status.QUEUED: 20}
        held = emails(wave).get(status=Status.SENDING).invitation.email
        # The killed worker never acknowledged its batch (acks_late): a worker whose
        # visibility timeout has passed takes it back from Redis when it starts.
        mail_worker(celery_worker_factory, smtp_server, CELERY_VISIBILITY_TIMEOUT="1")
        wait_until(lambda: statuses(wave) == {Status.SENT: 29, Status.SENDING: 1}, what="the redelivered batch",
                   state=lambda: statuses(wave))
        assert held not in smtp_server.per_recipient()

        # The email left "sending" is the sweep's: its stale threshold passed.
        later = timezone.now() + timedelta(seconds=settings.GAPSURVEY_EMAIL_STALE_SECONDS + 1)
        assert mailing.invitation_emails_sweep(now=later) == 1
        wait_settled(wave)

        assert smtp_server.per_recipient() == {address: 1 for address in contact_addresses(wave)}
        assert len(smtp_server.received) == 30
        assert statuses(wave) == {Status.SENT: 30}
        assert emails(wave).get(invitation__email=held).attempts == 2


@pytest.mark.django_db(transaction=True)
class InvitationFailureTests:
    def _waves(self) -> tuple[Wave, Wave]:
        refused = wave_with_contacts(contacts=3, name="Refused Ltd", domain="refused.example")
        fine = wave_with_contacts(contacts=5)
        return refused, fine

    def _send_both(self, refused: Wave, fine: Wave) -> None:
        mailing.invitations_send(wave=refused)
        mailing.invitations_send(wave=fine)
        for wave in (refused, fine):
            wait_settled(wave)

    @pytest.mark.parametrize(
        "reply, at, tries",
        [
            pytest.param("451 4.7.1 Greylisted, try again later", "RCPT", MAX_ATTEMPTS, id="451-tried-max-times"),
            pytest.param("550 5.7.1 Message rejected by policy", "DATA", 1, id="550-failed-at-once"),
        ],
    )
    def test_a_refused_email_fails_with_the_reason_and_another_wave_is_delivered(
        self, smtp_server, celery_worker_factory, reply, at, tries
    ):
        refused, fine = self._waves()
        smtp_server.refuse(reply, at=at, when=lambda address: address.endswith("@refused.example"))
        mail_worker(celery_worker_factory, smtp_server)

        self._send_both(refused, fine)

        for email in emails(refused):
            assert email.status == Status.FAILED
            assert email.attempts == tries
            assert reply in email.error
        # A temporary refusal is tried again after its backoff; a permanent one is not.
        refusals = Counter(address for _stage, address, _reply in smtp_server.refused)
        assert refusals == {address: tries for address in contact_addresses(refused)}
        # The other wave, sent at the same time, is untouched by the refusals.
        assert statuses(fine) == {Status.SENT: 5}
        assert smtp_server.per_recipient() == {address: 1 for address in contact_addresses(fine)}

    def test_a_mail_server_that_is_down_fails_the_emails_after_bounded_tries(
        self, smtp_server, celery_worker_factory
    ):
        wave = wave_with_contacts(contacts=2)
        mail_worker(celery_worker_factory, smtp_server, port=free_port())  # nothing listens there

        mailing.invitations_send(wave=wave)
        wait_settled(wave)

        for email in emails(wave):
            assert email.status == Status.FAILED
            assert email.attempts == MAX_ATTEMPTS
            assert "Connection refused" in email.error
        assert smtp_server.received == []


@pytest.mark.django_db(transaction=True)
class InvitationReminderTests:
    def test_reminders_go_only_to_contacts_who_neither_answered_nor_unsubscribed(
        self, smtp_server, celery_worker_factory
    ):
        wave = wave_with_contacts(contacts=4)
        mail_worker(celery_worker_factory, smtp_server)
        mailing.invitations_send(wave=wave)
        wait_settled(wave)
        links = {mail.recipients[0]: ANSWER_LINK.search(mail.message.get_body(("plain",)).get_content()).group(1)
                 for mail in smtp_server.received}

        answered, unsubscribed = "customer00@example.com", "customer01@example.com"
        answer_through_link(Client(), wave, links[answered])
        unsubscribe = reverse("public:customer_unsubscribe", args=[Invitation.objects.get(email=unsubscribed).token])
        assert Client().post(unsubscribe).status_code == 200
        assert Invitation.objects.get(email=unsubscribed).unsubscribed_at is not None

        later = timezone.now() + timedelta(days=wave.reminder_after_days + 1)
        assert mailing.invitation_reminders_queue(now=later) == 2
        wait_settled(wave, Kind.REMINDER_1)

        reminded = {"customer02@example.com", "customer03@example.com"}
        reminders = [mail for mail in smtp_server.received if mail.message["Subject"].startswith("Reminder:")]
        assert sorted(mail.recipients[0] for mail in reminders) == sorted(reminded)
        assert all(mail.message["Subject"] == "Reminder: How is your experience with Northwind Traders?"
                   for mail in reminders)
        assert smtp_server.per_recipient() == {answered: 1, unsubscribed: 1, **{address: 2 for address in reminded}}
        assert statuses(wave, Kind.REMINDER_1) == {Status.SENT: 2}
        # Due again later: each reminder goes at most once (this wave plans one).
        assert mailing.invitation_reminders_queue(now=later + timedelta(days=30)) == 0
