#!/usr/bin/env python
"""How fast are the consultant's pages of a wave at survey scale? A benchmark, not a test.

Seeds the demo engagement (``seed_demo``), grows its wave to about 60,000
answer items with ``bench/analysis.py``'s generator (loaded through
``surveys.services.responses_import``), runs the analysis once
(``analysis.services.analysis_run_now``), then requests every consultant page
of the wave with Django's test ``Client`` (logged in as the demo consultant):
the wave page, the dashboard, the four question pages, the report, the theme
list, one theme detail (the largest theme) and the JSON API. Each page gets a
few warm-up requests, then N timed ones.

Prints per page: requests, p50, p95 and max server time (ms, the whole
request through the middleware, template rendering included; no network),
response size and SQL queries per request; then a summary against the issue's
target (p95 <= 150 ms per page) -- printing only: the exit code never depends
on the times.

Setup and measurement run in separate child processes (the measuring one is
like a fresh web worker: it never ran the analysis, no model loaded). The
parent only orchestrates and imports neither Django nor torch.

Uses its own PostgreSQL database ``gapsurvey_bench_dashboard`` (dropped and
created afresh, dropped again at the end unless ``--keep``).

    bench/dashboard                          # ~60,000 items, MiniLM; 50 timed requests per page
    bench/dashboard --items 5000             # small
    bench/dashboard --engine tfidf --keep    # the fallback engine; keep the database
    bench/dashboard --keep --reuse           # measure again on a kept database (no setup)
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "gapsurvey_bench_dashboard"
BENCH_DB_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
ADMIN_DB_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PASSWORD = "bench-dashboard-not-secret"

# The target (issue 4, "Speed").
TARGET_ITEMS = 60_000
TARGET_P95_MS = 150.0
WARMUP = 3
REQUESTS = 50


def _load_bench_analysis():
    """bench/analysis.py as a module (its name would shadow the ``analysis`` app; it has no import side effects)."""
    spec = importlib.util.spec_from_file_location("bench_analysis", Path(__file__).resolve().parent / "analysis.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ba = _load_bench_analysis()


# ==========================================================================
# Orchestration (parent process: no Django, no torch)
# ==========================================================================


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/dashboard",
        description="Time the consultant's pages of a wave grown to survey scale.",
    )
    parser.add_argument("--items", type=int, default=TARGET_ITEMS,
                        help=f"answer items the wave should reach, demo included (default {TARGET_ITEMS:,})")
    parser.add_argument("--requests", type=int, default=REQUESTS,
                        help=f"timed requests per page (default {REQUESTS})")
    parser.add_argument("--warmup", type=int, default=WARMUP, help=f"untimed requests per page first (default {WARMUP})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    parser.add_argument("--engine", choices=["minilm", "tfidf"], default="minilm",
                        help="settings.ANALYSIS_ENGINE for the analysis run (default minilm)")
    parser.add_argument("--keep", action="store_true", help=f"keep the database {BENCH_DB} afterwards")
    parser.add_argument("--reuse", action="store_true",
                        help=f"measure on the existing {BENCH_DB} (kept by an earlier --keep run): no setup")
    # Internal: the step a child process runs, and where it writes its figures.
    parser.add_argument("--phase", choices=["setup", "measure"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.items < 100:
        parser.error("--items must be at least 100")
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    return args


def _child_env(args: argparse.Namespace) -> dict[str, str]:
    env = ba._child_env(args, BENCH_DB_URL)
    # The test Client sends Host: testserver.
    env["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    return env


def _run_phase(phase: str, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict:
    result_file = workdir / f"{phase}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--result-file", str(result_file),
               "--seed", str(args.seed), "--items", str(args.items), "--engine", args.engine,
               "--requests", str(args.requests), "--warmup", str(args.warmup)]
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench: the {phase} step failed (exit {completed.returncode})")
    return json.loads(result_file.read_text())


def _admin_execute(statement: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_DB_URL, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(db=sql.Identifier(BENCH_DB)))


def orchestrate(args: argparse.Namespace) -> None:
    env = _child_env(args)
    print(f"GapSurvey dashboard bench — engine {args.engine}, seed {args.seed}, database {BENCH_DB} "
          f"({'reused' if args.reuse else 'created for this run'}), {os.cpu_count()} CPU(s), code {ba._revision()}")
    if not args.reuse:
        # FORCE ends leftover sessions of an earlier, interrupted bench on this database only.
        _admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)")
        _admin_execute("CREATE DATABASE {db}")
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gapsurvey-bench-dashboard-") as tmp:
            workdir = Path(tmp)
            if not args.reuse:
                _run_phase("setup", args, env, workdir)
            measure = _run_phase("measure", args, env, workdir)
    finally:
        if not args.keep:
            _admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    _print_summary(measure)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s"
          + (f"; database {BENCH_DB} kept ({BENCH_DB_URL})" if args.keep else ""))


def _print_summary(measure: dict) -> None:
    print("\n" + "=" * 78)
    print(f"Summary (target, issue 4: p95 server time <= {TARGET_P95_MS:.0f} ms per page, "
          f"{measure['items']:,} items)")
    print("=" * 78)
    misses = [p for p in measure["pages"] if p["p95_ms"] > TARGET_P95_MS]
    worst = max(measure["pages"], key=lambda p: p["p95_ms"])
    for page in measure["pages"]:
        print(f"{page['name']:<40}p95 {page['p95_ms']:>8.1f} ms  {ba._verdict(page['p95_ms'] <= TARGET_P95_MS)}")
    print(f"\n{len(measure['pages']) - len(misses)}/{len(measure['pages'])} pages within target; "
          f"worst p95 {worst['p95_ms']:.1f} ms ({worst['name']})  "
          f"{'PASS' if not misses else 'MISS: ' + ', '.join(p['name'] for p in misses)}")
    if (measure.get("others_cpu_share") or 0) > 0.1:
        print(f"(other processes took {measure['others_cpu_share']:.0%} of the machine while measuring; "
              "the times are inflated -- rerun on a quiet machine)")
    if abs(measure["items"] - TARGET_ITEMS) > TARGET_ITEMS * 0.02:
        print(f"(the target is for {TARGET_ITEMS:,} items; this run had {measure['items']:,})")


# ==========================================================================
# Child processes (Django)
# ==========================================================================


def _demo_wave():
    from surveys import demo
    from surveys.models import Wave

    return Wave.objects.select_related("engagement").get(engagement__slug=demo.ENGAGEMENT_SLUG, number=1)


def _wave_items(wave) -> int:
    from surveys.models import AnswerItem, Respondent

    return AnswerItem.objects.filter(respondent__wave=wave, respondent__status=Respondent.Status.SUBMITTED).count()


def phase_setup(args: argparse.Namespace) -> None:
    from random import Random

    from django.core.management import call_command

    from analysis import services
    from surveys.services import responses_import

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    call_command("seed_demo", "--password", PASSWORD, verbosity=0, stdout=io.StringIO())
    wave = _demo_wave()
    demo_items = _wave_items(wave)
    print(f"seeded the demo engagement in {time.perf_counter() - started:.1f} s: {demo_items:,} items")

    item_keys = list(wave.rating_items.values_list("key", flat=True))
    started = time.perf_counter()
    # The demo has its own leaders and staff; the growth adds some more of each (1% / 3% of respondents),
    # customers mostly, with refs of their own.
    respondents = ba.generate(Random(args.seed), item_keys=item_keys, ref_prefix="bench-",
                              items_target=max(1, args.items - demo_items))
    generate_s = time.perf_counter() - started
    started = time.perf_counter()
    summary = responses_import(wave=wave, respondents=respondents)
    import_s = time.perf_counter() - started
    items = _wave_items(wave)
    print(f"generated {len(respondents):,} respondents in {generate_s:.1f} s, imported through responses_import "
          f"in {import_s:.1f} s ({summary.items:,} items); the wave has {items:,} items")

    started = time.perf_counter()
    run = services.analysis_run_now(wave=wave)
    print(f"analysis_run_now: status {run.status}, engine {run.engine or '-'}, {time.perf_counter() - started:.1f} s "
          f"(model load included)")
    if run.status != "done":
        raise SystemExit(f"the analysis did not finish: {run.status} {getattr(run, 'error', '')}")
    ba._write_result(args, {"items": items, "generate_s": generate_s, "import_s": import_s})


def _pages(wave, run) -> list[tuple[str, str]]:
    from django.urls import reverse

    from analysis.charts import QUESTION_TITLES

    slug, number = wave.engagement.slug, wave.number
    kw = {"slug": slug, "number": number}
    pages = [
        ("wave page", reverse("surveys:wave_detail", kwargs=kw)),
        ("dashboard", reverse("analysis:dashboard", kwargs=kw)),
    ]
    for question in QUESTION_TITLES:
        pages.append((f"question {question}",
                      reverse("analysis:question_dashboard", kwargs={**kw, "question": question})))
    pages.append(("report", reverse("analysis:report", kwargs=kw)))
    pages.append(("theme list", reverse("analysis:theme_list", kwargs=kw)))
    # The largest theme, from the run's per-theme listings (what the theme page itself reads).
    sizes = {theme_id: len(listed) for theme_id, listed in run.theme_listings.values_list("theme_id", "items")}
    if sizes:
        theme_id = max(sizes, key=sizes.get)
        pages.append((f"theme detail (#{theme_id}, {sizes[theme_id]:,} items)",
                      reverse("analysis:theme_detail", kwargs={**kw, "theme_id": theme_id})))
    pages.append(("JSON API", reverse("analysis:api_analysis", kwargs={"slug": slug}) + f"?wave={number}"))
    return pages


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def phase_measure(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client

    from analysis import selectors
    from surveys import demo

    print("\n" + "-" * 78 + "\nPages (server time through Django's test Client, logged in as the demo consultant)\n"
          + "-" * 78)
    wave = _demo_wave()
    items = _wave_items(wave)
    run = selectors.run_served(wave)
    if run is None:
        raise SystemExit("no served analysis run for the demo wave (run without --reuse)")
    sizes = ba._store_sizes(run)
    print(f"wave {wave.engagement.slug} #{wave.number}: {items:,} items; served run #{run.pk} ({run.engine}); "
          "stored JSON: " + ", ".join(f"{name} {s['mb']:.2f} MB" for name, s in sizes.items()))
    import warnings

    warnings.filterwarnings("ignore", message="No directory at")  # no collectstatic here
    # Load the app as gunicorn does (gapsurvey/wsgi.py: every view imported, start-up objects frozen).
    import gapsurvey.wsgi  # noqa: F401

    client = Client()
    client.force_login(get_user_model().objects.get(username=demo.USERNAME))

    queries = [0]

    def count(execute, sql, params, many, context):
        queries[0] += 1
        return execute(sql, params, many, context)

    results = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend_pid = cursor.fetchone()[0]
    busy, cpu, db_cpu = ba._machine_busy_s(), time.process_time(), ba._process_cpu_s(backend_pid)
    wall = time.perf_counter()
    print(f"  {'page':<40}{'requests':>9}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}{'size KB':>10}{'queries':>9}  verdict")
    for name, url in _pages(wave, run):
        for _ in range(args.warmup):
            response = client.get(url)
            if response.status_code != 200:
                raise SystemExit(f"{name}: GET {url} answered {response.status_code}")
        times, query_counts = [], []
        with connection.execute_wrapper(count):
            for _ in range(args.requests):
                queries[0] = 0
                started = time.perf_counter()
                response = client.get(url)
                if response.streaming:
                    body = b"".join(response.streaming_content)
                else:
                    body = response.content
                times.append((time.perf_counter() - started) * 1000)
                query_counts.append(queries[0])
        row = {"name": name, "url": url, "requests": len(times), "p50_ms": _percentile(times, 0.5),
               "p95_ms": _percentile(times, 0.95), "max_ms": max(times), "kb": len(body) / 1024,
               "queries": statistics.median(query_counts), "queries_max": max(query_counts)}
        results.append(row)
        q = f"{row['queries']:.0f}" + ("" if row["queries_max"] == row["queries"] else f"-{row['queries_max']}")
        print(f"  {name:<40}{row['requests']:>9}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['max_ms']:>9.1f}"
              f"{row['kb']:>10,.0f}{q:>9}  {ba._verdict(row['p95_ms'] <= TARGET_P95_MS)}")
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    db_cpu = ba._process_cpu_s(backend_pid) - db_cpu
    others = max(0.0, ba._machine_busy_s() - busy - cpu - db_cpu)
    share = others / max(wall * (os.cpu_count() or 1), 1e-9)
    print(f"  CPU while measuring ({wall:.1f} s): this process {cpu:.1f} s, its PostgreSQL backend {db_cpu:.1f} s, "
          f"other processes {others:.1f} s ({share:.0%} of the machine)"
          + ("  << the machine was busy: the times above are inflated" if share > 0.1 else ""))
    print("  (server time = the whole request in-process: URL routing, middleware, session, view, queries, "
          "template; size = response body; queries = median per request, -max when it varied)")
    ba._write_result(args, {"items": items, "pages": results, "others_cpu_share": share})


PHASES = {"setup": phase_setup, "measure": phase_measure}


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.phase:
        ba._django_setup()
        PHASES[args.phase](args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
