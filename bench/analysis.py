#!/usr/bin/env python
"""How fast is a wave's analysis at survey scale? A benchmark, not a test.

Generates N respondents of realistic survey text (customers mostly, some
leaders and staff sheets, items for the four questions, ratings), loads them
through ``surveys.services.responses_import`` and times
``analysis.services.analysis_run_now`` twice:

- **cold**: embedding cache, themes and earlier runs of the wave cleared, so
  every distinct text is embedded and every theme is new;
- **warm**: 1% new items (new respondents, new texts) imported, then a re-run
  with the served cold run in place (only the new texts are embedded);

then prints a summary against the issue's targets (60,000 items cold <= 120 s,
warm <= 15 s, peak memory <= 2 GB) -- printing only: the exit code never
depends on the times.

Texts come from the demo's phrase banks (``surveys.demo.THEMES``), each item
varied deterministically (an opener, a clause with a date, place or count, a
tag-on, a typo, case and punctuation), so most are distinct, as in a real
survey of that size: a bench whose 60,000 items dedupe to a few hundred texts
would time the cache, not the model.

Each step runs in its own child process: the peak memory printed is that of
the process that ran the analysis (interpreter, Django, torch and the model
included), not of the data generation; the parent only orchestrates and
imports neither Django nor torch. The model is loaded before the clock starts,
as in a Celery worker that has run before; its load time is printed apart.

The per-stage breakdown comes from timers wrapped around the analysis
modules' functions at run time (no app code is changed) and a Django
``execute_wrapper`` that charges each SQL query to the stage that ran it.

Uses its own PostgreSQL database ``gapsurvey_bench`` (dropped and created
afresh, dropped again at the end unless ``--keep``) unless
``--database-url`` names another one; then only the bench's own engagement
and its texts' cached embeddings are written and removed.

    bench/analysis                          # 60,000 items, MiniLM
    bench/analysis --respondents 1000       # small
    bench/analysis --engine tfidf --keep    # the fallback engine; keep the database
    bench/analysis --profile                # also cProfile each run (slower)
    bench/analysis --wait-idle 600          # on a shared machine: wait for a quiet CPU before each run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "gapsurvey_bench"
BENCH_DB_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"
ADMIN_DB_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ENGAGEMENT_SLUG = "bench-analysis"
WORKSPACE_NAME = "GapSurvey bench"

# The issue's targets (2-core machine).
TARGET_ITEMS = 60_000
TARGET_COLD_S = 120.0
TARGET_WARM_S = 15.0
TARGET_PEAK_MB = 2048.0

# Respondent mix: customers mostly. Leaders and staff sheets as shares of all respondents.
LEADER_SHARE = 0.01
STAFF_SHEET_SHARE = 0.03
STAFF_MEMBERS = (4, 10)
# Share of staff sheets typed in from a paper tally (a spread of values instead of one agreed value).
PAPER_SHARE = 0.2
# The demo writes 1-4 items for every question; a customer of a large survey
# writes less: the first item of a question survives with this chance, each
# further one with the next. About 5 items per customer (demo: ~8).
CUSTOMER_FIRST_ITEM = 0.9
CUSTOMER_MORE_ITEMS = 0.3
CUSTOMER_CHUNK = 1000
# The warm re-run adds this share of the wave's items.
WARM_SHARE = 0.01


# ==========================================================================
# Orchestration (parent process: no Django, no torch)
# ==========================================================================


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/analysis",
        description="Time a wave's analysis (cold and warm) on generated survey data.",
    )
    parser.add_argument("--respondents", type=int, default=None,
                        help="respondents to generate (default: as many as --items needs)")
    parser.add_argument("--items", type=int, default=TARGET_ITEMS,
                        help=f"answer items to aim for when --respondents is not given (default {TARGET_ITEMS:,})")
    parser.add_argument("--seed", type=int, default=1, help="seed of the generated data (default 1)")
    parser.add_argument("--engine", choices=["minilm", "tfidf"], default="minilm",
                        help="settings.ANALYSIS_ENGINE for the runs (default minilm)")
    parser.add_argument("--keep", action="store_true", help="keep the bench database (or engagement) afterwards")
    parser.add_argument("--database-url", default="",
                        help=f"use this database instead of creating and dropping {BENCH_DB}")
    parser.add_argument("--wait-idle", type=int, default=0, metavar="SECONDS",
                        help="before each timed run, wait up to this long for other processes to leave the CPU "
                             "(default 0: do not wait)")
    parser.add_argument("--profile", action="store_true",
                        help="also run each analysis under cProfile and print the top functions (slower)")
    # Internal: the step a child process runs, and where it writes its figures.
    parser.add_argument("--phase", choices=["setup", "cold", "warm", "cleanup"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.respondents is not None and args.respondents < 20:
        parser.error("--respondents must be at least 20 (smaller groups are suppressed by the anonymity rules)")
    if args.respondents is None and args.items < 100:
        parser.error("--items must be at least 100")
    return args


def _child_env(args: argparse.Namespace, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DJANGO_SETTINGS_MODULE"] = "gapsurvey.settings"
    env.setdefault("DEBUG", "1")
    env.setdefault("SECRET_KEY", "gapsurvey-bench-not-secret")
    env["DATABASE_URL"] = database_url
    env["ANALYSIS_ENGINE"] = args.engine
    # The bench calls the analysis itself; an import must not queue one too.
    env["ANALYSIS_ON_SUBMIT"] = "0"
    # This variable would override --engine.
    env.pop("GAPSURVEY_THEME_ENGINE", None)
    env.setdefault("LOG_LEVEL", "WARNING")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _run_phase(phase: str, args: argparse.Namespace, env: dict[str, str], workdir: Path) -> dict:
    result_file = workdir / f"{phase}.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--result-file", str(result_file),
               "--seed", str(args.seed), "--items", str(args.items), "--engine", args.engine]
    if args.respondents is not None:
        command += ["--respondents", str(args.respondents)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    if args.profile:
        command.append("--profile")
    if args.wait_idle:
        command += ["--wait-idle", str(args.wait_idle)]
    completed = subprocess.run(command, env=env, cwd=REPO_ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"bench: the {phase} step failed (exit {completed.returncode})")
    return json.loads(result_file.read_text())


def _revision() -> str:
    """The commit the figures belong to (``-dirty`` when the working tree has changes)."""
    try:
        described = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO_ROOT, capture_output=True,
                                   check=False, text=True, timeout=10)
        return described.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _admin_execute(statement: str, db: str = BENCH_DB) -> None:
    """Run ``statement`` on the server with ``{db}`` standing for the bench database (DROP / CREATE DATABASE)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(ADMIN_DB_URL, autocommit=True) as conn:
        conn.execute(sql.SQL(statement).format(db=sql.Identifier(db)))


def _create_bench_db() -> None:
    # FORCE ends leftover sessions of an earlier, interrupted bench on this database only.
    _admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)")
    _admin_execute("CREATE DATABASE {db}")


def _drop_bench_db() -> None:
    _admin_execute("DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def orchestrate(args: argparse.Namespace) -> None:
    dedicated = not args.database_url
    database_url = args.database_url or BENCH_DB_URL
    env = _child_env(args, database_url)
    print(f"GapSurvey analysis bench — engine {args.engine}, seed {args.seed}, "
          f"{'database ' + BENCH_DB + ' (created for this run)' if dedicated else 'database from --database-url'}, "
          f"{os.cpu_count()} CPU(s), code {_revision()}")
    if dedicated:
        _create_bench_db()
    started = time.perf_counter()
    try:
        with tempfile.TemporaryDirectory(prefix="gapsurvey-bench-") as tmp:
            workdir = Path(tmp)
            setup = _run_phase("setup", args, env, workdir)
            cold = _run_phase("cold", args, env, workdir)
            warm = _run_phase("warm", args, env, workdir)
            if not dedicated and not args.keep:
                _run_phase("cleanup", args, env, workdir)
    finally:
        if dedicated and not args.keep:
            _drop_bench_db()
    _print_summary(setup, cold, warm)
    print(f"\nbench wall time {time.perf_counter() - started:.0f} s"
          + (f"; database {BENCH_DB} kept ({BENCH_DB_URL})" if dedicated and args.keep else ""))


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def _print_summary(setup: dict, cold: dict, warm: dict) -> None:
    print("\n" + "=" * 78)
    print("Summary")
    print("=" * 78)
    rows = [
        ("", "items", "distinct", "seconds", "peak RSS"),
        ("cold run", f"{cold['items']:,}", f"{cold['distinct_texts']:,}", f"{cold['seconds']:.1f}",
         f"{cold['peak_mb']:,.0f} MB"),
        ("warm re-run (+{:,} items)".format(warm["added_items"]), f"{warm['items']:,}",
         f"{warm['distinct_texts']:,}", f"{warm['seconds']:.1f}", f"{warm['peak_mb']:,.0f} MB"),
        ("unchanged re-run (skipped)", f"{warm['items']:,}", "", f"{warm['skip_seconds']:.1f}", ""),
    ]
    for row in rows:
        print(f"{row[0]:<30}{row[1]:>10}{row[2]:>10}{row[3]:>10}{row[4]:>12}")
    print(f"engine {cold['engine']}; model load {cold['model_load_s']:.1f} s (before the clock, once per worker); "
          f"data generated in {setup['generate_s']:.1f} s, imported in {setup['import_s']:.1f} s")

    peak = max(cold["peak_mb"], warm["peak_mb"])
    print(f"\n{'target (issue 3, 2 cores)':<44}{'figure':>12}{'limit':>12}  verdict")
    lines = [
        (f"cold run, {TARGET_ITEMS:,} items", f"{cold['seconds']:.1f} s", f"<= {TARGET_COLD_S:.0f} s",
         cold["seconds"] <= TARGET_COLD_S),
        ("warm re-run, +1% items", f"{warm['seconds']:.1f} s", f"<= {TARGET_WARM_S:.0f} s",
         warm["seconds"] <= TARGET_WARM_S),
        ("peak memory (RSS of the analysing process)", f"{peak / 1024:.2f} GB", f"<= {TARGET_PEAK_MB / 1024:.0f} GB",
         peak <= TARGET_PEAK_MB),
    ]
    if "kept_share" in warm:
        lines.append(("items keeping their theme after +1% (issue 8)", f"{warm['kept_share']:.1%}", ">= 95%",
                      warm["kept_share"] >= 0.95))
    for name, figure, limit, ok in lines:
        print(f"{name:<44}{figure:>12}{limit:>12}  {_verdict(ok)}")
    busy = [f"{name} {run['others_cpu_share']:.0%}" for name, run in (("cold", cold), ("warm", warm))
            if (run.get("others_cpu_share") or 0) > 0.1]
    if busy:
        print(f"(other processes took CPU during the runs: {', '.join(busy)} of the machine; "
              "the times are inflated -- rerun on a quiet machine)")
    if abs(cold["items"] - TARGET_ITEMS) > TARGET_ITEMS * 0.02:
        print(f"(the targets are for {TARGET_ITEMS:,} items; this run had {cold['items']:,})")


# ==========================================================================
# Child processes (Django)
# ==========================================================================


def _django_setup() -> None:
    sys.path.insert(0, str(REPO_ROOT))
    import django
    from django.conf import settings

    django.setup()
    # DEBUG=1 only spares the bench a SECRET_KEY; with it on, Django would keep
    # the SQL of the last 9,000 queries, including 2,000-vector INSERTs of the
    # embedding cache: hundreds of MB and seconds a production worker
    # (DEBUG off) never spends. Query logging reads the setting per query.
    settings.DEBUG = False


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (VmRSS, VmHWM)."""
    values = {}
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":", 1)
                    values[key] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used since boot (/proc/stat), 0 if unknown."""
    try:
        with open("/proc/stat") as stat:
            ticks = [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _process_cpu_s(pid: int | None) -> float:
    """CPU seconds (user + system) another local process has used, 0 if unknown (e.g. a remote database)."""
    if not pid:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _write_result(args: argparse.Namespace, result: dict) -> None:
    Path(args.result_file).write_text(json.dumps(result))


# --- Text generation ---------------------------------------------------------

# Openers a respondent puts before the point. Shared, then by voice.
OPENERS_ANY = (
    "Honestly,", "I think", "I feel", "To be fair,", "For me,", "Overall,", "Mostly", "Generally",
    "I'd say", "Tbh", "In general,", "Definitely", "If I'm honest,", "Personally,", "Mainly",
    "Above all,", "On the whole,", "Sometimes", "Really,", "Without a doubt,",
)
OPENERS = {
    "customer": OPENERS_ANY + (
        "As a customer,", "From my experience,", "In my experience,", "As a long-time customer,",
        "Speaking as a small business,", "My partner says", "Since switching,",
    ),
    "internal": OPENERS_ANY + (
        "From what I see,", "In our team,", "Speaking for my team,", "From the front line,",
        "As a manager,", "In my view,", "Customers tell us", "Our surveys say",
    ),
}
# Clauses after the point: context that real answers carry (when, where, how long).
CLAUSES = {
    "customer": (
        "since I joined in {year}", "when I called in {month}", "for the last {n} months", "after {n} weeks",
        "most of the time", "especially at weekends", "especially in the evenings", "compared to my last provider",
        "compared to {rival}", "on my {ordinal} bill", "when I moved house", "here in {town}", "at my {place}",
        "over the last {n} years", "every time I've called", "the {ordinal} time I contacted them",
        "back in {month} {year}", "for our {trade} business", "when the {device} played up", "in {town}",
        "with {n} people in the house", "after the price rise in {month}", "when we had the outage in {month}",
        "on the {ordinal} attempt",
    ),
    "internal": (
        "in the {dept} team", "over the last {n} months", "since the restructure in {year}",
        "especially in peak season", "according to our customer surveys", "in {month}", "on most shifts",
        "for {segment} customers", "in the {town} area", "since we launched {product}", "across all {n} regions",
        "in my {n} years here", "on the {shift} shift", "when we're short-staffed", "since {month} {year}",
        "for business customers in {town}", "at least {n} times a week", "during the {town} rollout",
        "on the {product} line", "compared to {rival}",
    ),
}
SLOTS = {
    "year": [str(y) for y in range(2012, 2026)],
    "month": "January February March April May June July August September October November December".split(),
    "n": [str(n) for n in range(2, 13)],
    "ordinal": "first second third fourth last".split(),
    "rival": ["BT", "Sky", "Virgin", "TalkTalk", "Vodafone", "the big providers", "my old provider"],
    "town": "Leeds Harrogate York Ripon Selby Wetherby Otley Ilkley Skipton Keighley Bradford Halifax Thirsk "
            "Malton Whitby Scarborough Pickering Northallerton Richmond Tadcaster Knaresborough Goole".split(),
    "place": ["flat", "office", "shop", "mum's house", "caravan", "new place", "unit", "farm"],
    "trade": "plumbing bakery joinery dental accountancy florist garage cafe printing physio vets electrical "
             "lettings salon tutoring design building".split(),
    "device": ["router", "TV box", "hub", "wifi", "remote", "booster", "set-top box"],
    "dept": ["Customer Service", "Field Engineering", "Sales & Retention", "Billing & Accounts", "Networks",
             "Installations", "Complaints", "Digital"],
    "segment": ["residential", "small business", "new", "rural", "older", "student"],
    "product": ["Full Fibre 900", "the TV bundle", "the new app", "Home Phone", "the business line", "mesh wifi"],
    "shift": ["early", "late", "weekend", "evening"],
}
TAG_ONS = (" tbh", " imo", ", in my opinion", ", that's about it", " really", ", thanks", " to be honest",
           ", just saying", " as far as I know", ", for what it's worth")
ENDINGS = (("", 0.45), (".", 0.38), ("!", 0.09), ("...", 0.08))
OPENER_CHANCE = 0.4
CLAUSE_CHANCE = 0.65
TAG_ON_CHANCE = 0.15
TYPO_CHANCE = 0.12
LOWERCASE_CHANCE = 0.1
_KEEP_CASE = {"I", "I'm", "I've", "I'd", "I'll"}


def _typo(rng, text: str) -> str:
    """One slip of the finger in a word of 4+ letters: swap, drop, double or a neighbouring key."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if len(w) >= 4 and w.isalpha()]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif kind == 1:
        w = w[:j] + w[j + 1:]
    elif kind == 2:
        w = w[:j] + w[j] + w[j:]
    else:
        w = w[:j] + rng.choice("aeiourstnl") + w[j + 1:]
    words[i] = w
    return " ".join(words)


def _decapitalise(text: str) -> str:
    first = text.split(" ", 1)[0]
    if first in _KEEP_CASE or not first[1:].islower():  # "I", "TV", "UK", ...
        return text
    return text[0].lower() + text[1:]


def vary(rng, text: str, voice: str) -> str:
    """A respondent's own version of a phrase-bank wording, deterministic given ``rng``."""
    body = text.strip().rstrip(".!?")
    if rng.random() < OPENER_CHANCE:
        body = f"{rng.choice(OPENERS[voice])} {_decapitalise(body)}"
    if rng.random() < CLAUSE_CHANCE:
        clause = rng.choice(CLAUSES[voice])
        while "{" in clause:
            start = clause.index("{")
            name = clause[start + 1: clause.index("}", start)]
            clause = clause.replace("{" + name + "}", rng.choice(SLOTS[name]), 1)
        body = f"{body}{rng.choice((', ', ' '))}{clause}"
    if rng.random() < TAG_ON_CHANCE:
        body += rng.choice(TAG_ONS)
    if rng.random() < TYPO_CHANCE:
        body = _typo(rng, body)
    if rng.random() < LOWERCASE_CHANCE:
        body = body.lower()
    endings, weights = zip(*ENDINGS)
    return body + rng.choices(endings, weights=weights)[0]


def _thin_customer_items(rng, items: list) -> list:
    """Fewer items than a workshop: most customers write one per question, some more, some skip one."""
    kept, seen = [], set()
    for item in items:
        first = item.question_key not in seen
        seen.add(item.question_key)
        if rng.random() < (CUSTOMER_FIRST_ITEM if first else CUSTOMER_MORE_ITEMS):
            kept.append(item)
    return kept or items[:1]


def generate(rng, *, item_keys: list[str], ref_prefix: str, respondents: int | None = None,
             items_target: int | None = None, leaders_and_staff: bool = True) -> list:
    """Respondents for ``responses_import``: exactly ``respondents``, or customers added until ``items_target``."""
    from surveys import demo
    from surveys.models import Group
    from surveys.services import ImportedRespondent, ItemInput, RatingInput

    def varied(sheet: list, voice: str) -> list:
        return [ItemInput(question_key=i.question_key, text=vary(rng, i.text, voice), tag=i.tag) for i in sheet]

    def rating_inputs(ratings: dict[str, int]) -> list:
        return [RatingInput(item_key=key, value=value) for key, value in ratings.items()]

    estimate = respondents if respondents is not None else max(20, round(items_target / 5.2))
    n_leaders = round(estimate * LEADER_SHARE) if leaders_and_staff else 0
    n_sheets = round(estimate * STAFF_SHEET_SHARE) if leaders_and_staff else 0
    if leaders_and_staff:
        n_leaders, n_sheets = max(n_leaders, 5), max(n_sheets, 4)  # above the anonymity thresholds
    out: list = []
    line = 2

    sheets = demo.answer_sheets(rng, Group.LEADERSHIP, [""] * n_leaders) if n_leaders else []
    for k, (sheet, ratings) in enumerate(
        zip(sheets, demo.individual_ratings(rng, Group.LEADERSHIP, n_leaders, item_keys))
    ):
        out.append(ImportedRespondent(group=Group.LEADERSHIP, ref=f"{ref_prefix}L{k + 1:05d}", line=line,
                                      items=varied(sheet, "internal"), ratings=rating_inputs(ratings)))
        line += 1

    departments = [rng.choice(demo.DEPARTMENTS) for _ in range(n_sheets)]
    sheets = demo.answer_sheets(rng, Group.STAFF, departments) if n_sheets else []
    for k, (department, sheet) in enumerate(zip(departments, sheets)):
        members = rng.randint(*STAFF_MEMBERS)
        staff_sheet = demo.StaffSheet(f"{department} team {k + 1}", department, members,
                                      spread=rng.random() < PAPER_SHARE)
        ratings = demo.staff_ratings(rng, staff_sheet, item_keys)
        out.append(ImportedRespondent(group=Group.STAFF, ref=f"{ref_prefix}S{k + 1:05d}", line=line,
                                      department=department, members=members,
                                      items=varied(sheet, "internal"), ratings=ratings))
        line += 1

    items = sum(len(r.items) for r in out)
    if respondents is not None:
        n_customers = respondents - len(out)
    else:
        n_customers = None
    segment_names, segment_weights = zip(*demo.SEGMENTS.items())
    made = 0
    while (n_customers is not None and made < n_customers) or (n_customers is None and items < items_target):
        size = CUSTOMER_CHUNK if n_customers is None else min(CUSTOMER_CHUNK, n_customers - made)
        segments = rng.choices(segment_names, weights=segment_weights, k=size)
        sheets = demo.answer_sheets(rng, Group.CUSTOMER, segments)
        ratings = demo.individual_ratings(rng, Group.CUSTOMER, size, item_keys)
        for segment, sheet, rating in zip(segments, sheets, ratings):
            if n_customers is None and items >= items_target:
                break
            kept = varied(_thin_customer_items(rng, sheet), "customer")
            made += 1
            out.append(ImportedRespondent(group=Group.CUSTOMER, ref=f"{ref_prefix}C{made:06d}", line=line,
                                          department=segment, items=kept, ratings=rating_inputs(rating)))
            items += len(kept)
            line += 1
    return out


def _normalise(text: str) -> str:
    try:
        from analysis.embeddings import normalise_text
    except ImportError:  # pragma: no cover - older analysis.embeddings
        return " ".join(text.split()).casefold()
    return normalise_text(text)


def _distinct(texts) -> int:
    """Distinct texts as the theme engine dedupes them (whitespace and case folded)."""
    return len({_normalise(t) for t in texts})


# --- Instrumentation ---------------------------------------------------------


class StageTimer:
    """Wall time, calls, SQL time and queries per nested stage (a path of wrapped function names)."""

    def __init__(self) -> None:
        self.stack: list[str] = []
        # path -> [seconds, calls, sql_s, queries, cpu_s]; cpu_s is this process's CPU time (all threads).
        self.records: dict[tuple[str, ...], list[float]] = {}
        self._patched: list[tuple[object, str, object]] = []
        # CPU seconds of this process, of its PostgreSQL backend and of everything else during the run.
        self.contention: dict[str, float] = {}

    def _record(self, path: tuple[str, ...]) -> list[float]:
        return self.records.setdefault(path, [0.0, 0, 0.0, 0, 0.0])

    def wrap(self, owner, attr: str, name: str | None = None) -> None:
        import functools

        original = owner.__dict__.get(attr) if isinstance(owner, type) else getattr(owner, attr, None)
        if original is None:
            return  # renamed by a later version of the app: time what still exists
        name = name or attr
        timer = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            if name in timer.stack:  # recursion: charge to the outer call
                return original(*args, **kwargs)
            timer.stack.append(name)
            path = tuple(timer.stack)
            timer._record(path)  # created on entry, so the report lists stages in call order
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                record = timer._record(path)
                record[0] += time.perf_counter() - started
                record[1] += 1
                record[4] += time.process_time() - cpu
                timer.stack.pop()

        setattr(owner, attr, timed)
        self._patched.append((owner, attr, original))

    def unwrap(self) -> None:
        for owner, attr, original in reversed(self._patched):
            setattr(owner, attr, original)
        self._patched.clear()

    def sql(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            record = self._record(tuple(self.stack) or ("(outside)",))
            record[2] += time.perf_counter() - started
            record[3] += 1

    def reset(self) -> None:
        self.records.clear()

    def rows(self) -> list[dict]:
        """Each stage in call order with its self time (total minus timed sub-stages)."""
        out = []
        for path, (seconds, calls, sql_s, queries, cpu_s) in self.records.items():
            children = sum(r[0] for p, r in self.records.items() if len(p) == len(path) + 1 and p[:-1] == path)
            out.append({"path": list(path), "seconds": seconds, "self": seconds - children, "calls": int(calls),
                        "sql_s": sql_s, "queries": int(queries), "cpu_s": cpu_s})
        return out


def instrument() -> StageTimer:
    from analysis import charts, embeddings, metrics, services, themes

    timer = StageTimer()
    for name in ("analysis_run_now", "analysis_compute", "wave_frames", "get_embedder", "previous_wave_result",
                 "run_served", "_fingerprint", "embed_texts", "themes_assign", "_themes_found", "_themes_grown",
                 "cluster_texts_by_question", "grow_themes", "describe_themes",
                 "_question_labels", "_with_question_labels"):
        timer.wrap(services, name)
    for name in ("cluster_texts_by_detail", "cluster_texts", "_dedupe", "_micro_clusters", "_exact_neighbours",
                 "_graph", "_louvain", "_settle_nodes", "_join_pieces", "_settle_lone_mentions", "_renumber",
                 "describe_themes", "_class_tfidf_keywords", "_most_central"):
        timer.wrap(themes, name)
    for name in ("suppression", "rating_gaps", "prevalence", "theme_gaps", "contradictions", "alignment",
                 "consistency", "competition_balance", "action_list", "trend", "_jsonable"):
        timer.wrap(metrics, name)
    timer.wrap(metrics, "analyze", "metrics.analyze")
    timer.wrap(charts, "build_figures", "charts.build_figures")
    for cls in (getattr(embeddings, "MiniLMEmbedder", None), getattr(embeddings, "TfidfEmbedder", None)):
        if cls is not None:
            timer.wrap(cls, "embed", f"{cls.__name__}.embed")
    return timer


def _print_stages(rows: list[dict], total: float) -> None:
    print(f"  {'stage':<52}{'calls':>6}{'total s':>9}{'self s':>8}{'CPU s':>8}{'SQL s':>7}{'queries':>8}")
    for row in rows:
        if row["seconds"] < 0.005 and row["sql_s"] < 0.005 and len(row["path"]) > 2:
            continue
        name = "  " * (len(row["path"]) - 1) + row["path"][-1]
        print(f"  {name:<52}{row['calls']:>6}{row['seconds']:>9.2f}{row['self']:>8.2f}{row['cpu_s']:>8.2f}"
              f"{row['sql_s']:>7.2f}{row['queries']:>8}")
    print(f"  {'(analysis_run_now, end to end)':<52}{'':>6}{total:>9.2f}")
    print("  (total = wall time incl. timed sub-stages; self = total minus them; CPU = this process's CPU time,\n"
          "   all threads, incl. sub-stages: above the wall time where torch or BLAS use both cores)")


def _wait_idle(limit_s: int) -> None:
    """Wait (up to ``limit_s``) until other processes use under 10% of the machine over 3 s."""
    if limit_s <= 0:
        return
    deadline = time.monotonic() + limit_s
    cores = os.cpu_count() or 1
    while True:
        busy, cpu = _machine_busy_s(), time.process_time()
        time.sleep(3)
        share = (_machine_busy_s() - busy - (time.process_time() - cpu)) / (3 * cores)
        if share < 0.1:
            return
        if time.monotonic() > deadline:
            print(f"  (other processes still use {share:.0%} of the machine; timing anyway)")
            return


def _timed_run(wave, *, label: str, timer: StageTimer, profile: bool) -> tuple[object, float]:
    from django.db import connection

    from analysis import services

    timer.reset()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    backend_pid = None
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend_pid = cursor.fetchone()[0]
    with connection.execute_wrapper(timer.sql):
        busy, cpu, db_cpu = _machine_busy_s(), time.process_time(), _process_cpu_s(backend_pid)
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run = services.analysis_run_now(wave=wave)
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        db_cpu = _process_cpu_s(backend_pid) - db_cpu
        others = max(0.0, _machine_busy_s() - busy - cpu - db_cpu)
    # The targets are for a 2-core machine to itself: say when something else took CPU meanwhile.
    timer.contention = {"cpu_s": cpu, "db_cpu_s": db_cpu, "others_cpu_s": others, "cores": os.cpu_count() or 1}
    if profiler:
        import pstats

        path = Path(tempfile.gettempdir()) / f"gapsurvey-bench-{label}.prof"
        profiler.dump_stats(str(path))
        print(f"\n  cProfile of the {label} run (times inflated by profiling), saved to {path}:")
        stats = pstats.Stats(profiler, stream=sys.stdout)
        stats.sort_stats("tottime").print_stats(25)
    return run, seconds


def _store_sizes(run) -> dict:
    """Size of the stored JSON and what encoding it costs (part of the final UPDATE)."""
    sizes = {}
    for field in ("result", "figures", "assignments"):
        started = time.perf_counter()
        encoded = json.dumps(getattr(run, field))
        sizes[field] = {"mb": len(encoded) / 1e6, "encode_s": time.perf_counter() - started}
    return sizes


def _load_model(engine: str) -> tuple[float, str, str | None]:
    from analysis.embeddings import get_embedder

    started = time.perf_counter()
    embedder = get_embedder(engine)
    if hasattr(embedder, "load"):
        embedder.load()
    if engine != "tfidf":
        embedder.embed(["warm up the model"])  # first forward pass allocates the kernels
    return time.perf_counter() - started, embedder.name, embedder.fallback_reason


def _bench_wave():
    from surveys.models import Wave

    return Wave.objects.select_related("engagement").get(engagement__slug=ENGAGEMENT_SLUG, number=1)


def _wave_texts(wave) -> list[str]:
    from surveys.models import AnswerItem, Respondent

    return list(
        AnswerItem.objects.filter(respondent__wave=wave, respondent__status=Respondent.Status.SUBMITTED)
        .values_list("text", flat=True)
    )


def _report_run(run, *, label: str, seconds: float, timer: StageTimer, texts: list[str], model: tuple) -> dict:
    from analysis.models import Theme

    rss_now, hwm = _rss_mb()
    peak = max(_peak_mb(), hwm)
    result = run.result or {}
    assignments = run.assignments or {}
    unassigned = sum(1 for v in assignments.values() if v is None)
    themes = len({v for v in assignments.values() if v is not None})
    distinct = _distinct(texts)
    rows = timer.rows()
    print(f"\n{label} run: status {run.status}, engine {run.engine or '-'}"
          + (f" (fallback: {result.get('engine', {}).get('fallback_reason')})"
             if result.get("engine", {}).get("fallback_reason") else ""))
    print(f"  items {len(texts):,}, distinct texts {distinct:,} ({distinct / max(len(texts), 1):.0%}); "
          f"themes {themes:,} ({Theme.objects.filter(engagement=run.wave.engagement, merged_into=None).count():,} "
          f"stored), unassigned items {unassigned:,}")
    print(f"  seconds {seconds:.1f} (analysis_run_now, end to end; model loaded beforehand in {model[0]:.1f} s)")
    contention = timer.contention
    if contention:
        share = contention["others_cpu_s"] / max(seconds * contention["cores"], 1e-9)
        print(f"  CPU: this process {contention['cpu_s']:.1f} s, "
              f"its PostgreSQL backend {contention['db_cpu_s']:.1f} s, other processes {contention['others_cpu_s']:.1f} s ({share:.0%} of the machine during the run)"
              + ("  << the machine was busy: the times above are inflated" if share > 0.1 else ""))
    print(f"  peak RSS {peak:,.0f} MB (process, incl. interpreter, Django, torch, model); RSS now {rss_now:,.0f} MB")
    print("  breakdown (wall time per wrapped function; SQL = time inside its queries):")
    _print_stages(rows, seconds)
    sizes = _store_sizes(run)
    print("  stored JSON: " + ", ".join(
        f"{name} {s['mb']:.1f} MB (json.dumps {s['encode_s']:.2f} s)" for name, s in sizes.items()))
    return {"items": len(texts), "distinct_texts": distinct, "seconds": seconds, "peak_mb": peak,
            "engine": run.engine, "status": run.status, "themes": themes, "unassigned": unassigned,
            "model_load_s": model[0], "stages": rows, "store": sizes,
            "others_cpu_share": (contention["others_cpu_s"] / max(seconds * contention["cores"], 1e-9))
            if contention else None}


# --- Phases ------------------------------------------------------------------


def phase_setup(args: argparse.Namespace) -> None:
    from random import Random

    from django.core.management import call_command

    from analysis.models import TextEmbedding
    from surveys import demo
    from surveys.models import Engagement, Workspace
    from surveys.services import (
        department_add,
        engagement_create,
        responses_import,
        workspace_create,
    )

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    print(f"migrated in {time.perf_counter() - started:.1f} s")
    old = Engagement.objects.filter(slug=ENGAGEMENT_SLUG).first()
    if old is not None:  # an earlier bench run kept with --keep
        old.delete()
    if not args.database_url:
        TextEmbedding.objects.all().delete()
    workspace = Workspace.objects.filter(name=WORKSPACE_NAME).first() or workspace_create(name=WORKSPACE_NAME)
    engagement = engagement_create(workspace=workspace, name="Bench Fibre", slug=ENGAGEMENT_SLUG)
    for name in demo.DEPARTMENTS:
        department_add(engagement=engagement, name=name)
    wave = engagement.waves.get(number=1)
    item_keys = list(wave.rating_items.values_list("key", flat=True))

    started = time.perf_counter()
    respondents = generate(Random(args.seed), item_keys=item_keys, ref_prefix="",
                           respondents=args.respondents, items_target=args.items)
    generate_s = time.perf_counter() - started
    texts = [item.text for r in respondents for item in r.items]
    by_group: dict[str, int] = {}
    for r in respondents:
        by_group[r.group] = by_group.get(r.group, 0) + 1
    exact = len({t.strip() for t in texts})
    distinct = _distinct(texts)
    print(f"generated {len(respondents):,} respondents ({', '.join(f'{n:,} {g}' for g, n in by_group.items())}), "
          f"{len(texts):,} items in {generate_s:.1f} s")
    print(f"distinct texts: {distinct:,} ({distinct / len(texts):.0%}) as the theme engine dedupes them "
          f"(case and whitespace folded); {exact:,} exactly distinct")
    for sample in Random(args.seed).sample(texts, 6):
        print(f"  e.g. {sample!r}")

    started = time.perf_counter()
    summary = responses_import(wave=wave, respondents=respondents)
    import_s = time.perf_counter() - started
    print(f"imported through responses_import in {import_s:.1f} s: {summary.total:,} respondents, "
          f"{summary.items:,} items, {summary.ratings:,} rating rows")
    _write_result(args, {"respondents": len(respondents), "items": len(texts), "distinct_texts": distinct,
                         "generate_s": generate_s, "import_s": import_s})


def phase_cold(args: argparse.Namespace) -> None:
    from analysis import services
    from analysis.models import AnalysisRun, TextEmbedding, Theme

    print("\n" + "-" * 78 + "\nCold run\n" + "-" * 78)
    wave = _bench_wave()
    texts = _wave_texts(wave)
    if args.database_url:  # someone else's database: clear only the bench's own texts
        keys = list({services._text_key(t) for t in texts})
        for start in range(0, len(keys), 5000):
            TextEmbedding.objects.filter(text_hash__in=keys[start:start + 5000]).delete()
    else:
        TextEmbedding.objects.all().delete()
    AnalysisRun.objects.filter(wave=wave).delete()
    Theme.objects.filter(engagement=wave.engagement).delete()
    model = _load_model(args.engine)
    rss, _ = _rss_mb()
    print(f"embedding cache, themes and runs cleared; engine {model[1]} ready in {model[0]:.1f} s "
          f"(RSS {rss:,.0f} MB before the run)")
    timer = instrument()
    _wait_idle(args.wait_idle)
    run, seconds = _timed_run(wave, label="cold", timer=timer, profile=args.profile)
    timer.unwrap()
    _write_result(args, _report_run(run, label="Cold", seconds=seconds, timer=timer, texts=texts, model=model))


def phase_warm(args: argparse.Namespace) -> None:
    from random import Random

    from analysis import services
    from surveys.services import responses_import

    print("\n" + "-" * 78 + "\nWarm re-run (+1% new items)\n" + "-" * 78)
    wave = _bench_wave()
    existing = _wave_texts(wave)
    existing_keys = {_normalise(t) for t in existing}
    item_keys = list(wave.rating_items.values_list("key", flat=True))
    # Another stream than the first import's, so the respondents and most texts are new.
    added = generate(Random(args.seed * 1_000_003 + 7), item_keys=item_keys, ref_prefix="late-",
                     items_target=max(1, round(len(existing) * WARM_SHARE)), leaders_and_staff=False)
    added_texts = [item.text for r in added for item in r.items]
    new_texts = {_normalise(t) for t in added_texts} - existing_keys
    started = time.perf_counter()
    responses_import(wave=wave, respondents=added)
    print(f"imported {len(added):,} new customers with {len(added_texts):,} items "
          f"({len(new_texts):,} texts not in the wave before) in {time.perf_counter() - started:.1f} s")
    model = _load_model(args.engine)
    rss, _ = _rss_mb()
    print(f"engine {model[1]} ready in {model[0]:.1f} s (RSS {rss:,.0f} MB before the run)")
    texts = _wave_texts(wave)
    from analysis.selectors import run_served

    before = run_served(wave).assignments or {}
    timer = instrument()
    _wait_idle(args.wait_idle)
    run, seconds = _timed_run(wave, label="warm", timer=timer, profile=args.profile)
    result = _report_run(run, label="Warm", seconds=seconds, timer=timer, texts=texts, model=model)
    timer.unwrap()
    # The issue's stability rule: at least 95% of the items keep the theme they had.
    had = {item: theme for item, theme in before.items() if theme is not None}
    kept = sum(1 for item, theme in had.items() if (run.assignments or {}).get(item) == theme)
    method = ((run.result or {}).get("engine") or {}).get("themes") or {}
    result.update(kept_share=kept / max(len(had), 1), themes_method=method.get("method", "?"))
    print(f"themes {result['themes_method']} (not re-clustered when 'grown'): "
          f"{result['kept_share']:.1%} of the {len(had):,} assigned items kept their theme")

    started = time.perf_counter()
    again = services.analysis_run_now(wave=wave)
    skip_s = time.perf_counter() - started
    print(f"\nUnchanged re-run: status {again.status} in {skip_s:.1f} s (loads the answers, compares fingerprints)")
    result.update(added_items=len(added_texts), added_new_texts=len(new_texts), skip_seconds=skip_s,
                  skip_status=again.status, peak_mb=max(result["peak_mb"], _peak_mb()))
    _write_result(args, result)


def phase_cleanup(args: argparse.Namespace) -> None:
    """Remove what the bench wrote to a database given with --database-url."""
    from analysis import services
    from analysis.models import TextEmbedding
    from surveys.models import Engagement, Workspace

    wave = _bench_wave()
    keys = list({services._text_key(t) for t in _wave_texts(wave)})
    for start in range(0, len(keys), 5000):
        TextEmbedding.objects.filter(text_hash__in=keys[start:start + 5000]).delete()
    Engagement.objects.filter(slug=ENGAGEMENT_SLUG).delete()
    Workspace.objects.filter(name=WORKSPACE_NAME, engagements__isnull=True).delete()
    print("\nremoved the bench engagement and its texts' cached embeddings from the given database")
    _write_result(args, {})


PHASES = {"setup": phase_setup, "cold": phase_cold, "warm": phase_warm, "cleanup": phase_cleanup}


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    if args.phase:
        _django_setup()
        PHASES[args.phase](args)
    else:
        orchestrate(args)


if __name__ == "__main__":
    main()
