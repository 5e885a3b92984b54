"""
The consultant's gap dashboard of a wave. It only reads the served analysis
run (its result document and the figures the worker stored); nothing is
computed here.
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from surveys import selectors as survey_selectors

from . import selectors
from .charts import GROUP_LABELS, QUESTION_TITLES

# The dashboard lists this many gaps and contradictions in words.
TOP_FINDINGS = 6


def _pct(share) -> str:
    return "–" if share is None else f"{round(float(share) * 100)}%"


def contradiction_sentences(result: dict) -> list[str]:
    sentences = []
    for c in result.get("contradictions", [])[:TOP_FINDINGS]:
        sentences.append(
            f"{_pct(c['strength_share'])} of {GROUP_LABELS[c['strength_group']].lower()} call "
            f"“{c.get('strength_label', c['label'])}” a strength; {_pct(c['improvement_share'])} of "
            f"{GROUP_LABELS[c['improvement_group']].lower()} say “{c.get('improvement_label', c['label'])}” needs improving."
        )
    return sentences


GAP_WORDING = {
    "blind_spot": "a blind spot",
    "overestimated": "overestimated by leadership",
    "divergent": "seen differently",
    "shared": "shared",
}


def gap_sentences(result: dict) -> list[str]:
    """The largest classified gaps between leadership and the others, in words."""
    sentences = []
    gaps = [g for g in result.get("gaps", []) if g.get("classification") in ("blind_spot", "overestimated")]
    gaps.sort(key=lambda g: -abs(g.get("difference") or 0))
    for g in gaps[:TOP_FINDINGS]:
        sentences.append(
            f"“{g['label']}” ({QUESTION_TITLES.get(g['question'], g['question']).lower()}): "
            f"{_pct(g['share_a'])} of {GROUP_LABELS[g['group_a']].lower()} vs {_pct(g['share_b'])} of "
            f"{GROUP_LABELS[g['group_b']].lower()} — {GAP_WORDING[g['classification']]}."
        )
    return sentences


def _chart(chart_id: str, title: str, figure, **extra) -> dict | None:
    return {"id": chart_id, "title": title, "figure": figure, **extra} if figure else None


@login_required
@require_GET
def question_dashboard(request, slug, number, question):
    """One question: prevalence by group, the theme x group heatmap, and the competition balance or action list."""
    if question not in QUESTION_TITLES:
        raise Http404("No such question.")
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    run = selectors.run_served(wave)
    figures = (run.figures or {}) if run else {}
    charts = [
        _chart(f"chart-{question}", "Prevalence", (figures.get("prevalence") or {}).get(question), question=question),
        _chart(f"chart-{question}-heatmap", "Heatmap", (figures.get("heatmap") or {}).get(question)),
    ]
    if question == "competition":
        charts.append(_chart("chart-competition-balance", "Good or bad", figures.get("competition")))
    actions = (run.result or {}).get("actions", []) if run and question == "continue_start" else []
    return render(
        request,
        "analysis/question_dashboard.html",
        {
            "engagement": wave.engagement,
            "wave": wave,
            "run": run,
            "pending": selectors.run_in_progress(wave),
            "question": question,
            "title": QUESTION_TITLES[question],
            "charts": [c for c in charts if c],
            "actions": actions,
            "group_labels": GROUP_LABELS,
        },
    )


@login_required
@require_GET
def wave_report(request, slug, number):
    """The printable workshop report: the findings in words, then one chart per section."""
    return wave_dashboard(request, slug, number, template="analysis/report.html")


@login_required
@require_GET
def wave_dashboard(request, slug, number, template: str = "analysis/dashboard.html"):
    wave = survey_selectors.wave_for_user(request.user, slug, number)
    run = selectors.run_served(wave)
    result = run.result if run else {}
    figures = (run.figures or {}) if run else {}
    charts = []
    for name, title in (("headline", "Headline rating gap"), ("alignment", "Alignment")):
        if figures.get(name):
            charts.append({"id": f"chart-{name}", "title": title, "figure": figures[name]})
    for question, title in QUESTION_TITLES.items():
        figure = (figures.get("prevalence") or {}).get(question)
        if figure:
            charts.append({"id": f"chart-{question}", "title": title, "figure": figure, "question": question})
    for key, figure in (figures.get("ratings") or {}).items():
        if figure:
            charts.append({"id": f"chart-rating-{key}", "title": f"Ratings: {key}", "figure": figure})
    for name, title in (
        ("departments", "Departments"),
        ("consistency", "Consistency"),
        ("trend", "Trend"),
        ("rating_trend", "Rating trend"),
    ):
        if figures.get(name):
            charts.append({"id": f"chart-{name}", "title": title, "figure": figures[name]})
    return render(
        request,
        template,
        {
            "engagement": wave.engagement,
            "wave": wave,
            "run": run,
            "pending": selectors.run_in_progress(wave),
            "headline": (result.get("ratings") or {}).get("headline") or {},
            "groups": [
                {"key": key, "label": GROUP_LABELS[key], **info} for key, info in (result.get("groups") or {}).items()
            ],
            "contradictions": contradiction_sentences(result),
            "gaps": gap_sentences(result),
            "charts": charts,
            "suppressed": result.get("suppressed", []),
            "questions": QUESTION_TITLES,
            # Live counts (a few aggregate queries, whatever the number of answers) against the wave's targets.
            "progress": survey_selectors.wave_response_counts(wave)["groups"],
        },
    )
