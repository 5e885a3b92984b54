"""How good and how fast are the themes? A benchmark, not a test.

Quality: clusters the labelled banking77 files in ``../shared/data`` (see its
README) with each engine and compares the themes with the gold ``intent``
column: number of themes vs intents, adjusted Rand index, NMI, homogeneity
(does a theme hold one intent?) and completeness (does an intent stay in one
theme?). The clustering alone on vectors embedded here; ``bench/themes``
measures the same files through import, analysis and export, as production
runs them.

Scale: builds N synthetic short texts (default 60,000) by sampling
banking77-dev-large and perturbing each (a dropped or swapped word, a filler
prefix or suffix), embeds them (texts/s) and clusters them with the embeddings
precomputed (seconds, peak memory).

Each measurement runs in a fresh process so its peak RSS is its own (it
includes the Python, NumPy and, for MiniLM, torch baseline).

    .venv/bin/python bench/themes_quality.py                 # everything
    .venv/bin/python bench/themes_quality.py --scale 0       # quality only
    .venv/bin/python bench/themes_quality.py --engines minilm tfidf --scale 60000
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"
# Run as a script (and re-imported by each spawned child): make `analysis` importable.
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
ENGINES = ("minilm", "minilm-fp32", "tfidf")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _engine(choice: str):
    os.environ.pop("GAPSURVEY_THEME_ENGINE", None)
    from analysis.embeddings import get_embedder

    embedder = get_embedder(choice)
    if embedder.fallback_reason:
        raise SystemExit(f"{choice}: fell back to {embedder.name}: {embedder.fallback_reason}")
    return embedder


def _scores(gold, labels) -> dict:
    from sklearn import metrics

    return {
        "ari": metrics.adjusted_rand_score(gold, labels),
        "nmi": metrics.normalized_mutual_info_score(gold, labels),
        "homogeneity": metrics.homogeneity_score(gold, labels),
        "completeness": metrics.completeness_score(gold, labels),
    }


def quality_run(choice: str, csv_path: str) -> dict:
    """Embed and cluster one labelled file with one engine (in a child process)."""
    import pandas as pd

    from analysis.themes import ThemeParams, cluster_texts

    embedder = _engine(choice)
    frame = pd.read_csv(csv_path)
    texts = frame["text"].tolist()
    embedder.embed(texts[:32])  # load the model outside the timing
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_seconds = time.perf_counter() - started
    started = time.perf_counter()
    result = cluster_texts(texts, vectors, params=ThemeParams.for_engine(embedder.name))
    cluster_seconds = time.perf_counter() - started
    return {
        "engine": embedder.name,
        "items": len(texts),
        "intents": frame["intent"].nunique(),
        "themes": len(result.themes),
        "unassigned": float((result.labels == -1).mean()),
        "largest": max((t.size for t in result.themes.values()), default=0) / len(texts),
        **_scores(frame["intent"], result.labels),
        "embed_s": embed_seconds,
        "cluster_s": cluster_seconds,
        "peak_rss_mb": _peak_rss_mb(),
    }


_PREFIXES = ["", "", "", "", "honestly ", "please ", "well, ", "i think ", "so ", "hi, "]
_SUFFIXES = ["", "", "", "", " thanks", " please", " asap", " again", "!", " today"]


def synthetic_texts(source_csv: str, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short texts sampled from ``source_csv`` and lightly perturbed, with their intents."""
    import pandas as pd

    frame = pd.read_csv(source_csv)
    rng = random.Random(seed)
    rows = list(frame[["text", "intent"]].itertuples(index=False, name=None))
    texts, gold = [], []
    for _ in range(n):
        text, intent = rows[rng.randrange(len(rows))]
        words = text.split()
        roll = rng.random()
        if len(words) > 4 and roll < 0.3:
            del words[rng.randrange(len(words))]
        elif len(words) > 3 and roll < 0.5:
            i = rng.randrange(len(words) - 1)
            words[i], words[i + 1] = words[i + 1], words[i]
        texts.append(rng.choice(_PREFIXES) + " ".join(words) + rng.choice(_SUFFIXES))
        gold.append(intent)
    return texts, gold


def scale_run(choice: str, source_csv: str, n: int) -> dict:
    """Embed, then cluster ``n`` synthetic texts with the embeddings precomputed."""
    import numpy as np

    from analysis.embeddings import normalise_text
    from analysis.themes import ThemeParams, cluster_texts

    embedder = _engine(choice)
    texts, gold = synthetic_texts(source_csv, n)
    embedder.embed(texts[:32])
    started = time.perf_counter()
    vectors = embedder.embed(texts)
    embed_seconds = time.perf_counter() - started
    distinct = len({normalise_text(t) for t in texts})
    rss_before = _peak_rss_mb()

    tracemalloc.start()
    started = time.perf_counter()
    result = cluster_texts(texts, vectors, params=ThemeParams.for_engine(embedder.name))
    cluster_seconds = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "engine": embedder.name,
        "items": n,
        "distinct": distinct,
        "themes": len(result.themes),
        "unassigned": float(np.mean(result.labels == -1)),
        "largest": max((t.size for t in result.themes.values()), default=0) / n,
        **_scores(gold, result.labels),
        "embed_s": embed_seconds,
        "texts_per_s": distinct / embed_seconds,
        "cluster_s": cluster_seconds,
        "cluster_traced_peak_mb": traced_peak / 2**20,
        "peak_rss_before_cluster_mb": rss_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _in_child(function, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(function, args)


def _quality(args: argparse.Namespace, files: list[str]) -> None:
    print("Quality against banking77 gold intents (39)")
    print(
        f"{'file':24} {'engine':18} {'items':>6} {'themes':>6} {'unass':>6} {'largest':>7} "
        f"{'ARI':>6} {'NMI':>6} {'homog':>6} {'compl':>6} {'embed s':>8} {'clust s':>8} {'peak MB':>8}"
    )
    for file in files:
        for choice in args.engines:
            r = _in_child(quality_run, choice, str(args.data_dir / file))
            print(
                f"{file:24} {r['engine']:18} {r['items']:6d} {r['themes']:6d} {r['unassigned']:6.3f} "
                f"{r['largest']:7.3f} {r['ari']:6.3f} {r['nmi']:6.3f} {r['homogeneity']:6.3f} "
                f"{r['completeness']:6.3f} {r['embed_s']:8.1f} {r['cluster_s']:8.2f} {r['peak_rss_mb']:8.0f}",
                flush=True,
            )
    print("largest: share of all items in the biggest theme.")


def _scale(args: argparse.Namespace) -> None:
    print()
    print(f"Scale: {args.scale:,} synthetic texts from banking77-dev-large (embed, then cluster)")
    print(
        f"{'engine':18} {'distinct':>8} {'embed s':>8} {'texts/s':>8} {'clust s':>8} {'clust MB':>8} "
        f"{'peak MB':>8} {'themes':>6} {'unass':>6} {'largest':>7} {'ARI':>6} {'NMI':>6}"
    )
    for choice in args.scale_engines:
        r = _in_child(scale_run, choice, str(args.data_dir / "banking77-dev-large.csv"), args.scale)
        print(
            f"{r['engine']:18} {r['distinct']:8d} {r['embed_s']:8.1f} {r['texts_per_s']:8.0f} "
            f"{r['cluster_s']:8.1f} {r['cluster_traced_peak_mb']:8.0f} {r['peak_rss_mb']:8.0f} "
            f"{r['themes']:6d} {r['unassigned']:6.3f} {r['largest']:7.3f} {r['ari']:6.3f} {r['nmi']:6.3f}",
            flush=True,
        )
    print("clust MB: peak of NumPy/Python allocations while clustering (tracemalloc);")
    print("peak MB: peak RSS of the whole child process (interpreter, libraries, model, vectors).")
    print("Timings are wall-clock: other CPU-heavy processes on the machine inflate them.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--engines", nargs="+", choices=ENGINES, default=list(ENGINES))
    parser.add_argument("--no-quality", action="store_true", help="skip the banking77 quality runs")
    parser.add_argument("--scale", type=int, default=60_000, help="synthetic items for the speed run (0: skip)")
    parser.add_argument(
        "--scale-engines",
        nargs="+",
        choices=ENGINES,
        default=["minilm", "tfidf"],
        help="engines for the speed run (fp32 is left out by default: ~2.5 minutes of embedding)",
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    files = ["banking77-dev.csv", "banking77-dev-large.csv"]
    missing = [f for f in files if not (args.data_dir / f).exists()]
    if missing:
        raise SystemExit(f"missing {', '.join(missing)} in {args.data_dir}")
    if not args.no_quality:
        _quality(args, files)
    if args.scale:
        _scale(args)


if __name__ == "__main__":
    main()
