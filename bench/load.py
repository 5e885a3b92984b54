#!/usr/bin/env python
"""Does the app keep every answer and answer quickly while 50 people submit at once? A benchmark, not a test.

Serves the app with gunicorn on 127.0.0.1 (``DEBUG`` off, static files
collected as the image build does) against PostgreSQL and Redis, with a real
``celery worker`` running the analyses that submissions request
(``ANALYSIS_ON_SUBMIT`` on, the default debounce). A small asyncio client
(raw HTTP/1.1 over asyncio streams, no dependencies) then drives ``--clients``
simulated people for ``--duration`` seconds, each looping as a new person:

- an invited customer (a personal link from ``services.invitations_create``),
- a customer of the wave's open link, or
- a staff scribe on the staff link (some save a draft first, reopen its
  private link and submit from there).

Each GETs the answer page (CSRF cookie, hidden fields), thinks (``--think``),
POSTs complete answers (several items per question, every rating) and follows
the redirect to the thanks page; a submission counts as done only when the
thanks page arrives. The answers come from ``bench/analysis.py``'s generator
(the demo's phrase banks, varied), so the worker analyses realistic text.

Afterwards it waits for the worker to finish the analyses the load requested,
then counts and checks rows: every submission that got its thanks page must be
stored exactly as posted (items with tags and order, ratings with votes, the
staff group's details), and nothing else may appear. Prints requests per
second, p50/p95/p99/max latency per request kind as the client saw it and as
gunicorn logged it, errors by kind, submitted vs stored per channel, the
analysis runs the worker did meanwhile and the CPU each part of the system
took, then a summary against the issue's target (p95 <= 200 ms at 50
concurrent clients on 2 cores, 0 errors, 0 lost). The exit code never depends
on the times: it is 1 only when an answer that got its thanks page was not
stored as posted.

Uses its own PostgreSQL database ``gapsurvey_bench_load`` (dropped and created
afresh, dropped at the end unless ``--keep``) and a Redis database
(``--redis-url``, default ``redis://127.0.0.1:6379/12``) whose Celery queue
it purges before and after.

    bench/load                                  # 50 clients, 60 s, as deployed: gunicorn.conf.py, worker niced
    bench/load --worker-nice 0                  # the worker at the web's CPU priority
    bench/load --web-workers 2 --web-threads 4  # gthread instead of sync workers
    bench/load --clients 100 --duration 120 --engine tfidf --think 0.2-1
"""

from __future__ import annotations

import argparse
import asyncio
import html
import importlib.util
import io
import itertools
import json
import os
import random
import re
import runpy
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "gapsurvey_bench_load"
BENCH_DB_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
REDIS_URL = "redis://127.0.0.1:6379/12"
PASSWORD = "bench-load-not-secret"
SETTINGS_MODULE = "bench_load_settings"

# The issue's target (2-core machine).
TARGET_CLIENTS = 50
TARGET_P95_MS = 200.0

CLIENTS = 50
DURATION_S = 60
THINK = (0.5, 2.0)
MIX = {"invitation": 60, "open": 25, "staff": 15}
STAFF_DRAFTS = 0.3
INVITATIONS = 20_000
POOL = 10_000
WEB_THREADS = 1
KEEP_ALIVE_S = 2
REQUEST_TIMEOUT_S = 30.0
START_TIMEOUT_S = 90

# Markers of the pages a flow must reach.
THANKS = b"<title>Thank you \xc2\xb7 GapSurvey</title>"
SHEET_THANKS = "Thank you — the sheet is submitted".encode()


def _bench_module(name: str):
    """bench/<name>.py as a module (``analysis`` would shadow the app of that name; none has import side effects)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ba = _bench_module("analysis")
bd = _bench_module("dashboard")
bi = _bench_module("invitations")


# ==========================================================================
# Orchestration (parent process: no Django)
# ==========================================================================


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    low, high = float(low), float(high or low)
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("give seconds as MIN-MAX, e.g. 0.5-2")
    return low, high


def _mix(text: str) -> dict[str, int]:
    shares = [int(part) for part in text.split(",")]
    if len(shares) != 3 or min(shares) < 0 or sum(shares) == 0:
        raise argparse.ArgumentTypeError("give three whole shares INVITATION,OPEN,STAFF, e.g. 60,25,15")
    return dict(zip(MIX, shares))


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/load",
        description="Serve the app with gunicorn and a real worker, submit answers from many clients, count rows.",
    )
    parser.add_argument("--clients", type=int, default=CLIENTS, help=f"concurrent simulated people (default {CLIENTS})")
    parser.add_argument("--duration", type=float, default=DURATION_S,
                        help=f"seconds during which clients start new answers (default {DURATION_S})")
    parser.add_argument("--think", type=_range, default=THINK, metavar="MIN-MAX",
                        help=f"seconds a person takes between the page and the post (default {THINK[0]}-{THINK[1]})")
    parser.add_argument("--mix", type=_mix, default=MIX, metavar="INV,OPEN,STAFF",
                        help="shares of invited customers, open-link customers and staff scribes (default 60,25,15)")
    parser.add_argument("--staff-drafts", type=float, default=STAFF_DRAFTS,
                        help=f"share of staff scribes who save a draft first (default {STAFF_DRAFTS})")
    parser.add_argument("--invitations", type=int, default=INVITATIONS,
                        help=f"personal links created for the load (default {INVITATIONS:,})")
    parser.add_argument("--pool", type=int, default=POOL,
                        help=f"generated answer sheets the clients cycle through (default {POOL:,})")
    parser.add_argument("--web-workers", type=int, default=None,
                        help="gunicorn --workers (default: gunicorn.conf.py's, as deployed: 2 per core + 1)")
    parser.add_argument("--web-threads", type=int, default=WEB_THREADS,
                        help=f"gunicorn --threads; above 1 gunicorn uses gthread workers (default {WEB_THREADS}: sync)")
    parser.add_argument("--keep-alive", type=int, default=KEEP_ALIVE_S,
                        help=f"gunicorn --keep-alive seconds (gthread only; default {KEEP_ALIVE_S}, gunicorn's)")
    parser.add_argument("--engine", choices=["minilm", "tfidf"], default="minilm",
                        help="ANALYSIS_ENGINE of the worker (default minilm)")
    parser.add_argument("--debounce", type=int, default=None,
                        help="ANALYSIS_DEBOUNCE_SECONDS (default: the app's, 30)")
    parser.add_argument("--conn-max-age", type=int, default=None,
                        help="DB_CONN_MAX_AGE of the web workers (default: the app's, 60)")
    parser.add_argument("--timeout", type=float, default=REQUEST_TIMEOUT_S,
                        help=f"seconds before a request counts as timed out (default {REQUEST_TIMEOUT_S:.0f})")
    parser.add_argument("--drain-timeout", type=int, default=600,
                        help="seconds to wait for the worker's analyses after the load (default 600)")
    parser.add_argument("--worker-nice", type=int, default=None,
                        help="GAPSURVEY_WORKER_NICE of the worker (default: the app's, 10; 0 for normal priority)")
    parser.add_argument("--worker-threads", type=int, default=0,
                        help="OMP_NUM_THREADS of the worker: torch's threads for MiniLM (default 0: unset, one per core)")
    parser.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                        help="before the load, wait up to this long for other processes to leave the CPU "
                             "(default 0: do not wait)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the answers and the clients' choices (default 1)")
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"the Celery broker (default {REDIS_URL})")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards")
    # Internal: the step a child process runs, where it writes its figures, and the shared folder.
    parser.add_argument("--phase", choices=["setup", "load"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.web_workers is None:
        args.web_workers = runpy.run_path(str(REPO_ROOT / "gunicorn.conf.py"))["workers"]
    if min(args.clients, args.web_workers, args.web_threads, args.invitations, args.pool) < 1 or args.duration <= 0:
        parser.error("--clients, --web-workers, --web-threads, --invitations, --pool and --duration must be positive")
    if not 0 <= args.staff_drafts <= 1:
        parser.error("--staff-drafts is a share from 0 to 1")
    return args


def _child_env(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """Production settings on plain-HTTP loopback, for the bench's children, gunicorn and the worker."""
    env = dict(os.environ)
    env.update({
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join([str(workdir), str(REPO_ROOT)]),
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1",
        # No TLS on loopback: no redirect to https. The cookies stay Secure, as in production;
        # the client sends them anyway.
        "SECURE_SSL_REDIRECT": "0",
        "DATABASE_URL": BENCH_DB_URL,
        "REDIS_URL": args.redis_url,
        "ANALYSIS_ON_SUBMIT": "1",
        "ANALYSIS_ENGINE": args.engine,
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("GAPSURVEY_THEME_ENGINE", None)  # would override ANALYSIS_ENGINE
    for name, value in (("ANALYSIS_DEBOUNCE_SECONDS", args.debounce), ("DB_CONN_MAX_AGE", args.conn_max_age)):
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def _run_phase(phase: str, argv: list[str], env: dict[str, str], workdir: Path) -> dict:
    result_file = workdir / f"{phase}.json"
    command = [sys.executable, str(Path(__file__).resolve()), *argv, "--phase", phase,
               "--result-file", str(result_file), "--workdir", str(workdir)]
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench: the {phase} step failed (exit {completed.returncode})")
    return json.loads(result_file.read_text())


def orchestrate(args: argparse.Namespace, argv: list[str]) -> int:
    print(f"GapSurvey load bench — {args.clients} clients for {args.duration:g} s, think {args.think[0]:g}-"
          f"{args.think[1]:g} s, mix {_mix_text(args.mix)}; gunicorn {_web_text(args)}; worker {_worker_text(args)}; "
          f"database {BENCH_DB}, broker {args.redis_url}; {os.cpu_count()} CPU(s), load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}, code {ba._revision()}")
    print(f"core speed: {_core_speed_ms():.0f} ms for {SPEED_LOOP:,} additions in a Python loop "
          "(lower is faster; compares runs on different machines)")
    # FORCE ends leftover sessions of an earlier, interrupted bench on this database only.
    ba._admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)", BENCH_DB)
    ba._admin_execute("CREATE DATABASE {db}", BENCH_DB)
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gapsurvey-bench-load-") as tmp:
            workdir = Path(tmp)
            # The production settings, with STATIC_ROOT in the temporary folder (as tests/test_deploy_files.py).
            (workdir / f"{SETTINGS_MODULE}.py").write_text(
                f"from gapsurvey.settings import *  # noqa: F403\nSTATIC_ROOT = {str(workdir / 'static')!r}\n"
            )
            env = _child_env(args, workdir)
            # The seeded answers must not queue an analysis into the broker the load phase purges.
            _run_phase("setup", argv, {**env, "ANALYSIS_ON_SUBMIT": "0"}, workdir)
            load = _run_phase("load", argv, env, workdir)
    finally:
        if not args.keep:
            ba._admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)", BENCH_DB)
    kept = _print_summary(args, load)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s"
          + (f"; database {BENCH_DB} kept ({BENCH_DB_URL})" if args.keep else ""))
    return 0 if kept else 1


SPEED_LOOP = 5_000_000


def _core_speed_ms() -> float:
    """The best of three timings of a plain Python loop: the request handlers' kind of work, on one core."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for n in range(SPEED_LOOP):
            total += n
        best = min(best, time.perf_counter() - started)
    return best * 1000


def _mix_text(mix: dict[str, int]) -> str:
    total = sum(mix.values())
    return ", ".join(f"{share / total:.0%} {kind}" for kind, share in mix.items())


def _web_text(args: argparse.Namespace) -> str:
    if args.web_threads > 1:
        return f"{args.web_workers} gthread worker(s) x {args.web_threads} threads (keep-alive {args.keep_alive} s)"
    return f"{args.web_workers} sync worker(s)"


def _worker_text(args: argparse.Namespace) -> str:
    nice = "the app's default" if args.worker_nice is None else args.worker_nice
    return (f"1 process, engine {args.engine}, GAPSURVEY_WORKER_NICE {nice}"
            + (f", {args.worker_threads} torch thread(s)" if args.worker_threads else ""))


def _print_summary(args: argparse.Namespace, load: dict) -> bool:
    overall = load["client"]["overall"]
    errors = sum(load["errors"].values())
    lost = load["check"]["lost"]
    print("\n" + "=" * 78)
    print(f"Summary (target: p95 <= {TARGET_P95_MS:.0f} ms at {TARGET_CLIENTS} concurrent clients on 2 cores, "
          "0 errors, 0 lost)")
    print("=" * 78)
    rows = [
        ("clients / duration / think",
         f"{args.clients} / {load['window_s']:.0f} s / {args.think[0]:g}-{args.think[1]:g} s"),
        ("gunicorn / worker", f"{_web_text(args)} / {_worker_text(args)}"),
        ("requests per second", f"{load['client']['rps']:.1f} ({overall['requests']:,} requests)"),
        ("latency p50 / p95 / p99 / max",
         f"{overall['p50_ms']:.0f} / {overall['p95_ms']:.0f} / {overall['p99_ms']:.0f} / {overall['max_ms']:.0f} ms"),
        ("submissions completed (thanks page)", f"{load['check']['completed']:,}"),
        ("stored (new submitted respondents)", f"{load['check']['stored']:,}"),
        ("lost (missing or altered)", f"{lost:,}"),
        ("stored without a thanks page", f"{load['check']['unconfirmed']:,}"),
        ("errors", f"{errors:,}" + (f" ({', '.join(f'{n} {k}' for k, n in load['errors'].items())})"
                                    if errors else "")),
        ("analysis runs during the load", f"{load['analysis']['during']} (+{load['analysis']['after']} after it)"),
        ("CPU taken by other processes", f"{load['cpu']['others_share']:.0%} of the machine"),
    ]
    for label, value in rows:
        print(f"{label:<40}{value}")
    print()
    verdicts = [
        (f"p95 latency, all requests <= {TARGET_P95_MS:.0f} ms", f"{overall['p95_ms']:.0f} ms",
         overall["p95_ms"] <= TARGET_P95_MS),
        ("errors = 0", f"{errors:,}", errors == 0),
        ("lost = 0 (submitted = stored)", f"{lost:,}",
         lost == 0 and load["check"]["completed"] == load["check"]["stored"]),
    ]
    for name, figure, ok in verdicts:
        print(f"{name:<40}{figure:>12}  {ba._verdict(ok)}")
    if args.clients != TARGET_CLIENTS:
        print(f"(the target is for {TARGET_CLIENTS} clients; this run had {args.clients})")
    if load["cpu"]["others_share"] > 0.1:
        print(f"(other processes took {load['cpu']['others_share']:.0%} of the machine during the load; "
              "the latencies are inflated -- rerun on a quiet machine)")
    return lost == 0


# ==========================================================================
# Child processes (Django)
# ==========================================================================


def _demo_wave():
    from surveys import demo
    from surveys.models import Wave

    return Wave.objects.select_related("engagement").get(engagement__slug=demo.ENGAGEMENT_SLUG, number=1)


def _pool(args: argparse.Namespace, item_keys: list[str]) -> dict[str, list[dict]]:
    """Answer sheets for the clients, from bench/analysis.py's generator: customers mostly, some staff sheets."""
    from surveys.models import Group

    pool: dict[str, list[dict]] = {"customer": [], "staff": []}
    for respondent in ba.generate(random.Random(args.seed), item_keys=item_keys, ref_prefix="load-",
                                  respondents=args.pool):
        items = [[i.question_key, i.tag, i.text] for i in respondent.items]
        if respondent.group == Group.CUSTOMER:
            pool["customer"].append({"segment": respondent.department, "items": items,
                                     "ratings": {r.item_key: r.value for r in respondent.ratings}})
        elif respondent.group == Group.STAFF:
            votes: dict[str, Counter] = defaultdict(Counter)
            for r in respondent.ratings:
                votes[r.item_key][r.value] += r.votes or 1
            pool["staff"].append({"department": respondent.department, "members": respondent.members,
                                  "items": items, "ratings": {k: sorted(c.items()) for k, c in votes.items()}})
    return pool


def _counts(wave) -> dict:
    from analysis.models import AnalysisRun
    from surveys.models import AnswerItem, Rating, Respondent

    respondents = Respondent.objects.filter(wave=wave)
    by_channel = Counter(respondents.filter(status=Respondent.Status.SUBMITTED).values_list("channel", flat=True))
    return {
        "submitted": dict(by_channel),
        "drafts": respondents.filter(status=Respondent.Status.DRAFT).count(),
        "items": AnswerItem.objects.filter(respondent__wave=wave).count(),
        "ratings": Rating.objects.filter(respondent__wave=wave).count(),
        "runs": AnalysisRun.objects.filter(wave=wave).count(),
        "max_respondent_id": max(respondents.values_list("pk", flat=True), default=0),
    }


def phase_setup(args: argparse.Namespace) -> None:
    from django.core.management import call_command
    from django.urls import reverse

    from surveys import demo, services

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    call_command("collectstatic", verbosity=0, interactive=False)
    print(f"migrated and collected static files (DEBUG off needs the manifest) in "
          f"{time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    call_command("seed_demo", "--password", PASSWORD, verbosity=0, stdout=io.StringIO())
    wave = _demo_wave()
    if not wave.open_link_enabled or not wave.is_open:
        raise SystemExit("the demo wave must be open with its open link enabled")
    print(f"seeded the demo engagement {wave.engagement.slug} in {time.perf_counter() - started:.1f} s")

    segments = list(demo.SEGMENTS)
    contacts = [services.Contact(email=f"load{n:06d}@bench.example", name=f"Load Customer {n}",
                                 segment=segments[n % len(segments)]) for n in range(args.invitations)]
    started = time.perf_counter()
    created, _ = services.invitations_create(wave=wave, contacts=contacts)
    invitations = [[token, reverse("public:customer_answer", args=[token])] for token in
                   wave.invitations.filter(email__endswith="@bench.example").order_by("email")
                   .values_list("token", flat=True)]
    print(f"created {created:,} personal links through invitations_create in {time.perf_counter() - started:.1f} s")

    from analysis.services import analysis_run_now

    # A live wave has its analysis served already: the worker's runs during the load embed only new texts.
    started = time.perf_counter()
    run = analysis_run_now(wave=wave)
    print(f"analysed the demo wave before the load: status {run.status}, engine {run.engine or '-'}, "
          f"{time.perf_counter() - started:.1f} s (model load included)")

    started = time.perf_counter()
    pool = _pool(args, list(wave.rating_items.values_list("key", flat=True)))
    print(f"generated {len(pool['customer']):,} customer and {len(pool['staff']):,} staff answer sheets "
          f"in {time.perf_counter() - started:.1f} s")
    setup = {
        "invitations": invitations,
        "open_path": reverse("public:open_answer", args=[wave.open_link_token]),
        "staff_path": reverse("public:staff_start", args=[wave.staff_token]),
        "pool": pool,
        "baseline": _counts(wave),
    }
    (Path(args.workdir) / "clients.json").write_text(json.dumps(setup))
    ba._write_result(args, {"invitations": created})


# --- The servers ---------------------------------------------------------------


def _start(command: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)


def _start_web(args: argparse.Namespace, port: int, workdir: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "gunicorn", "gapsurvey.wsgi:application", "--bind", f"127.0.0.1:{port}",
               "--workers", str(args.web_workers), "--threads", str(args.web_threads),
               "--keep-alive", str(args.keep_alive), "--timeout", "60", "--graceful-timeout", "30",
               "--access-logfile", str(workdir / "access.log"), "--access-logformat", "%(m)s %(U)s %(s)s %(D)s",
               "--log-level", "warning"]
    return _start(command, workdir / "gunicorn.log")


def _wait_web(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if conn.recv(64).startswith(b"HTTP/1.1 200"):
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"gunicorn did not start (exit {process.poll()}):\n{log_path.read_text()[-3000:]}")
        time.sleep(0.2)


def _start_worker(args: argparse.Namespace, workdir: Path) -> tuple[subprocess.Popen, str]:
    nodename = f"bench-load-{uuid.uuid4().hex[:8]}@{socket.gethostname()}"
    command = [sys.executable, "-m", "celery", "-A", "gapsurvey", "worker", "--pool=prefork", "--concurrency=1",
               "--loglevel=WARNING", "--hostname", nodename, "--without-gossip", "--without-mingle",
               "--without-heartbeat"]
    env = dict(os.environ)
    if args.worker_threads:
        env["OMP_NUM_THREADS"] = str(args.worker_threads)
    if args.worker_nice is not None:
        env["GAPSURVEY_WORKER_NICE"] = str(args.worker_nice)
    return _start(command, workdir / "worker.log", env), nodename


def _niceness(pid: int) -> int | None:
    """A process's nice value, from /proc (field 19 of stat), None once it has gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[16])


# --- CPU accounting --------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """A process and its descendants (Linux /proc)."""
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        try:
            todo += [int(c) for c in Path(f"/proc/{current}/task/{current}/children").read_text().split()]
        except (OSError, ValueError):
            pass
    return pids


def _named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _cpu_s(pids: list[int]) -> float:
    """CPU seconds of these processes and of their children that have exited (user + system)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        total += sum(int(v) for v in fields[11:15])
    return total / os.sysconf("SC_CLK_TCK")


def _cpu_snapshot(web: subprocess.Popen, worker: subprocess.Popen) -> dict[str, float]:
    return {
        "web (gunicorn)": _cpu_s(_tree(web.pid)),
        "worker (celery)": _cpu_s(_tree(worker.pid)),
        "PostgreSQL (all databases)": _cpu_s(_named("postgres")),
        "Redis": _cpu_s(_named("redis-server")),
        "client (this process)": time.process_time(),
        "machine": ba._machine_busy_s(),
    }


def _cpu_used(before: dict[str, float], after: dict[str, float], seconds: float) -> dict:
    used = {name: after[name] - before[name] for name in before}
    machine = used.pop("machine")
    others = max(0.0, machine - sum(used.values()))
    capacity = seconds * (os.cpu_count() or 1)
    return {"seconds": seconds, "parts": used, "others_s": others, "machine_s": machine,
            "others_share": others / max(capacity, 1e-9), "busy_share": machine / max(capacity, 1e-9)}


# --- The client ------------------------------------------------------------------


class FlowFailed(Exception):
    """A request of a flow failed (counted already); the person gives up and the next one starts."""


class OutOfLinks(Exception):
    """Every personal link has been used."""


@dataclass
class Response:
    status: int
    headers: dict[str, list[str]]
    body: bytes

    def header(self, name: str) -> str:
        return (self.headers.get(name) or [""])[-1]


_INPUT = re.compile(rb"<input\b[^>]*>", re.I)
_SELECT = re.compile(rb'<select\b[^>]*\bname="([^"]+)"', re.I)
_ATTR = re.compile(rb'([\w-]+)="([^"]*)"')
_ERROR = re.compile(rb'class="(?:text-danger[^"]*|invalid-feedback)"[^>]*>([^<]+)<')


def _path_kind(method: str, path: str) -> str:
    """The kind of a request, from its method and path: the same for the client's and gunicorn's figures."""
    parts = path.strip("/").split("/")
    channel = {"c": "invitation", "o": "open", "staff": "staff", "sheet": "staff draft link"}.get(parts[0], parts[0])
    if len(parts) > 2:
        return f"{method} {channel} thanks"
    return f"{method} {channel} {'page' if method == 'GET' else 'answers'}"


@dataclass
class LoadClient:
    """Simulated people over raw HTTP/1.1: one keep-alive connection and a cookie jar each."""

    port: int
    setup: dict
    think: tuple[float, float]
    mix: dict[str, int]
    staff_drafts: float
    timeout: float
    keep_alive: float
    rng: random.Random
    # (kind, start offset s, latency ms, measured?) per completed request
    records: list[tuple[str, float, float, bool]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    error_samples: list[str] = field(default_factory=list)
    completed: list[dict] = field(default_factory=list)
    posted_unknown: int = 0
    connections: int = 0
    retries: int = 0
    measuring: bool = False
    t0: float = 0.0

    def __post_init__(self):
        self.invitations = iter(self.setup["invitations"])
        self.customers = itertools.cycle(self.setup["pool"]["customer"])
        self.sheets = itertools.cycle(self.setup["pool"]["staff"])
        self.serial = itertools.count(1)
        self.origin = f"http://127.0.0.1:{self.port}"

    # -- HTTP ----------------------------------------------------------------

    async def _exchange(self, person: dict, data: bytes) -> Response:
        if person.get("conn") is None:
            person["conn"] = await asyncio.open_connection("127.0.0.1", self.port)
            self.connections += 1
        reader, writer = person["conn"]
        writer.write(data)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise ConnectionResetError("the server closed the connection")
        status = int(status_line.split()[1])
        headers: dict[str, list[str]] = defaultdict(list)
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()].append(value.strip())
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"][-1]))
        elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
            chunks = []
            while (size := int((await reader.readline()).split(b";")[0], 16)) > 0:
                chunks.append(await reader.readexactly(size))
                await reader.readline()
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            body = b"".join(chunks)
        else:
            body = await reader.read()
        if "close" in ",".join(headers.get("connection", [])).lower() or not body and reader.at_eof():
            self._close(person)
        return Response(status, dict(headers), body)

    @staticmethod
    def _close(person: dict) -> None:
        conn = person.pop("conn", None)
        if conn is not None:
            conn[1].close()

    async def request(self, person: dict, method: str, path: str, form: dict | None = None) -> Response:
        kind = _path_kind(method, path)
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", "User-Agent: gapsurvey-bench-load",
                 "Accept: text/html", "Connection: keep-alive"]
        if person["cookies"]:
            # Secure cookies (DEBUG off) over plain HTTP: a browser would hold them back; the bench sends them.
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in person["cookies"].items()))
        body = b""
        if form is not None:
            body = urlencode(form).encode()
            lines += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}",
                      f"Origin: {self.origin}", f"Referer: {self.origin}{person.get('page', path)}"]
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for attempt in (1, 2):
            conn = person.get("conn")
            # gunicorn closes a connection idle for --keep-alive seconds: don't send into one about to close.
            if conn is not None and (conn[0].at_eof() or time.monotonic() - person["used"] > self.keep_alive - 0.3):
                self._close(person)
            reused = person.get("conn") is not None
            started = time.perf_counter()
            try:
                response = await asyncio.wait_for(self._exchange(person, data), self.timeout)
            except asyncio.TimeoutError:
                self._close(person)
                self._fail(f"timeout ({kind})", method == "POST")
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
                self._close(person)
                # A reused connection the server closed meanwhile: a browser sends a GET again.
                if reused and attempt == 1 and method == "GET":
                    self.retries += 1
                    continue
                self._fail(f"connection error ({kind}: {type(error).__name__})", method == "POST")
            break
        person["used"] = time.monotonic()
        self.records.append((kind, started - self.t0, (time.perf_counter() - started) * 1000, self.measuring))
        for cookie in response.headers.get("set-cookie", []):
            pair, _, attributes = cookie.partition(";")
            name, _, value = pair.strip().partition("=")
            if not value or "max-age=0" in attributes.lower().replace(" ", ""):
                person["cookies"].pop(name, None)
            else:
                person["cookies"][name] = value
        if response.status >= 400:
            self._fail(f"HTTP {response.status} ({kind})", False, response)
        return response

    def _fail(self, what: str, posted: bool, response: Response | None = None):
        self.errors[what] += 1
        self.posted_unknown += posted
        if response is not None and len(self.error_samples) < 5:
            found = [html.unescape(m.decode()).strip() for m in _ERROR.findall(response.body)][:3]
            self.error_samples.append(f"{what}: {'; '.join(found) or response.body[:300].decode(errors='replace')}")
        raise FlowFailed(what)

    async def follow(self, person: dict, response: Response, *, expect: str) -> Response:
        """A redirect's target, GET (a 302 after a post)."""
        if response.status != 302:
            self._fail(f"no redirect after {expect} (HTTP {response.status})", False, response)
        target = urlsplit(response.header("location")).path
        return await self.request(person, "GET", target)

    # -- Pages and forms -------------------------------------------------------

    async def page(self, person: dict, path: str) -> tuple[dict[str, str], set[str]]:
        response = await self.request(person, "GET", path)
        person["page"] = path
        hidden, selects = {}, {m.decode() for m in _SELECT.findall(response.body)}
        for tag in _INPUT.findall(response.body):
            attrs = {k.decode().lower(): html.unescape(v.decode()) for k, v in _ATTR.findall(tag)}
            name = attrs.get("name", "")
            if attrs.get("type") == "hidden" and name and "__prefix__" not in name:
                hidden[name] = attrs.get("value", "")
        if "csrfmiddlewaretoken" not in hidden:
            self._fail(f"no answer form ({_path_kind('GET', path)})", False, response)
        return hidden, selects

    @staticmethod
    def answers_form(hidden: dict[str, str], selects: set[str], items: list, ratings: dict) -> dict[str, str]:
        """What the browser posts: the page's hidden fields, every item row (the page's script adds rows), ratings."""
        form = dict(hidden)
        for name, total in hidden.items():
            if not name.endswith("-TOTAL_FORMS"):
                continue
            question = name[: -len("-TOTAL_FORMS")]
            rows = [(tag, text) for key, tag, text in items if key == question]
            form[name] = str(max(int(total), len(rows)))
            for n in range(int(form[name])):
                tag, text = rows[n] if n < len(rows) else ("", "")
                form[f"{question}-{n}-text"] = text
                if f"{question}-0-tag" in selects:
                    form[f"{question}-{n}-tag"] = tag
        for key, value in ratings.items():
            if isinstance(value, int):
                form[f"r-rating_{key}"] = str(value)
            elif len(value) == 1:  # a staff group's agreed value (its votes: the members)
                form[f"r-rating_{key}"] = str(value[0][0])
            else:  # a staff group's spread: how many members gave each value
                form.update({f"r-spread_{key}_{v}": str(n) for v, n in value})
        return form

    async def think_a_little(self) -> None:
        await asyncio.sleep(self.rng.uniform(*self.think))

    @staticmethod
    def _expected(channel: str, identity: str, items: list, ratings: dict, **details) -> dict:
        by_question: dict[str, list] = defaultdict(list)
        for key, tag, text in items:
            by_question[key].append([tag, text.strip()])
        if channel == "staff":
            stored = {k: [list(p) for p in v] if len(v) > 1 else [[v[0][0], details["members"]]]
                      for k, v in ratings.items()}
        else:
            stored = {k: [[v, 1]] for k, v in ratings.items()}
        return {"channel": channel, "identity": identity, "items": dict(by_question), "ratings": stored, **details}

    # -- Flows -------------------------------------------------------------------

    async def invitation(self, person: dict) -> dict:
        link = next(self.invitations, None)
        if link is None:
            raise OutOfLinks
        token, path = link
        sheet = next(self.customers)
        hidden, selects = await self.page(person, path)
        await self.think_a_little()
        response = await self.request(person, "POST", path, self.answers_form(hidden, selects, sheet["items"],
                                                                              sheet["ratings"]))
        thanks = await self.follow(person, response, expect="the answers")
        self._expect_page(thanks, THANKS, "invitation thanks")
        return self._expected("invitation", token, sheet["items"], sheet["ratings"])

    async def open_link(self, person: dict) -> dict:
        path = self.setup["open_path"]
        sheet = next(self.customers)
        hidden, selects = await self.page(person, path)
        await self.think_a_little()
        form = self.answers_form(hidden, selects, sheet["items"], sheet["ratings"])
        form["segment"] = sheet["segment"]
        thanks = await self.follow(person, await self.request(person, "POST", path, form), expect="the answers")
        self._expect_page(thanks, THANKS, "open thanks")
        return self._expected("open", hidden["submission_key"], sheet["items"], sheet["ratings"],
                              department=sheet["segment"])

    async def staff(self, person: dict) -> dict:
        path = self.setup["staff_path"]
        sheet = next(self.sheets)
        details = {"group_name": f"Load group {next(self.serial)}", "department": sheet["department"],
                   "members": sheet["members"]}
        hidden, selects = await self.page(person, path)
        await self.think_a_little()
        if self.rng.random() < self.staff_drafts:
            # Save half the items as a draft, reopen its private link, finish and submit there.
            half = sheet["items"][: (len(sheet["items"]) + 1) // 2]
            form = {**self.answers_form(hidden, selects, half, {}), **details, "draft": "1"}
            response = await self.request(person, "POST", path, form)
            path = urlsplit(response.header("location")).path
            if response.status != 302 or not path.startswith("/sheet/"):
                self._fail(f"no draft link after saving (HTTP {response.status})", False, response)
            hidden, selects = await self.page(person, path)
            await self.think_a_little()
        form = {**self.answers_form(hidden, selects, sheet["items"], sheet["ratings"]), **details, "submit": "1"}
        response = await self.request(person, "POST", path, form)
        self._expect_page(response, SHEET_THANKS, "staff sheet submitted")
        return self._expected("staff", hidden["submission_key"], sheet["items"], sheet["ratings"], **details)

    def _expect_page(self, response: Response, marker: bytes, what: str) -> None:
        if response.status != 200 or marker not in response.body:
            self._fail(f"not the {what} page (HTTP {response.status})", False, response)

    async def person(self, flows: dict, deadline: float, delay: float) -> None:
        """One simulated person after another, until the deadline: each a new identity."""
        await asyncio.sleep(delay)
        kinds, weights = list(self.mix), list(self.mix.values())
        while True:  # at least one person each (the warm-up has no time to speak of)
            person = {"cookies": {}, "used": 0.0}
            try:
                self.completed.append(await flows[self.rng.choices(kinds, weights)[0]](person))
            except FlowFailed:
                await self.think_a_little()
            except OutOfLinks:
                self.errors["out of personal links (raise --invitations)"] += 1
                return
            finally:
                self._close(person)
            if time.perf_counter() >= deadline:
                return

    async def run(self, clients: int, seconds: float, *, measuring: bool) -> float:
        """``clients`` people starting new answers for ``seconds``; returns the wall time until the last finished."""
        flows = {"invitation": self.invitation, "open": self.open_link, "staff": self.staff}
        self.measuring = measuring
        started = time.perf_counter()
        deadline = started + seconds
        # Arrivals spread over one think time, so the first posts don't all come at once.
        await asyncio.gather(*(self.person(flows, deadline, self.rng.uniform(0, self.think[1]) if measuring else 0)
                               for _ in range(clients)))
        return time.perf_counter() - started


# --- Figures -----------------------------------------------------------------------


def _stats(latencies: list[float], seconds: float) -> dict:
    if not latencies:
        return {"requests": 0, "rps": 0.0, "p50_ms": float("nan"), "p95_ms": float("nan"),
                "p99_ms": float("nan"), "max_ms": float("nan")}
    return {"requests": len(latencies), "rps": len(latencies) / max(seconds, 1e-9),
            "p50_ms": bd._percentile(latencies, 0.5), "p95_ms": bd._percentile(latencies, 0.95),
            "p99_ms": bd._percentile(latencies, 0.99), "max_ms": max(latencies)}


def _table(title: str, by_kind: dict[str, list[float]], seconds: float) -> dict:
    print(f"\n  {title}")
    print(f"  {'request kind':<30}{'requests':>9}{'per s':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    rows = {}
    groups = {**dict(sorted(by_kind.items())),
              "all GET": [v for k, vs in by_kind.items() if k.startswith("GET") for v in vs],
              "all POST": [v for k, vs in by_kind.items() if k.startswith("POST") for v in vs],
              "all requests": [v for vs in by_kind.values() for v in vs]}
    for kind, latencies in groups.items():
        row = rows[kind] = _stats(latencies, seconds)
        print(f"  {kind:<30}{row['requests']:>9,}{row['rps']:>8.1f}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}"
              f"{row['p99_ms']:>9.0f}{row['max_ms']:>9.0f}")
    return rows


def _server_times(access_log: Path, offset: int) -> dict[str, list[float]]:
    """Request times gunicorn logged past ``offset`` (%(D)s: request read to response sent), in ms, by kind."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    with access_log.open("rb") as log:
        log.seek(offset)
        lines = log.read().decode().splitlines()
    for line in lines:
        method, path, _status, micros = line.split()
        if path != "/healthz":
            by_kind[_path_kind(method, path)].append(int(micros) / 1000)
    return by_kind


def _timeline(records: list, runs: list[dict], window: float, step: float = 10.0) -> None:
    print(f"\n  Timeline ({step:.0f} s steps; A = the worker was analysing)")
    print(f"  {'from s':>7}{'requests':>10}{'per s':>8}{'p50 ms':>9}{'p95 ms':>9}  worker")
    start = 0.0
    while start < window:
        latencies = [ms for _, at, ms, measured in records if measured and start <= at < start + step]
        busy = any(r["started_s"] is not None and r["started_s"] < start + step
                   and (r["finished_s"] is None or r["finished_s"] > start) for r in runs)
        row = _stats(latencies, step)
        print(f"  {start:>7.0f}{row['requests']:>10,}{row['rps']:>8.1f}{row['p50_ms']:>9.0f}{row['p95_ms']:>9.0f}  "
              f"{'A' if busy else ''}")
        start += step


def _runs(wave, since, t0_wall: float) -> list[dict]:
    """The wave's analysis runs that were not finished when the load started (the warm-up's included)."""
    from django.db.models import Q

    from analysis.models import AnalysisRun

    def offset(moment):
        return None if moment is None else moment.timestamp() - t0_wall

    return [{"id": r.pk, "status": r.status, "engine": r.engine, "requested_s": offset(r.requested_at),
             "started_s": offset(r.started_at), "finished_s": offset(r.finished_at),
             "items": len(r.assignments or {})}
            for r in AnalysisRun.objects.filter(Q(finished_at=None) | Q(finished_at__gte=since), wave=wave)
            .order_by("pk")]


def _drain(wave, timeout: float) -> float:
    """Wait until no analysis run of the wave is queued or running; returns the seconds waited."""
    from analysis.models import AnalysisRun

    started = time.perf_counter()
    busy = [AnalysisRun.Status.PENDING, AnalysisRun.Status.RUNNING]
    while AnalysisRun.objects.filter(wave=wave, status__in=busy).exists():
        if time.perf_counter() - started > timeout:
            print(f"  (the worker still had runs queued or running after {timeout} s)")
            break
        time.sleep(0.5)
    return time.perf_counter() - started


def _check(wave, completed: list[dict], baseline: dict) -> dict:
    """Compare what the clients saw completed with the rows stored since the baseline, one submission at a time."""
    from surveys.models import AnswerItem, Rating, Respondent

    new = Respondent.objects.filter(wave=wave, pk__gt=baseline["max_respondent_id"])
    rows = {r["pk"]: r for r in new.values("pk", "channel", "status", "submission_key", "invitation__token",
                                             "department", "group_name", "members")}
    items: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for rid, key, tag, text in (AnswerItem.objects.filter(respondent__in=new)
                                .order_by("respondent_id", "question_key", "order")
                                .values_list("respondent_id", "question_key", "tag", "text")):
        items[rid][key].append([tag, text])
    ratings: dict[int, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for rid, key, value, votes in (Rating.objects.filter(respondent__in=new)
                                   .order_by("respondent_id", "item__key", "value")
                                   .values_list("respondent_id", "item__key", "value", "votes")):
        ratings[rid][key].append([value, votes])
    by_identity = {}
    for r in rows.values():
        by_identity[r["invitation__token"] or r["submission_key"]] = r

    missing, altered, examples = 0, 0, []
    matched = set()
    for sent in completed:
        row = by_identity.get(sent["identity"])
        if row is None or row["status"] != Respondent.Status.SUBMITTED:
            missing += 1
            examples.append(f"missing: {sent['channel']} {sent['identity']}")
            continue
        matched.add(row["pk"])
        stored = {"items": dict(items[row["pk"]]), "ratings": {k: sorted(v) for k, v in ratings[row["pk"]].items()}}
        expected = {"items": sent["items"], "ratings": {k: sorted(v) for k, v in sent["ratings"].items()}}
        for name in ("department", "group_name", "members"):  # the details each channel posted (spaces folded)
            if name in sent:
                stored[name], expected[name] = str(row[name]), " ".join(str(sent[name]).split())
        if stored != expected:
            altered += 1
            examples.append(f"altered: {sent['channel']} {sent['identity']}: sent {expected}, stored {stored}")
    submitted = {pk: r for pk, r in rows.items() if r["status"] == Respondent.Status.SUBMITTED}
    channel_names = {"invitation": "invitation", "open_link": "open", "staff_link": "staff"}
    return {
        "completed": len(completed), "stored": len(submitted), "missing": missing, "altered": altered,
        "lost": missing + altered, "unconfirmed": len(set(submitted) - matched),
        "drafts_left": sum(1 for r in rows.values() if r["status"] == Respondent.Status.DRAFT),
        "completed_by_channel": dict(Counter(s["channel"] for s in completed)),
        "stored_by_channel": dict(Counter(channel_names.get(r["channel"], r["channel"]) for r in submitted.values())),
        "items_sent": sum(len(v) for s in completed for v in s["items"].values()),
        "ratings_sent": sum(len(v) for s in completed for v in s["ratings"].values()),
        "examples": examples[:5],
    }


def phase_load(args: argparse.Namespace) -> None:
    from django.utils import timezone

    from gapsurvey.celery import app

    workdir = Path(args.workdir)
    setup = json.loads((workdir / "clients.json").read_text())
    wave = _demo_wave()
    app.control.purge()
    port = bi._free_port()
    started = time.perf_counter()
    worker, nodename = _start_worker(args, workdir)
    web = _start_web(args, port, workdir)
    try:
        bi._wait_ready(app, worker, nodename, workdir / "worker.log")
        _wait_web(port, web, workdir / "gunicorn.log")
        print(f"gunicorn on 127.0.0.1:{port} ({_web_text(args)}) and worker {nodename} ({_worker_text(args)}) "
              f"ready in {time.perf_counter() - started:.1f} s")
        print(f"niceness: web {sorted({_niceness(pid) for pid in _tree(web.pid)})}, "
              f"worker {sorted({_niceness(pid) for pid in _tree(worker.pid)})}")
        client = LoadClient(port=port, setup=setup, think=tuple(args.think), mix=args.mix,
                            staff_drafts=args.staff_drafts, timeout=args.timeout, keep_alive=args.keep_alive,
                            rng=random.Random(args.seed))
        client.t0 = time.perf_counter()
        # Warm-up, not timed: every web worker compiles its templates and opens its database connection.
        warm = asyncio.run(client.run(args.web_workers * args.web_threads * 2, 0.001, measuring=False))
        print(f"warm-up: {len(client.completed)} submissions in {warm:.1f} s (not timed)")
        ba._wait_idle(args.wait_idle)
        print(f"the load starts (load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})")
        since = timezone.now()
        t0_wall = time.time()
        client.t0 = time.perf_counter()
        before = _cpu_snapshot(web, worker)
        log_offset = (workdir / "access.log").stat().st_size
        window = asyncio.run(client.run(args.clients, args.duration, measuring=True))
        cpu = _cpu_used(before, _cpu_snapshot(web, worker), window)
    finally:
        bi._stop_worker(web)
        # The worker stays up to finish what the load queued.
    try:
        drained = _drain(wave, args.drain_timeout)
    finally:
        bi._stop_worker(worker)
        app.control.purge()

    measured = [r for r in client.records if r[3]]
    print("\n" + "-" * 78 + f"\nLoad: {args.clients} clients, {window:.1f} s (new answers started for "
          f"{args.duration:g} s, then the last ones finished)\n" + "-" * 78)
    by_kind: dict[str, list[float]] = defaultdict(list)
    for kind, _, ms, _ in measured:
        by_kind[kind].append(ms)
    client_rows = _table("Latency as the client saw it (connect, send, wait, read the whole response):",
                         by_kind, window)
    _table("Latency as gunicorn logged it (from a worker reading the request to the response sent):",
           _server_times(workdir / "access.log", log_offset), window)
    runs = _runs(wave, since, t0_wall)
    _timeline(measured, runs, window)
    during = [r for r in runs if r["started_s"] is not None and r["started_s"] < window]
    busy_latencies = [ms for _, at, ms, _ in measured
                      if any(r["started_s"] <= at < (r["finished_s"] or 1e9) for r in during)]
    quiet_latencies = [ms for _, at, ms, _ in measured
                       if not any(r["started_s"] <= at < (r["finished_s"] or 1e9) for r in during)]
    print(f"\n  p95 while the worker analysed: {_stats(busy_latencies, 1)['p95_ms']:.0f} ms "
          f"({len(busy_latencies):,} requests); otherwise: {_stats(quiet_latencies, 1)['p95_ms']:.0f} ms "
          f"({len(quiet_latencies):,} requests)")

    print(f"\n  Errors: {sum(client.errors.values()) or 'none'}; connections opened {client.connections:,}, "
          f"GETs resent on a connection the server had closed {client.retries:,}, "
          f"posts whose outcome the client could not know {client.posted_unknown:,}")
    for what, count in client.errors.most_common():
        print(f"    {count:>6,}  {what}")
    for sample in client.error_samples:
        print(f"    e.g. {sample}")

    print("\n  Analysis runs not finished when the load started (seconds from its start; negative: before it):")
    for r in runs:
        done = r["finished_s"] is not None and r["started_s"] is not None
        took = f"{r['finished_s'] - r['started_s']:.1f} s" if done else "-"
        print(f"    run #{r['id']}: {r['status']:<8} engine {r['engine'] or '-':<28} requested "
              f"{r['requested_s']:>6.1f}, started {_fmt(r['started_s'])}, finished {_fmt(r['finished_s'])} ({took}, "
              f"{r['items']:,} items)")
    print(f"  waited {drained:.1f} s after the load for the worker to finish (the debounce included)")

    print(f"\n  CPU during the load ({window:.1f} s x {os.cpu_count()} cores = {window * (os.cpu_count() or 1):.0f} "
          f"CPU-s; the machine was {cpu['busy_share']:.0%} busy):")
    for name, seconds in cpu["parts"].items():
        print(f"    {name:<30}{seconds:>8.1f} s")
    print(f"    {'other processes':<30}{cpu['others_s']:>8.1f} s ({cpu['others_share']:.0%} of the machine)"
          + ("  << the machine was busy: the latencies are inflated" if cpu["others_share"] > 0.1 else ""))

    after = _counts(wave)
    check = _check(wave, client.completed, setup["baseline"])
    base = setup["baseline"]
    print("\n  Submitted vs stored (thanks pages seen vs new submitted rows; warm-up included):")
    print(f"  {'':<22}{'submitted':>10}{'stored':>10}")
    for channel in MIX:
        print(f"  {channel:<22}{check['completed_by_channel'].get(channel, 0):>10,}"
              f"{check['stored_by_channel'].get(channel, 0):>10,}")
    print(f"  {'answer items':<22}{check['items_sent']:>10,}{after['items'] - base['items']:>10,}")
    print(f"  {'rating rows':<22}{check['ratings_sent']:>10,}{after['ratings'] - base['ratings']:>10,}")
    print(f"  every stored submission checked against what was posted: missing {check['missing']}, "
          f"altered {check['altered']}; stored without a thanks page {check['unconfirmed']}; "
          f"staff drafts left unsubmitted {check['drafts_left']}")
    for example in check["examples"]:
        print(f"    {example[:400]}")
    ba._write_result(args, {
        "window_s": window, "client": {"rps": len(measured) / max(window, 1e-9), "overall": client_rows["all requests"],
                                       "kinds": client_rows},
        "errors": dict(client.errors), "check": check, "cpu": cpu,
        "analysis": {"during": len(during), "after": len(runs) - len(during), "runs": runs},
    })


def _fmt(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds:.1f}"


PHASES = {"setup": phase_setup, "load": phase_load}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = _parse_args(argv)
    if args.phase:
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the servers on the way out
        ba._django_setup()
        PHASES[args.phase](args)
        return 0
    return orchestrate(args, argv)


if __name__ == "__main__":
    sys.exit(main())
