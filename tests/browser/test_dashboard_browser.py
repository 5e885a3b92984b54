"""The wave dashboard in a real Chromium (Playwright): log in, draw the charts, drill into a theme.

Uses Debian's Chromium (``/usr/bin/chromium``), not a Playwright-downloaded
browser. Without it, or without the ``playwright`` package, the test skips
locally and fails when ``CI`` is set. Screenshots go to ``test-output/browser/``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.urls import reverse

from surveys import demo
from surveys.models import Engagement, Invitation
from tests.conftest import REPO_ROOT, _skip_or_fail
from tests.surveys.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = REPO_ROOT / "test-output" / "browser"
# Milliseconds; generous for a cold CI machine, still far from hanging a run.
TIMEOUT_MS = 20_000


@pytest.fixture
def sync_playwright():
    """Playwright's ``sync_playwright``, or a skip (a failure in CI) when it or Chromium is missing.

    The browser is not started here: Playwright's sync API runs an event loop in
    this thread, and Django then refuses ORM calls from it. Tests start the
    browser with ``chromium_page`` after they have finished with the database.
    """
    if not Path(CHROMIUM).exists():
        _skip_or_fail(f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _skip_or_fail("browser tests need the playwright package (pip install -r requirements-test.txt)")
    return sync_playwright


@contextmanager
def chromium_page(sync_playwright) -> Iterator:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1366, "height": 900})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


class PageProblems:
    """JavaScript errors and failed same-origin requests seen by a page."""

    def __init__(self, page, origin: str) -> None:
        self.origin = origin
        self.errors: list[str] = []
        self.statuses: dict[str, int] = {}
        page.on("console", lambda msg: msg.type == "error" and self.errors.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _same_origin(self, url: str) -> bool:
        return urlsplit(url)[:2] == urlsplit(self.origin)[:2]

    def _failed(self, request) -> None:
        if self._same_origin(request.url):
            self.errors.append(f"request failed: {request.url} ({request.failure})")

    def _response(self, response) -> None:
        if self._same_origin(response.url):
            self.statuses[urlsplit(response.url).path] = response.status
            if response.status >= 400:
                self.errors.append(f"HTTP {response.status}: {response.url}")


@pytest.mark.django_db(transaction=True)
class DashboardBrowserTests:
    def test_consultant_logs_in_sees_the_charts_drawn_and_drills_into_a_theme(self, live_server, sync_playwright):
        call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
        call_command("analyze", demo.ENGAGEMENT_SLUG, stdout=io.StringIO(), stderr=io.StringIO())
        engagement = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)
        invitations = list(Invitation.objects.filter(wave__engagement=engagement).values_list("email", "token"))
        assert invitations, "seed_demo should invite customers by email"
        wave_url = reverse("surveys:wave_detail", kwargs={"slug": engagement.slug, "number": 1})
        dashboard_url = reverse("analysis:dashboard", kwargs={"slug": engagement.slug, "number": 1})
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

        # No ORM calls from here on (see sync_playwright).
        with chromium_page(sync_playwright) as page:
            self._walk_through(page, live_server.url, wave_url, dashboard_url, engagement.slug, invitations)

    def _walk_through(self, page, origin, wave_url, dashboard_url, slug, invitations):
        problems = PageProblems(page, origin)

        # Log in through the real form.
        page.goto(origin + reverse("login"))
        page.fill("input[name=username]", demo.USERNAME)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button:has-text('Log in')")
        assert "/accounts/login/" not in page.url

        # Wave page -> Dashboard.
        page.goto(origin + wave_url)
        with page.expect_navigation():
            page.get_by_role("link", name="Dashboard", exact=True).click()
        assert page.url == origin + dashboard_url, page.url

        # Every chart container gets Plotly's SVG.
        charts = page.locator(".gs-chart")
        page.wait_for_function(
            "() => { const c = document.querySelectorAll('.gs-chart');"
            " return c.length > 0 && [...c].every(e => e.querySelector('.main-svg')); }"
        )
        chart_ids = [charts.nth(i).get_attribute("id") for i in range(charts.count())]
        assert {"chart-headline", "chart-alignment", "chart-strengths"} <= set(chart_ids), chart_ids
        assert page.locator("#chart-strengths .bars path").count() > 0
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        assert problems.statuses.get("/static/vendor/plotly/plotly.min.js") == 200, problems.statuses
        assert problems.statuses.get("/static/js/dashboard.js") == 200, problems.statuses
        assert problems.errors == [], "\n".join(problems.errors)

        # Click the widest bar of "What we do well": Plotly's drag layer takes the
        # click (not the <path>), so click at the bar's centre with the mouse.
        page.locator("#chart-strengths").scroll_into_view_if_needed()
        bars = page.locator("#chart-strengths .bars path")
        boxes = [box for box in (bars.nth(i).bounding_box() for i in range(bars.count())) if box]
        widest = max(boxes, key=lambda box: box["width"] * box["height"])
        assert widest["width"] > 2, "the strengths chart drew no visible bar"
        with page.expect_navigation():
            page.mouse.click(widest["x"] + widest["width"] / 2, widest["y"] + widest["height"] / 2)

        # The theme page: verbatim items, and nobody's identity.
        theme_url = re.compile(r"/e/%s/w/1/themes/\d+/$" % re.escape(slug))
        assert theme_url.search(page.url), page.url
        page.wait_for_selector("table tbody tr td")
        # The first cell is the row's tick box for moving items; the verbatim is the second.
        first_item = page.locator("table tbody tr").first.locator("td").nth(1).inner_text().strip()
        assert first_item, "the theme page should list verbatim items"
        page.screenshot(path=str(SCREENSHOTS / "theme.png"), full_page=True)
        html = page.content().lower()
        leaked = [email for email, token in invitations if email.lower() in html or token.lower() in html]
        assert leaked == [], f"respondent identity shown on the theme page: {leaked[:3]}"
        assert problems.errors == [], "\n".join(problems.errors)
