"""Staff group sheets: the shared staff link, a draft's private link, paper sheets."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from .. import selectors, services
from ..forms import AnswerSheet, SheetDetailsForm, SubmissionKeyForm, new_submission_key
from ..models import Group, Respondent, Wave
from ..services import Answers, ItemInput, RatingInput, SubmissionRefused
from .answering import refusal_page


def _sheet_answers(sheet: Respondent) -> Answers:
    """A stored sheet as Answers, to fill the form when a draft is reopened."""
    ratings = [RatingInput(item_key=r.item.key, value=r.value, votes=r.votes) for r in sheet.ratings.select_related("item")]
    items = [ItemInput(question_key=i.question_key, text=i.text, tag=i.tag) for i in sheet.items.all()]
    return Answers(items=items, ratings=ratings)


def _sheet_page(request, *, wave: Wave, sheet: Respondent | None, channel: str, template: str, context: dict):
    """
    Show and take a staff sheet. "Save draft" keeps a partial sheet and gives
    its private link; "Submit" validates the whole sheet and makes it final.
    """
    submitting = request.method == "POST" and "submit" in request.POST
    departments = list(wave.engagement.departments.values_list("name", flat=True))
    initial_details = (
        {"group_name": sheet.group_name, "department": sheet.department, "members": sheet.members} if sheet else None
    )
    details_form = SheetDetailsForm(request.POST or None, initial=initial_details, departments=departments)
    answer_sheet = AnswerSheet(
        wave,
        Group.STAFF,
        data=request.POST or None,
        initial=_sheet_answers(sheet) if sheet else None,
        complete=submitting or channel == Respondent.Channel.PAPER,
    )
    key_form = SubmissionKeyForm(request.POST or None, initial={"submission_key": new_submission_key()})
    if request.method == "POST" and all([details_form.is_valid(), answer_sheet.is_valid(), key_form.is_valid()]):
        details = details_form.details()
        try:
            saved = services.staff_sheet_save(
                wave=wave,
                sheet=sheet,
                details=details,
                answers=answer_sheet.answers(),
                submit=submitting or channel == Respondent.Channel.PAPER,
                channel=channel,
                submission_key=key_form.cleaned_data["submission_key"],
            )
        except SubmissionRefused as refused:
            return refusal_page(request, refused.reason, wave=wave)
        except ValidationError as error:
            answer_sheet.add_service_errors(error)
        else:
            return None, saved
    return (
        render(
            request,
            template,
            {
                **context,
                "wave": wave,
                "sheet": answer_sheet,
                "details_form": details_form,
                "departments": departments,
                "key_form": key_form,
                "staff_sheet": sheet,
            },
        ),
        None,
    )


@require_http_methods(["GET", "POST"])
def staff_start(request, token):
    wave = selectors.wave_by_staff_token(token)
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    response, saved = _sheet_page(
        request,
        wave=wave,
        sheet=None,
        channel=Respondent.Channel.STAFF_LINK,
        template="public/staff_sheet.html",
        context={"title": f"{wave.engagement.name} — staff group sheet", "staff_token": token},
    )
    if saved is not None:
        return _after_save(request, saved)
    return response


@require_http_methods(["GET", "POST"])
def staff_sheet(request, token):
    sheet = selectors.staff_sheet_by_edit_token(token)
    wave = sheet.wave
    if sheet.status == Respondent.Status.SUBMITTED:
        return render(request, "public/staff_submitted.html", {"wave": wave, "staff_sheet": sheet})
    if not wave.is_open:
        return refusal_page(request, SubmissionRefused.WAVE_CLOSED, wave=wave)
    response, saved = _sheet_page(
        request,
        wave=wave,
        sheet=sheet,
        channel=sheet.channel,
        template="public/staff_sheet.html",
        context={"title": f"{wave.engagement.name} — staff group sheet", "staff_token": wave.staff_token},
    )
    if saved is not None:
        return _after_save(request, saved)
    return response


def _after_save(request, sheet: Respondent):
    if sheet.status == Respondent.Status.SUBMITTED:
        return render(request, "public/staff_submitted.html", {"wave": sheet.wave, "staff_sheet": sheet, "just_now": True})
    messages.success(
        request,
        "Draft saved. Keep this page's address (bookmark it) to come back and finish the sheet before you submit.",
    )
    return redirect("public:staff_sheet", token=sheet.edit_token)


@require_GET
def staff_print(request, token):
    wave = selectors.wave_by_staff_token(token)
    return _print_page(request, wave)


def _print_page(request, wave: Wave):
    return render(
        request,
        "public/staff_print.html",
        {
            "wave": wave,
            "questions": [(q, q.text_for(Group.STAFF)) for q in wave.questions.all()],
            "rating_items": [(i, i.label_for(Group.STAFF)) for i in wave.rating_items.all()],
            "departments": wave.engagement.departments.all(),
            "item_lines": range(6),
        },
    )


# --- Consultant ------------------------------------------------------------------


@login_required
@require_GET
def sheet_list(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    sheets = (
        wave.respondents.filter(group=Group.STAFF)
        .annotate(item_count=Count("items"))
        .order_by("department", "group_name", "id")
    )
    page = Paginator(sheets, 50).get_page(request.GET.get("page"))
    return render(request, "surveys/sheet_list.html", {"engagement": wave.engagement, "wave": wave, "page": page})


@login_required
@require_http_methods(["GET", "POST"])
def sheet_enter(request, slug, number):
    """The consultant types in a paper sheet; it is submitted at once."""
    wave = selectors.wave_for_user(request.user, slug, number)
    if not wave.is_open:
        messages.error(request, "This wave is closed; reopen it to type in paper sheets.")
        return redirect("surveys:wave_detail", slug=slug, number=number)
    response, saved = _sheet_page(
        request,
        wave=wave,
        sheet=None,
        channel=Respondent.Channel.PAPER,
        template="surveys/sheet_enter.html",
        context={"engagement": wave.engagement},
    )
    if saved is not None:
        messages.success(request, f"Paper sheet “{saved.group_name}” ({saved.department}) stored.")
        if "another" in request.POST:
            return redirect("surveys:sheet_enter", slug=slug, number=number)
        return redirect("surveys:sheet_list", slug=slug, number=number)
    return response


@login_required
@require_GET
def sheet_print(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    return _print_page(request, wave)
