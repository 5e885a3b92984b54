"""Fixtures shared by the whole test suite.

The environment defaults for a test run (``DEBUG``, ``SECRET_KEY``) are not set
here but in ``tests/environment.py``: they must be in place before Django reads
its settings, which happens before any conftest.py is loaded.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A cold worker (Django setup, pandas import, broker connection) starts in a few
# seconds; the bound only guards against hanging a CI run forever.
WORKER_START_TIMEOUT = 60
# A warm shutdown lets the current task finish; past this the worker is killed.
WORKER_STOP_TIMEOUT = 20
# Fixtures that run a real worker: a test asking for one gets no eager tasks.
WORKER_FIXTURES = {"celery_worker_process", "celery_worker_factory"}


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str) -> None:
    # Locally a missing PostgreSQL/Redis is a reason to skip; in CI it would
    # silently drop the only end-to-end proof that the worker wiring works.
    if _running_in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment of asking)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class CeleryWorker:
    """A real ``celery worker`` subprocess serving this test session."""

    process: subprocess.Popen
    nodename: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a lost machine would: no warm shutdown, nothing acknowledged."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


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
    app.conf.task_always_eager = not WORKER_FIXTURES & set(request.fixturenames)
    yield
    app.conf.task_always_eager = previous


def _worker_urls() -> tuple[str, str]:
    """The (database URL, Redis URL) a worker subprocess needs to share this test run's data.

    Needs ``DATABASE_URL`` (PostgreSQL) and ``REDIS_URL``: a SQLite test database
    lives in this process's memory, where no other process can see it. Without
    them the test is skipped, or fails when ``CI`` is set. The database URL is
    the pytest-django test database's, never the real one.
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
            "a real worker needs the test database: mark the test @pytest.mark.django_db(transaction=True)",
            pytrace=False,
        )

    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        pytest.fail(f"REDIS_URL is set but Redis does not answer: {exc}", pytrace=False)
    return urlunsplit(urlsplit(database_url)._replace(path="/" + quote(test_database))), redis_url


def celery_worker_start(log_dir: Path, *, env: dict[str, str] | None = None, concurrency: int = 1) -> CeleryWorker:
    """Start a ``celery worker`` on the test database and wait until it answers a ping.

    ``env`` is added to (and wins over) this process's environment, so a test
    can point the worker at its own mail server or change its settings.
    ``concurrency`` 1 runs tasks in the worker's main process (``--pool=solo``);
    more uses the production prefork pool.
    """
    database_url, redis_url = _worker_urls()
    from gapsurvey.celery import app

    queues = ",".join(sorted(app.amqp.queues.keys()))  # the default "celery" queue unless routes add more
    # A unique node name, so only this worker's answer counts as "ready".
    nodename = f"gapsurvey-test-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{nodename.split('@')[0]}.log"
    pool = ["--pool=solo", "--concurrency=1"] if concurrency == 1 else ["--pool=prefork", f"--concurrency={concurrency}"]
    command = [
        sys.executable, "-m", "celery", "-A", "gapsurvey", "worker", *pool,
        "-Q", queues, "--loglevel=INFO", "--hostname", nodename,
        # Nothing to synchronise with: start faster and keep the log readable.
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env={**os.environ, **(env or {}), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
                 "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    worker = CeleryWorker(process=process, nodename=nodename, log_path=log_path)
    try:
        _wait_until_ready(app, worker)
    except BaseException:
        worker.kill()
        raise
    return worker


# The session's shared worker, once started: workers a test starts for itself
# take the queue over from it while they run (see ``celery_worker_factory``).
_session_workers: list[CeleryWorker] = []


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: None,
    django_db_blocker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[CeleryWorker]:
    """A real Celery worker against Redis and the pytest-django test database, shared by the session.

    Skipped without PostgreSQL and Redis, a failure in CI (``_worker_urls``).
    Tests using this fixture must be marked
    ``@pytest.mark.django_db(transaction=True)``, so the test database exists
    and what the test writes is committed where the worker can read it.
    """
    _worker_urls()
    from gapsurvey.celery import app

    # Messages left by an earlier, interrupted run (or queued by tests that ran
    # before this fixture) would otherwise be the first thing the worker does.
    app.control.purge()
    worker = celery_worker_start(tmp_path_factory.mktemp("celery-worker"))
    _session_workers.append(worker)
    try:
        yield worker
    finally:
        _session_workers.remove(worker)
        _stop(worker)
        app.control.purge()


class WorkerFactory:
    """Starts real workers for one test (``celery_worker_factory``); all are stopped after it."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.workers: list[CeleryWorker] = []

    def __call__(self, *, concurrency: int = 1, **env: str) -> CeleryWorker:
        worker = celery_worker_start(self.log_dir, env=env, concurrency=concurrency)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.nodename} ---\n{w.log()}" for w in self.workers)


@pytest.fixture
def celery_worker_factory(django_db_setup: None, django_db_blocker, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real workers with extra environment: ``worker = celery_worker_factory(EMAIL_PORT="2525")``.

    For tests whose worker needs settings of its own (a mail server, pacing,
    retries) or that kill a worker (``worker.kill()``) and start another. The
    session's shared worker, if one is running, stops consuming while these
    run, so every task reaches a worker with the test's settings. Same marks
    and requirements as ``celery_worker_process``.
    """
    _worker_urls()
    from gapsurvey.celery import app

    queues = sorted(app.amqp.queues.keys())
    paused = list(_session_workers)
    for worker in paused:
        for queue in queues:
            replies = app.control.cancel_consumer(queue, destination=[worker.nodename], reply=True, timeout=10)
            if not any(worker.nodename in reply for reply in replies):
                pytest.fail(f"the session's worker did not stop consuming {queue}: {replies}", pytrace=False)
    app.control.purge()
    factory = WorkerFactory(tmp_path / "celery-workers")
    try:
        yield factory
    finally:
        for worker in factory.workers:
            _stop(worker)
        app.control.purge()
        if any(worker.process.returncode == -signal.SIGKILL for worker in factory.workers):
            _forget_unacknowledged(app)
        for worker in paused:
            for queue in queues:
                app.control.add_consumer(queue, destination=[worker.nodename], reply=True, timeout=10)


def _forget_unacknowledged(app) -> None:
    """Drop the messages killed workers took and never acknowledged.

    Redis keeps them aside until a worker whose visibility timeout has passed
    puts them back: without this, a later run's worker could run a batch of a
    test database long gone.
    """
    import redis

    options = app.conf.broker_transport_options
    redis.Redis.from_url(app.conf.broker_url).delete(
        options.get("unacked_key", "unacked"), options.get("unacked_index_key", "unacked_index")
    )


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
        worker.kill()


# --- A real SMTP server --------------------------------------------------------------


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted."""

    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    connection: int  # which SMTP connection it came over, counted from 1
    received_at: float  # time.monotonic()


@dataclass(frozen=True)
class Refusal:
    reply: str  # e.g. "451 4.7.1 Try again later"
    at: str  # "RCPT" or "DATA"
    when: Callable[[str], bool]  # which recipient addresses


@dataclass
class SmtpGate:
    """Holds the ``nth`` MAIL FROM unanswered until released."""

    nth: int
    reached: threading.Event = field(default_factory=threading.Event)
    _open: asyncio.Event = field(default_factory=asyncio.Event)


class SmtpServer:
    """
    An aiosmtpd server on 127.0.0.1 (``smtp_server`` fixture) that records
    every message it accepts, and on request refuses some recipients or holds a
    message at MAIL FROM until the test releases it.
    """

    def __init__(self):
        try:
            from aiosmtpd.controller import Controller
        except ImportError:
            _skip_or_fail("SMTP tests need aiosmtpd (pip install -r requirements-test.txt)")

        self.host = "127.0.0.1"
        self.port = free_port()
        self._lock = threading.Lock()
        self._received: list[ReceivedMail] = []
        self._refused: list[tuple[str, str, str]] = []  # (stage, address, reply)
        self._refusals: list[Refusal] = []
        self._gates: list[SmtpGate] = []
        self._mail_commands = 0
        self._connections = 0
        self._controller = Controller(self, hostname=self.host, port=self.port)

    # Test side ------------------------------------------------------------------

    def start(self) -> None:
        # aiosmtpd logs every command at INFO: noise in a failing test's report.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        self._controller.start()

    def stop(self) -> None:
        for gate in self._gates:
            self.release(gate)
        self._controller.stop()

    def refuse(self, reply: str, *, at: str = "RCPT", when: Callable[[str], bool] = lambda address: True) -> None:
        """Answer ``reply`` (a 4xx or 5xx line) at RCPT TO or DATA for recipients ``when`` selects, from now on."""
        assert at in {"RCPT", "DATA"}
        self._refusals.append(Refusal(reply=reply, at=at, when=when))

    def gate(self, nth: int) -> SmtpGate:
        """Hold the ``nth`` MAIL FROM (counted over all connections, from 1) until ``release``."""
        gate = SmtpGate(nth=nth)
        self._gates.append(gate)
        return gate

    def release(self, gate: SmtpGate) -> None:
        self._controller.loop.call_soon_threadsafe(gate._open.set)

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    @property
    def refused(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return list(self._refused)

    def per_recipient(self) -> Counter[str]:
        return Counter(address for mail in self.received for address in mail.recipients)

    # aiosmtpd handler hooks (they run on the server's event loop thread) --------

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        with self._lock:
            self._mail_commands += 1
            number = self._mail_commands
            if not hasattr(session, "gapsurvey_connection"):
                self._connections += 1
                session.gapsurvey_connection = self._connections
        for gate in self._gates:
            if gate.nth == number:
                gate.reached.set()
                # A client that dies meanwhile cancels this wait: the message is never taken.
                await gate._open.wait()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    def _refusal(self, at: str, addresses: list[str]) -> str | None:
        for refusal in self._refusals:
            if refusal.at == at and any(refusal.when(a) for a in addresses):
                with self._lock:
                    self._refused.extend((at, a, refusal.reply) for a in addresses)
                return refusal.reply
        return None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self._refusal("RCPT", [address])
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self._refusal("DATA", envelope.rcpt_tos)
        if reply:
            return reply
        mail = ReceivedMail(
            mail_from=envelope.mail_from,
            recipients=tuple(envelope.rcpt_tos),
            # Parsed with Python's line ends: the wire's CRLF would end up in the decoded parts.
            message=email.message_from_bytes(
                envelope.original_content.replace(b"\r\n", b"\n"), policy=email.policy.default
            ),
            connection=session.gapsurvey_connection,
            received_at=time.monotonic(),
        )
        with self._lock:
            self._received.append(mail)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server on 127.0.0.1 and a free port, recording what it accepts (see ``SmtpServer``)."""
    server = SmtpServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the worker's log to any failing test that used a real worker."""
    report = yield
    if report.failed:
        funcargs = getattr(item, "funcargs", {})
        worker = funcargs.get("celery_worker_process")
        if isinstance(worker, CeleryWorker):
            report.sections.append(("Celery worker log", worker.log()))
        factory = funcargs.get("celery_worker_factory")
        if isinstance(factory, WorkerFactory) and factory.workers:
            report.sections.append(("Celery worker logs", factory.logs()))
    return report
