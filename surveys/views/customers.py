"""Customers: personal invitation links, the open link, and the consultant's contact list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import mailing, selectors, services
from ..contacts import parse_contacts, read_upload
from ..forms import AnswerSheet, ContactsForm, SegmentForm, SubmissionKeyForm, new_submission_key
from ..models import Group, Respondent
from ..services import SubmissionRefused
from .answering import refusal_page
from .links import absolute_url


def _customer_page(request, *, wave, sheet, extra_forms=(), key_form=None, **context):
    return render(
        request,
        "public/answer.html",
        {
            "title": f"Your experience with {wave.engagement.name}",
            "intro": (
                f"Tell {wave.engagement.name} how it really is: list short items, one idea each, "
                "then give your ratings. It takes about five minutes."
            ),
            "wave": wave,
            "sheet": sheet,
            "extra_forms": extra_forms,
            "key_form": key_form,
            "submit_label": "Send my answers",
            **context,
        },
    )


@require_http_methods(["GET", "POST"])
def customer_answer(request, token):
    invitation = selectors.invitation_by_token(token)
    wave = invitation.wave
    if Respondent.objects.filter(invitation=invitation).exists():
        return refusal_page(request, SubmissionRefused.ALREADY_ANSWERED, wave=wave)
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    if request.method == "GET":
        services.invitation_mark_opened(invitation=invitation)
    else:
        mailing.invitation_mark_started(invitation=invitation)
    sheet = AnswerSheet(wave, Group.CUSTOMER, data=request.POST or None)
    if request.method == "POST" and sheet.is_valid():
        try:
            services.invitation_submit(invitation=invitation, answers=sheet.answers())
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            sheet.add_service_errors(error)
        else:
            return redirect("public:customer_done", token=token)
    return _customer_page(request, wave=wave, sheet=sheet, greeting_name=invitation.name)


@require_POST
def customer_started(request, token):
    """The answer page's first keystroke: the funnel's "started" step."""
    invitation = selectors.invitation_by_token(token)
    mailing.invitation_mark_started(invitation=invitation)
    return HttpResponse(status=204)


# One-click unsubscribe (RFC 8058): the mail client posts without a CSRF token.
# The unguessable token is the authority, and the only effect is fewer emails.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def customer_unsubscribe(request, token):
    invitation = selectors.invitation_by_token(token)
    if request.method == "POST":
        mailing.invitation_unsubscribe(invitation=invitation)
        invitation.refresh_from_db()
    return render(
        request,
        "public/unsubscribe.html",
        {
            "wave": invitation.wave,
            "invitation": invitation,
            "answered": Respondent.objects.filter(invitation=invitation).exists(),
        },
    )


@require_GET
def customer_done(request, token):
    invitation = selectors.invitation_by_token(token)
    if not Respondent.objects.filter(invitation=invitation).exists():
        return redirect("public:customer_answer", token=token)
    return render(request, "public/thanks.html", {"wave": invitation.wave})


@require_http_methods(["GET", "POST"])
def open_answer(request, token):
    wave = selectors.wave_by_open_link_token(token)
    if not wave.open_link_enabled:
        return refusal_page(request, SubmissionRefused.LINK_DISABLED, wave=wave)
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    sheet = AnswerSheet(wave, Group.CUSTOMER, data=request.POST or None)
    segment_form = SegmentForm(request.POST or None)
    key_form = SubmissionKeyForm(request.POST or None, initial={"submission_key": new_submission_key()})
    if request.method == "POST" and all([sheet.is_valid(), segment_form.is_valid(), key_form.is_valid()]):
        try:
            services.open_link_submit(
                wave=wave,
                answers=sheet.answers(),
                segment=segment_form.cleaned_data["segment"],
                submission_key=key_form.cleaned_data["submission_key"],
            )
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            sheet.add_service_errors(error)
        else:
            return redirect("public:open_thanks", token=token)
    return _customer_page(request, wave=wave, sheet=sheet, extra_forms=[segment_form], key_form=key_form)


@require_GET
def open_thanks(request, token):
    wave = selectors.wave_by_open_link_token(token)
    return render(
        request,
        "public/thanks.html",
        {"wave": wave, "again_url": reverse("public:open_answer", args=[token])},
    )


# --- Consultant ------------------------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def invitation_list(request, slug, number):
    """The wave's customer contacts with their personal links; add more by paste or upload."""
    wave = selectors.wave_for_user(request.user, slug, number)
    form = ContactsForm(request.POST or None, request.FILES or None)
    errors: list[str] = []
    if request.method == "POST" and form.is_valid():
        upload, pasted = form.cleaned_data.get("upload"), form.cleaned_data.get("pasted", "")
        if upload:
            text, problem = read_upload(upload)
            contacts, errors = ([], [problem]) if problem else parse_contacts(text, has_header=True)
        else:
            has_header = pasted.lstrip().lower().startswith("email")
            contacts, errors = parse_contacts(pasted, has_header=has_header)
        if not errors:
            try:
                created, merged = services.invitations_create(wave=wave, contacts=contacts)
            except ValidationError as error:
                errors = error.messages
            else:
                note = f" {merged} duplicate{'s' if merged != 1 else ''} merged." if merged else ""
                messages.success(request, f"{created} customer link{'s' if created != 1 else ''} created.{note}")
                return redirect("surveys:invitation_list", slug=slug, number=number)
    page = Paginator(wave.invitations.select_related("respondent").order_by("email"), 50).get_page(
        request.GET.get("page")
    )
    for invitation in page.object_list:
        invitation.link = absolute_url(request, reverse("public:customer_answer", args=[invitation.token]))
    return render(
        request,
        "surveys/invitation_list.html",
        {"engagement": wave.engagement, "wave": wave, "form": form, "import_errors": errors, "page": page},
    )
