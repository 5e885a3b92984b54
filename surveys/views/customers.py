"""Customers: personal invitation links, the open link, and the consultant's contact list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .. import mailing, selectors, services
from ..contacts import parse_contacts, read_upload
from ..forms import (
    AnswerSheet,
    ContactsEraseForm,
    ContactsForm,
    InvitationWordingForm,
    SegmentForm,
    SubmissionKeyForm,
    new_submission_key,
)
from ..mailing import DEFAULT_BODY
from ..models import Group, Respondent
from ..services import SubmissionRefused
from .answering import refusal_page
from .consultant import _add_errors
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
    sheet = AnswerSheet(wave, Group.CUSTOMER, data=request.POST or None)
    if request.method == "POST" and sheet.is_valid():
        try:
            # Marks every funnel step, "started" included.
            services.invitation_submit(invitation=invitation, answers=sheet.answers())
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            sheet.add_service_errors(error)
        else:
            return redirect("public:customer_done", token=token)
    if request.method == "POST":
        # Answers that came back with errors: the customer started all the same.
        mailing.invitation_mark_started(invitation=invitation)
    return _customer_page(
        request,
        wave=wave,
        sheet=sheet,
        greeting_name=invitation.name,
        # The answer page's script reports the first keystroke here (the funnel's "started").
        started_url=reverse("public:customer_started", args=[token]),
    )


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
    status = request.GET.get("status", "all")
    if status not in selectors.CONTACT_FILTERS:
        status = "all"
    page = Paginator(selectors.wave_contacts(wave, status), 50).get_page(request.GET.get("page"))
    for invitation in page.object_list:
        invitation.link = absolute_url(request, reverse("public:customer_answer", args=[invitation.token]))
    return render(
        request,
        "surveys/invitation_list.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "form": form,
            "import_errors": errors,
            "page": page,
            "status": status,
            "filters": selectors.contact_filters(wave),
            # Kept on the pagination links, so paging stays within the filter.
            "query": "" if status == "all" else f"status={status}&",
        },
    )


# Contacts offered in the preview's drop-down; any other is reached from the contact list.
PREVIEW_CHOICES = 100


@login_required
@require_http_methods(["GET", "POST"])
def invitation_email(request, slug, number):
    """The invitation email's wording and reminder plan, a preview, and the send and retry buttons."""
    wave = selectors.wave_for_user(request.user, slug, number)
    form = InvitationWordingForm(
        request.POST or None,
        initial={
            "invite_subject": wave.invite_subject,
            "invite_body": wave.invite_body,
            "reminders": wave.reminders,
            "reminder_after_days": wave.reminder_after_days,
        },
    )
    if request.method == "POST" and form.is_valid():
        try:
            mailing.invitation_wording_update(
                wave=wave,
                subject=form.cleaned_data["invite_subject"],
                body=form.cleaned_data["invite_body"],
                reminders=form.cleaned_data["reminders"],
                reminder_after_days=form.cleaned_data["reminder_after_days"],
            )
        except ValidationError as error:
            _add_errors(form, error)
            # The service may have set the rejected values on this instance; the preview shows what is saved.
            wave.refresh_from_db()
        else:
            messages.success(request, "Invitation email saved.")
            return redirect("surveys:invitation_email", slug=slug, number=number)
    chosen = _chosen_contact(request)
    return render(
        request,
        "surveys/invitation_email.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "form": form,
            "default_body": DEFAULT_BODY,
            "preview": selectors.invitation_email_preview(wave, chosen),
            "chosen": chosen,
            "contacts": wave.invitations.order_by("email").values("pk", "email", "name")[:PREVIEW_CHOICES],
            "to_send": selectors.invitations_to_send_count(wave),
            "failed": selectors.invitation_emails_failed_count(wave),
        },
    )


@login_required
@require_POST
def contacts_erase(request, slug, number):
    """Erase contacts' personal data on request (one, or all of the wave); their answers stay, anonymous."""
    wave = selectors.wave_for_user(request.user, slug, number)
    form = ContactsEraseForm(request.POST)
    if not form.is_valid():
        messages.error(request, " ".join(form.non_field_errors()) or "Choose what to erase.")
        return redirect("surveys:invitation_list", slug=slug, number=number)
    everyone = form.cleaned_data["everyone"]
    erased = services.contacts_erase(wave=wave, invitation_ids=None if everyone else [form.cleaned_data["contact"]])
    if erased:
        who = f"{erased} contact{'s' if erased != 1 else ''}" if everyone else "The contact"
        messages.success(
            request, f"{who} erased: email address, name and emails sent are gone; any answers stay, anonymous."
        )
    else:
        messages.info(request, "Nothing to erase: that contact is not in this wave (already erased?).")
    return redirect("surveys:invitation_list", slug=slug, number=number)


# The email's own HTML, for the preview frame: emails carry inline styles, so this one
# response gets a policy of its own (no scripts, no fetches, sandboxed) and may be framed
# by this site's pages only.
EMAIL_PREVIEW_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox; frame-ancestors 'self'"


@login_required
@require_GET
@xframe_options_sameorigin
def invitation_email_html(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    preview = selectors.invitation_email_preview(wave, _chosen_contact(request))
    response = HttpResponse(preview.composed.html, content_type="text/html; charset=utf-8")
    response["Content-Security-Policy"] = EMAIL_PREVIEW_POLICY
    return response


def _chosen_contact(request) -> int | None:
    try:
        return int(request.GET.get("contact", ""))
    except ValueError:
        return None


@login_required
@require_POST
def invitations_send(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    try:
        queued = mailing.invitations_send(wave=wave)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        if queued:
            messages.success(
                request,
                f"{queued} invitation{'s' if queued != 1 else ''} queued. They go out in the background; "
                "the contact list shows each one's progress.",
            )
        else:
            messages.info(request, "Nothing to send: every contact has had the invitation, answered or unsubscribed.")
    return redirect("surveys:invitation_email", slug=slug, number=number)


@login_required
@require_POST
def invitation_emails_retry(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    queued = mailing.invitation_emails_retry(wave=wave)
    if queued:
        messages.success(request, f"{queued} failed email{'s' if queued != 1 else ''} queued again.")
    else:
        messages.info(request, "No failed emails to retry.")
    return redirect("surveys:invitation_email", slug=slug, number=number)
