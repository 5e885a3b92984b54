"""The workshop reveal in a real Chromium (Playwright): leaders predict on a phone while the
facilitator's screen counts them live, then the facilitator steps through the reveal.

Same browser set-up as test_dashboard_browser.py (Debian's Chromium, skipped locally
without it). A screenshot of every step goes to ``test-output/browser/``.
"""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from surveys import demo, services
from surveys.models import Engagement, WorkshopSession
from tests.browser.test_dashboard_browser import SCREENSHOTS, PageProblems, chromium_page, sync_playwright  # noqa: F401
from tests.surveys.factories import PASSWORD

# The reveal's steps when customers have answered: start, own view, predictions,
# actual answers, the gap, unpredicted themes, contradictions.
REVEAL_STEPS = ["Start", "Your own view", "Your predictions", "What they said", "The gap", "Nobody predicted", "Contradictions"]
# Milliseconds: the facilitator's screen polls every 3 s.
LIVE_TIMEOUT_MS = 15_000


@pytest.mark.django_db(transaction=True)
class RevealBrowserTests:
    @pytest.fixture(autouse=True)
    def demo_engagement(self, settings):
        settings.ANALYSIS_ENGINE = "tfidf"  # the browser is what is tested here; keep the analysis quick
        call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
        call_command("analyze", demo.ENGAGEMENT_SLUG, stdout=io.StringIO(), stderr=io.StringIO())
        self.engagement = Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)
        self.demo_session = WorkshopSession.objects.get(wave__engagement=self.engagement)
        self.rating_keys = list(self.demo_session.wave.rating_items.values_list("key", flat=True))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def _login(self, page, origin):
        page.goto(origin + reverse("login"))
        page.fill("input[name=username]", demo.USERNAME)
        page.fill("input[name=password]", PASSWORD)
        with page.expect_navigation():
            page.click("button:has-text('Log in')")
        assert "/accounts/login/" not in page.url

    def test_facilitator_steps_through_the_reveal_with_keys_and_clicks(self, live_server, sync_playwright):  # noqa: F811
        session = self.demo_session
        detail_url = reverse("surveys:session_detail", args=[self.engagement.slug, 1, session.pk])
        reveal_url = reverse("surveys:session_reveal", args=[self.engagement.slug, 1, session.pk])

        # No ORM calls from here on (see sync_playwright in test_dashboard_browser).
        with chromium_page(sync_playwright) as page:
            origin = live_server.url
            problems = PageProblems(page, origin)
            self._login(page, origin)
            page.goto(origin + detail_url)
            with page.expect_navigation():
                page.get_by_role("link", name="Start the reveal").click()
            assert page.url.startswith(origin + reveal_url), page.url

            progress = page.locator("#reveal-progress")
            for number, title in enumerate(REVEAL_STEPS, start=1):
                assert progress.inner_text() == f"{number} / {len(REVEAL_STEPS)} · {title}"
                assert page.locator(".reveal-step:visible").count() == 1
                page.screenshot(path=str(SCREENSHOTS / f"reveal-step-{number}.png"))
                if number < len(REVEAL_STEPS):
                    if number % 2:
                        page.keyboard.press("ArrowRight")
                    else:
                        page.locator(".reveal-step.reveal-current").click()  # a click on the stage goes on
            assert page.url.endswith(f"#step-{len(REVEAL_STEPS)}")

            # The gap in one sentence per rating item, with the planted over-optimism.
            page.keyboard.press("ArrowLeft")
            page.keyboard.press("ArrowLeft")
            assert progress.inner_text().endswith("· The gap")
            sentences = page.locator(".reveal-step.reveal-current .reveal-sentences li").all_inner_texts()
            assert len(sentences) == 4, sentences
            assert all(s.startswith("You expected ") and s.endswith(" did.") for s in sentences), sentences
            # Team figures only: no leader pseudonym or predicted verbatim on the projector.
            assert " L1" not in page.locator("#reveal").inner_text()

            page.keyboard.press("Home")
            assert progress.inner_text().startswith("1 / ")
            page.reload()  # the step is kept in the address
            assert progress.inner_text().startswith("1 / ")
            assert problems.errors == [], "\n".join(problems.errors)

    def test_facilitator_screen_counts_a_leaders_answer_and_prediction_without_reloading(
        self, live_server, sync_playwright  # noqa: F811
    ):
        wave = self.demo_session.wave
        session = services.session_open(wave=wave, name="Second workshop")
        services.session_predictions_set(session=session, predict_customers=True, predict_staff=False)
        detail_url = reverse("surveys:session_detail", args=[self.engagement.slug, 1, session.pk])
        answer_url = reverse("public:leader_answer", args=[session.code])
        keys = self.rating_keys

        with chromium_page(sync_playwright) as page:
            origin = live_server.url
            problems = PageProblems(page, origin)
            self._login(page, origin)
            page.goto(origin + detail_url)
            assert page.locator("#live-count").inner_text() == "0"
            assert page.locator("#live-predicted-customer").inner_text() == "0"
            page.evaluate("() => { window.notReloaded = true; }")

            # A leader on a phone, not logged in.
            phone = page.context.browser.new_context(viewport={"width": 390, "height": 844})
            try:
                leader = phone.new_page()
                leader_problems = PageProblems(leader, origin)
                leader.goto(origin + answer_url)
                leader.fill("input[name='strengths-0-text']", "Friendly people on the phone")
                for key in keys:
                    leader.click(f"label[for='id_r-rating_{key}_4']")  # the "5" button of the scale
                with leader.expect_navigation():
                    leader.click("button:has-text('Submit my answers')")
                assert "/predict/customer/" in leader.url, leader.url
                page.wait_for_function(
                    "() => document.getElementById('live-count').textContent.trim() === '1'", timeout=LIVE_TIMEOUT_MS
                )

                for key in keys:
                    leader.fill(f"input[name='p-top_box_{key}']", "40")
                    leader.fill(f"input[name='p-mean_{key}']", "3.9")
                leader.fill("input[name='predict_strengths-0-text']", "Our friendly phone team")
                leader.fill("input[name='predict_improvements-0-text']", "Replies take too long")
                leader.screenshot(path=str(SCREENSHOTS / "reveal-leader-predicts.png"), full_page=True)
                with leader.expect_navigation():
                    leader.click("button:has-text('Submit my predictions')")
                assert leader.url.endswith(f"/join/{session.code}/thanks/"), leader.url
                assert leader_problems.errors == [], "\n".join(leader_problems.errors)
            finally:
                phone.close()

            page.wait_for_function(
                "() => document.getElementById('live-predicted-customer').textContent.trim() === '1'",
                timeout=LIVE_TIMEOUT_MS,
            )
            assert page.evaluate("() => window.notReloaded === true"), "the facilitator's page reloaded"
            page.screenshot(path=str(SCREENSHOTS / "reveal-live-count.png"))
            assert problems.errors == [], "\n".join(problems.errors)
