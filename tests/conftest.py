"""Fixtures shared by the whole test suite.

The environment defaults for a test run (``DEBUG``, ``SECRET_KEY``) are not set
here but in ``tests/environment.py``: they must be in place before Django reads
its settings, which happens before any conftest.py is loaded.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A cold worker (Django setup, pandas import, broker connection) starts in a few
# seconds; the bound only guards against hanging a CI run forever.
WORKER_START_TIMEOUT = 60
# A warm shutdown lets the current task finish; past this the worker is killed.
WORKER_STOP_TIMEOUT = 20


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str) -> None:
    # Locally a missing PostgreSQL/Redis is a reason to skip; in CI it would
    # silently drop the only end-to-end proof that the worker wiring works.
    if _running_in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


@dataclass
class CeleryWorker:
    """A real ``celery worker`` subprocess serving this test session."""

    process: subprocess.Popen
    nodename: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(autouse=True)
def _celery_eager_unless_real_worker(request: pytest.FixtureRequest) -> Iterator[None]:
    """Run tasks in-process, except in tests that ask for a real worker.

    With ``REDIS_URL`` set the settings turn eager execution off for the test
    process too, so ``.delay()`` would only queue a message that nothing
    consumes (or that a running worker fixture picks up at some later point).
    Tests that are not about the worker get the same deterministic, in-process
    behaviour on SQLite and on PostgreSQL + Redis.
    """
    from gapsurvey.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = "celery_worker_process" not in request.fixturenames
    yield
    app.conf.task_always_eager = previous


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None,
    django_db_blocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryWorker]:
    """Start a real Celery worker against Redis and the pytest-django test database.

    Needs ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``: a SQLite test database
    lives in this process's memory, where no other process can see it. Without
    them the test is skipped, or fails when ``CI`` is set. Tests using this
    fixture must be marked ``@pytest.mark.django_db(transaction=True)``, so the
    test database exists and what the test writes is committed where the worker
    can read it.
    """
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url or not redis_url:
        _skip_or_fail("real-worker tests need DATABASE_URL (PostgreSQL) and REDIS_URL")

    from django.db import connection

    if connection.vendor != "postgresql":
        _skip_or_fail(
            f"real-worker tests need PostgreSQL, not {connection.vendor}: "
            "the test database must be reachable from another process"
        )

    test_database = connection.settings_dict["NAME"]
    if test_database == urlsplit(database_url).path.lstrip("/"):
        # No test in this session is marked django_db, so pytest-django created
        # no test database; never point a worker at the real one.
        pytest.fail(
            "celery_worker_process needs the test database: mark the test "
            "@pytest.mark.django_db(transaction=True)",
            pytrace=False,
        )
    worker_database_url = urlunsplit(urlsplit(database_url)._replace(path="/" + quote(test_database)))

    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}", pytrace=False)

    from gapsurvey.celery import app

    # Messages left by an earlier, interrupted run (or queued by tests that ran
    # before this fixture) would otherwise be the first thing the worker does.
    app.control.purge()

    queues = ",".join(sorted(app.amqp.queues.keys()))  # the default "celery" queue unless routes add more
    # A unique node name, so only this worker's answer counts as "ready".
    nodename = f"gapsurvey-test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_path = tmp_path_factory.mktemp("celery-worker") / "worker.log"
    env = {
        **os.environ,
        "DATABASE_URL": worker_database_url,
        "REDIS_URL": redis_url,
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable, "-m", "celery", "-A", "gapsurvey", "worker",
        "--pool=solo", "--concurrency=1", "-Q", queues, "--loglevel=INFO",
        "--hostname", nodename,
        # Nothing to synchronise with: start faster and keep the log readable.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]

    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = CeleryWorker(process=process, nodename=nodename, log_path=log_path)

    try:
        _wait_until_ready(app, worker)
        yield worker
    finally:
        _stop(worker)
        app.control.purge()


def _wait_until_ready(app, worker: CeleryWorker) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while True:
        if worker.process.poll() is not None:
            pytest.fail(
                f"Celery worker exited with code {worker.process.returncode} while starting.\n"
                f"--- worker log ---\n{worker.log()}",
                pytrace=False,
            )
        if app.control.ping(destination=[worker.nodename], timeout=1.0):
            return
        if time.monotonic() > deadline:
            pytest.fail(
                f"Celery worker did not answer a ping within {WORKER_START_TIMEOUT}s.\n"
                f"--- worker log ---\n{worker.log()}",
                pytrace=False,
            )


def _stop(worker: CeleryWorker) -> None:
    process = worker.process
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM: Celery's warm shutdown
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the worker's log to any failing test that used the real worker."""
    report = yield
    if report.failed:
        worker = getattr(item, "funcargs", {}).get("celery_worker_process")
        if isinstance(worker, CeleryWorker):
            report.sections.append(("Celery worker log", worker.log()))
    return report
