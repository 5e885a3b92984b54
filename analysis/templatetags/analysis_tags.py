from django import template

from analysis.charts import QUESTION_TITLES

register = template.Library()



@register.filter
def percent(value) -> str:
    """A 0-1 share as a whole percentage; a dash when there is none (e.g. suppressed)."""
    if value is None or value == "":
        return "–"
    return f"{round(float(value) * 100):d}%"


@register.filter
def question_title(key: str) -> str:
    return QUESTION_TITLES.get(key, key)


@register.filter
def group_share(theme: dict, group: str):
    return ((theme.get("groups") or {}).get(group) or {}).get("share")
