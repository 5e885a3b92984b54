"""``{% answer_sheet sheet %}``: the four questions and the ratings of an answer page.

Rendering a sheet's sixteen item rows and its rating scales is most of the
cost of an answer page, and every visitor of a wave's link gets the same blank
sheet. A blank sheet's HTML is therefore kept per process, keyed by everything
it is rendered from (``AnswerSheet.blank_signature``): a changed question
wording or rating item is a new key, never a stale page. Sheets holding
answers or errors are rendered each time.
"""

from collections import OrderedDict

from django import template
from django.template.loader import render_to_string

register = template.Library()

TEMPLATE = "surveys/_answer_sheet.html"
# Blank sheets kept per process: a few per open wave (one per group) is all a server needs.
KEPT = 64

_blank_sheets: OrderedDict[tuple, str] = OrderedDict()


@register.simple_tag
def answer_sheet(sheet) -> str:
    signature = sheet.blank_signature
    if signature is None:
        return render_to_string(TEMPLATE, {"sheet": sheet})
    html = _blank_sheets.get(signature)
    if html is None:
        html = render_to_string(TEMPLATE, {"sheet": sheet})
        _blank_sheets[signature] = html
        while len(_blank_sheets) > KEPT:
            _blank_sheets.popitem(last=False)
    return html
