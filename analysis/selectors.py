"""Reads for the analysis: a wave's answers as DataFrames, and the run to serve."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser
from django.http import Http404
from django.shortcuts import get_object_or_404

from surveys.models import AnswerItem, Rating, Respondent, Wave

from .models import AnalysisRun, RunThemeItems, Theme

ITEM_COLUMNS = ["item_id", "respondent_id", "group", "department", "question", "tag", "text"]
RESPONDENT_COLUMNS = ["respondent_id", "group", "department", "members"]
RATING_COLUMNS = ["respondent_id", "group", "department", "item_key", "value", "votes"]


@dataclass
class WaveFrames:
    """A wave's submitted answers in the shape ``analysis.metrics`` takes."""

    items: pd.DataFrame
    respondents: pd.DataFrame
    ratings: pd.DataFrame
    rating_items: list[tuple[str, str]]


def wave_frames(wave: Wave) -> WaveFrames:
    submitted = {"respondent__wave": wave, "respondent__status": Respondent.Status.SUBMITTED}
    items = pd.DataFrame.from_records(
        AnswerItem.objects.filter(**submitted)
        .order_by("id")
        .values_list("id", "respondent_id", "respondent__group", "respondent__department", "question_key", "tag", "text"),
        columns=ITEM_COLUMNS,
    )
    respondents = pd.DataFrame.from_records(
        Respondent.objects.filter(wave=wave, status=Respondent.Status.SUBMITTED)
        .order_by("id")
        .values_list("id", "group", "department", "members"),
        columns=RESPONDENT_COLUMNS,
    )
    # Only staff sheets carry a member count; everyone else is one person.
    respondents["members"] = respondents["members"].fillna(1).astype(int)
    ratings = pd.DataFrame.from_records(
        Rating.objects.filter(**submitted)
        .order_by("id")
        .values_list("respondent_id", "respondent__group", "respondent__department", "item__key", "value", "votes"),
        columns=RATING_COLUMNS,
    )
    rating_items = [(item.key, item.label_customer) for item in wave.rating_items.all()]
    return WaveFrames(items=items, respondents=respondents, ratings=ratings, rating_items=rating_items)


def run_served(wave: Wave) -> AnalysisRun | None:
    """The run a dashboard shows: the latest finished one. A failed run never hides it."""
    # The item-to-theme map is the largest column and few pages need it: it loads on first access.
    return (
        wave.analysis_runs.filter(status=AnalysisRun.Status.DONE)
        .defer("assignments")
        .order_by("-finished_at", "-id")
        .first()
    )


def run_in_progress(wave: Wave) -> AnalysisRun | None:
    return (
        wave.analysis_runs.filter(status__in=[AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING])
        .order_by("-requested_at")
        .first()
    )


def previous_wave_result(wave: Wave) -> dict | None:
    """The served result of the wave before this one, for the trend."""
    previous = wave.engagement.waves.filter(number__lt=wave.number).order_by("-number").first()
    if previous is None:
        return None
    run = run_served(previous)
    return run.result if run else None


def wave_for_api(user: AbstractBaseUser, slug: str, number: int | None) -> Wave:
    """The wave (the latest when no number is given) of an engagement in the user's workspace; 404 otherwise."""
    waves = Wave.objects.select_related("engagement").filter(engagement__slug=slug, engagement__workspace__members=user)
    if number is not None:
        return get_object_or_404(waves, number=number)
    wave = waves.order_by("-number").first()
    if wave is None:
        raise Http404("No such engagement.")
    return wave


def suppressed_groups(result: dict | None) -> set[str]:
    """Groups too small to show at all (the anonymity threshold)."""
    return {s["group"] for s in (result or {}).get("suppressed", []) if s.get("kind") == "group"}


def theme_items(run: AnalysisRun, theme_id: int, *, hidden_groups: set[str] = frozenset()) -> list[int]:
    """Ids of the items the run put in this theme, by question, group and id, leaving out hidden groups."""
    listing = RunThemeItems.objects.filter(run=run, theme_id=theme_id).values_list("items", flat=True).first()
    return [item_id for item_id, group in listing or [] if group not in hidden_groups]


def theme_for_user(user: AbstractBaseUser, slug: str, theme_id: int) -> Theme:
    return get_object_or_404(
        Theme.objects.select_related("engagement"), pk=theme_id, engagement__slug=slug, engagement__workspace__members=user
    )
