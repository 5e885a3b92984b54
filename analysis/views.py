"""Consultant endpoints of the analysis: the JSON document, the recompute button, theme curation and item exports."""

import io

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseNotFound, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from surveys import selectors as survey_selectors
from surveys.models import AnswerItem, QuestionKey

from . import exports, selectors, services
from .forms import ItemMoveForm, ThemeDetailForm, ThemeMergeForm, ThemeRenameForm
from .models import AnalysisRun


def _wave_number(request) -> int | None:
    value = request.GET.get("wave")
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise Http404("Wave must be a number.") from None


@login_required
@require_GET
def analysis_api(request, slug):
    """The served analysis document of a wave (the latest unless ?wave=N), as `analyze --json` prints it."""
    wave = selectors.wave_for_api(request.user, slug, _wave_number(request))
    run = selectors.run_served(wave)
    pending = selectors.run_in_progress(wave)
    if run is None:
        return JsonResponse(
            {
                "detail": "No analysis has finished for this wave yet.",
                "status": pending.status if pending else None,
            },
            status=404,
        )
    response = JsonResponse(run.result, json_dumps_params={"ensure_ascii": False})
    response["X-Analysis-Run"] = str(run.pk)
    if pending is not None:
        response["X-Analysis-Pending"] = pending.status
    return response


@login_required
@require_POST
def analysis_recompute(request, slug, number):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)
    messages.success(request, "The analysis is being recomputed; the page shows the last result until it finishes.")
    return redirect("surveys:wave_detail", slug=slug, number=number)


# --- Theme curation ---------------------------------------------------------------


def _theme_choices(run, exclude: int | None = None) -> list[tuple[int, str]]:
    """Themes of the served run, by label, for merge and move drop-downs."""
    seen: dict[int, str] = {}
    for question in (run.result or {}).get("questions", {}).values():
        for theme in question.get("themes", []):
            seen.setdefault(theme["theme_id"], theme["label"])
    return sorted(((tid, label) for tid, label in seen.items() if tid != exclude), key=lambda c: c[1].lower())


def _questions_in_wave_order(wave, run) -> dict:
    """The run's questions in the wave's order: PostgreSQL's jsonb keeps no key order."""
    questions = (run.result or {}).get("questions", {}) if run else {}
    order = {key: n for n, key in enumerate(wave.questions.values_list("key", flat=True))}
    return dict(sorted(questions.items(), key=lambda entry: order.get(entry[0], len(order))))


@login_required
@require_GET
def theme_list(request, slug, number):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    run = selectors.run_served(wave)
    return render(
        request,
        "analysis/theme_list.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "run": run,
            "pending": selectors.run_in_progress(wave),
            "questions": _questions_in_wave_order(wave, run),
        },
    )


@login_required
@require_GET
def theme_detail(request, slug, number, theme_id):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    theme = selectors.theme_for_user(request.user, slug, theme_id)
    run = selectors.run_served(wave)
    if run is None:
        raise Http404("No analysis yet.")
    if theme.pk not in dict(_theme_choices(run)):
        # The served run leaves this theme out: merged away, emptied by moves, or raised only by a
        # group too small to show. In the last case its engine label and keywords come from answers
        # nobody may see (the label is often one of them, word for word): never render it.
        if theme.merged_into_id:
            return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.merged_into_id)
        messages.info(request, "That theme is not in the latest analysis of this wave.")
        return redirect("analysis:theme_list", slug=slug, number=number)
    hidden = selectors.suppressed_groups(run.result)
    # The run stored the theme's item ids in page order: page through them, load one page of rows.
    page = Paginator(selectors.theme_items(run, theme.pk, hidden_groups=hidden), 50).get_page(request.GET.get("page"))
    rows = AnswerItem.objects.select_related("respondent").in_bulk(list(page.object_list))
    page.object_list = [rows[pk] for pk in page.object_list if pk in rows]
    choices = _theme_choices(run, exclude=theme.pk)
    return render(
        request,
        "analysis/theme_detail.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "theme": theme,
            "run": run,
            "page": page,
            "rename_form": ThemeRenameForm(initial={"label": theme.display_label}),
            "merge_form": ThemeMergeForm(choices=choices),
            "move_choices": choices,
            "hidden_groups": sorted(hidden),
        },
    )


@login_required
@require_POST
def theme_detail_set(request, slug, number, question):
    """Coarser or finer themes under one question; re-analysed at once."""
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    if question not in QuestionKey.values:
        raise Http404("No such question.")
    form = ThemeDetailForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose coarser, standard or finer themes.")
        return redirect("analysis:question_dashboard", slug=slug, number=number, question=question)
    try:
        setting = services.theme_detail_set(engagement=wave.engagement, question=question, detail=form.cleaned_data["detail"])
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("analysis:question_dashboard", slug=slug, number=number, question=question)
    _recompute_after_edit(wave)
    messages.success(
        request, f"Themes here will be {setting.get_detail_display().lower()} once the analysis has run again (a minute or so)."
    )
    return redirect("analysis:question_dashboard", slug=slug, number=number, question=question)


def _recompute_after_edit(wave) -> None:
    services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.CURATION, countdown=0)


@login_required
@require_POST
def theme_rename(request, slug, number, theme_id):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    theme = selectors.theme_for_user(request.user, slug, theme_id)
    form = ThemeRenameForm(request.POST)
    if form.is_valid():
        try:
            services.theme_rename(theme=theme, label=form.cleaned_data["label"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            _recompute_after_edit(wave)
            messages.success(request, f"Theme renamed to “{theme.display_label}”. It keeps this name in later analyses.")
    else:
        if form.has_error("label", "required"):
            messages.error(request, "Give the theme a name (at most 200 characters).")
        else:
            messages.error(request, "Theme name: " + " ".join(form.errors["label"]))
    return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.pk)


@login_required
@require_POST
def theme_merge(request, slug, number, theme_id):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    theme = selectors.theme_for_user(request.user, slug, theme_id)
    run = selectors.run_served(wave)
    form = ThemeMergeForm(request.POST, choices=_theme_choices(run, exclude=theme.pk) if run else [])
    if not form.is_valid():
        messages.error(request, "Choose the theme to merge into.")
        return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.pk)
    target = selectors.theme_for_user(request.user, slug, form.cleaned_data["target"])
    try:
        target = services.theme_merge(source=theme, target=target)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.pk)
    _recompute_after_edit(wave)
    messages.success(request, f"“{theme.display_label}” merged into “{target.display_label}”.")
    return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=target.pk)


@login_required
@require_POST
def item_move(request, slug, number, theme_id):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    theme = selectors.theme_for_user(request.user, slug, theme_id)
    run = selectors.run_served(wave)
    form = ItemMoveForm(request.POST, choices=_theme_choices(run) if run else [])
    if not form.is_valid():
        messages.error(request, "Tick the items to move and choose the theme to move them to.")
        return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.pk)
    items = list(AnswerItem.objects.filter(pk__in=form.cleaned_data["item"], respondent__wave=wave))
    if len(items) != len(set(form.cleaned_data["item"])):
        raise Http404("No such item in this wave.")
    target = selectors.theme_for_user(request.user, slug, form.cleaned_data["theme"])
    try:
        services.items_move(items=items, theme=target, user=request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        _recompute_after_edit(wave)
        moved = f"{len(items)} items" if len(items) != 1 else "Item"
        messages.success(request, f"{moved} moved to “{target.display_label}”; they stay there in later analyses.")
    return redirect("analysis:theme_detail", slug=slug, number=number, theme_id=theme.pk)


# --- Item exports -------------------------------------------------------------------


NO_RUN_TO_EXPORT = "No analysis has finished for this wave yet, so there are no themes to export. Try again shortly."


def _no_run_to_export() -> HttpResponseNotFound:
    # Plain text, not the generic 404 page: it says why and that it is temporary.
    return HttpResponseNotFound(NO_RUN_TO_EXPORT, content_type="text/plain; charset=utf-8")


def _export_filename(wave, extension: str) -> str:
    return f"{wave.engagement.slug}-wave{wave.number}-items.{extension}"


@login_required
@require_GET
def export_csv(request, slug, number):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    run = selectors.run_served(wave)
    if run is None:
        return _no_run_to_export()
    # Streamed: 60,000 items never sit in memory as one string.
    response = StreamingHttpResponse(exports.csv_lines(exports.item_rows(wave, run)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_export_filename(wave, "csv")}"'
    return response


@login_required
@require_GET
def export_xlsx(request, slug, number):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    run = selectors.run_served(wave)
    if run is None:
        return _no_run_to_export()
    # An XLSX file is a zip archive written at the end: it is built in memory, then sent.
    buffer = io.BytesIO()
    exports.write_xlsx(exports.item_rows(wave, run), buffer)
    response = HttpResponse(
        buffer.getvalue(), content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    response["Content-Disposition"] = f'attachment; filename="{_export_filename(wave, "xlsx")}"'
    return response
