"""Reads of the collection side. Loaders that take a user 404 outside their workspace."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Q, QuerySet, Sum
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Engagement, Group, Invitation, Respondent, Wave, WorkshopSession


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


def wave_by_staff_token(token: str) -> Wave:
    return get_object_or_404(Wave.objects.select_related("engagement"), staff_token=token)


def wave_by_open_link_token(token: str) -> Wave:
    return get_object_or_404(Wave.objects.select_related("engagement"), open_link_token=token)


def staff_sheet_by_edit_token(token: str) -> Respondent:
    return get_object_or_404(
        Respondent.objects.select_related("wave__engagement"), edit_token=token, group=Group.STAFF
    )


def invitation_by_token(token: str) -> Invitation:
    return get_object_or_404(Invitation.objects.select_related("wave__engagement"), token=token)


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
