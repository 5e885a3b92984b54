"""Fixtures shared by the whole test suite.

The environment defaults for a test run (``DEBUG``, ``SECRET_KEY``) are not set
here but in ``tests/environment.py``: they must be in place before Django reads
its settings, which happens before any conftest.py is loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit
from urllib.request import urlopen

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A cold worker or app server (Django setup, pandas import, broker connection)
# starts in a few seconds; the bound only guards against hanging a CI run forever.
WORKER_START_TIMEOUT = 60
# A warm shutdown lets the current task finish; past this the worker is killed.
WORKER_STOP_TIMEOUT = 20
# Fixtures that run a real worker: a test asking for one gets no eager tasks.
WORKER_FIXTURES = {"celery_worker_process", "celery_worker_factory"}


def pytest_configure(config: pytest.Config) -> None:
    # CI's `timeout` ends an overlong run with SIGTERM, which would kill this process on the spot.
    # Raised as KeyboardInterrupt instead, it lets pytest run every fixture's teardown, so no
    # worker or server a test started (each in a session of its own, out of the signal's reach)
    # outlives the run.
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, signal.default_int_handler)


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


def _skip_or_fail(reason: str) -> None:
    # Locally a missing PostgreSQL/Redis is a reason to skip; in CI it would
    # silently drop the only end-to-end proof that the worker wiring works.
    if _running_in_ci():
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)", pytrace=False)
    pytest.skip(reason)


def wait_until(
    condition: Callable[[], object], *, what: str, timeout: float = 60, state: Callable[[], object] = lambda: None
) -> object:
    """Poll ``condition`` until it returns something true, and return that; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {timeout} s; state: {state()}", pytrace=False)
        time.sleep(0.05)
    return value


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
    broker_url: str

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


def broker_app(redis_url: str):
    """
    A Celery app talking to the broker at ``redis_url``, to ping workers and
    send tasks by name: this process's own app for the session's broker (its
    settings read ``REDIS_URL`` once, at import), else a bare client.
    """
    from gapsurvey.celery import app

    if redis_url == app.conf.broker_url:
        return app
    if redis_url not in _broker_clients:
        from celery import Celery

        _broker_clients[redis_url] = Celery("gapsurvey-test-client", broker=redis_url, set_as_current=False)
    return _broker_clients[redis_url]


_broker_clients: dict[str, object] = {}


def celery_worker_start(
    log_dir: Path, *, env: dict[str, str] | None = None, concurrency: int = 1, redis_url: str | None = None
) -> CeleryWorker:
    """Start a ``celery worker`` on the test database and wait until it answers a ping.

    ``env`` is added to (and wins over) this process's environment, so a test
    can point the worker at its own mail server or change its settings.
    ``concurrency`` 1 runs tasks in the worker's main process (``--pool=solo``);
    more uses the production prefork pool. ``redis_url`` is the broker, the
    session's ``REDIS_URL`` unless a test brings its own (``redis_server``).
    """
    database_url, session_redis_url = _worker_urls()
    redis_url = redis_url or session_redis_url
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
    worker = CeleryWorker(process=process, nodename=nodename, log_path=log_path, broker_url=redis_url)
    control = broker_app(redis_url).control
    try:
        _wait_until_serving(
            process,
            lambda: control.ping(destination=[nodename], timeout=1.0),
            what=f"Celery worker {nodename}",
            log=worker.log,
        )
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

    def __call__(self, *, concurrency: int = 1, redis_url: str | None = None, **env: str) -> CeleryWorker:
        worker = celery_worker_start(self.log_dir, env=env, concurrency=concurrency, redis_url=redis_url)
        self.workers.append(worker)
        return worker

    def logs(self) -> str:
        return "\n".join(f"--- {w.nodename} ---\n{w.log()}" for w in self.workers)


@pytest.fixture
def celery_worker_factory(django_db_setup: None, django_db_blocker, tmp_path: Path) -> Iterator[WorkerFactory]:
    """Start real workers with extra environment: ``worker = celery_worker_factory(EMAIL_PORT="2525")``.

    For tests whose worker needs settings of its own (a mail server, pacing,
    retries, a private broker: ``redis_url=redis_server.url()``) or that kill
    a worker (``worker.kill()``) and start another. The
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
        killed = [w for w in factory.workers if w.process.returncode == -signal.SIGKILL]
        if any(worker.broker_url == app.conf.broker_url for worker in killed):
            _forget_unacknowledged(app)  # a private broker (``redis_server``) goes away with its data
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


def _wait_until_serving(
    process: subprocess.Popen, ready: Callable[[], object], *, what: str, log: Callable[[], str]
) -> None:
    """Return once ``ready()`` is true; fail when the process exits first or takes past WORKER_START_TIMEOUT."""
    wait_until(
        lambda: process.poll() is not None or ready(),
        what=f"answer from {what}",
        timeout=WORKER_START_TIMEOUT,
        state=lambda: f"\n--- log ---\n{log()}",
    )
    if process.poll() is not None:
        pytest.fail(f"{what} exited with code {process.returncode} while starting.\n--- log ---\n{log()}",
                    pytrace=False)


def _stop(worker: CeleryWorker) -> None:
    process = worker.process
    if process.poll() is not None:
        return
    process.terminate()  # SIGTERM: Celery's warm shutdown
    try:
        process.wait(timeout=WORKER_STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        worker.kill()


# --- Servers a test serves the app from, stops or restarts ---------------------------------
#
# The fault tests (tests/reliability) break Redis and PostgreSQL on purpose, so
# they get private instances here and never touch the shared ones other test
# runs and services use.

# A stopped server's processes get this long to exit before they are killed.
SERVER_STOP_TIMEOUT = 10


def _spawn(command: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start a server in a session of its own, so ``_end`` reaches its children (gunicorn's workers) too."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        return subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _end(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group; SIGKILL to whatever is left of it after SERVER_STOP_TIMEOUT."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=SERVER_STOP_TIMEOUT)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _read_log(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


class RedisServer:
    """
    A private ``redis-server`` on 127.0.0.1 and a free port (``redis_server``
    fixture) that a test may stop and start again on the same port. Nothing is
    persisted: it comes back empty, like a Redis that lost its data.
    """

    def __init__(self, log_dir: Path):
        self.binary = shutil.which("redis-server")
        if not self.binary:
            _skip_or_fail("fault tests need redis-server on PATH")
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def log(self) -> str:
        return _read_log(self.log_dir / "redis.log")

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.log_dir),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
        ]
        self.process = _spawn(command, self.log_dir / "redis.log")
        try:
            _wait_until_serving(self.process, self._answers, what="redis-server", log=self.log)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process is not None:
            _end(self.process)
            self.process = None

    def _answers(self) -> bool:
        import redis

        try:
            return redis.Redis.from_url(self.url(), socket_connect_timeout=1).ping()
        except redis.RedisError:
            return False


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private Redis, running (see ``RedisServer``); stopped after the test whatever state it was left in."""
    server = RedisServer(tmp_path / "redis")
    try:
        server.start()
        yield server
    finally:
        server.stop()
        client = _broker_clients.pop(server.url(), None)
        if client is not None:
            client.close()


def _postgres_bindir() -> Path:
    """The newest installed PostgreSQL's programs: Debian keeps initdb off PATH, in /usr/lib/postgresql/<major>/bin."""
    found = sorted(
        (path for path in Path("/usr/lib/postgresql").glob("*/bin/initdb") if path.parts[-3].isdigit()),
        key=lambda path: int(path.parts[-3]),
    )
    initdb = found[-1] if found else shutil.which("initdb")
    if not initdb:
        _skip_or_fail("fault tests need PostgreSQL's initdb and pg_ctl (the postgresql package)")
    return Path(initdb).parent


class PostgresServer:
    """
    A private PostgreSQL cluster (``postgres_server`` fixture): initdb into a
    temporary directory, served on 127.0.0.1 and a free port, trusting local
    connections as ``postgres``. PostgreSQL refuses to run as root, so under
    root (CI's ``.ci/run``) its programs run as the ``postgres`` OS user.
    """

    def __init__(self):
        self.bindir = _postgres_bindir()
        self.port = free_port()
        self.os_user = None
        if os.geteuid() == 0:
            try:
                self.os_user = pwd.getpwnam("postgres")
            except KeyError:
                _skip_or_fail("fault tests run as root need the postgres OS user to run PostgreSQL as")
        # Not under pytest's tmp_path: only root may enter that.
        self.root = Path(tempfile.mkdtemp(prefix="gapsurvey-pg-"))
        if self.os_user:
            os.chown(self.root, self.os_user.pw_uid, self.os_user.pw_gid)
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        return _read_log(self.log_path)

    def create(self) -> None:
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        # The socket in the data directory: the system's /var/run/postgresql may not be writable.
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {shlex.quote(str(self.data))} -c fsync=off"
        self._run("pg_ctl", "start", "-D", self.data, "-l", self.log_path, "-w", "-o", options)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is ended, the server comes back with the same options."""
        self._run("pg_ctl", "restart", "-D", self.data, "-l", self.log_path, "-w", "-m", "fast")

    def destroy(self) -> None:
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists() and self._run("pg_ctl", "stop", "-D", self.data, "-w", "-m", "immediate", check=False):
            with contextlib.suppress(OSError, ValueError):  # gone meanwhile
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, program: str, *args: object, check: bool = True) -> int:
        as_user = {}
        if self.os_user:
            as_user = {"user": self.os_user.pw_uid, "group": self.os_user.pw_gid, "extra_groups": []}
        command = [str(self.bindir / program), *map(str, args)]
        result = subprocess.run(
            command, cwd=self.root, capture_output=True, text=True, timeout=WORKER_START_TIMEOUT, **as_user
        )
        if check and result.returncode:
            pytest.fail(
                f"{shlex.join(command)} exited with {result.returncode}:\n{result.stdout}{result.stderr}\n"
                f"--- server log ---\n{self.log()}",
                pytrace=False,
            )
        return result.returncode


@pytest.fixture
def postgres_server() -> Iterator[PostgresServer]:
    """A private PostgreSQL, running (see ``PostgresServer``); stopped and deleted after the test."""
    server = PostgresServer()
    try:
        server.create()
        server.start()
        yield server
    finally:
        server.destroy()


@dataclass
class AppServer:
    """The app served by a real ``gunicorn`` subprocess, started as the Dockerfile starts it."""

    process: subprocess.Popen
    url: str
    log_path: Path

    def log(self) -> str:
        return _read_log(self.log_path)

    def healthy(self) -> bool:
        try:
            with urlopen(f"{self.url}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False


class AppServers:
    """Starts app servers for one test (``app_server``); all are stopped after it."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.servers: list[AppServer] = []

    def __call__(
        self, *, workers: int = 1, database_url: str | None = None, redis_url: str | None = None, **env: str
    ) -> AppServer:
        session_database_url, session_redis_url = _worker_urls()
        port = free_port()
        command = [
            sys.executable, "-m", "gunicorn", "gapsurvey.wsgi:application",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--access-logfile", "-",
            # Its default path is one per user: servers running side by side would take it from each other.
            "--no-control-socket",
        ]
        environment = {
            **os.environ,
            **env,
            "DATABASE_URL": database_url or session_database_url,
            # "" is no broker at all: tasks run in the web process.
            "REDIS_URL": session_redis_url if redis_url is None else redis_url,
            "PYTHONUNBUFFERED": "1",
        }
        server = AppServer(
            process=_spawn(command, self.log_dir / f"gunicorn-{port}.log", env=environment),
            url=f"http://127.0.0.1:{port}",
            log_path=self.log_dir / f"gunicorn-{port}.log",
        )
        self.servers.append(server)
        _wait_until_serving(server.process, server.healthy, what="gunicorn", log=server.log)
        return server

    def logs(self) -> str:
        return "\n".join(f"--- {server.url} ---\n{server.log()}" for server in self.servers)


@pytest.fixture
def app_server(tmp_path: Path) -> Iterator[AppServers]:
    """Serve the app from gunicorn: ``server = app_server(workers=2, ANALYSIS_ON_SUBMIT="1")``.

    On the pytest-django test database and the session's Redis unless the test
    gives others (``database_url``, ``redis_url``); extra keywords are the
    server's environment. Same marks and requirements as
    ``celery_worker_process``. Every server is stopped after the test.
    """
    _worker_urls()
    servers = AppServers(tmp_path / "app-servers")
    try:
        yield servers
    finally:
        for server in servers.servers:
            _end(server.process)


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
        servers = funcargs.get("app_server")
        if isinstance(servers, AppServers) and servers.servers:
            report.sections.append(("gunicorn logs", servers.logs()))
        for name, kind in (("redis_server", RedisServer), ("postgres_server", PostgresServer)):
            server = funcargs.get(name)
            if isinstance(server, kind):
                report.sections.append((f"{name} log", server.log()))
    return report
