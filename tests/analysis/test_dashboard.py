"""The wave dashboard: reads the stored run only, shows the gap in words and charts, keeps anonymity."""

from __future__ import annotations

import io
import json
import re

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from analysis import services as analysis_services
from surveys import demo, services
from surveys.models import Engagement
from surveys.services import Answers, ItemInput, RatingInput
from tests.surveys.factories import PASSWORD, consultant_create, engagement_create, first_wave

RATING_KEYS = ["overall", "consistency", "problem_handling", "customer_centricity"]


def answers(text: str, rating: int) -> Answers:
    return Answers(items=[ItemInput("strengths", text)], ratings=[RatingInput(k, rating) for k in RATING_KEYS])


def seeded_and_logged_in(client) -> Engagement:
    """The demo engagement, analysed, with its consultant logged in."""
    call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
    call_command("analyze", demo.ENGAGEMENT_SLUG, stdout=io.StringIO(), stderr=io.StringIO())
    client.login(username=demo.USERNAME, password=PASSWORD)
    return Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG)


def dashboard_url(engagement, wave_number: int = 1) -> str:
    return reverse("analysis:dashboard", kwargs={"slug": engagement.slug, "number": wave_number})


@pytest.mark.django_db
class DashboardTests:
    def test_seeded_engagement_dashboard_shows_the_headline_findings_and_every_chart(self, client):
        engagement = seeded_and_logged_in(client)

        response = client.get(dashboard_url(engagement))

        html = response.content.decode()
        assert response.status_code == 200
        assert "of your leaders rate your CX excellent" in html
        assert "vendor/plotly/plotly.min.js" in html
        for chart in ["headline", "alignment", "strengths", "improvements", "competition", "continue_start",
                      "departments", "consistency", "rating-overall"]:
            match = re.search(rf'<script id="chart-{chart}-data" type="application/json">(.*?)</script>', html, re.S)
            assert match, chart
            figure = json.loads(match.group(1))
            assert figure["data"] and figure["layout"]["title"]["text"]
        assert "Contradictions" in html and "a strength" in html

    def test_before_any_run_the_page_explains_what_to_do(self, client):
        user, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        client.force_login(user)

        response = client.get(dashboard_url(engagement))

        assert response.status_code == 200
        assert "No analysis has finished for this wave yet" in response.content.decode()

    def test_page_reads_the_stored_run_so_queries_do_not_grow_with_the_answers(self, client):
        user, workspace = consultant_create()
        small = first_wave(engagement_create(workspace=workspace, name="Small Co"))
        large = first_wave(engagement_create(workspace=workspace, name="Large Co"))
        for wave, count in ((small, 6), (large, 60)):
            for n in range(count):
                services.open_link_submit(wave=wave, answers=answers(f"friendly people number {n}", 3))
            analysis_services.analysis_run_now(wave=wave)
        client.force_login(user)

        counts = []
        for wave in (small, large):
            with CaptureQueriesContext(connection) as queries:
                assert client.get(dashboard_url(wave.engagement)).status_code == 200
            counts.append(len(queries))

        assert counts[0] == counts[1]

    def test_a_group_under_the_threshold_is_not_shown(self, client):
        user, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        wave = first_wave(engagement)
        session = services.session_open(wave=wave)
        for n in range(3):
            services.leader_submit(session=session, answers=answers(f"Our secret boardroom remark {n}", 5))
        for n in range(8):
            services.open_link_submit(wave=wave, answers=answers(f"slow replies from support {n}", 2))
        analysis_services.analysis_run_now(wave=wave)
        client.force_login(user)

        html = client.get(dashboard_url(engagement)).content.decode()

        assert "Too few to show" in html
        assert "secret boardroom" not in html
        assert "of your leaders rate" not in html


@pytest.mark.django_db
class QuestionDashboardTests:
    def test_each_question_page_shows_its_charts_and_actions(self, client):
        engagement = seeded_and_logged_in(client)

        for question in ["strengths", "improvements", "competition", "continue_start"]:
            url = reverse("analysis:question_dashboard", args=[engagement.slug, 1, question])
            html = client.get(url).content.decode()
            assert f'id="chart-{question}-data"' in html
            assert f'id="chart-{question}-heatmap-data"' in html
        competition = client.get(reverse("analysis:question_dashboard", args=[engagement.slug, 1, "competition"]))
        assert 'id="chart-competition-balance-data"' in competition.content.decode()
        actions = client.get(reverse("analysis:question_dashboard", args=[engagement.slug, 1, "continue_start"]))
        assert "by how widely it is asked for" in actions.content.decode()
        assert client.get(reverse("analysis:question_dashboard", args=[engagement.slug, 1, "nonsense"])).status_code == 404


@pytest.mark.django_db
class ReportTests:
    def test_printable_report_has_the_findings_in_words_and_one_section_per_chart(self, client):
        engagement = seeded_and_logged_in(client)

        html = client.get(reverse("analysis:report", args=[engagement.slug, 1])).content.decode()

        assert "Key findings" in html and "of your leaders rate your CX excellent" in html
        assert "css/report.css" in html
        sections = html.count('class="report-section report-chart"')
        assert sections == html.count('type="application/json"') and sections >= 6


@pytest.mark.django_db
class ResponseProgressTests:
    def test_targets_set_on_the_wave_show_as_progress_on_the_dashboard(self, client):
        user, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        wave = first_wave(engagement)
        client.force_login(user)
        client.post(
            reverse("surveys:wave_edit", args=[engagement.slug, 1]),
            {"title": "Baseline", "open_link_enabled": "on", "target_leadership": "8", "target_customer": "40"},
        )
        for n in range(10):
            services.open_link_submit(wave=wave, answers=answers(f"quick answers {n}", 3))

        html = client.get(dashboard_url(engagement)).content.decode()

        wave.refresh_from_db()
        assert (wave.target_leadership, wave.target_staff, wave.target_customer) == (8, None, 40)
        assert "10 of 40 answered" in html and "0 of 8 answered" in html
        assert 'aria-valuenow="25"' in html


@pytest.mark.django_db
class TrendTests:
    def test_a_second_wave_shows_alignment_and_rating_trends(self, client):
        user, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        first = first_wave(engagement)
        second = services.wave_create(engagement=engagement)
        for wave, rating in ((first, 2), (second, 5)):
            session = services.session_open(wave=wave)
            for n in range(5):
                services.leader_submit(session=session, answers=answers(f"we answer quickly {n}", 5))
                services.open_link_submit(wave=wave, answers=answers(f"replies are slow {n}", rating))
            analysis_services.analysis_run_now(wave=wave)
        client.force_login(user)

        first_html = client.get(dashboard_url(engagement, 1)).content.decode()
        second_html = client.get(dashboard_url(engagement, 2)).content.decode()

        assert 'id="chart-trend-data"' not in first_html
        assert 'id="chart-trend-data"' in second_html and 'id="chart-rating_trend-data"' in second_html
        figure = json.loads(re.search(r'id="chart-rating_trend-data" type="application/json">(.*?)</script>', second_html, re.S).group(1))
        previous, current = figure["data"]
        assert previous["x"] == current["x"] == ["Leadership", "Customers"]
        assert previous["y"] == [1.0, 0.0] and current["y"] == [1.0, 1.0]
