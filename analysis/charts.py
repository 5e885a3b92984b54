"""
Plotly figures built from a result document, by the worker, stored with the
run as JSON. Pages only read and render them. Plain Python: no ORM.

Group colours are the same on every chart (and in the CSS): leadership
purple, staff green, customers orange.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go

GROUPS = ("leadership", "staff", "customer")
GROUP_LABELS = {"leadership": "Leadership", "staff": "Staff", "customer": "Customers"}
GROUP_COLORS = {"leadership": "#4c3fbf", "staff": "#1f8a70", "customer": "#d9572b"}
QUESTION_TITLES = {
    "strengths": "What we do well",
    "improvements": "What could be improved",
    "competition": "What the competition does differently",
    "continue_start": "What to continue or start",
}
# A prevalence chart shows this many themes, those with the largest gaps between groups first.
MAX_THEMES_PER_CHART = 15
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


def _layout(title: str, **extra) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0, "xanchor": "left"},
        "font": {"family": FONT, "size": 14},
        "legend": {"orientation": "h", "y": -0.15},
        "margin": {"l": 10, "r": 10, "t": 60, "b": 10},
        "plot_bgcolor": "white",
        **extra,
    }


def _as_json(figure: go.Figure) -> dict[str, Any]:
    # Through Plotly's own encoder: numpy values become plain JSON.
    return json.loads(figure.to_json())


def _shown_groups(result: dict[str, Any]) -> list[str]:
    groups = result.get("groups", {})
    return [g for g in GROUPS if g in groups and not groups[g].get("suppressed")]


def headline_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """Top-box share (rating 5, "excellent") per rating item and group: the headline rating gap."""
    items = result.get("ratings", {}).get("items", [])
    groups = _shown_groups(result)
    if not items or not groups:
        return None
    figure = go.Figure()
    for group in groups:
        figure.add_trace(
            go.Bar(
                name=GROUP_LABELS[group],
                # Short names on the axis; the full wording is each item's label in the document.
                x=[item["key"].replace("_", " ").capitalize() for item in items],
                y=[(item["groups"].get(group) or {}).get("top_box") for item in items],
                marker_color=GROUP_COLORS[group],
                customdata=[(item["groups"].get(group) or {}).get("mean") for item in items],
                hovertemplate="%{y:.0%} rate it 5 (excellent)<br>mean %{customdata:.2f}<extra>" + GROUP_LABELS[group] + "</extra>",
            )
        )
    figure.update_layout(
        **_layout(
            "Who rates the customer experience excellent (5 of 5)",
            barmode="group",
            yaxis={"title": {"text": "Share rating 5"}, "tickformat": ".0%", "range": [0, 1], "gridcolor": "#eee"},
            xaxis={"title": {"text": "Rating item"}, "automargin": True},
        )
    )
    return _as_json(figure)


def _gap_size(theme: dict[str, Any], groups: list[str]) -> float:
    shares = [(theme["groups"].get(g) or {}).get("share") or 0.0 for g in groups]
    return max(shares) - min(shares) if shares else 0.0


def prevalence_figure(result: dict[str, Any], question: str) -> dict[str, Any] | None:
    """Share of each group raising each theme under one question, largest gaps first."""
    themes = result.get("questions", {}).get(question, {}).get("themes", [])
    groups = _shown_groups(result)
    if not themes or not groups:
        return None
    themes = sorted(themes, key=lambda t: (-_gap_size(t, groups), -t["mentions"]))[:MAX_THEMES_PER_CHART]
    themes.reverse()  # horizontal bars draw bottom-up; the largest gap ends on top
    figure = go.Figure()
    for group in groups:
        figure.add_trace(
            go.Bar(
                name=GROUP_LABELS[group],
                orientation="h",
                y=[t["label"] for t in themes],
                x=[(t["groups"].get(group) or {}).get("share") for t in themes],
                customdata=[t["theme_id"] for t in themes],
                marker_color=GROUP_COLORS[group],
                hovertemplate="%{x:.0%} of " + GROUP_LABELS[group].lower() + "<extra>%{y}</extra>",
            )
        )
    figure.update_layout(
        **_layout(
            QUESTION_TITLES.get(question, question),
            barmode="group",
            height=max(320, 40 * len(themes) * max(1, len(groups)) // 2 + 140),
            xaxis={"title": {"text": "Share of the group raising it"}, "tickformat": ".0%", "range": [0, 1], "gridcolor": "#eee"},
            yaxis={"title": {"text": "Theme"}, "automargin": True},
        )
    )
    return _as_json(figure)


# Corners of the alignment triangle (x, y): leadership on top, staff and customers below.
TRIANGLE = {"leadership": (0.5, 0.93), "staff": (0.05, 0.1), "customer": (0.95, 0.1)}


def alignment_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """
    The three groups as a triangle; each side is labelled with the pair's
    alignment (0-100) and drawn thicker and greener the better aligned it is.
    """
    pairs = [p for p in result.get("alignment", {}).get("pairs", []) if p.get("value") is not None]
    groups = _shown_groups(result)
    if not pairs or len(groups) < 2:
        return None
    figure = go.Figure()
    for pair in pairs:
        (x0, y0), (x1, y1) = TRIANGLE[pair["group_a"]], TRIANGLE[pair["group_b"]]
        value = float(pair["value"])
        # Red (0) to green (100) through amber, so a weak side stands out on a projector.
        colour = "#c0392b" if value < 40 else "#e6a100" if value < 70 else "#1e8449"
        figure.add_trace(
            go.Scatter(
                x=[x0, x1], y=[y0, y1], mode="lines", line={"width": 2 + value / 12, "color": colour},
                hoverinfo="skip", showlegend=False,
            )
        )
        figure.add_annotation(
            x=(x0 + x1) / 2, y=(y0 + y1) / 2, text=f"<b>{value:.0f}</b>", showarrow=False,
            font={"size": 20, "color": colour}, bgcolor="white",
        )
    for group in groups:
        x, y = TRIANGLE[group]
        figure.add_trace(
            go.Scatter(
                x=[x], y=[y], mode="markers+text", text=[GROUP_LABELS[group]], textposition="top center" if group == "leadership" else "bottom center",
                marker={"size": 28, "color": GROUP_COLORS[group]}, name=GROUP_LABELS[group], hoverinfo="name", showlegend=False,
                textfont={"size": 16},
            )
        )
    overall = result.get("alignment", {}).get("overall")
    title = "Alignment between the groups (0-100)" + (f", overall {overall:.0f}" if overall is not None else "")
    figure.update_layout(
        **_layout(
            title,
            height=380,
            xaxis={"visible": False, "range": [-0.1, 1.1], "title": {"text": "Groups"}},
            yaxis={"visible": False, "range": [-0.1, 1.1], "title": {"text": "Groups"}},
        )
    )
    return _as_json(figure)


# A heatmap shows at most this many themes (the most mentioned), to stay readable on a projector.
MAX_HEATMAP_THEMES = 20
RATING_VALUE_LABELS = {"1": "1 Poor", "2": "2", "3": "3", "4": "4", "5": "5 Excellent"}


def _share_heatmap(z: list[list], x: list[str], y: list[str], *, colorscale: str, unit: str) -> go.Figure:
    """A 0-100% heatmap with each cell's percentage written in it."""
    return go.Figure(
        go.Heatmap(
            z=z,
            x=x,
            y=y,
            zmin=0,
            zmax=1,
            colorscale=colorscale,
            text=[[f"{round(v * 100)}%" if v is not None else "" for v in row] for row in z],
            texttemplate="%{text}",
            hovertemplate="%{y}<br>%{x}: %{z:.0%}<extra></extra>",
            colorbar={"title": {"text": unit}, "tickformat": ".0%"},
        )
    )


def heatmap_figure(result: dict[str, Any], question: str) -> dict[str, Any] | None:
    """Theme x group: the share of each group raising each theme under one question."""
    themes = result.get("questions", {}).get(question, {}).get("themes", [])[:MAX_HEATMAP_THEMES]
    groups = _shown_groups(result)
    if not themes or not groups:
        return None
    z = [[(t["groups"].get(g) or {}).get("share") for g in groups] for t in themes]
    figure = _share_heatmap(
        z, [GROUP_LABELS[g] for g in groups], [t["label"] for t in themes], colorscale="Blues", unit="Share"
    )
    figure.update_layout(
        **_layout(
            f"{QUESTION_TITLES.get(question, question)}: who raises which theme",
            height=max(320, 28 * len(themes) + 140),
            xaxis={"title": {"text": "Group"}, "side": "top"},
            yaxis={"title": {"text": "Theme"}, "automargin": True, "autorange": "reversed"},
        )
    )
    return _as_json(figure)


def rating_distribution_figure(result: dict[str, Any], item: dict[str, Any]) -> dict[str, Any] | None:
    """How each group spreads over 1-5 on one rating item."""
    groups = [g for g in _shown_groups(result) if (item["groups"].get(g) or {}).get("distribution")]
    if not groups:
        return None
    figure = go.Figure()
    for group in groups:
        distribution = item["groups"][group]["distribution"]
        figure.add_trace(
            go.Bar(
                name=GROUP_LABELS[group],
                x=[RATING_VALUE_LABELS[v] for v in distribution],
                y=list(distribution.values()),
                marker_color=GROUP_COLORS[group],
                hovertemplate="%{y:.0%}<extra>" + GROUP_LABELS[group] + "</extra>",
            )
        )
    figure.update_layout(
        **_layout(
            item["label"],
            barmode="group",
            height=340,
            xaxis={"title": {"text": "Rating"}},
            yaxis={"title": {"text": "Share of the group"}, "tickformat": ".0%", "range": [0, 1], "gridcolor": "#eee"},
        )
    )
    return _as_json(figure)


def departments_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """Theme x staff department for the themes that split departments most (silos)."""
    splits = sorted(result.get("consistency", {}).get("splits", []), key=lambda s: -(s.get("spread") or 0))
    splits = splits[:MAX_HEATMAP_THEMES]
    if not splits:
        return None
    departments = sorted({d for s in splits for d in s["departments"]})
    z = [[(s["departments"].get(d) or {}).get("share") for d in departments] for s in splits]
    labels = [f"{s['label']} ({QUESTION_TITLES.get(s['question'], s['question']).lower()})" for s in splits]
    figure = _share_heatmap(z, departments, labels, colorscale="Greens", unit="Share of sheets")
    figure.update_layout(
        **_layout(
            "Where staff departments see things differently",
            height=max(320, 28 * len(splits) + 160),
            xaxis={"title": {"text": "Department"}, "side": "top"},
            yaxis={"title": {"text": "Theme"}, "automargin": True, "autorange": "reversed"},
        )
    )
    return _as_json(figure)


def consistency_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """How far each staff department's themes agree with the rest of staff (0-100)."""
    departments = [d for d in result.get("consistency", {}).get("departments", []) if d.get("alignment_with_rest") is not None]
    if not departments:
        return None
    departments = sorted(departments, key=lambda d: d["alignment_with_rest"])
    figure = go.Figure(
        go.Bar(
            orientation="h",
            y=[d["name"] for d in departments],
            x=[d["alignment_with_rest"] for d in departments],
            marker_color=GROUP_COLORS["staff"],
            customdata=[d["respondents"] for d in departments],
            hovertemplate="%{y}: %{x:.0f}/100 (%{customdata} sheets)<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(
            "Consistency: each department against the rest of staff",
            height=max(260, 40 * len(departments) + 140),
            xaxis={"title": {"text": "Alignment with the other departments (0-100)"}, "range": [0, 100], "gridcolor": "#eee"},
            yaxis={"title": {"text": "Department"}, "automargin": True},
        )
    )
    return _as_json(figure)


def competition_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """Per group, how the competition's differences are judged: good, bad or neutral."""
    balance = result.get("competition", {}).get("groups", {})
    groups = [g for g in _shown_groups(result) if (balance.get(g) or {}).get("total")]
    if not groups:
        return None
    colours = {"good": "#1e8449", "neutral": "#95a5a6", "bad": "#c0392b"}
    figure = go.Figure()
    for tag in ("good", "neutral", "bad"):
        figure.add_trace(
            go.Bar(
                name=tag.capitalize(),
                orientation="h",
                y=[GROUP_LABELS[g] for g in groups],
                x=[balance[g][tag] / balance[g]["total"] for g in groups],
                marker_color=colours[tag],
                hovertemplate="%{x:.0%}<extra>" + tag + "</extra>",
            )
        )
    figure.update_layout(
        **_layout(
            "The competition's differences: good or bad?",
            barmode="stack",
            height=300,
            xaxis={"title": {"text": "Share of the group's competition items"}, "tickformat": ".0%", "range": [0, 1]},
            yaxis={"title": {"text": "Group"}},
        )
    )
    return _as_json(figure)


def trend_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """Alignment per group pair, previous wave against this one."""
    trend = result.get("trend") or {}
    pairs = [p for p in (trend.get("alignment") or {}).get("pairs", []) if p.get("previous") is not None]
    if not pairs:
        return None
    names = [f"{GROUP_LABELS[p['group_a']]} – {GROUP_LABELS[p['group_b']]}" for p in pairs]
    figure = go.Figure(
        [
            go.Bar(name="Previous wave", x=names, y=[p["previous"] for p in pairs], marker_color="#bbb"),
            go.Bar(name="This wave", x=names, y=[p["current"] for p in pairs], marker_color="#34495e"),
        ]
    )
    figure.update_layout(
        **_layout(
            "Alignment since the previous wave",
            barmode="group",
            height=340,
            xaxis={"title": {"text": "Group pair"}},
            yaxis={"title": {"text": "Alignment (0-100)"}, "range": [0, 100], "gridcolor": "#eee"},
        )
    )
    return _as_json(figure)


def rating_trend_figure(result: dict[str, Any]) -> dict[str, Any] | None:
    """The headline figure over time: each group's share rating the headline item 5, then and now."""
    item = ((result.get("ratings") or {}).get("headline") or {}).get("item", "overall")
    rows = [r for r in ((result.get("trend") or {}).get("ratings") or []) if r["item"] == item]
    rows = [r for r in rows if r["group"] in _shown_groups(result)]
    if not rows:
        return None
    names = [GROUP_LABELS[r["group"]] for r in rows]
    figure = go.Figure(
        [
            go.Bar(name="Previous wave", x=names, y=[r["top_box_previous"] for r in rows], marker_color="#bbb"),
            go.Bar(
                name="This wave",
                x=names,
                y=[r["top_box"] for r in rows],
                marker_color=[GROUP_COLORS[r["group"]] for r in rows],
            ),
        ]
    )
    figure.update_layout(
        **_layout(
            f"Rating “{item.replace('_', ' ')}” excellent (5 of 5), since the previous wave",
            barmode="group",
            height=340,
            xaxis={"title": {"text": "Group"}},
            yaxis={"title": {"text": "Share rating 5"}, "tickformat": ".0%", "range": [0, 1], "gridcolor": "#eee"},
        )
    )
    return _as_json(figure)


def build_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Every stored figure of a run, keyed by name; a figure with no data is None."""
    return {
        "headline": headline_figure(result),
        "alignment": alignment_figure(result),
        "prevalence": {question: prevalence_figure(result, question) for question in QUESTION_TITLES},
        "heatmap": {question: heatmap_figure(result, question) for question in QUESTION_TITLES},
        "ratings": {
            item["key"]: rating_distribution_figure(result, item) for item in result.get("ratings", {}).get("items", [])
        },
        "departments": departments_figure(result),
        "consistency": consistency_figure(result),
        "competition": competition_figure(result),
        "trend": trend_figure(result),
        "rating_trend": rating_trend_figure(result),
    }
