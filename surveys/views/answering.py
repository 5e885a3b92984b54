"""What the public answer pages share: the polite refusal pages and the sheet's context."""

from django.shortcuts import render

from ..services import SubmissionRefused

REFUSAL_PAGES = {
    SubmissionRefused.WAVE_CLOSED: ("This survey is closed", "public/closed.html"),
    SubmissionRefused.SESSION_CLOSED: ("This session has ended", "public/closed.html"),
    SubmissionRefused.LINK_DISABLED: ("This link is no longer in use", "public/closed.html"),
    SubmissionRefused.ALREADY_ANSWERED: ("You have already answered", "public/already_answered.html"),
}


def refusal_page(request, reason: str, *, wave=None):
    """A polite page instead of the form: a closed survey or a link already used."""
    title, template = REFUSAL_PAGES[reason]
    return render(request, template, {"title": title, "reason": reason, "wave": wave}, status=200)
