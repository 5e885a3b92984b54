"""
Analysis runs end to end: the ``analyze`` command and the JSON API on the
seeded demo engagement, run claiming and failure, curation surviving
re-analysis, and a real Celery worker computing runs after submissions.
"""

from __future__ import annotations

import importlib
import io
import json
import time
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from analysis import services as analysis_services
from analysis.models import AnalysisRun, TextEmbedding, Theme
from analysis.selectors import run_served, theme_items
from analysis.tasks import analysis_run_task
from surveys import demo, services
from surveys.models import AnswerItem, Engagement
from surveys.services import Answers, ItemInput, RatingInput
from tests.surveys.factories import PASSWORD, consultant_create, engagement_create, first_wave

SPEC_KEYS = {"groups", "ratings", "questions", "gaps", "contradictions", "alignment", "consistency", "suppressed", "engine"}


def seed_and_analyze() -> tuple[Engagement, dict]:
    call_command("seed_demo", "--password", PASSWORD, stdout=io.StringIO())
    out, err = io.StringIO(), io.StringIO()
    call_command("analyze", demo.ENGAGEMENT_SLUG, "--json", stdout=out, stderr=err)
    return Engagement.objects.get(slug=demo.ENGAGEMENT_SLUG), json.loads(out.getvalue())


def theme_texts(run: AnalysisRun, theme_id: int) -> set[str]:
    ids = [int(i) for i, t in run.assignments.items() if t == theme_id]
    return set(AnswerItem.objects.filter(pk__in=ids).values_list("text", flat=True))


def customer_answers(text: str, rating: int = 3) -> Answers:
    keys = ["overall", "consistency", "problem_handling", "customer_centricity"]
    return Answers(
        items=[ItemInput("improvements", text)], ratings=[RatingInput(item_key=k, value=rating) for k in keys]
    )


@pytest.mark.django_db
class AnalyzeCommandTests:
    def test_json_document_holds_what_the_spec_promises(self):
        _engagement, document = seed_and_analyze()

        assert SPEC_KEYS <= set(document)
        assert document["groups"]["leadership"]["respondents"] == demo.LEADERS
        assert document["groups"]["customer"]["respondents"] == 150
        strengths = document["questions"]["strengths"]["themes"]
        assert strengths and all(t["label"] and isinstance(t["keywords"], list) for t in strengths)
        for theme in strengths:
            for group in theme["groups"].values():
                assert 0.0 <= group["share"] <= 1.0
        assert document["engine"]["name"]
        assert 0 <= document["alignment"]["overall"] <= 100

    def test_planted_contradiction_blind_spot_and_rating_gap_are_found(self):
        engagement, document = seed_and_analyze()
        run = run_served(engagement.waves.get(number=1))

        # Leaders' "fast responses" against customers' "slow to reply".
        fast = set(demo.THEMES["fast_response"].internal)
        slow = set(demo.THEMES["slow_response"].customer)
        found = [
            c
            for c in document["contradictions"]
            if c["strength_group"] == "leadership"
            and c["improvement_group"] == "customer"
            and theme_texts(run, c["theme_id"]) & fast
            and theme_texts(run, c["theme_id"]) & slow
        ]
        assert found, document["contradictions"]

        # Billing surprises: raised by customers, by no leader.
        billing = set(demo.THEMES["billing_surprises"].customer)
        blind = [
            g
            for g in document["gaps"]
            if g["classification"] == "blind_spot"
            and {g["group_a"], g["group_b"]} == {"leadership", "customer"}
            and theme_texts(run, g["theme_id"]) & billing
        ]
        assert blind

        headline = document["ratings"]["headline"]
        leaders, customers = headline["groups"]["leadership"]["top_box"], headline["groups"]["customer"]["top_box"]
        assert leaders - customers >= 0.5
        overall = next(i for i in document["ratings"]["items"] if i["key"] == "overall")
        pair = next(p for p in overall["pairs"] if {p["group_a"], p["group_b"]} == {"leadership", "customer"})
        assert pair["significant"] and pair["p_value"] < 0.01

    def test_unchanged_answers_skip_the_work(self):
        engagement, _document = seed_and_analyze()
        wave = engagement.waves.get(number=1)
        served = run_served(wave)

        call_command("analyze", demo.ENGAGEMENT_SLUG, stdout=io.StringIO(), stderr=io.StringIO())

        assert run_served(wave) == served
        assert wave.analysis_runs.filter(status=AnalysisRun.Status.SKIPPED).count() == 1

    def test_unknown_engagement_is_a_clear_error(self):
        with pytest.raises(CommandError, match="no engagement"):
            call_command("analyze", "no-such-company", stdout=io.StringIO(), stderr=io.StringIO())


@pytest.mark.django_db
class ThemeListingTests:
    """Each run stores every theme's items in page order, so the theme page reads one short list."""

    @staticmethod
    def expected(run: AnalysisRun, theme_id: int, hidden: set[str] = frozenset()) -> list[int]:
        ids = [int(i) for i, t in run.assignments.items() if t == theme_id]
        rows = AnswerItem.objects.filter(pk__in=ids).exclude(respondent__group__in=hidden)
        return list(rows.order_by("question_key", "respondent__group", "id").values_list("pk", flat=True))

    def test_listings_hold_each_themes_items_in_page_order(self):
        engagement, _document = seed_and_analyze()
        run = run_served(engagement.waves.get())
        themes = {t for t in run.assignments.values() if t is not None}

        assert set(run.theme_listings.values_list("theme_id", flat=True)) == themes
        for theme_id in themes:
            assert theme_items(run, theme_id) == self.expected(run, theme_id)
            assert theme_items(run, theme_id, hidden_groups={"staff"}) == self.expected(run, theme_id, {"staff"})

    def test_migration_lists_runs_stored_before_the_listings_existed(self):
        engagement, _document = seed_and_analyze()
        run = run_served(engagement.waves.get())
        built = {row.theme_id: row.items for row in run.theme_listings.all()}
        run.theme_listings.all().delete()

        migration = importlib.import_module("analysis.migrations.0002_run_theme_items")
        migration.list_stored_runs(django_apps, None)

        assert {row.theme_id: row.items for row in run.theme_listings.all()} == built


@pytest.mark.django_db
class AnalysisApiTests:
    def test_api_serves_the_same_document_as_the_command(self, client):
        engagement, document = seed_and_analyze()
        client.login(username=demo.USERNAME, password=PASSWORD)

        response = client.get(reverse("analysis:api_analysis", args=[engagement.slug]))

        assert response.status_code == 200
        assert response.json() == document

    def test_api_is_404_for_another_workspace_and_login_for_anonymous(self, client):
        engagement, _document = seed_and_analyze()
        url = reverse("analysis:api_analysis", args=[engagement.slug])

        assert client.get(url).status_code == 302
        outsider, _ = consultant_create(username="outsider", workspace_name="Other Consulting")
        client.force_login(outsider)
        assert client.get(url).status_code == 404

    def test_api_before_any_run_says_so(self, client):
        user, workspace = consultant_create()
        engagement = engagement_create(workspace=workspace)
        client.force_login(user)

        response = client.get(reverse("analysis:api_analysis", args=[engagement.slug]))

        assert response.status_code == 404
        assert "No analysis" in response.json()["detail"]


@pytest.mark.django_db
class RunTaskTests:
    def _wave_with_answers(self, count: int = 6):
        _user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))
        for n in range(count):
            services.open_link_submit(wave=wave, answers=customer_answers(f"they take ages to reply ({n})"))
        return wave

    def test_a_task_delivered_twice_computes_once(self):
        wave = self._wave_with_answers()
        run = analysis_services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)

        first = analysis_run_task.apply(args=[run.pk]).get()
        second = analysis_run_task.apply(args=[run.pk]).get()

        assert first == AnalysisRun.Status.DONE
        assert second == "not claimed"
        run.refresh_from_db()
        assert run.status == AnalysisRun.Status.DONE and run.attempts == 1

    def test_a_failing_run_leaves_the_last_good_one_served(self):
        wave = self._wave_with_answers()
        good = analysis_services.analysis_run_now(wave=wave)
        # A damaged cache entry for a text the next run needs.
        services.open_link_submit(wave=wave, answers=customer_answers("they take ages to reply (0)", rating=1))
        TextEmbedding.objects.update(vector=b"broken")
        run = analysis_services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)

        with pytest.raises(ValueError):
            analysis_run_task.apply(args=[run.pk], throw=True)

        run.refresh_from_db()
        assert run.status == AnalysisRun.Status.FAILED and run.error
        assert run_served(wave) == good

    def test_sweep_queues_a_run_the_broker_never_took(self):
        wave = self._wave_with_answers()
        run = analysis_services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)
        # The on-commit hand-over never ran here, as when Redis was down.

        assert analysis_services.analysis_sweep() == 0  # too recent to call lost
        assert analysis_services.analysis_sweep(now=timezone.now() + timedelta(minutes=5)) == 1

        run.refresh_from_db()
        assert run.status == AnalysisRun.Status.DONE

    def test_sweep_finishes_a_run_whose_worker_died_mid_run(self, settings):
        wave = self._wave_with_answers()
        run = analysis_services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)
        assert analysis_services.analysis_claim(run_id=run.pk) is not None  # a worker takes it, then dies

        assert analysis_services.analysis_sweep() == 0  # still within its time limit: maybe alive
        limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 61)
        AnalysisRun.objects.filter(pk=run.pk).update(started_at=F("started_at") - limit)  # time passes
        assert analysis_services.analysis_sweep() == 1

        run.refresh_from_db()
        assert run.status == AnalysisRun.Status.DONE and run.attempts == 2
        assert run_served(wave) == run

    def test_requests_while_one_is_queued_share_it(self):
        wave = self._wave_with_answers(1)

        runs = {analysis_services.analysis_request(wave=wave, countdown=600).pk for _ in range(20)}

        assert len(runs) == 1

    def test_embeddings_are_cached_so_a_rerun_embeds_only_new_texts(self):
        wave = self._wave_with_answers()
        analysis_services.analysis_run_now(wave=wave)
        cached = TextEmbedding.objects.count()
        services.open_link_submit(wave=wave, answers=customer_answers("the bill went up without warning"))

        analysis_services.analysis_run_now(wave=wave)

        assert TextEmbedding.objects.count() == cached + 1


@pytest.mark.django_db
class CurationTests:
    def test_rename_merge_and_move_survive_reanalysis(self, client):
        engagement, document = seed_and_analyze()
        wave = engagement.waves.get(number=1)
        run = run_served(wave)
        client.login(username=demo.USERNAME, password=PASSWORD)
        themes = sorted(
            {t["theme_id"] for q in document["questions"].values() for t in q["themes"]},
            key=lambda tid: -len(theme_texts(run, tid)),
        )
        keep, merged_away, other = themes[0], themes[1], themes[2]
        kwargs = {"slug": engagement.slug, "number": wave.number}

        client.post(reverse("analysis:theme_rename", kwargs={**kwargs, "theme_id": keep}), {"label": "Our big theme"})
        client.post(reverse("analysis:theme_merge", kwargs={**kwargs, "theme_id": merged_away}), {"target": keep})
        moved_item = next(int(i) for i, t in run.assignments.items() if t == other)
        client.post(reverse("analysis:item_move", kwargs={**kwargs, "theme_id": other}), {"item": moved_item, "theme": keep})
        # New answers arrive, one saying what the curated theme says, and the analysis runs again.
        services.open_link_submit(wave=wave, answers=customer_answers("nobody ever calls back"))
        echo = sorted(theme_texts(run, keep))[0] + " again"
        services.open_link_submit(wave=wave, answers=customer_answers(echo))
        call_command("analyze", engagement.slug, stdout=io.StringIO(), stderr=io.StringIO())

        latest = run_served(wave)
        assert latest.pk != run.pk
        labels = {t["theme_id"]: t["label"] for q in latest.result["questions"].values() for t in q["themes"]}
        assert labels[keep] == "Our big theme"
        assert merged_away not in labels
        assert latest.assignments[str(moved_item)] == keep
        merged_items = [i for i, t in run.assignments.items() if t == merged_away]
        assert all(latest.assignments[i] == keep for i in merged_items if latest.assignments[i] is not None)
        assert Theme.objects.get(pk=keep).custom_label == "Our big theme"
        new_item = AnswerItem.objects.get(text=echo)
        assert latest.assignments[str(new_item.pk)] == keep  # new items flow into the curated theme


@pytest.mark.django_db(transaction=True)
class WorkerIntegrationTests:
    def _wait_for_quiet(self, wave, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        busy = [AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING]
        while time.monotonic() < deadline:
            if not wave.analysis_runs.filter(status__in=busy).exists() and wave.analysis_runs.exists():
                return
            time.sleep(0.5)
        pytest.fail(f"analysis still busy: {list(wave.analysis_runs.values('status', 'error'))}")

    @override_settings(ANALYSIS_ON_SUBMIT=True, ANALYSIS_DEBOUNCE_SECONDS=3)
    def test_a_burst_of_submissions_is_analysed_by_the_worker_in_few_runs(self, celery_worker_process):
        _user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))

        for n in range(60):
            services.open_link_submit(wave=wave, answers=customer_answers(f"slow to reply, waited {n} days"))
        self._wait_for_quiet(wave)

        runs = wave.analysis_runs.all()
        assert runs.count() <= 5
        served = run_served(wave)
        assert served is not None and served.result["groups"]["customer"]["respondents"] == 60

    @override_settings(ANALYSIS_ON_SUBMIT=True, ANALYSIS_DEBOUNCE_SECONDS=1)
    def test_a_run_that_fails_in_the_worker_leaves_the_last_good_one_served(self, celery_worker_process):
        _user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))
        for n in range(6):
            services.open_link_submit(wave=wave, answers=customer_answers(f"the app crashes ({n})"))
        self._wait_for_quiet(wave)
        good = run_served(wave)
        assert good is not None

        TextEmbedding.objects.update(vector=b"broken")
        services.open_link_submit(wave=wave, answers=customer_answers("the app crashes (0)", rating=1))
        time.sleep(1.5)
        self._wait_for_quiet(wave)

        assert wave.analysis_runs.filter(status=AnalysisRun.Status.FAILED).exists()
        assert run_served(wave) == good


@pytest.mark.django_db
class MoveSeveralItemsTests:
    def test_ticked_items_move_together_and_stay_after_reanalysis(self, client):
        engagement, document = seed_and_analyze()
        wave = engagement.waves.get(number=1)
        run = run_served(wave)
        client.login(username=demo.USERNAME, password=PASSWORD)
        themes = sorted({t["theme_id"] for q in document["questions"].values() for t in q["themes"]})
        source, target = themes[0], themes[1]
        ticked = [int(i) for i, t in run.assignments.items() if t == source][:3]

        response = client.post(
            reverse("analysis:item_move", kwargs={"slug": engagement.slug, "number": 1, "theme_id": source}),
            {"item": ticked, "theme": target},
            follow=True,
        )
        assert "3 items moved" in response.content.decode()
        call_command("analyze", engagement.slug, stdout=io.StringIO(), stderr=io.StringIO())

        latest = run_served(wave)
        assert latest.pk != run.pk
        assert [latest.assignments[str(i)] for i in ticked] == [target] * len(ticked)
