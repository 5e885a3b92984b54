"""Consultant pages for engagements, waves, wording and rating items."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from analysis import selectors as analysis_selectors

from .. import selectors, services
from ..forms import (
    DepartmentForm,
    EngagementCreateForm,
    EngagementSettingsForm,
    QuestionWordingFormSet,
    RatingItemForm,
    SessionOpenForm,
    WaveForm,
)
from ..models import Respondent, Workspace
from .links import wave_links


def _add_errors(form, error: ValidationError) -> None:
    """Put a service's ValidationError on the form it came from."""
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, error.messages)


@login_required
@require_GET
def engagement_list(request):
    engagements = selectors.engagements_for_user(request.user)
    workspaces = Workspace.objects.filter(members=request.user)
    return render(
        request,
        "surveys/engagement_list.html",
        {"engagements": engagements, "form": EngagementCreateForm(), "has_workspace": workspaces.exists()},
    )


@login_required
@require_http_methods(["GET", "POST"])
def engagement_create(request):
    workspace = Workspace.objects.filter(members=request.user).order_by("id").first()
    if workspace is None:
        messages.error(request, "You are not a member of any workspace yet; ask your administrator to add you.")
        return redirect("surveys:engagement_list")
    form = EngagementCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            engagement = services.engagement_create(
                workspace=workspace, name=form.cleaned_data["name"], slug=form.cleaned_data["slug"]
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Engagement “{engagement.name}” created with its first wave.")
            return redirect("surveys:engagement_detail", slug=engagement.slug)
    return render(request, "surveys/engagement_create.html", {"form": form})


@login_required
@require_GET
def engagement_detail(request, slug):
    engagement = selectors.engagement_for_user(request.user, slug)
    waves = engagement.waves.annotate(
        responses=Count("respondents", filter=Q(respondents__status=Respondent.Status.SUBMITTED))
    ).order_by("-number")
    return render(request, "surveys/engagement_detail.html", {"engagement": engagement, "waves": waves})


@login_required
@require_http_methods(["GET", "POST"])
def engagement_settings(request, slug):
    engagement = selectors.engagement_for_user(request.user, slug)
    form = EngagementSettingsForm(request.POST or None, instance=engagement)
    if request.method == "POST" and form.is_valid():
        services.engagement_update(engagement=engagement, **form.cleaned_data)
        messages.success(request, "Settings saved.")
        return redirect("surveys:engagement_detail", slug=engagement.slug)
    if form.is_bound:
        # The bound form has already written the rejected values onto the instance.
        engagement.refresh_from_db()
    return render(request, "surveys/engagement_settings.html", {"engagement": engagement, "form": form})


@login_required
@require_http_methods(["GET", "POST"])
def department_list(request, slug):
    engagement = selectors.engagement_for_user(request.user, slug)
    form = DepartmentForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            department = services.department_add(engagement=engagement, name=form.cleaned_data["name"])
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Department “{department.name}” added.")
            return redirect("surveys:department_list", slug=engagement.slug)
    return render(
        request,
        "surveys/department_list.html",
        {"engagement": engagement, "departments": engagement.departments.all(), "form": form},
    )


@login_required
@require_POST
def department_remove(request, slug, department_id):
    engagement = selectors.engagement_for_user(request.user, slug)
    department = get_object_or_404(engagement.departments, pk=department_id)
    services.department_remove(department=department)
    messages.success(request, f"Department “{department.name}” removed from the list.")
    return redirect("surveys:department_list", slug=engagement.slug)


@login_required
@require_http_methods(["GET", "POST"])
def wave_create(request, slug):
    engagement = selectors.engagement_for_user(request.user, slug)
    form = WaveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        wave = services.wave_create(engagement=engagement, **form.cleaned_data)
        messages.success(request, f"Wave {wave.number} created; its wording was copied from the previous wave.")
        return redirect("surveys:wave_detail", slug=engagement.slug, number=wave.number)
    return render(request, "surveys/wave_form.html", {"engagement": engagement, "form": form, "creating": True})


@login_required
@require_http_methods(["GET", "POST"])
def wave_edit(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    form = WaveForm(request.POST or None, instance=wave)
    if request.method == "POST" and form.is_valid():
        services.wave_update(wave=wave, **form.cleaned_data)
        messages.success(request, "Wave details saved.")
        return redirect("surveys:wave_detail", slug=slug, number=number)
    return render(request, "surveys/wave_form.html", {"engagement": wave.engagement, "wave": wave, "form": form})


@login_required
@require_GET
def wave_detail(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    return render(
        request,
        "surveys/wave_detail.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "counts": selectors.wave_response_counts(wave),
            "funnel": selectors.invitation_funnel(wave),
            "links": wave_links(request, wave),
            "sessions": wave.sessions.annotate(responses=Count("respondents")),
            "session_form": SessionOpenForm(),
            "run": analysis_selectors.run_served(wave),
            "pending": analysis_selectors.run_in_progress(wave),
        },
    )


@login_required
@require_POST
def wave_close(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    services.wave_close(wave=wave)
    messages.success(
        request, f"{wave} is closed: its links and workshop sessions now show a polite closed page and accept no answers."
    )
    return redirect("surveys:wave_detail", slug=slug, number=number)


@login_required
@require_POST
def wave_open(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    services.wave_open(wave=wave)
    messages.success(
        request,
        f"{wave} is open again: the staff, customer and open links accept answers. "
        "Workshop sessions closed with the wave stay closed; open a new one for leaders.",
    )
    return redirect("surveys:wave_detail", slug=slug, number=number)


@login_required
@require_http_methods(["GET", "POST"])
def question_wording(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    formset = QuestionWordingFormSet(request.POST or None, queryset=wave.questions.all())
    if request.method == "POST" and formset.is_valid():
        for form in formset.forms:
            services.question_update(question=form.instance, **{f: form.cleaned_data[f] for f in form._meta.fields})
        messages.success(request, "Question wording saved.")
        return redirect("surveys:wave_detail", slug=slug, number=number)
    return render(
        request, "surveys/question_wording.html", {"engagement": wave.engagement, "wave": wave, "formset": formset}
    )


@login_required
@require_http_methods(["GET", "POST"])
def rating_item_list(request, slug, number):
    wave = selectors.wave_for_user(request.user, slug, number)
    form = RatingItemForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            item = services.rating_item_save(wave=wave, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Rating item “{item.key}” added.")
            return redirect("surveys:rating_item_list", slug=slug, number=number)
    items = wave.rating_items.annotate(rated=Count("ratings"))
    return render(
        request,
        "surveys/rating_item_list.html",
        {"engagement": wave.engagement, "wave": wave, "items": items, "form": form},
    )


@login_required
@require_http_methods(["GET", "POST"])
def rating_item_edit(request, slug, number, item_id):
    wave = selectors.wave_for_user(request.user, slug, number)
    item = get_object_or_404(wave.rating_items, pk=item_id)
    form = RatingItemForm(request.POST or None, instance=item)
    if request.method == "POST" and form.is_valid():
        try:
            services.rating_item_save(wave=wave, item=item, **form.cleaned_data)
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(request, f"Rating item “{item.key}” saved.")
            return redirect("surveys:rating_item_list", slug=slug, number=number)
    return render(
        request,
        "surveys/rating_item_edit.html",
        {"engagement": wave.engagement, "wave": wave, "item": item, "form": form},
    )


@login_required
@require_POST
def rating_item_remove(request, slug, number, item_id):
    wave = selectors.wave_for_user(request.user, slug, number)
    item = get_object_or_404(wave.rating_items, pk=item_id)
    try:
        services.rating_item_remove(item=item)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, f"Rating item “{item.key}” removed.")
    return redirect("surveys:rating_item_list", slug=slug, number=number)
