"""Leadership workshop: the facilitator's screen and the leaders' join-and-answer pages."""

import io

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gapsurvey import throttle

from .. import selectors, services
from ..forms import AnswerSheet, JoinForm, SessionOpenForm, SubmissionKeyForm, new_submission_key
from ..models import Group, WorkshopSession
from ..services import SubmissionRefused
from .answering import refusal_page
from .links import absolute_url

# Leaders who answered on this browser, so a reload of the form does not invite a second answer.
ANSWERED_SESSIONS_KEY = "answered_workshop_sessions"


def _join_url(request, session: WorkshopSession) -> str:
    return absolute_url(request, reverse("public:leader_answer", args=[session.code]))


# --- Facilitator (consultant) ----------------------------------------------------


@login_required
@require_POST
def session_open(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    form = SessionOpenForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Session name: " + " ".join(form.errors["name"]))
        return redirect("surveys:wave_detail", slug=slug, number=number)
    try:
        session = services.session_open(wave=wave, opened_by=request.user, name=form.cleaned_data["name"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("surveys:wave_detail", slug=slug, number=number)
    messages.success(request, f"Workshop session open: leaders join with code {session.code}.")
    return redirect("surveys:session_detail", slug=slug, number=number, session_id=session.pk)


@login_required
@require_GET
def session_detail(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    return render(
        request,
        "surveys/session_detail.html",
        {
            "engagement": session.wave.engagement,
            "wave": session.wave,
            "session": session,
            "join_url": _join_url(request, session),
            "join_page": absolute_url(request, reverse("public:join")),
            "count": selectors.session_live_count(session),
        },
    )


@login_required
@require_GET
@never_cache
def session_status(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    return JsonResponse(
        {"code": session.code, "status": session.status, "submitted": selectors.session_live_count(session)}
    )


@login_required
@require_POST
def session_close(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    session = services.session_close(session=session)
    count = selectors.session_live_count(session)
    messages.success(request, f"Session {session.code} closed with {count} leader answers; the code no longer works.")
    return redirect("surveys:session_detail", slug=slug, number=number, session_id=session.pk)


@login_required
@require_GET
def session_qr(request, slug, number, session_id):
    """The join link as a QR code, drawn here so no outside service sees the link."""
    session = selectors.session_for_user(request.user, slug, number, session_id)
    buffer = io.BytesIO()
    segno.make(_join_url(request, session), error="m").save(
        buffer, kind="svg", scale=10, border=2, title=f"Join code {session.code}"
    )
    return HttpResponse(buffer.getvalue(), content_type="image/svg+xml")


# --- Leaders (public) ----------------------------------------------------------


@require_http_methods(["GET", "POST"])
def join(request):
    form = JoinForm(request.POST or request.GET or None)
    if form.is_bound and form.is_valid():
        code = form.cleaned_data["code"]
        session = (
            WorkshopSession.objects.filter(code=code, status=WorkshopSession.Status.OPEN)
            .select_related("wave")
            .first()
        )
        if session is not None and session.wave.is_open:
            return redirect("public:leader_answer", code=session.code)
        form.add_error("code", "No open session has this code. Check the code on the screen and try again.")
        throttle.record(throttle.guesses(), throttle.client_ip(request))  # a wrong code counts as a guess
    return render(request, "public/join.html", {"form": form})


@require_http_methods(["GET", "POST"])
def leader_answer(request, code):
    session = selectors.session_by_code(code)
    wave = session.wave
    if not session.is_open:
        return refusal_page(request, SubmissionRefused.SESSION_CLOSED, wave=wave)
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    if request.method == "GET" and session.pk in request.session.get(ANSWERED_SESSIONS_KEY, []) and "again" not in request.GET:
        return redirect("public:leader_thanks", code=session.code)

    sheet = AnswerSheet(wave, Group.LEADERSHIP, data=request.POST or None)
    key_form = SubmissionKeyForm(request.POST or None, initial={"submission_key": new_submission_key()})
    if request.method == "POST" and key_form.is_valid() and sheet.is_valid():
        try:
            services.leader_submit(
                session=session, answers=sheet.answers(), submission_key=key_form.cleaned_data["submission_key"]
            )
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            sheet.add_service_errors(error)
        else:
            request.session[ANSWERED_SESSIONS_KEY] = request.session.get(ANSWERED_SESSIONS_KEY, []) + [session.pk]
            return redirect("public:leader_thanks", code=session.code)
    return render(
        request,
        "public/answer.html",
        {
            "title": f"{wave.engagement.name} — leadership workshop",
            "intro": "Answer for yourself: list short items, one idea each, then give your ratings.",
            "wave": wave,
            "sheet": sheet,
            "key_form": key_form,
            "submit_label": "Submit my answers",
        },
    )


@require_GET
def leader_thanks(request, code):
    session = selectors.session_by_code(code)
    return render(request, "public/leader_thanks.html", {"session": session, "wave": session.wave})
