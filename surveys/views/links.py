"""Absolute public links shown to consultants (copied, printed or put in a QR code)."""

from django.conf import settings
from django.urls import reverse

from ..models import Wave


def absolute_url(request, path: str) -> str:
    if settings.SITE_URL:
        return settings.SITE_URL + path
    return request.build_absolute_uri(path)


def wave_links(request, wave: Wave) -> dict[str, str]:
    links = {
        "staff": absolute_url(request, reverse("public:staff_start", args=[wave.staff_token])),
        "staff_print": absolute_url(request, reverse("public:staff_print", args=[wave.staff_token])),
        "join": absolute_url(request, reverse("public:join")),
    }
    if wave.open_link_enabled:
        links["open"] = absolute_url(request, reverse("public:open_answer", args=[wave.open_link_token]))
    return links
