#!/usr/bin/env python
"""How fast do a wave's invitation emails go out, and does each contact get exactly one? A benchmark, not a test.

Creates an engagement with ``surveys.services`` (workspace, engagement, its
open first wave), imports N contacts (default 5,000) through
``services.invitations_create``, then starts a real SMTP server (aiosmtpd on
127.0.0.1, in the bench's delivery process, counting what it accepts) and a
real ``celery worker`` subprocess (prefork, ``--concurrency``) pointed at it,
and queues the invitations with ``surveys.mailing.invitations_send``, as the
consultant's "send" button does. It waits until every email is sent or failed.

Prints the settings used (worker processes, batch size, rate), the queue time
(``invitations_send``: rows created, batches handed to Redis), the delivery time
(from queueing until the last email is settled), messages per second, SMTP
connections opened, distinct recipients, recipients who received exactly one
message (must be every contact), duplicates and failures. The exit code never
depends on the times; it is 1 only when a contact got no message or more than one.

Uses its own PostgreSQL database ``gapsurvey_bench_invitations`` (dropped and
created afresh, dropped again at the end unless ``--keep``) and a Redis
database (``--redis-url``, default ``redis://127.0.0.1:6379/15``) whose Celery
queue it purges before and after.

    bench/invitations                        # 5,000 contacts, 2 worker processes, unpaced
    bench/invitations --concurrency 4 --batch-size 100
    bench/invitations --rate 10              # the production default pace: 10 messages/s per process
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "gapsurvey_bench_invitations"
BENCH_DB_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
ADMIN_DB_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/15"
SITE_URL = "http://bench.invalid"

CONTACTS = 5_000
CONCURRENCY = 2
BATCH_SIZE = 50
WORKER_START_TIMEOUT = 60

# bench/analysis.py's helpers, loaded by path (its name would shadow the ``analysis`` app).
_spec = importlib.util.spec_from_file_location("bench_analysis", Path(__file__).with_name("analysis.py"))
ba = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ba)


# ==========================================================================
# Orchestration (parent process: no Django)
# ==========================================================================


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/invitations",
        description="Send a wave's invitation emails through a real worker to a local SMTP server.",
    )
    parser.add_argument("--contacts", type=int, default=CONTACTS, help=f"contacts to invite (default {CONTACTS:,})")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY,
                        help=f"worker processes (celery --concurrency, prefork; default {CONCURRENCY})")
    parser.add_argument("--rate", type=int, default=0,
                        help="GAPSURVEY_EMAIL_RATE: messages per second per worker process (default 0: unlimited)")
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE,
                        help=f"GAPSURVEY_EMAIL_BATCH_SIZE: emails per task (default {BATCH_SIZE})")
    parser.add_argument("--timeout", type=int, default=900,
                        help="give up waiting for the last email after this many seconds (default 900)")
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"the Celery broker (default {REDIS_URL})")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards")
    # Internal: the step a child process runs, and where it writes its figures.
    parser.add_argument("--phase", choices=["setup", "deliver"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.contacts < 1 or args.concurrency < 1 or args.batch_size < 1 or args.rate < 0:
        parser.error("--contacts, --concurrency and --batch-size must be at least 1, --rate at least 0")
    return args


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment of the bench's child processes and of the worker: a production-like configuration."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": "gapsurvey.settings",
        # DEBUG off, as in production: no query log growing in the worker.
        "DEBUG": "0",
        "SECRET_KEY": env.get("SECRET_KEY") or "gapsurvey-bench-not-secret",
        "SITE_URL": SITE_URL,
        "DATABASE_URL": BENCH_DB_URL,
        "REDIS_URL": args.redis_url,
        "ANALYSIS_ON_SUBMIT": "0",
        "GAPSURVEY_EMAIL_RATE": str(args.rate),
        "GAPSURVEY_EMAIL_BATCH_SIZE": str(args.batch_size),
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _run_phase(phase: str, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict:
    result_file = workdir / f"{phase}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--result-file", str(result_file),
               "--contacts", str(args.contacts), "--concurrency", str(args.concurrency), "--rate", str(args.rate),
               "--batch-size", str(args.batch_size), "--timeout", str(args.timeout), "--redis-url", args.redis_url]
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench: the {phase} step failed (exit {completed.returncode})")
    return json.loads(result_file.read_text())


def _bench_database(*statements: str) -> None:
    """DROP / CREATE the bench's own database (``{db}`` in each statement); outside a transaction, as they must be."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_DB_URL, autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement).format(db=sql.Identifier(BENCH_DB)))


def orchestrate(args: argparse.Namespace) -> int:
    env = _child_env(args)
    print(f"GapSurvey invitations bench — {args.contacts:,} contacts, {args.concurrency} worker process(es), "
          f"batch size {args.batch_size}, rate {_rate(args.rate)}; database {BENCH_DB}, broker {args.redis_url}; "
          f"{os.cpu_count()} CPU(s), code {ba._revision()}")
    # FORCE ends leftover sessions of an earlier, interrupted bench on this database only.
    _bench_database("DROP DATABASE IF EXISTS {db} WITH (FORCE)", "CREATE DATABASE {db}")
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gapsurvey-bench-invitations-") as tmp:
            workdir = Path(tmp)
            setup = _run_phase("setup", args, env, workdir)
            deliver = _run_phase("deliver", args, env, workdir)
    finally:
        if not args.keep:
            _bench_database("DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    exactly_once = _print_summary(args, setup, deliver)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s"
          + (f"; database {BENCH_DB} kept ({BENCH_DB_URL})" if args.keep else ""))
    return 0 if exactly_once else 1


def _rate(rate: int) -> str:
    return "unlimited (GAPSURVEY_EMAIL_RATE=0)" if rate == 0 else f"{rate}/s per worker process (GAPSURVEY_EMAIL_RATE={rate})"


def _print_summary(args: argparse.Namespace, setup: dict, deliver: dict) -> bool:
    contacts = setup["contacts"]
    exactly_once = deliver["exactly_once"] == contacts and deliver["duplicates"] == 0
    rows = [
        ("contacts", f"{contacts:,} (imported in {setup['import_s']:.1f} s)"),
        ("worker processes / batch size", f"{args.concurrency} / {args.batch_size} ({deliver['batches']:,} tasks)"),
        ("rate", _rate(args.rate)),
        ("queue time (invitations_send)", f"{deliver['queue_s']:.2f} s for {deliver['queued']:,} emails"),
        ("first message after", f"{deliver['first_s']:.2f} s"),
        ("delivery time (queue to last settled)", f"{deliver['delivery_s']:.1f} s"
                                                  + ("" if deliver["settled"] else "  << NOT SETTLED: timed out")),
        ("messages per second", f"{deliver['messages'] / max(deliver['delivery_s'], 1e-9):,.0f}"),
        ("messages accepted by the server", f"{deliver['messages']:,}"),
        ("SMTP connections opened", f"{deliver['connections']:,}"),
        ("distinct recipients", f"{deliver['recipients']:,}"),
        ("recipients with exactly one message", f"{deliver['exactly_once']:,} of {contacts:,}  "
                                                + ("OK" if exactly_once else "WRONG")),
        ("duplicates (messages beyond one per recipient)", f"{deliver['duplicates']:,}"),
        ("distinct personal links", f"{deliver['links']:,}"),
        ("emails sent / failed / other", f"{deliver['sent']:,} / {deliver['failed']:,} / {deliver['other']:,}"),
    ]
    print("\n" + "=" * 78 + "\nSummary\n" + "=" * 78)
    for label, value in rows:
        print(f"{label:<48}{value}")
    return exactly_once


# ==========================================================================
# Child processes (Django)
# ==========================================================================


def _bench_wave():
    from surveys.models import Wave

    return Wave.objects.select_related("engagement").get(engagement__slug="bench-invitations", number=1)


def phase_setup(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    from surveys import services

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    workspace = services.workspace_create(name="Bench Consulting")
    engagement = services.engagement_create(workspace=workspace, name="Bench Invitations", slug="bench-invitations")
    wave = engagement.waves.get(number=1)
    segments = ("Retail", "Wholesale", "Online")
    contacts = [services.Contact(email=f"contact{n:05d}@bench.example", name=f"Contact {n}",
                                 segment=segments[n % len(segments)]) for n in range(args.contacts)]
    started = time.perf_counter()
    created, merged = services.invitations_create(wave=wave, contacts=contacts)
    import_s = time.perf_counter() - started
    print(f"engagement {engagement.slug}: {created:,} contacts imported through invitations_create in "
          f"{import_s:.1f} s ({merged} merged)")
    ba._write_result(args, {"contacts": created, "import_s": import_s})


class CountingSmtp:
    """aiosmtpd handler: accepts everything, counts recipients, connections and personal links."""

    LINK = re.compile(rb"/c/([\w-]+)/\r?\n")

    def __init__(self):
        self.lock = threading.Lock()
        self.recipients: Counter[str] = Counter()
        self.links: set[bytes] = set()
        self.messages = 0
        self.connections = 0
        self.first_at: float | None = None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not hasattr(session, "bench_counted"):
            session.bench_counted = True
            with self.lock:
                self.connections += 1
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages += 1
            self.first_at = self.first_at or time.perf_counter()
            self.recipients.update(envelope.rcpt_tos)
            self.links.update(self.LINK.findall(envelope.original_content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_worker(args: argparse.Namespace, smtp_port: int, log_path: Path) -> tuple[subprocess.Popen, str]:
    nodename = f"bench-invitations-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    env = {**os.environ, "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
           "EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(smtp_port), "EMAIL_USE_TLS": "0", "EMAIL_USE_SSL": "0",
           "EMAIL_HOST_USER": "", "EMAIL_HOST_PASSWORD": ""}
    command = [sys.executable, "-m", "celery", "-A", "gapsurvey", "worker", "--pool=prefork",
               f"--concurrency={args.concurrency}", "--loglevel=WARNING", "--hostname", nodename,
               "--without-gossip", "--without-mingle", "--without-heartbeat"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                   stderr=subprocess.STDOUT)
    return process, nodename


def _wait_ready(app, process: subprocess.Popen, nodename: str, log_path: Path) -> None:
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while not app.control.ping(destination=[nodename], timeout=1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the worker did not start (exit {process.poll()}):\n{log_path.read_text()[-3000:]}")


def _stop_worker(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # warm shutdown
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def phase_deliver(args: argparse.Namespace) -> None:
    from aiosmtpd.controller import Controller

    from gapsurvey.celery import app
    from surveys import mailing
    from surveys.models import InvitationEmail

    Status = InvitationEmail.Status
    wave = _bench_wave()
    emails = InvitationEmail.objects.filter(invitation__wave=wave)
    handler = CountingSmtp()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    app.control.purge()
    log_path = Path(args.result_file).with_name("worker.log")
    started = time.perf_counter()
    process, nodename = _start_worker(args, controller.port, log_path)
    try:
        _wait_ready(app, process, nodename, log_path)
        print(f"SMTP server on 127.0.0.1:{controller.port}; worker {nodename} ready in "
              f"{time.perf_counter() - started:.1f} s ({args.concurrency} process(es))")

        started = time.perf_counter()
        queued = mailing.invitations_send(wave=wave)
        queue_s = time.perf_counter() - started
        print(f"invitations_send queued {queued:,} emails in {queue_s:.2f} s; waiting for delivery")
        deadline = started + args.timeout
        while (settled := not emails.filter(status__in=[Status.QUEUED, Status.SENDING]).exists()) is False:
            if time.perf_counter() > deadline:
                break
            time.sleep(0.05)
        delivery_s = time.perf_counter() - started
    finally:
        _stop_worker(process)
        controller.stop()
        app.control.purge()

    counts = Counter(emails.values_list("status", flat=True))
    recipients = handler.recipients
    ba._write_result(args, {
        "queued": queued, "queue_s": queue_s, "delivery_s": delivery_s, "settled": settled,
        "batches": -(-queued // args.batch_size),
        "first_s": (handler.first_at - started) if handler.first_at else float("nan"),
        "messages": handler.messages, "connections": handler.connections, "recipients": len(recipients),
        "exactly_once": sum(1 for n in recipients.values() if n == 1),
        "duplicates": sum(n - 1 for n in recipients.values() if n > 1), "links": len(handler.links),
        "sent": counts[Status.SENT], "failed": counts[Status.FAILED],
        "other": sum(counts.values()) - counts[Status.SENT] - counts[Status.FAILED],
    })


PHASES = {"setup": phase_setup, "deliver": phase_deliver}


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    if args.phase:
        ba._django_setup()
        PHASES[args.phase](args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
