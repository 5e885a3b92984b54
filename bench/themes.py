#!/usr/bin/env python
"""How good are the themes on real, labelled customer text? A benchmark, not a test.

    bench/themes ../shared/data/banking77-dev.csv
    bench/themes ../shared/data/banking77-dev-large.csv --engines minilm

For a CSV with columns ``text,intent`` (see ``../shared/data/README.md``) and
for each engine (the semantic MiniLM engine and the TF-IDF fallback), in a
child process of its own with a fresh SQLite database:

1. writes every text as one customer's ``improvements`` item and imports the
   file with ``manage.py import_responses --create-as`` (a fresh engagement);
2. runs ``manage.py analyze`` -- the production code path, the engine chosen
   the way production chooses it (``GAPSURVEY_THEME_ENGINE=tfidf`` forces the
   fallback);
3. exports with ``manage.py export_items`` and reads the themes back from the
   CSV, each row tied to its input line by the respondent's pseudonym (and its
   text checked against the input);

then prints per engine: items, themes found, unassigned share, NMI and ARI
against ``intent`` (scikit-learn; unassigned items count as one group, as
outliers do when BERTopic is scored), the analysis's seconds and the child's
peak memory, next to the issue's targets. The engine never sees ``intent``
nor the number of intents.

Seconds are those of ``analyze`` alone (embedding, clustering, metrics,
figures), with the model loaded beforehand as in a worker that has run
before. Wall-clock on a shared machine: other processes inflate them.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SLUG = "bench-themes"
ENGINES = {"minilm": "semantic (MiniLM)", "tfidf": "fallback (TF-IDF)"}

# The targets for the engine's default themes, per file name.
TARGETS = {
    "banking77-dev.csv": {"nmi": 0.84, "ari": 0.61, "unassigned": 0.05, "themes": 78},
    "banking77-dev-large.csv": {"nmi": 0.80, "ari": 0.58, "unassigned": 0.05, "themes": 78},
}


def read_labelled(path: Path) -> tuple[list[str], list[str]]:
    """Texts and intents of a ``text,intent`` CSV; exits with a clear message on anything else."""
    if not path.is_file():
        raise SystemExit(f"There is no file {path}.")
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file)
        if not reader.fieldnames or not {"text", "intent"} <= set(reader.fieldnames):
            raise SystemExit(f"{path} needs the columns text,intent (it has {','.join(reader.fieldnames or [])}).")
        rows = [(row["text"], row["intent"]) for row in reader]
    rows = [(text, intent) for text, intent in rows if text and text.strip()]
    if len(rows) < 2:
        raise SystemExit(f"{path} holds fewer than two texts.")
    return [t for t, _ in rows], [i for _, i in rows]


def import_file(texts: list[str]) -> str:
    """The texts as an ``import_responses`` file: customer n says text n under improvements."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["group", "respondent", "department", "members", "question", "tag", "text"])
    for n, text in enumerate(texts, start=1):
        writer.writerow(["customer", f"r{n}", "", "", "improvements", "", " ".join(text.split())])
    return out.getvalue()


def _unneutralise(cell: str) -> str:
    from analysis.exports import FORMULA_PREFIXES

    return cell[1:] if cell.startswith("'") and cell[1:].startswith(FORMULA_PREFIXES) else cell


def child(engine: str, csv_path: Path, workdir: Path) -> dict:
    """One engine, end to end through the commands (runs in its own process)."""
    import django

    django.setup()
    from django.core.management import call_command

    from analysis.embeddings import get_embedder

    texts, intents = read_labelled(csv_path)
    call_command("migrate", verbosity=0)
    responses = workdir / "responses.csv"
    responses.write_text(import_file(texts), encoding="utf-8")
    call_command("import_responses", SLUG, str(responses), create_as="Bench Themes Ltd", stdout=io.StringIO())

    embedder = get_embedder()  # loads the model now, as a worker that has run before
    if engine != "tfidf" and embedder.fallback_reason:
        raise SystemExit(f"MiniLM is not available here: {embedder.fallback_reason}")
    embedder.embed(["warm up the model"])
    started = time.perf_counter()
    call_command("analyze", SLUG, stdout=io.StringIO(), stderr=io.StringIO())
    seconds = time.perf_counter() - started

    exported = workdir / "items.csv"
    call_command("export_items", SLUG, output=str(exported), stderr=io.StringIO())
    with exported.open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if len(rows) != len(texts):
        raise SystemExit(f"export_items gave {len(rows)} rows for {len(texts)} texts")
    themes = [""] * len(texts)
    for row in rows:
        n = int(row["respondent"].removeprefix("C")) - 1
        if " ".join(_unneutralise(row["text"]).split()) != " ".join(texts[n].split()):
            raise SystemExit(f"export row {row['respondent']} does not hold input text {n + 1}")
        themes[n] = row["theme_id"]

    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels = [t or "unassigned" for t in themes]
    return {
        "engine": embedder.name,
        "items": len(texts),
        "intents": len(set(intents)),
        "themes": len({t for t in themes if t}),
        "unassigned": sum(1 for t in themes if not t) / len(texts),
        "nmi": normalized_mutual_info_score(intents, labels),
        "ari": adjusted_rand_score(intents, labels),
        "seconds": seconds,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_engine(engine: str, csv_path: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="gapsurvey-bench-themes-") as tmp:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "gapsurvey.settings",
            "DEBUG": "1",
            "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3",
            "REDIS_URL": "",
            "ANALYSIS_ON_SUBMIT": "0",
            "ANALYSIS_ENGINE": "minilm",
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("GAPSURVEY_THEME_ENGINE", None)
        if engine == "tfidf":
            env["GAPSURVEY_THEME_ENGINE"] = "tfidf"
        done = subprocess.run(
            [sys.executable, __file__, "--child", engine, "--workdir", tmp, str(csv_path)],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        )
        if done.returncode:
            raise SystemExit(f"{engine}: the run failed:\n{done.stderr[-4000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def _mark(ok: bool | None) -> str:
    return "" if ok is None else (" ok" if ok else " MISSED")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("csv", type=Path, help="labelled file with columns text,intent")
    parser.add_argument("--engines", nargs="+", choices=list(ENGINES), default=list(ENGINES))
    parser.add_argument("--json", action="store_true", help="print the figures as JSON lines instead of a table")
    parser.add_argument("--child", choices=list(ENGINES), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        sys.path.insert(0, str(REPO_ROOT))
        print(json.dumps(child(args.child, args.csv.resolve(), args.workdir)))
        return

    texts, intents = read_labelled(args.csv)
    target = TARGETS.get(args.csv.name)
    print(f"{args.csv.name}: {len(texts):,} texts, {len(set(intents))} intents (never shown to the engine)")
    print(f"{'engine':20} {'items':>6} {'themes':>6} {'unassigned':>10} {'NMI':>6} {'ARI':>6} {'seconds':>8} {'peak MB':>8}")
    for engine in args.engines:
        r = run_engine(engine, args.csv.resolve())
        r["label"] = ENGINES[engine]
        if args.json:
            print(json.dumps(r), flush=True)
            continue
        check = target if (target and engine == "minilm") else None
        print(
            f"{r['label']:20} {r['items']:6d} {r['themes']:6d}{_mark(check and r['themes'] <= check['themes'])} "
            f"{r['unassigned']:9.1%}{_mark(check and r['unassigned'] <= check['unassigned'])} "
            f"{r['nmi']:6.3f}{_mark(check and r['nmi'] >= check['nmi'])} "
            f"{r['ari']:6.3f}{_mark(check and r['ari'] >= check['ari'])} "
            f"{r['seconds']:8.1f} {r['peak_mb']:8.0f}",
            flush=True,
        )
    if target and not args.json:
        print(
            f"targets for the semantic engine: NMI >= {target['nmi']}, ARI >= {target['ari']}, "
            f"unassigned <= {target['unassigned']:.0%}, themes <= {target['themes']}"
        )


if __name__ == "__main__":
    main()
