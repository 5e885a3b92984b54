"""Widths of progress bars as classes (static/css/gapsurvey.css has .w-pct-0 ... .w-pct-100).

The Content Security Policy allows no style attributes, so a bar's width is
one of 101 classes rather than an inline ``style="width: N%"``.
"""

from django import template

register = template.Library()


@register.filter
def bar_width(value) -> str:
    """``w-pct-N`` for a percentage N (clamped to 0-100, rounded); ``w-pct-0`` for nothing."""
    try:
        number = round(float(value))
    except (TypeError, ValueError):
        number = 0
    return f"w-pct-{min(100, max(0, number))}"
