"""
Faults, each against the app in a real gunicorn server or a real Celery
worker: Redis stopped while customers submit, a worker killed in the middle
of an analysis run, PostgreSQL restarted between requests, and the same form
posted twice at once. The Redis and PostgreSQL a test stops or restarts are
private instances (``redis_server``, ``postgres_server`` in tests/conftest.py),
so the shared servers are never disturbed. Runs only with DATABASE_URL
(PostgreSQL) and REDIS_URL set; skipped otherwise, and a failure in CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from http.cookiejar import CookieJar
from urllib.error import HTTPError
from urllib.parse import urlencode
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, build_opener

import psycopg
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import F, Model
from django.urls import reverse
from psycopg import sql

from analysis import services as analysis_services
from analysis.models import AnalysisRun, RunThemeItems, Theme
from analysis.selectors import run_served
from analysis.tasks import analysis_sweep_task
from surveys import services
from surveys.models import AnswerItem, InvitationEmail, Respondent, Wave
from surveys.services import Answers, Contact, ItemInput, RatingInput
from tests.conftest import REPO_ROOT, AppServer, broker_app, wait_until
from surveys.tasks import invitation_emails_sweep_task
from tests.surveys.test_invitation_smtp import mail_worker
from tests.surveys.factories import (
    PASSWORD,
    answer_post_data,
    consultant_create,
    engagement_create,
    first_wave,
    submission_key,
)

pytestmark = pytest.mark.django_db(transaction=True)

Status = AnalysisRun.Status

# A bound on any one wait or request, not a pace: polls return as soon as the outcome is there.
TIMEOUT = 60
# TF-IDF themes compute in well under a second; MiniLM would only make the runs slower.
FAST_ENGINE = {"ANALYSIS_ENGINE": "tfidf"}
ITEMS = {"strengths": ["They answer the phone"], "improvements": ["Invoices arrive late"]}
# A submission takes a fraction of a second; a customer left waiting longer than this is a fault.
PROMPT_SECONDS = 5
DEBUG_PAGE_ERROR = re.compile(r'<title>(.*?)</title>.*?<pre class="exception_value">(.*?)</pre>', re.DOTALL)
# analysis.tasks.analysis_sweep_task re-queues pending runs older than this (the beat sends it every minute).
# surveys.mailing.invitation_emails_sweep re-queues emails still queued this long past their time.
EMAIL_STALE = timedelta(seconds=settings.GAPSURVEY_EMAIL_STALE_SECONDS + 1)
SWEEP_AFTER = timedelta(seconds=analysis_services.analysis_sweep.__kwdefaults__["older_than_seconds"] + 1)


# --- A customer's browser against the app server ----------------------------------------


@dataclass(frozen=True)
class Page:
    """One response as the browser got it; redirects are not followed."""

    status_code: int
    location: str
    content: bytes
    seconds: float

    def __str__(self) -> str:
        body = self.content.decode(errors="replace")
        # A 500 is Django's debug page (the servers run with DEBUG=1): its title names the exception.
        error = DEBUG_PAGE_ERROR.search(body)
        shown = " ".join(html.unescape(body if error is None else ": ".join(error.groups())).split())
        return f"{self.status_code} {self.location} after {self.seconds:.1f} s: {shown[:1500]}"


class _KeepRedirects(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # where a 302 points is part of the answer


class Browser:
    """Keeps its cookies, sends the CSRF token with a form, as a customer's browser does."""

    def __init__(self, server: AppServer):
        self.url = server.url
        self.cookies = CookieJar()
        self._opener = build_opener(HTTPCookieProcessor(self.cookies), _KeepRedirects)

    def get(self, path: str) -> Page:
        return self._open(path)

    def post(self, path: str, data: dict[str, str]) -> Page:
        # Django takes the cookie's secret as the form's token as well as the masked one the page shows.
        token = next(cookie.value for cookie in self.cookies if cookie.name == "csrftoken")
        return self._open(path, urlencode({**data, "csrfmiddlewaretoken": token}).encode())

    def _open(self, path: str, body: bytes | None = None) -> Page:
        started = time.monotonic()
        try:
            with self._opener.open(self.url + path, data=body, timeout=TIMEOUT) as response:
                status, headers, content = response.status, response.headers, response.read()
        except HTTPError as error:  # a 302 not followed, or a 4xx/5xx
            status, headers, content = error.code, error.headers, error.read()
        return Page(status, headers.get("Location", ""), content, time.monotonic() - started)


def at_once(*calls: Callable[[], Page]) -> list[Page]:
    """Run the calls in threads released together: customers, or a double click, arriving at the same moment."""
    start = threading.Barrier(len(calls), timeout=TIMEOUT)

    def run(call: Callable[[], Page]) -> Page:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def open_link(token: str) -> str:
    return reverse("public:open_answer", args=[token])


def open_link_form(wave: Wave, key: str, n: int = 0) -> dict[str, str]:
    """The open link's answer sheet, filled in, with the submission key its page rendered."""
    items = {question: [f"{text} ({n})" for text in texts] for question, texts in ITEMS.items()}
    return {**answer_post_data(wave, items=items), "segment": "", "submission_key": key}


def assert_thanked(browser: Browser, page: Page, token: str) -> None:
    """The answer was taken: a redirect to the thanks page, which shows."""
    thanks = reverse("public:open_thanks", args=[token])
    assert (page.status_code, page.location) == (302, thanks), str(page)
    assert "Your answers have been received" in browser.get(thanks).content.decode()


def open_wave() -> Wave:
    return first_wave(engagement_create(workspace=services.workspace_create(name="Consultants of Northwind")))


# --- Redis stopped while customers submit ------------------------------------------------

CUSTOMERS = 3


class RedisOutageTests:
    def test_answers_sent_while_redis_is_down_are_stored_thanked_and_analysed_once_it_is_back(
        self, app_server, redis_server, celery_worker_factory
    ):
        wave = open_wave()
        token = wave.open_link_token
        # One gunicorn worker per customer, so the submissions are answered side by side.
        server = app_server(workers=CUSTOMERS, redis_url=redis_server.url(), ANALYSIS_ON_SUBMIT="1", **FAST_ENGINE)
        customers = [Browser(server) for _ in range(CUSTOMERS)]

        redis_server.stop()
        keys = [submission_key(customer, open_link(token)) for customer in customers]
        forms = [open_link_form(wave, key, n) for n, key in enumerate(keys)]
        pages = at_once(*(partial(customer.post, open_link(token), form) for customer, form in zip(customers, forms)))

        for customer, page in zip(customers, pages):
            assert_thanked(customer, page, token)
        assert Respondent.objects.filter(wave=wave).count() == CUSTOMERS
        assert AnswerItem.objects.filter(respondent__wave=wave).count() == CUSTOMERS * len(ITEMS)
        # The analysis was asked for (one run, the requests share it) but could not be queued.
        run = wave.analysis_runs.get()
        assert run.status == Status.PENDING

        redis_server.start()
        celery_worker_factory(redis_url=redis_server.url(), **FAST_ENGINE)
        # The beat's sweep, as it runs once the run has waited past its threshold.
        AnalysisRun.objects.filter(pk=run.pk).update(requested_at=F("requested_at") - SWEEP_AFTER)
        broker_app(redis_server.url()).send_task(analysis_sweep_task.name)

        served = wait_until(lambda: run_served(wave), what="finished analysis", state=lambda: runs(wave))
        assert served.pk == run.pk
        assert_covers_every_answer(served)

    def test_a_customer_is_thanked_promptly_while_redis_is_down(self, app_server, redis_server):
        wave = open_wave()
        token = wave.open_link_token
        server = app_server(redis_url=redis_server.url(), ANALYSIS_ON_SUBMIT="1")
        customer = Browser(server)
        key = submission_key(customer, open_link(token))

        redis_server.stop()
        page = customer.post(open_link(token), open_link_form(wave, key))

        assert_thanked(customer, page, token)
        assert page.seconds < PROMPT_SECONDS, f"the customer waited {page.seconds:.1f} s for the thanks page"


    def test_invitations_sent_while_redis_is_down_are_queued_promptly_and_go_out_once_it_is_back(
        self, app_server, redis_server, celery_worker_factory, smtp_server
    ):
        user, workspace = consultant_create()
        wave = first_wave(engagement_create(workspace=workspace))
        services.invitations_create(
            wave=wave, contacts=[Contact(email=f"customer{n}@example.com", name=f"Customer {n}") for n in range(3)]
        )
        server = app_server(redis_url=redis_server.url())
        consultant = Browser(server)
        consultant.get(reverse("login"))
        consultant.post(reverse("login"), {"username": user.username, "password": PASSWORD})
        send = reverse("surveys:invitations_send", args=[wave.engagement.slug, wave.number])

        redis_server.stop()
        page = consultant.post(send, {})

        assert page.status_code == 302, str(page)
        assert page.seconds < PROMPT_SECONDS, f"the consultant waited {page.seconds:.1f} s"
        queued = InvitationEmail.objects.filter(invitation__wave=wave)
        assert sorted(queued.values_list("status", flat=True)) == [InvitationEmail.Status.QUEUED] * 3

        redis_server.start()
        mail_worker(celery_worker_factory, smtp_server, redis_url=redis_server.url())
        # The beat's sweep, once the emails have waited past its threshold.
        queued.update(due_at=F("due_at") - EMAIL_STALE)
        broker_app(redis_server.url()).send_task(invitation_emails_sweep_task.name)

        wait_until(lambda: not queued.exclude(status=InvitationEmail.Status.SENT).exists(), what="sent invitations",
                   state=lambda: list(queued.values_list("status", "error")))
        assert smtp_server.per_recipient() == {f"customer{n}@example.com": 1 for n in range(3)}


def runs(wave: Wave) -> list[dict]:
    return list(wave.analysis_runs.values("pk", "status", "attempts", "progress", "error"))


def assert_covers_every_answer(run: AnalysisRun) -> None:
    """Every answer item of the run's wave has its place (a theme or none) in the run's result."""
    items = AnswerItem.objects.filter(respondent__wave=run.wave_id).values_list("pk", flat=True)
    assert set(run.assignments) == {str(pk) for pk in items}


# --- A worker killed in the middle of an analysis run --------------------------------------

RESPONDENTS = 40
VISIBILITY_TIMEOUT = 2
TIME_LIMIT = 5
WORKER_ENV = {
    **FAST_ENGINE,
    # The broker hands a task taken by a dead worker to another after this long.
    "CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
    "CELERY_TASK_TIME_LIMIT": str(TIME_LIMIT),
    "CELERY_TASK_SOFT_TIME_LIMIT": str(TIME_LIMIT - 1),
}
# analysis_claim and analysis_sweep take a running run back once it is this old: its worker must be dead.
ABANDONED_AFTER = timedelta(seconds=TIME_LIMIT + 60 + 1)


def varied_answers(n: int) -> Answers:
    keys = ("overall", "consistency", "problem_handling", "customer_centricity")
    ratings = [RatingInput(item_key=key, value=1 + n % 5) for key in keys]
    topic = ["slow to reply", "friendly staff", "invoices arrive late", "app crashes"][n % 4]
    return Answers(items=[ItemInput("improvements", f"{topic}, seen {n} times")], ratings=ratings)


@contextmanager
def table_locked(model: type[Model]) -> Iterator[None]:
    """Hold a SHARE lock on ``model``'s table from a second connection: reads go on, writes wait for the block's end."""
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(sql.Identifier(model._meta.db_table)))
        yield


def waiting_to_write(model: type[Model]) -> bool:
    """Some connection waits for a lock to insert into ``model``'s table."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE %s",
            [f'INSERT INTO "{model._meta.db_table}"%'],
        )
        return cursor.fetchone()[0] > 0


class WorkerKilledTests:
    def test_a_run_whose_worker_is_killed_mid_run_finishes_once_on_a_fresh_worker(self, celery_worker_factory):
        wave = open_wave()
        for n in range(RESPONDENTS):
            services.open_link_submit(wave=wave, answers=varied_answers(n))
        first = celery_worker_factory(**WORKER_ENV)

        # The run computes its themes, metrics and charts, then waits here to store them: killed there,
        # the worker dies in the middle of the run, whatever the machine's speed.
        with table_locked(RunThemeItems):
            run = analysis_services.analysis_request(wave=wave, trigger=AnalysisRun.Trigger.MANUAL, countdown=0)
            wait_until(lambda: waiting_to_write(RunThemeItems), what="run storing its result", state=lambda: runs(wave))
            taken_at = time.monotonic()
            first.kill()
        run.refresh_from_db()
        assert (run.status, run.attempts) == (Status.RUNNING, 1)
        assert run.progress["step"] == run.progress["steps"]  # killed in its last step

        # The broker hands the task back once it has been out past the visibility timeout; a worker
        # looks for such tasks when it starts.
        time.sleep(max(0.0, VISIBILITY_TIMEOUT - (time.monotonic() - taken_at)))
        fresh = celery_worker_factory(**WORKER_ENV)
        # The run was started moments ago and may still be alive elsewhere: the redelivered task leaves it.
        wait_until(lambda: "'not claimed'" in fresh.log(), what="redelivered task", state=fresh.log)
        run.refresh_from_db()
        assert (run.status, run.attempts) == (Status.RUNNING, 1)

        # Past the hard time limit the run is abandoned: the beat's sweep queues it again.
        AnalysisRun.objects.filter(pk=run.pk).update(started_at=F("started_at") - ABANDONED_AFTER)
        analysis_sweep_task.delay()
        wait_until(lambda: run_served(wave), what="finished analysis", state=lambda: runs(wave))

        run.refresh_from_db()
        assert (run.status, run.attempts) == (Status.DONE, 2)
        assert list(wave.analysis_runs.all()) == [run]
        assert run_served(wave) == run
        assert_covers_every_answer(run)
        assert fresh.log().count("'done'") == 1
        # The killed attempt had already named its themes: the finished one took them over, none is left unused.
        used = set(RunThemeItems.objects.filter(run=run).values_list("theme_id", flat=True))
        assert set(Theme.objects.filter(engagement=wave.engagement).values_list("pk", flat=True)) == used


# --- PostgreSQL restarted between requests ------------------------------------------------

# Run by manage.py against the private database: a wave, its open link and a filled-in answer sheet.
PRIVATE_WAVE = f"""
import json
from surveys import services
from tests.surveys.factories import answer_post_data, engagement_create, first_wave

wave = first_wave(engagement_create(workspace=services.workspace_create(name="Consultants of Northwind")))
print(json.dumps({{"token": wave.open_link_token, "form": answer_post_data(wave, items={ITEMS!r})}}))
"""


def manage(database_url: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": database_url, "REDIS_URL": ""},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def query(database_url: str, statement: sql.Composable) -> int:
    with psycopg.connect(database_url, autocommit=True) as other:
        return other.execute(statement).fetchone()[0]


def app_connections(database_url: str) -> int:
    """Client connections to the server other than the one asking."""
    return query(
        database_url,
        sql.SQL(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ),
    )


class DatabaseRestartTests:
    def test_the_app_serves_and_stores_answers_right_after_postgresql_restarts(self, app_server, postgres_server):
        database_url = postgres_server.url()
        manage(database_url, "migrate", "--noinput")
        wave = json.loads(manage(database_url, "shell", "-c", PRIVATE_WAVE).splitlines()[-1])
        token, form = wave["token"], wave["form"]
        # One worker keeping its connection between requests, as DB_CONN_MAX_AGE has it in production.
        server = app_server(workers=1, database_url=database_url, redis_url="", DB_CONN_MAX_AGE="60")
        before, across, after = Browser(server), Browser(server), Browser(server)

        key = submission_key(before, open_link(token))
        assert_thanked(before, before.post(open_link(token), {**form, "submission_key": key}), token)
        assert app_connections(database_url) == 1
        key = submission_key(across, open_link(token))  # a customer has the form open during the restart

        postgres_server.restart()
        assert app_connections(database_url) == 0  # the app's connection died with the old server

        assert_thanked(across, across.post(open_link(token), {**form, "submission_key": key}), token)
        key = submission_key(after, open_link(token))
        assert_thanked(after, after.post(open_link(token), {**form, "submission_key": key}), token)
        respondents = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(Respondent._meta.db_table))
        assert query(database_url, respondents) == 3


# --- The same form posted twice at once ------------------------------------------------------

ROUNDS = 3


class DoubleSubmitTests:
    def test_the_open_link_form_posted_twice_at_once_stores_one_respondent(self, app_server):
        wave = open_wave()
        token = wave.open_link_token
        server = app_server(workers=2)

        for n in range(ROUNDS):
            customer = Browser(server)
            key = submission_key(customer, open_link(token))
            post = partial(customer.post, open_link(token), open_link_form(wave, key, n))
            for page in at_once(post, post):
                assert_thanked(customer, page, token)
            assert Respondent.objects.filter(submission_key=key).count() == 1
        assert Respondent.objects.filter(wave=wave).count() == ROUNDS

    def test_the_invitation_form_posted_twice_at_once_stores_one_respondent(self, app_server):
        wave = open_wave()
        contacts = [Contact(email=f"customer{n}@example.com") for n in range(ROUNDS)]
        services.invitations_create(wave=wave, contacts=contacts)
        server = app_server(workers=2)

        for invitation in wave.invitations.all():
            customer = Browser(server)
            path = reverse("public:customer_answer", args=[invitation.token])
            assert customer.get(path).status_code == 200
            post = partial(customer.post, path, answer_post_data(wave, items=ITEMS))
            taken, refused = sorted(at_once(post, post), key=lambda page: -page.status_code)
            done = reverse("public:customer_done", args=[invitation.token])
            assert (taken.status_code, taken.location) == (302, done), str(taken)
            assert refused.status_code == 200 and "You have already answered" in refused.content.decode(), str(refused)
            assert Respondent.objects.filter(invitation=invitation).count() == 1
        assert Respondent.objects.filter(wave=wave).count() == ROUNDS
