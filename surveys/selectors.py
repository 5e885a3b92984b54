"""Reads of the collection side. Loaders that take a user 404 outside their workspace."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, FilteredRelation, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import Http404
from django.shortcuts import get_object_or_404

from . import mailing
from .models import Engagement, Group, Invitation, InvitationEmail, Prediction, Respondent, Wave, WorkshopSession


def engagements_for_user(user: AbstractBaseUser) -> QuerySet[Engagement]:
    return (
        Engagement.objects.filter(workspace__members=user)
        .select_related("workspace")
        .annotate(wave_count=Count("waves", distinct=True))
        .order_by("name")
    )


def engagement_for_user(user: AbstractBaseUser, slug: str) -> Engagement:
    """The engagement, if it lives in one of the user's workspaces; 404 otherwise."""
    return get_object_or_404(Engagement.objects.select_related("workspace"), slug=slug, workspace__members=user)


def wave_for_user(user: AbstractBaseUser, slug: str, number: int) -> Wave:
    return get_object_or_404(
        Wave.objects.select_related("engagement__workspace"),
        engagement__slug=slug,
        engagement__workspace__members=user,
        number=number,
    )


def session_for_user(user: AbstractBaseUser, slug: str, number: int, session_id: int) -> WorkshopSession:
    return get_object_or_404(
        WorkshopSession.objects.select_related("wave__engagement"),
        pk=session_id,
        wave__number=number,
        wave__engagement__slug=slug,
        wave__engagement__workspace__members=user,
    )


def sheet_for_user(user: AbstractBaseUser, slug: str, number: int, sheet_id: int) -> Respondent:
    return get_object_or_404(
        Respondent.objects.select_related("wave__engagement"),
        pk=sheet_id,
        group=Group.STAFF,
        wave__number=number,
        wave__engagement__slug=slug,
        wave__engagement__workspace__members=user,
    )


def _by_token(queryset: QuerySet, field: str, token: str):
    """
    The row whose ``field`` holds this public token, or 404. Found by the
    token's SHA-256 (an indexed column the database computes), then checked
    with a constant-time comparison: neither step's timing depends on how much
    of a guessed token matches a real one.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    found = queryset.filter(**{f"{field}_digest": digest}).first()
    if found is None or not secrets.compare_digest(getattr(found, field).encode(), token.encode()):
        raise Http404("No such link.")
    return found


def wave_by_staff_token(token: str) -> Wave:
    return _by_token(Wave.objects.select_related("engagement"), "staff_token", token)


def wave_by_open_link_token(token: str) -> Wave:
    return _by_token(Wave.objects.select_related("engagement"), "open_link_token", token)


def staff_sheet_by_edit_token(token: str) -> Respondent:
    return _by_token(Respondent.objects.select_related("wave__engagement").filter(group=Group.STAFF), "edit_token", token)


def invitation_by_token(token: str) -> Invitation:
    return _by_token(Invitation.objects.select_related("wave__engagement"), "token", token)


def session_by_code(code: str) -> WorkshopSession:
    session = (
        WorkshopSession.objects.select_related("wave__engagement").filter(code=code.strip().upper()).first()
    )
    if session is None:
        raise Http404("No session with this code.")
    return session


def wave_response_counts(wave: Wave) -> dict:
    """
    Submitted responses per group, staff members covered, drafts in progress,
    and the breakdown per staff department and customer segment.
    """
    submitted = wave.respondents.filter(status=Respondent.Status.SUBMITTED)
    per_group = {row["group"]: row for row in submitted.values("group").annotate(n=Count("id"), people=Sum("members"))}
    groups = []
    for value, label in Group.choices:
        row = per_group.get(value, {})
        target = getattr(wave, f"target_{value}")
        count = row.get("n", 0)
        groups.append(
            {
                "key": value,
                "label": label,
                "count": count,
                "people": row.get("people") if value == Group.STAFF else None,
                "target": target,
                "progress": min(100, round(100 * count / target)) if target else None,
            }
        )

    def breakdown(group: str) -> list[dict]:
        rows = (
            submitted.filter(group=group)
            .values("department")
            .annotate(n=Count("id"), people=Sum("members"))
            .order_by("-n", "department")
        )
        return [{"name": r["department"] or "(not given)", "count": r["n"], "people": r["people"]} for r in rows]

    invitations = wave.invitations.aggregate(
        total=Count("id"),
        opened=Count("id", filter=Q(opened_at__isnull=False)),
        completed=Count("id", filter=Q(completed_at__isnull=False)),
    )
    return {
        "groups": groups,
        "total": sum(g["count"] for g in groups),
        "drafts": wave.respondents.filter(status=Respondent.Status.DRAFT).count(),
        "departments": breakdown(Group.STAFF),
        "segments": breakdown(Group.CUSTOMER),
        "invitations": invitations,
    }


def session_live_count(session: WorkshopSession) -> int:
    return session.respondents.filter(status=Respondent.Status.SUBMITTED).count()


def session_live_counts(session: WorkshopSession) -> dict:
    """Leaders who answered in this session, and how many of them predicted each group (two queries)."""
    predicted = dict(
        Prediction.objects.filter(session=session, respondent__status=Respondent.Status.SUBMITTED)
        .values_list("target")
        .annotate(n=Count("id"))
    )
    return {
        "submitted": session_live_count(session),
        "predicted": {group: predicted.get(group, 0) for group in (Group.CUSTOMER, Group.STAFF)},
    }


REVEAL_NOUNS = {Group.CUSTOMER: "customers", Group.STAFF: "staff"}
REVEAL_POSSESSIVES = {Group.CUSTOMER: "customers'", Group.STAFF: "staff's"}


def reveal_missing(session: WorkshopSession) -> list[str]:
    """
    What the reveal of this session's wave still lacks, in words for the
    facilitator: predictions from too few leaders, or no (or too few) answers
    of the predicted group. The same thresholds as the analysis applies.
    """
    wave, engagement = session.wave, session.wave.engagement
    missing = []
    for group in session.predicted_groups:
        noun = REVEAL_NOUNS[group]
        leaders = Prediction.objects.filter(
            wave=wave, target=group, respondent__status=Respondent.Status.SUBMITTED
        ).count()
        if leaders == 0:
            missing.append(f"No leader has predicted the {REVEAL_POSSESSIVES[group]} view.")
        elif leaders < engagement.min_individuals:
            missing.append(
                f"Only {leaders} leader{'s' if leaders != 1 else ''} predicted the {REVEAL_POSSESSIVES[group]} view; forecasts are "
                f"shown from {engagement.min_individuals} leaders (the anonymity threshold)."
            )
        answered = wave.respondents.filter(group=group, status=Respondent.Status.SUBMITTED).count()
        threshold = engagement.min_staff_sheets if group == Group.STAFF else engagement.min_individuals
        if answered == 0:
            missing.append("No customer answers yet in this wave." if group == Group.CUSTOMER else "No staff sheets yet in this wave.")
        elif answered < threshold:
            unit = "staff sheets" if group == Group.STAFF else noun
            missing.append(
                f"Only {answered} {unit} have answered so far; their view is shown from {threshold} "
                "(the anonymity threshold)."
            )
    return missing


def wave_predictions(wave: Wave) -> list[dict]:
    """
    The wave's leader predictions as plain data for ``analysis.predictions``:
    one dict per prediction, ``{prediction_id, respondent_id, target,
    ratings: {item_key: {top_box, mean}}, items: [{item_id, question, text}]}``,
    top_box as a share 0-1. Only submitted leaders count.
    """
    predictions = (
        Prediction.objects.filter(wave=wave, respondent__status=Respondent.Status.SUBMITTED, respondent__group=Group.LEADERSHIP)
        .order_by("respondent_id", "target")
        .prefetch_related("ratings__item", "items")
    )
    return [
        {
            "prediction_id": p.pk,
            "respondent_id": p.respondent_id,
            "target": p.target,
            "ratings": {
                r.item.key: {"top_box": r.top_box_percent / 100, "mean": float(r.mean)} for r in p.ratings.all()
            },
            "items": [{"item_id": i.pk, "question": i.question_key, "text": i.text} for i in p.items.all()],
        }
        for p in predictions
    ]


def leader_prediction(respondent_id: int, target: str) -> Prediction | None:
    """A leader's stored prediction of ``target``, to fill the form again."""
    return (
        Prediction.objects.filter(respondent_id=respondent_id, target=target)
        .prefetch_related("ratings__item", "items")
        .first()
    )


# --- Invitation emails -------------------------------------------------------------

EmailKind = InvitationEmail.Kind
EmailStatus = InvitationEmail.Status

# The contact list's filter: (label, condition on a queryset from _with_invitation_email).
CONTACT_FILTERS: dict[str, tuple[str, Q]] = {
    "all": ("All", Q()),
    "not_sent": ("Not sent", Q(email_status__isnull=True) | Q(email_status=EmailStatus.CANCELLED)),
    "queued": ("Queued", Q(email_status__in=[EmailStatus.QUEUED, EmailStatus.SENDING])),
    "sent": ("Sent", Q(email_status=EmailStatus.SENT)),
    "failed": ("Failed", Q(email_status=EmailStatus.FAILED)),
    "opened": ("Opened", Q(opened_at__isnull=False)),
    "started": ("Started", Q(started_at__isnull=False)),
    "answered": ("Answered", Q(completed_at__isnull=False)),
    "unsubscribed": ("Unsubscribed", Q(unsubscribed_at__isnull=False)),
}

# The funnel counts the contacts each filter shows, under the funnel's own names where they differ.
_FUNNEL_NAMES = {"all": "invited", "answered": "completed"}
_FUNNEL_COUNTS = {_FUNNEL_NAMES.get(key, key): condition for key, (_label, condition) in CONTACT_FILTERS.items()}

NO_SEGMENT = "No segment"


def _with_invitation_email(invitations: QuerySet[Invitation]) -> QuerySet[Invitation]:
    """Each contact with its invitation email's status, time sent and reason (one join: one row per kind)."""
    return invitations.annotate(
        invitation_email=FilteredRelation("emails", condition=Q(emails__kind=EmailKind.INVITATION)),
        email_status=F("invitation_email__status"),
        email_sent_at=F("invitation_email__sent_at"),
        email_error=F("invitation_email__error"),
    )


def wave_contacts(wave: Wave, status: str = "all") -> QuerySet[Invitation]:
    """
    The wave's contacts for the contact list, filtered by ``status`` (a key of
    CONTACT_FILTERS), each with its invitation email's status and how many
    reminders reached it.
    """
    _label, condition = CONTACT_FILTERS[status]
    reminders_sent = (
        InvitationEmail.objects.filter(
            invitation=OuterRef("pk"), kind__in=[EmailKind.REMINDER_1, EmailKind.REMINDER_2], status=EmailStatus.SENT
        )
        .order_by()
        .values("invitation")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return (
        _with_invitation_email(wave.invitations.all())
        .filter(condition)
        .annotate(reminders_sent=Coalesce(Subquery(reminders_sent), 0))
        .order_by("email")
    )


def invitation_funnel(wave: Wave) -> dict:
    """
    How far the wave's contacts got: invited (contacts), their invitation
    email queued, sent or failed, then opened, started, completed, and
    unsubscribed; the same per segment with the response rate (completed per
    email sent, None when nothing was sent).
    """
    rows = (
        _with_invitation_email(wave.invitations.all())
        .values("segment")
        .annotate(**{name: Count("id", filter=condition) for name, condition in _FUNNEL_COUNTS.items()})
        .order_by("segment")
    )
    totals = dict.fromkeys(_FUNNEL_COUNTS, 0)
    segments = []
    for row in rows:
        for name in _FUNNEL_COUNTS:
            totals[name] += row[name]
        segments.append(
            {
                "name": row["segment"] or NO_SEGMENT,
                **{name: row[name] for name in ("invited", "sent", "opened", "started", "completed")},
                "response_rate": row["completed"] / row["sent"] if row["sent"] else None,
            }
        )
    # Named segments first, alphabetically; contacts without one last.
    segments.sort(key=lambda s: (s["name"] == NO_SEGMENT, s["name"].lower()))
    steps = [
        (label, totals[name], round(100 * totals[name] / totals["invited"]) if totals["invited"] else 0)
        for name, label in (
            ("invited", "Invited"),
            ("sent", "Email sent"),
            ("opened", "Opened the link"),
            ("started", "Started answering"),
            ("completed", "Answered"),
        )
    ]
    return {
        **totals,
        "response_rate": totals["completed"] / totals["sent"] if totals["sent"] else None,
        "steps": steps,
        "segments": segments,
    }


def contact_filters(wave: Wave) -> list[tuple[str, str, int]]:
    """The contact list's filters as (key, label, how many contacts it shows)."""
    funnel = invitation_funnel(wave)
    return [(key, label, funnel[_FUNNEL_NAMES.get(key, key)]) for key, (label, _condition) in CONTACT_FILTERS.items()]


def invitations_to_send_count(wave: Wave) -> int:
    """
    How many contacts "Send invitations" would email now: no invitation email
    yet or one that was not sent (cancelled), neither answered nor unsubscribed.
    """
    emailed = InvitationEmail.objects.filter(invitation=OuterRef("pk"), kind=EmailKind.INVITATION).exclude(
        status=EmailStatus.CANCELLED
    )
    return (
        mailing.sendable(wave.invitations.all())
        .exclude(Exists(emailed))
        .count()
    )


def invitation_emails_failed_count(wave: Wave) -> int:
    """Failed emails that "Retry" would queue again (contacts who answered or unsubscribed are left out)."""
    return InvitationEmail.objects.filter(
        invitation__wave=wave,
        invitation__unsubscribed_at__isnull=True,
        invitation__completed_at__isnull=True,
        status=EmailStatus.FAILED,
    ).count()


@dataclass(frozen=True)
class EmailPreview:
    invitation: Invitation
    composed: mailing.Composed
    # No contacts yet: a made-up one, whose link leads nowhere.
    sample: bool


SAMPLE_CONTACT = {"name": "Alex Example", "email": "alex@example.com"}


def invitation_email_preview(wave: Wave, invitation_id: int | None = None) -> EmailPreview:
    """The invitation email as one contact (the chosen one, else the first) would receive it."""
    contacts = wave.invitations.order_by("email")
    invitation = (contacts.filter(pk=invitation_id).first() if invitation_id else None) or contacts.first()
    sample = invitation is None
    if sample:
        invitation = Invitation(wave=wave, **SAMPLE_CONTACT)
    link, unsubscribe_link = mailing.invitation_links(invitation)
    composed = mailing.email_compose(wave=wave, name=invitation.name, link=link, unsubscribe_link=unsubscribe_link)
    return EmailPreview(invitation=invitation, composed=composed, sample=sample)
