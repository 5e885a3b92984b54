"""
Customer invitation emails: the text, queueing, delivery by the worker,
reminders and unsubscribing.

Every email is an ``InvitationEmail`` row, one per invitation and kind
(invitation, first reminder, second reminder). Queueing creates the rows and,
after commit, one task per batch; a worker claims each row (queued -> sending)
before it talks to the mail server and marks it sent after, so a "send" pressed
twice or a task delivered twice never reaches anyone twice. Rows a lost task
or a dead worker left behind are queued again by a periodic sweep.
"""

from __future__ import annotations

import logging
import re
import smtplib
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from .models import Invitation, InvitationEmail, Wave

logger = logging.getLogger(__name__)

Kind = InvitationEmail.Kind
Status = InvitationEmail.Status

PLACEHOLDERS = ("company", "name", "link")
PLACEHOLDER_RE = re.compile(r"\{(\w*)\}")

DEFAULT_SUBJECT = "How is your experience with {company}?"
DEFAULT_BODY = """Hello {name},

{company} wants to know how it really serves you. Would you give us five minutes to tell us what we do well, what we should do better and how we compare with others?

Your personal link (it takes one set of answers, until the survey closes):
{link}

Thank you,
{company}"""

REMINDER_LEAD = (
    "A short reminder: we have not yet received your answers. If you have answered "
    "in the meantime, thank you, and please ignore this email."
)


# --- The text ---------------------------------------------------------------------


def wording_validate(*, subject: str, body: str) -> None:
    """A consultant's subject and text: known placeholders only, the body carries the link."""
    errors: dict[str, list[str]] = {}
    for field, text in (("invite_subject", subject), ("invite_body", body)):
        unknown = sorted({name for name in PLACEHOLDER_RE.findall(text) if name not in PLACEHOLDERS})
        if unknown:
            names = ", ".join("{" + name + "}" for name in unknown)
            allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
            errors.setdefault(field, []).append(f"Unknown placeholder {names}: use {allowed}.")
    if "\n" in subject or "\r" in subject:
        errors.setdefault("invite_subject", []).append("The subject must be one line.")
    if body.strip() and "{link}" not in body:
        errors.setdefault("invite_body", []).append("The text must contain {link}: it is each contact's personal link.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def invitation_wording_update(
    *, wave: Wave, subject: str, body: str, reminders: int, reminder_after_days: int
) -> Wave:
    """Store the consultant's email wording (blank: the default text) and reminder plan."""
    subject, body = subject.strip(), body.strip()
    wording_validate(subject=subject, body=body)
    fields = ["invite_subject", "invite_body", "reminders", "reminder_after_days"]
    before = {name: getattr(wave, name) for name in fields}
    wave.invite_subject, wave.invite_body = subject, body
    wave.reminders, wave.reminder_after_days = reminders, reminder_after_days
    try:
        wave.full_clean(exclude=["engagement", "staff_token", "open_link_token"])
    except ValidationError:
        for name, value in before.items():  # the caller's object keeps what is stored
            setattr(wave, name, value)
        raise
    wave.save(update_fields=fields)
    return wave


@dataclass(frozen=True)
class Composed:
    subject: str
    text: str
    html: str


def site_url() -> str:
    """The app's address as customers reach it: links in emails are built outside any request."""
    if settings.SITE_URL:
        return settings.SITE_URL
    # Otherwise the first real host name the site answers to ("*" and ".domain" patterns are no address).
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*" and not host.startswith(".")]
    if settings.DEBUG or not hosts:
        return "http://127.0.0.1:8000"
    return f"https://{hosts[0]}"


def invitation_links(invitation: Invitation) -> tuple[str, str]:
    """The contact's personal survey link and unsubscribe link."""
    base = site_url()
    return (
        base + reverse("public:customer_answer", args=[invitation.token]),
        base + reverse("public:customer_unsubscribe", args=[invitation.token]),
    )


def _fill(template: str, values: dict[str, str]) -> str:
    # "Hello {name}," reads "Hello," and "{name}, thank you" reads "thank you" for a contact without a name.
    if not values.get("name"):
        template = template.replace(" {name}", "").replace("{name}, ", "")
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def email_compose(
    *, wave: Wave, name: str, link: str, unsubscribe_link: str, kind: str = Kind.INVITATION
) -> Composed:
    """Subject, plain text and HTML of one email, from the wave's wording or the default."""
    company = wave.engagement.name
    subject_template = wave.invite_subject.strip() or DEFAULT_SUBJECT
    body_template = wave.invite_body.strip() or DEFAULT_BODY
    values = {"company": company, "name": name.strip(), "link": link}
    subject = " ".join(_fill(subject_template, values).split())
    if kind != Kind.INVITATION:
        subject = f"Reminder: {subject}"
    footer = (
        f"You received this email because {company} invited you to its customer survey. "
        "To receive no more emails about it, unsubscribe:"
    )

    text = _fill(body_template, values)
    if kind != Kind.INVITATION:
        text = f"{REMINDER_LEAD}\n\n{text}"
    text = f"{text}\n\n--\n{footer}\n{unsubscribe_link}\n"

    # The HTML part: the same words, escaped, with the link clickable.
    html_values = {
        "company": escape(company),
        "name": escape(name.strip()),
        "link": f'<a href="{escape(link)}">{escape(link)}</a>',
    }
    body_html = _fill(escape(body_template), html_values)
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body_html) if p.strip()]
    if kind != Kind.INVITATION:
        paragraphs.insert(0, escape(REMINDER_LEAD))
    html = "".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs)
    html += (
        f'<hr><p style="font-size:small;color:#555">{escape(footer)} '
        f'<a href="{escape(unsubscribe_link)}">Unsubscribe</a></p>'
    )
    html = f'<!DOCTYPE html><html><body style="font-family:sans-serif;line-height:1.5">{html}</body></html>'
    return Composed(subject=subject, text=text, html=html)


def email_message(email: InvitationEmail, connection=None) -> EmailMultiAlternatives:
    invitation = email.invitation
    link, unsubscribe_link = invitation_links(invitation)
    composed = email_compose(
        wave=invitation.wave, name=invitation.name, link=link, unsubscribe_link=unsubscribe_link, kind=email.kind
    )
    message = EmailMultiAlternatives(
        subject=composed.subject,
        body=composed.text,
        to=[invitation.email],
        connection=connection,
        headers={
            "Message-ID": email.message_id,
            # One-click unsubscribe from the mail client (RFC 8058).
            "List-Unsubscribe": f"<{unsubscribe_link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(composed.html, "text/html")
    return message


# --- Queueing ---------------------------------------------------------------------


def _enqueue(email_ids: list[int], *, countdown: int = 0) -> None:
    """Hand the emails to the worker in batches. A broker that is down loses nothing: the sweep re-queues."""
    from .tasks import invitation_emails_deliver_task

    size = max(1, settings.GAPSURVEY_EMAIL_BATCH_SIZE)
    for start in range(0, len(email_ids), size):
        batch = email_ids[start : start + size]
        try:
            invitation_emails_deliver_task.apply_async(args=[batch], countdown=countdown)
        except Exception:  # the broker is down or unreachable
            logger.warning("Could not queue %d invitation emails; the sweep will retry", len(batch), exc_info=True)
            return


def _enqueue_on_commit(email_ids: list[int]) -> None:
    if email_ids:
        transaction.on_commit(lambda: _enqueue(sorted(email_ids)))


def sendable(invitations: QuerySet[Invitation]) -> QuerySet[Invitation]:
    """The contacts an email may still go to: neither answered nor unsubscribed."""
    return invitations.filter(unsubscribed_at__isnull=True, completed_at__isnull=True)


def _ensure_open(wave: Wave, refusal: str) -> None:
    # Read afresh: the wave may have closed since the page was shown.
    if not Wave.objects.filter(pk=wave.pk, status=Wave.Status.OPEN).exists():
        raise ValidationError(refusal)


@transaction.atomic
def invitations_send(*, wave: Wave) -> int:
    """
    Queue the invitation email to every contact of the open wave who has not
    had one: new contacts, and those whose email was not sent (the wave was
    closed). Contacts already emailed, answered or unsubscribed are left out.
    Returns how many were queued.
    """
    _ensure_open(wave, "The wave is closed: reopen it to send invitations.")
    now = timezone.now()
    fresh = sendable(wave.invitations.all()).exclude(emails__kind=Kind.INVITATION)
    # ignore_conflicts: a second "send" racing this one finds the row there and adds nothing.
    InvitationEmail.objects.bulk_create(
        [InvitationEmail(invitation_id=pk, kind=Kind.INVITATION, due_at=now) for pk in fresh.values_list("pk", flat=True)],
        ignore_conflicts=True,
    )
    InvitationEmail.objects.filter(
        invitation__in=sendable(wave.invitations.all()), kind=Kind.INVITATION, status=Status.CANCELLED
    ).update(status=Status.QUEUED, due_at=now, error="")
    queued = list(
        # Exactly the rows this call queued (both writes above stamp ``due_at`` with ``now``).
        InvitationEmail.objects.filter(invitation__wave=wave, status=Status.QUEUED, due_at=now).values_list(
            "pk", flat=True
        )
    )
    _enqueue_on_commit(queued)
    return len(queued)


@transaction.atomic
def invitation_emails_retry(*, wave: Wave) -> int:
    """Queue the wave's failed emails again, with their tries counted afresh."""
    _ensure_open(wave, "The wave is closed: reopen it to send emails again.")
    now = timezone.now()
    failed = InvitationEmail.objects.filter(invitation__in=sendable(wave.invitations.all()), status=Status.FAILED)
    ids = list(failed.values_list("pk", flat=True))
    InvitationEmail.objects.filter(pk__in=ids).update(status=Status.QUEUED, attempts=0, due_at=now, claimed_at=None)
    _enqueue_on_commit(ids)
    return len(ids)


@transaction.atomic
def invitation_reminders_queue(*, now: datetime | None = None) -> int:
    """
    Periodic: queue the reminders that are due in every open wave. A reminder
    goes ``reminder_after_days`` after the invitation (the second after the
    first), only to contacts who have neither answered nor unsubscribed, and
    each at most once (one row per kind).
    """
    now = now or timezone.now()
    rows: list[InvitationEmail] = []
    steps = ((Kind.INVITATION, Kind.REMINDER_1, 1), (Kind.REMINDER_1, Kind.REMINDER_2, 2))
    for previous, kind, needs in steps:
        due = (
            InvitationEmail.objects.filter(
                kind=previous,
                status=Status.SENT,
                invitation__wave__status=Wave.Status.OPEN,
                invitation__wave__reminders__gte=needs,
                invitation__unsubscribed_at__isnull=True,
                invitation__completed_at__isnull=True,
            )
            .exclude(invitation__emails__kind=kind)
            .values_list("invitation_id", "sent_at", "invitation__wave__reminder_after_days")
        )
        rows += [
            InvitationEmail(invitation_id=invitation_id, kind=kind, due_at=now)
            for invitation_id, sent_at, days in due
            if sent_at <= now - timedelta(days=days)
        ]
    InvitationEmail.objects.bulk_create(rows, ignore_conflicts=True)
    # Reminders the closing of a wave cancelled go when it is open again (the answered and
    # the unsubscribed still get nothing).
    InvitationEmail.objects.filter(
        kind__in=[Kind.REMINDER_1, Kind.REMINDER_2],
        status=Status.CANCELLED,
        invitation__in=sendable(Invitation.objects.filter(wave__status=Wave.Status.OPEN)),
    ).update(status=Status.QUEUED, due_at=now, error="")
    queued = list(
        InvitationEmail.objects.filter(
            status=Status.QUEUED, kind__in=[Kind.REMINDER_1, Kind.REMINDER_2], due_at=now
        ).values_list("pk", flat=True)
    )
    _enqueue_on_commit(queued)
    return len(queued)


def invitation_emails_sweep(*, now: datetime | None = None) -> int:
    """
    Periodic: queue again what was lost. An email still queued long after its
    time never reached a worker (the broker was down, or the worker died
    holding the task); one left "sending" that long belonged to a worker that
    died mid-batch. Its mail server may or may not have taken it before the
    death: sending again risks a duplicate in that one narrow case, rather than
    silently never inviting the contact.
    """
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.GAPSURVEY_EMAIL_STALE_SECONDS)
    with transaction.atomic():
        abandoned = InvitationEmail.objects.filter(status=Status.SENDING, claimed_at__lt=stale)
        # An email whose every try ended with its worker's death is not tried forever.
        abandoned.filter(attempts__gte=settings.GAPSURVEY_EMAIL_MAX_ATTEMPTS).update(
            status=Status.FAILED, error="The worker stopped while sending it, every try."
        )
        abandoned.update(status=Status.QUEUED, due_at=now, claimed_at=None)
        ids = list(
            InvitationEmail.objects.filter(Q(status=Status.QUEUED) & (Q(due_at__lt=stale) | Q(due_at=now)))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        InvitationEmail.objects.filter(pk__in=ids).update(due_at=now)
        _enqueue_on_commit(ids)
    return len(ids)


# --- Delivery (in the worker) -------------------------------------------------------


def _claim(email_id: int) -> InvitationEmail | None:
    now = timezone.now()
    claimed = InvitationEmail.objects.filter(pk=email_id, status=Status.QUEUED).update(
        status=Status.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return None  # sent, failed, cancelled, or another worker has it
    return InvitationEmail.objects.select_related("invitation__wave__engagement").get(pk=email_id)


def _not_to_send(email: InvitationEmail) -> str:
    invitation = email.invitation
    if not invitation.wave.is_open:
        return "The survey was closed before this email's turn."
    if invitation.completed_at:
        return "The contact answered before this email's turn."
    if invitation.unsubscribed_at:
        return "The contact unsubscribed."
    return ""


def _permanent(exc: Exception) -> bool:
    """A 5xx answer from the mail server: trying again will not help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in exc.recipients.values())
    code = getattr(exc, "smtp_code", None)
    return isinstance(code, int) and code >= 500 and not isinstance(exc, smtplib.SMTPServerDisconnected)


def _reason(exc: Exception) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, message = next(iter(exc.recipients.values()))
        detail = f"{code} {message.decode(errors='replace') if isinstance(message, bytes) else message}"
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {exc.smtp_error.decode(errors='replace') if isinstance(exc.smtp_error, bytes) else exc.smtp_error}"
    else:
        detail = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {detail}"[:500]


class _Pace:
    """At most ``rate`` messages a second from this process (0: no limit)."""

    def __init__(self, rate: int):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    def wait(self) -> None:
        if self.interval:
            delay = self.next - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self.next = max(self.next, time.monotonic()) + self.interval


@dataclass
class Delivery:
    sent: int = 0
    failed: int = 0
    cancelled: int = 0
    skipped: int = 0
    retry: list[int] | None = None
    retry_after: int = 0


def invitation_emails_deliver(*, email_ids: list[int]) -> Delivery:
    """
    Send the queued emails among ``email_ids`` over one connection. A failed
    email is queued again with a doubling wait (reported in ``retry``) until
    its tries run out; then it is marked failed with the server's reason.
    """
    outcome = Delivery(retry=[])
    pace = _Pace(settings.GAPSURVEY_EMAIL_RATE)
    connection = get_connection(fail_silently=False)
    try:
        for email_id in email_ids:
            email = _claim(email_id)
            if email is None:
                outcome.skipped += 1
                continue
            reason = _not_to_send(email)
            if reason:
                InvitationEmail.objects.filter(pk=email.pk).update(status=Status.CANCELLED, error=reason)
                outcome.cancelled += 1
                continue
            if not email.message_id:
                # Fixed before the first try, so every try carries the same id and a
                # receiving server can recognise a repeat.
                email.message_id = make_msgid("gapsurvey", domain=urlsplit(site_url()).hostname or "localhost")
                InvitationEmail.objects.filter(pk=email.pk).update(message_id=email.message_id)
            pace.wait()
            try:
                # Opened here, not by send(): send() closes a connection it opened itself after
                # its one message. A no-op while the batch's session is up; a fresh session
                # after a failure closed the last one.
                connection.open()
                delivered = email_message(email, connection).send()
                if not delivered:
                    raise smtplib.SMTPException("The mail server did not take the message.")
            except (smtplib.SMTPException, OSError) as exc:
                _failed_try(email, exc, outcome)
                connection.close()  # a broken session: the next message opens a fresh one
            except Exception as exc:
                # Not the mail server: a bug, or data the message can't be built from. Trying
                # again won't help; the batch goes on.
                logger.exception("Email %s could not be sent", email.pk)
                InvitationEmail.objects.filter(pk=email.pk).update(status=Status.FAILED, error=_reason(exc))
                outcome.failed += 1
            else:
                InvitationEmail.objects.filter(pk=email.pk).update(
                    status=Status.SENT, sent_at=timezone.now(), error=""
                )
                outcome.sent += 1
    finally:
        try:
            connection.close()
        except Exception:  # closing a connection the server already dropped
            pass
    return outcome


def _failed_try(email: InvitationEmail, exc: Exception, outcome: Delivery) -> None:
    reason = _reason(exc)
    logger.warning("Email %s (try %d) failed: %s", email.pk, email.attempts, reason)
    if _permanent(exc) or email.attempts >= settings.GAPSURVEY_EMAIL_MAX_ATTEMPTS:
        InvitationEmail.objects.filter(pk=email.pk).update(status=Status.FAILED, error=reason)
        outcome.failed += 1
        return
    wait = settings.GAPSURVEY_EMAIL_RETRY_SECONDS * 2 ** (email.attempts - 1)
    InvitationEmail.objects.filter(pk=email.pk).update(
        status=Status.QUEUED, error=reason, due_at=timezone.now() + timedelta(seconds=wait), claimed_at=None
    )
    outcome.retry.append(email.pk)
    outcome.retry_after = max(outcome.retry_after, wait)


def invitation_emails_requeue(*, email_ids: list[int], countdown: int) -> None:
    """Queue a batch's failed emails for their next try, after their backoff."""
    _enqueue(email_ids, countdown=countdown)


# --- The contact's side -------------------------------------------------------------


def invitation_mark_started(*, invitation: Invitation) -> None:
    # Only the first time counts, with no read-modify-write race.
    Invitation.objects.filter(pk=invitation.pk, started_at__isnull=True).update(started_at=timezone.now())


@transaction.atomic
def invitation_unsubscribe(*, invitation: Invitation) -> None:
    """No more emails to this contact for this wave; the survey link keeps working."""
    Invitation.objects.filter(pk=invitation.pk, unsubscribed_at__isnull=True).update(unsubscribed_at=timezone.now())
    InvitationEmail.objects.filter(invitation=invitation, status=Status.QUEUED).update(
        status=Status.CANCELLED, error="The contact unsubscribed."
    )
