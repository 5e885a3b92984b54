"""Leadership workshop: the facilitator's screen and the leaders' join-and-answer pages."""

import io

import segno
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseNotFound, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from gapsurvey import throttle

from analysis import exports
from analysis import reveal as analysis_reveal

from .. import selectors, services
from ..forms import (
    AnswerSheet,
    JoinForm,
    PredictionForm,
    SessionOpenForm,
    SessionPredictionsForm,
    SubmissionKeyForm,
    new_submission_key,
)
from ..models import PREDICTED_ITEMS_MAX, Group, Respondent, WorkshopSession
from ..services import SubmissionRefused
from .answering import refusal_page
from .links import absolute_url

# Leaders who answered on this browser, so a reload of the form does not invite a second answer.
ANSWERED_SESSIONS_KEY = "answered_workshop_sessions"
# Session id -> the respondent id of the leader who last answered on this browser: their predictions
# are tied to their own answers. Kept server-side in the signed session, never in the page.
LEADER_RESPONDENT_KEY = "workshop_leader_respondents"

PREDICTED_NOUNS = selectors.REVEAL_NOUNS


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
        if form.cleaned_data["predict_customers"]:
            session = services.session_predictions_set(session=session, predict_customers=True, predict_staff=False)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("surveys:wave_detail", slug=slug, number=number)
    messages.success(request, f"Workshop session open: leaders join with code {session.code}.")
    return redirect("surveys:session_detail", slug=slug, number=number, session_id=session.pk)


@login_required
@require_GET
def session_detail(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    counts = selectors.session_live_counts(session)
    return render(
        request,
        "surveys/session_detail.html",
        {
            "engagement": session.wave.engagement,
            "wave": session.wave,
            "session": session,
            "join_url": _join_url(request, session),
            "join_page": absolute_url(request, reverse("public:join")),
            "count": counts["submitted"],
            "predicted": counts["predicted"],
            "predictions_form": SessionPredictionsForm(
                initial={"predict_customers": session.predict_customers, "predict_staff": session.predict_staff}
            ),
            "reveal": None if session.is_open else analysis_reveal.reveal_state(session.wave),
            "predicted_nouns": PREDICTED_NOUNS,
        },
    )


@login_required
@require_GET
@never_cache
def session_status(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    counts = selectors.session_live_counts(session)
    return JsonResponse(
        {
            "code": session.code,
            "status": session.status,
            "submitted": counts["submitted"],
            "predicted": counts["predicted"],
            "predicting": session.predicted_groups,
        }
    )


@login_required
@require_POST
def session_predictions(request, slug, number, session_id):
    """The facilitator switches the leaders' predictions on or off for this session."""
    session = selectors.session_for_user(request.user, slug, number, session_id)
    form = SessionPredictionsForm(request.POST)
    form.is_valid()  # two check boxes: always valid
    try:
        services.session_predictions_set(
            session=session,
            predict_customers=form.cleaned_data["predict_customers"],
            predict_staff=form.cleaned_data["predict_staff"],
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if session.predict_customers:
            also = " and then the staff's" if session.predict_staff else ""
            messages.success(request, f"After their own answers, leaders will predict the customers' view{also}.")
        else:
            messages.success(request, "Leaders will not be asked for predictions.")
    return redirect("surveys:session_detail", slug=slug, number=number, session_id=session.pk)


@login_required
@require_POST
def session_close(request, slug, number, session_id):
    session = selectors.session_for_user(request.user, slug, number, session_id)
    session = services.session_close(session=session, compute_reveal=True)
    counts = selectors.session_live_counts(session)
    note = f"Session {session.code} closed with {counts['submitted']} leader answers; the code no longer works."
    if session.predicted_groups:
        predicted = ", ".join(f"{counts['predicted'][g]} predicted the {PREDICTED_NOUNS[g]}" for g in session.predicted_groups)
        note += f" {predicted[0].upper()}{predicted[1:]}."
    messages.success(request, note)
    # Say what the reveal lacks now, not when the projector is already on.
    for missing in selectors.reveal_missing(session):
        messages.warning(request, missing)
    return redirect("surveys:session_detail", slug=slug, number=number, session_id=session.pk)


@login_required
@require_GET
def session_reveal(request, slug, number, session_id):
    """The facilitator's projector: the reveal, step by step, team figures only."""
    session = selectors.session_for_user(request.user, slug, number, session_id)
    target = request.GET.get("group", Group.CUSTOMER)
    if target not in PREDICTED_NOUNS:
        raise Http404("No such group.")
    state = analysis_reveal.reveal_state(session.wave)
    run = state["run"]
    return render(
        request,
        "surveys/reveal.html",
        {
            "engagement": session.wave.engagement,
            "wave": session.wave,
            "session": session,
            "state": state,
            "target": target,
            "noun": PREDICTED_NOUNS[target],
            "possessive": selectors.REVEAL_POSSESSIVES[target],
            "other_target": Group.STAFF if target == Group.CUSTOMER else Group.CUSTOMER,
            "has_other": bool((state["targets"].get(Group.STAFF if target == Group.CUSTOMER else Group.CUSTOMER) or {}).get("leaders")),
            "steps": analysis_reveal.reveal_steps(run.result, target) if run and state["computed"] else None,
        },
    )


@login_required
@require_GET
def predictions_accuracy(request, slug, number):
    """The consultant's view of the forecasts: team and each leader's accuracy (never on the projector)."""
    wave = selectors.wave_for_user(request.user, slug, number)
    state = analysis_reveal.reveal_state(wave)
    return render(
        request,
        "surveys/predictions_accuracy.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "state": state,
            "blocks": [(PREDICTED_NOUNS[g], state["targets"].get(g)) for g in (Group.CUSTOMER, Group.STAFF)],
            "sessions": wave.sessions.all(),
        },
    )


def _predictions_export(request, slug, number, extension: str):
    wave = selectors.wave_for_user(request.user, slug, number)
    run = analysis_reveal.reveal_state(wave)["run"]
    if run is None:
        return HttpResponseNotFound(
            "No analysis has finished for this wave yet, so there are no matched themes to export. Try again shortly.",
            content_type="text/plain; charset=utf-8",
        )
    filename = f"{wave.engagement.slug}-wave{wave.number}-predicted-items.{extension}"
    if extension == "csv":
        response = HttpResponse(
            "".join(exports.csv_lines(exports.predicted_item_rows(run))), content_type="text/csv; charset=utf-8"
        )
    else:
        buffer = io.BytesIO()
        exports.write_xlsx(exports.predicted_item_rows(run), buffer)
        response = HttpResponse(
            buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@require_GET
def predictions_export_csv(request, slug, number):
    return _predictions_export(request, slug, number, "csv")


@login_required
@require_GET
def predictions_export_xlsx(request, slug, number):
    return _predictions_export(request, slug, number, "xlsx")


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
            respondent = services.leader_submit(
                session=session, answers=sheet.answers(), submission_key=key_form.cleaned_data["submission_key"]
            )
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            sheet.add_service_errors(error)
        else:
            request.session[ANSWERED_SESSIONS_KEY] = request.session.get(ANSWERED_SESSIONS_KEY, []) + [session.pk]
            request.session[LEADER_RESPONDENT_KEY] = {
                **request.session.get(LEADER_RESPONDENT_KEY, {}),
                str(session.pk): respondent.pk,
            }
            if session.predicted_groups:
                return redirect("public:leader_predict", code=session.code, group=session.predicted_groups[0])
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


def _browser_leader(request, session: WorkshopSession) -> Respondent | None:
    """The leader who answered in this session on this browser, if any."""
    respondent_id = request.session.get(LEADER_RESPONDENT_KEY, {}).get(str(session.pk))
    if respondent_id is None:
        return None
    return Respondent.objects.filter(
        pk=respondent_id, session=session, group=Group.LEADERSHIP, status=Respondent.Status.SUBMITTED
    ).first()


@require_http_methods(["GET", "POST"])
def leader_predict(request, code, group):
    """After answering for themselves, a leader predicts what customers (then staff) said."""
    session = selectors.session_by_code(code)
    wave = session.wave
    if group not in session.predicted_groups:
        raise Http404("This session does not ask for that prediction.")
    if not session.is_open:
        return refusal_page(request, SubmissionRefused.SESSION_CLOSED, wave=wave)
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    leader = _browser_leader(request, session)
    if leader is None:
        messages.info(request, "Answer for yourself first; the predictions come next.")
        return redirect("public:leader_answer", code=session.code)
    form = PredictionForm(
        wave, group, data=request.POST or None, initial_prediction=selectors.leader_prediction(leader.pk, group)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.prediction_submit(session=session, respondent=leader, target=group, prediction=form.prediction())
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            form.service_errors.extend(error.messages)
        else:
            groups = session.predicted_groups
            following = groups[groups.index(group) + 1 :]
            if following:
                return redirect("public:leader_predict", code=session.code, group=following[0])
            return redirect("public:leader_thanks", code=session.code)
    noun = PREDICTED_NOUNS[group]
    return render(
        request,
        "public/predict.html",
        {
            "title": f"What did {noun} say about {wave.engagement.name}?",
            "wave": wave,
            "session": session,
            "group": group,
            "noun": noun,
            "form": form,
            "items_max": PREDICTED_ITEMS_MAX,
            "step": session.predicted_groups.index(group) + 2,
            "steps": len(session.predicted_groups) + 1,
        },
    )


@require_GET
def leader_thanks(request, code):
    session = selectors.session_by_code(code)
    leader = _browser_leader(request, session) if session.is_open else None
    missing = []
    if leader is not None:
        predicted = set(leader.predictions.values_list("target", flat=True))
        missing = [g for g in session.predicted_groups if g not in predicted]
    return render(
        request,
        "public/leader_thanks.html",
        {
            "session": session,
            "wave": session.wave,
            "missing_prediction": missing[0] if missing else None,
            "missing_noun": PREDICTED_NOUNS.get(missing[0]) if missing else None,
            "missing_possessive": selectors.REVEAL_POSSESSIVES.get(missing[0]) if missing else None,
        },
    )
