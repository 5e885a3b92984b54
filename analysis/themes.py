"""Group free-text answer items into themes and describe each theme.

Plain Python and NumPy/scikit-learn, no ORM: the service that loads a wave's
items calls :func:`cluster_texts` with the texts and their embeddings (from
:mod:`analysis.embeddings`) and stores the result.

A theme is a *topic*, not a sentiment: the lead clusters the items of all four
questions and all three groups together, so a leader's strength "fast response
times" and a customer's improvement "waited two weeks for an answer" must land
in one theme -- that is how contradictions are found.

Method (why each step is there):

1. **Dedupe.** Survey answers repeat ("good service"); identical texts
   (whitespace and case folded, see :func:`analysis.embeddings.normalise_text`)
   are clustered once, weighted by how often they occur.
2. **Micro-clusters** (only above :attr:`ThemeParams.max_direct` distinct
   texts). Exact agglomerative clustering needs every pairwise similarity: at
   60,000 texts that is 29 GB. Instead MiniBatchKMeans cuts the texts into
   :attr:`ThemeParams.micro_clusters` tight groups (about 20 texts each at
   60,000), far finer than any theme, so it decides nothing a consultant would
   see; it only makes step 3 affordable. Below the limit every distinct text is
   its own micro-cluster and step 3 is exact.
3. **Average-linkage agglomeration with a similarity threshold**, so the number
   of themes follows the data (no fixed k). The average-linkage similarity of
   two groups A and B of unit vectors is the mean cosine over all their pairs,
   and that equals ``mean(A) . mean(B)`` (a dot product of the *unnormalised*
   means). So starting from micro-cluster means and sizes, the merges are
   exactly those of average linkage over the items themselves, computed on an
   m x m matrix instead of n x n. Groups merge while their mean pairwise cosine
   is at least :attr:`ThemeParams.merge_similarity`.
4. **Lone mentions.** A theme is something at least two answer items say
   (:attr:`ThemeParams.min_theme_size`). A text said once that merged with
   nothing joins the nearest theme whose centroid it resembles (cosine at least
   :attr:`ThemeParams.attach_floor`, the same rule :func:`assign_to_themes`
   applies to new items across runs); if no theme is that close it is
   genuinely isolated and gets label ``-1``.
5. **Description** (:func:`describe_themes`): class-based TF-IDF keywords,
   a readable label, the normalised centroid and the three most central items.

Everything is deterministic: fixed ``random_state``, ties broken by index,
themes numbered by size (largest first), then by first item.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse

from analysis.embeddings import normalise_text

logger = logging.getLogger(__name__)

UNASSIGNED = -1


@dataclass(frozen=True)
class ThemeParams:
    """Constants of the theme engine, tuned per embedding engine.

    The defaults are for the MiniLM sentence embeddings; use
    :meth:`for_engine` to get the right set for an embedder by name.
    """

    #: Two groups merge while the mean cosine over all their item pairs is at
    #: least this. Why 0.35 for MiniLM: paraphrases of one survey topic score
    #: 0.38-0.65 against each other ("fast response times" ~ "waited two weeks
    #: for an answer" 0.38, ~ "slow to reply" 0.64; "friendly knowledgeable
    #: staff" ~ "rude staff on the phone" 0.48) while unrelated answers score
    #: 0.0-0.2. The threshold sits just below the weakest paraphrase pair and
    #: well above unrelated pairs, so one theme holds opposite opinions of a
    #: topic but not two topics. Checked, not fitted, on banking77 (see
    #: bench/themes_quality.py): that yardstick is steady from about 0.35 to
    #: 0.45, so the choice does not hinge on it.
    merge_similarity: float = 0.30
    #: A lone mention joins the nearest theme when its cosine to the theme's
    #: *normalised* centroid reaches this. A centroid of a coherent theme is
    #: closer to each member than members are to each other (|mean| < 1), so
    #: this floor is set higher than ``merge_similarity``; 0.5 is about where
    #: an item stands to a theme it would have merged into (mean member cosine
    #: 0.35 / |mean| ~ 0.7).
    attach_floor: float = 0.30
    #: Up to this many distinct texts are clustered exactly (step 3 on the
    #: texts themselves). The similarity matrix is max_direct^2 float64:
    #: 3,000 -> 72 MB and about a second of linkage; the limit keeps both small.
    max_direct: int = 3000
    #: Number of k-means micro-clusters above ``max_direct``. Equal to
    #: ``max_direct`` so the granularity does not jump at the boundary; at
    #: 60,000 texts that is ~20 texts per micro-cluster, much finer than a theme.
    micro_clusters: int = 3000
    #: A theme needs at least this many answer items (mentions): one remark
    #: that resembles nothing else is not a theme a consultant can act on.
    min_theme_size: int = 2
    #: Keywords kept per theme (the issue asks for 5-8).
    n_keywords: int = 8
    random_state: int = 0

    @classmethod
    def for_engine(cls, engine_name: str) -> ThemeParams:
        """The parameters that suit an embedder, by its ``name``."""
        if engine_name.startswith("tfidf"):
            return TFIDF_PARAMS
        return cls()


#: LSA vectors of TF-IDF n-grams spread cosines differently from a sentence
#: model: texts that share no word score ~0 whatever they mean, and texts that
#: share one content word and some character n-grams score 0.2-0.4. A higher
#: threshold keeps "one shared word" from chaining unrelated topics together;
#: the fallback is meant to be coarse but safe.
TFIDF_PARAMS = replace(ThemeParams(), merge_similarity=0.10, attach_floor=0.30)


@dataclass
class ThemeInfo:
    """What a consultant sees of a theme."""

    #: A short readable phrase naming the topic.
    label: str
    #: Top terms by class-based TF-IDF (stop words removed), best first.
    keywords: list[str]
    #: L2-normalised mean embedding of the theme's items.
    centroid: np.ndarray
    #: Number of answer items (duplicates counted) in the theme.
    size: int
    #: Indices (into the texts given) of up to 3 distinct items closest to the centroid.
    representative: list[int] = field(default_factory=list)


@dataclass
class ThemeResult:
    """One theme id per input text (``-1`` = unassigned) and the themes."""

    labels: np.ndarray
    themes: dict[int, ThemeInfo]


# --------------------------------------------------------------------------
# Clustering
# --------------------------------------------------------------------------


def cluster_texts(
    texts: Sequence[str],
    embeddings: np.ndarray,
    *,
    params: ThemeParams | None = None,
) -> ThemeResult:
    """Cluster ``texts`` (one row of ``embeddings`` each) into themes.

    ``embeddings`` must be L2-normalised rows (what every
    :class:`analysis.embeddings.Embedder` returns). See the module docstring
    for the method; ``params`` defaults to :class:`ThemeParams` (MiniLM).
    """
    params = params or ThemeParams()
    n = len(texts)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"expected {n} embedding rows, got shape {embeddings.shape}")
    if n == 0:
        return ThemeResult(labels=np.zeros(0, dtype=np.int64), themes={})

    first_index, inverse, counts = _dedupe(texts)
    unique_vectors = embeddings[first_index]

    # Step 2: the units that step 3 agglomerates.
    if len(first_index) <= params.max_direct:
        unit_of_unique = np.arange(len(first_index))
    else:
        unit_of_unique = _micro_clusters(unique_vectors, counts, params)
    n_units = int(unit_of_unique.max()) + 1
    unit_weight = np.bincount(unit_of_unique, weights=counts, minlength=n_units)
    unit_sum = np.zeros((n_units, embeddings.shape[1]), dtype=np.float64)
    np.add.at(unit_sum, unit_of_unique, unique_vectors.astype(np.float64) * counts[:, None])
    unit_mean = unit_sum / unit_weight[:, None]

    # Step 3.
    group_of_unit = _average_linkage(unit_mean, unit_weight, params.merge_similarity)
    group_of_unique = group_of_unit[unit_of_unique]

    # Step 4.
    group_of_unique = _settle_lone_mentions(group_of_unique, unique_vectors, counts, params)

    labels = _renumber(group_of_unique[inverse], counts, group_of_unique)
    themes = describe_themes(texts, labels, embeddings, n_keywords=params.n_keywords)
    return ThemeResult(labels=labels, themes=themes)


def assign_to_themes(
    embeddings: np.ndarray,
    centroids: dict[int, np.ndarray],
    floor: float,
) -> np.ndarray:
    """Each row's nearest theme by cosine, or ``-1`` when none reaches ``floor``.

    Used to let new items flow into existing (possibly curated) themes across
    runs; ``ThemeParams.attach_floor`` is the floor that matches how
    :func:`cluster_texts` attaches lone mentions within a run. Centroids are
    normalised here, so stored ones need not be.
    """
    embeddings = np.asarray(embeddings, dtype=np.float32)
    n = embeddings.shape[0] if embeddings.ndim == 2 else 0
    if n == 0 or not centroids:
        return np.full(n, UNASSIGNED, dtype=np.int64)
    ids = np.array(sorted(centroids), dtype=np.int64)
    matrix = np.stack([np.asarray(centroids[i], dtype=np.float32) for i in ids])
    matrix /= np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    labels = np.empty(n, dtype=np.int64)
    # Chunked so 60,000 items x thousands of themes never needs one big matrix.
    for start in range(0, n, 8192):
        sims = embeddings[start : start + 8192] @ matrix.T
        best = sims.argmax(axis=1)
        best_sim = sims[np.arange(len(best)), best]
        labels[start : start + 8192] = np.where(best_sim >= floor, ids[best], UNASSIGNED)
    return labels


def _dedupe(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(index of first occurrence per distinct text, inverse map, counts)."""
    first: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        key = normalise_text(text)
        inverse[i] = first.setdefault(key, len(first))
    first_index = np.empty(len(first), dtype=np.int64)
    seen = np.zeros(len(first), dtype=bool)
    for i, u in enumerate(inverse):
        if not seen[u]:
            seen[u] = True
            first_index[u] = i
    counts = np.bincount(inverse, minlength=len(first)).astype(np.float64)
    return first_index, inverse, counts


def _micro_clusters(vectors: np.ndarray, counts: np.ndarray, params: ThemeParams) -> np.ndarray:
    """Partition many texts into ``params.micro_clusters`` tight k-means groups."""
    from sklearn.cluster import MiniBatchKMeans

    k = min(params.micro_clusters, len(vectors))
    kmeans = MiniBatchKMeans(
        n_clusters=k,
        random_state=params.random_state,
        # Centres seeded at random texts: dense regions get more micro-clusters,
        # which is what step 3 wants. (k-means++ spreads them better but its
        # seeding costs k x 10 x 3k distance rows -- minutes at k = 3,000.) One
        # initialisation is enough: the result must be fine-grained, not optimal.
        init="random",
        init_size=min(len(vectors), 3 * k),
        n_init=1,
        batch_size=4096,
        max_iter=20,
        reassignment_ratio=0.0,
    )
    assignment = kmeans.fit_predict(vectors, sample_weight=counts)
    # Empty clusters leave holes in the numbering; compact it.
    _, compact = np.unique(assignment, return_inverse=True)
    return compact.astype(np.int64)


def _average_linkage(means: np.ndarray, weights: np.ndarray, threshold: float) -> np.ndarray:
    """Average-linkage clustering of weighted groups, cut at ``threshold``.

    ``means`` are the (unnormalised) mean unit vectors of the starting groups
    and ``weights`` their item counts, so ``means[i] . means[j]`` is the mean
    cosine over all item pairs of groups i and j, and merging keeps it exact
    (Lance-Williams: the similarity to a merged group is the size-weighted
    average). Returns a group id per starting group.

    Nearest-neighbour chain algorithm: O(m^2) time, one m x m matrix. Average
    linkage is reducible (a merged group is never more similar to a third one
    than the better of its parts), so a group whose best similarity is below
    the threshold can never merge again and is set aside at once.
    """
    m = len(means)
    sims = means @ means.T
    np.fill_diagonal(sims, -np.inf)
    weights = weights.astype(np.float64).copy()
    parent = np.arange(m)
    done = np.zeros(m, dtype=bool)
    next_start = 0
    chain: list[int] = []
    while True:
        if not chain:
            while next_start < m and done[next_start]:
                next_start += 1
            if next_start >= m:
                break
            chain.append(next_start)
        a = chain[-1]
        row = sims[a]
        b = int(np.argmax(row))
        best = row[b]
        if len(chain) >= 2 and row[chain[-2]] >= best:
            b = chain[-2]  # ties go to the chain's previous element, so the chain always ends
        if not best >= threshold:
            # Nothing is (or will become) similar enough: a's group is final.
            done[a] = True
            sims[a, :] = -np.inf
            sims[:, a] = -np.inf
            chain.pop()
            continue
        if len(chain) >= 2 and b == chain[-2]:
            chain.pop()
            chain.pop()
            merged = (weights[a] * sims[a] + weights[b] * sims[b]) / (weights[a] + weights[b])
            keep, drop = min(a, b), max(a, b)
            sims[keep, :] = merged
            sims[:, keep] = merged
            sims[keep, keep] = -np.inf
            sims[drop, :] = -np.inf
            sims[:, drop] = -np.inf
            weights[keep] += weights[drop]
            parent[drop] = keep
            done[drop] = True
        else:
            chain.append(b)
    # Resolve merge chains to their root.
    for i in range(m):
        root = i
        while parent[root] != root:
            root = parent[root]
        parent[i] = root
    return parent


def _settle_lone_mentions(
    group_of_unique: np.ndarray,
    vectors: np.ndarray,
    counts: np.ndarray,
    params: ThemeParams,
) -> np.ndarray:
    """Attach groups with fewer than ``min_theme_size`` items, or mark them -1."""
    group_of_unique = group_of_unique.copy()
    groups, inverse = np.unique(group_of_unique, return_inverse=True)
    sizes = np.bincount(inverse, weights=counts)
    small = sizes < params.min_theme_size
    if not small.any():
        return group_of_unique
    if small.all():
        group_of_unique[:] = UNASSIGNED
        return group_of_unique
    big_ids = groups[~small]
    centroids = {}
    for gid in big_ids:
        members = group_of_unique == gid
        centroids[int(gid)] = (vectors[members] * counts[members, None]).sum(axis=0)
    lone = small[inverse]
    group_of_unique[lone] = assign_to_themes(vectors[lone], centroids, params.attach_floor)
    return group_of_unique


def _renumber(item_groups: np.ndarray, counts: np.ndarray, group_of_unique: np.ndarray) -> np.ndarray:
    """Number themes 0.. by size (largest first), ties by first item; keep -1."""
    labels = np.full(len(item_groups), UNASSIGNED, dtype=np.int64)
    assigned = item_groups != UNASSIGNED
    if not assigned.any():
        return labels
    groups, first, sizes = np.unique(item_groups[assigned], return_index=True, return_counts=True)
    order = np.lexsort((first, -sizes))
    mapping = {int(groups[o]): rank for rank, o in enumerate(order)}
    labels[assigned] = [mapping[int(g)] for g in item_groups[assigned]]
    return labels


# --------------------------------------------------------------------------
# Description
# --------------------------------------------------------------------------

_TOKEN_PATTERN = r"(?u)\b[^\W\d_][^\W\d_']+\b"
#: Survey filler that says nothing about a topic but would otherwise top the
#: keywords of every theme ("the service is very good").
_EXTRA_STOP_WORDS = frozenset(
    """
    really just like think don lot bit things thing make makes need needs
    sometimes always also ve ll im dont doesnt didnt isnt cant wont
    """.split()
)


def describe_themes(
    texts: Sequence[str],
    labels: np.ndarray,
    embeddings: np.ndarray,
    *,
    n_keywords: int = 8,
) -> dict[int, ThemeInfo]:
    """Label, keywords, centroid, size and representatives of every theme.

    Keywords are class-based TF-IDF (as in BERTopic): all items of a theme are
    one "document"; a term scores by its frequency within the theme times
    ``log(1 + A / f)``, with ``f`` its frequency over all themes and ``A`` the
    average number of words per theme. A term frequent in this theme but rare
    elsewhere ranks first, which is what distinguishes the theme. Counts are
    per item (binary), so one long answer repeating a word does not dominate.
    """
    labels = np.asarray(labels)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    theme_ids = sorted(int(t) for t in np.unique(labels) if t != UNASSIGNED)
    if not theme_ids:
        return {}

    keywords = _class_tfidf_keywords(texts, labels, theme_ids, n_keywords)
    themes: dict[int, ThemeInfo] = {}
    for tid in theme_ids:
        members = np.flatnonzero(labels == tid)
        centroid = embeddings[members].astype(np.float64).sum(axis=0)
        centroid /= max(np.linalg.norm(centroid), 1e-12)
        representative = _representatives(texts, members, embeddings, centroid)
        themes[tid] = ThemeInfo(
            label=_label(texts, representative, keywords[tid]),
            keywords=keywords[tid],
            centroid=centroid.astype(np.float32),
            size=len(members),
            representative=representative,
        )
    return themes


def _representatives(
    texts: Sequence[str], members: np.ndarray, embeddings: np.ndarray, centroid: np.ndarray, k: int = 3
) -> list[int]:
    """Indices of the ``k`` distinct member texts closest to the centroid."""
    sims = embeddings[members] @ centroid.astype(np.float32)
    order = np.lexsort((members, -sims))  # most central first, ties by index
    chosen: list[int] = []
    seen: set[str] = set()
    for o in order:
        key = normalise_text(texts[members[o]])
        if key in seen:
            continue
        seen.add(key)
        chosen.append(int(members[o]))
        if len(chosen) == k:
            break
    return chosen


def _class_tfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, theme_ids: list[int], n_keywords: int
) -> dict[int, list[str]]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    assigned = np.flatnonzero(labels != UNASSIGNED)
    docs = [texts[i] for i in assigned]
    vectorizer = CountVectorizer(
        lowercase=True,
        token_pattern=_TOKEN_PATTERN,
        stop_words=sorted(ENGLISH_STOP_WORDS | _EXTRA_STOP_WORDS),
        ngram_range=(1, 2),
        binary=True,
        dtype=np.float64,
    )
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # nothing but stop words / digits
        return {tid: [] for tid in theme_ids}
    vocabulary = vectorizer.get_feature_names_out()

    row_of_theme = {tid: r for r, tid in enumerate(theme_ids)}
    rows = np.array([row_of_theme[int(labels[i])] for i in assigned])
    membership = sparse.csr_matrix(
        (np.ones(len(assigned)), (rows, np.arange(len(assigned)))),
        shape=(len(theme_ids), len(assigned)),
    )
    per_theme = (membership @ counts).tocsr()  # themes x terms, item counts
    term_total = np.asarray(per_theme.sum(axis=0)).ravel()
    words_per_theme = np.asarray(per_theme.sum(axis=1)).ravel()
    average_words = words_per_theme.mean()
    idf = np.log1p(average_words / np.maximum(term_total, 1.0))

    result: dict[int, list[str]] = {}
    for tid in theme_ids:
        r = row_of_theme[tid]
        start, end = per_theme.indptr[r], per_theme.indptr[r + 1]
        cols = per_theme.indices[start:end]
        freq = per_theme.data[start:end]
        theme_size = int(membership[r].sum())
        # A bigram said once is an accident of wording, not a topic phrase.
        is_bigram = np.char.count(vocabulary[cols].astype(str), " ") > 0
        keep = ~is_bigram | (freq >= 2) | (theme_size < 2)
        cols, freq = cols[keep], freq[keep]
        scores = freq / max(words_per_theme[r], 1.0) * idf[cols]
        order = np.lexsort((vocabulary[cols], -scores))
        result[tid] = _pick_keywords([str(vocabulary[cols[o]]) for o in order], n_keywords)
    return result


def _pick_keywords(ranked: list[str], n: int) -> list[str]:
    """Best-first terms without repeating words: a phrase replaces its own words."""
    chosen: list[str] = []
    for term in ranked:
        words = set(term.split())
        if any(words <= set(c.split()) for c in chosen):
            continue  # already said by a chosen phrase
        if len(words) > 1:
            # "response times" supersedes an earlier "response"; keep its rank.
            inside = [i for i, c in enumerate(chosen) if set(c.split()) <= words]
            if inside:
                chosen[inside[0]] = term
                for i in reversed(inside[1:]):
                    del chosen[i]
                continue
        chosen.append(term)
        if len(chosen) == n:
            break
    return chosen


_MAX_LABEL_WORDS = 8


def _label(texts: Sequence[str], representative: list[int], keywords: list[str]) -> str:
    """A short readable name for the theme.

    The most central item that is short enough (at most 8 words) and mentions
    one of the top keywords reads like the consultant's own words ("slow to
    reply"); otherwise the top three keywords joined ("card, activate, pin").
    """
    top = keywords[:3]
    for index in representative:
        text = " ".join(str(texts[index]).split()).strip(" .!?;,")
        words = re.findall(r"[^\W\d_][^\W\d_']+", text.lower())
        if 0 < len(text.split()) <= _MAX_LABEL_WORDS and any(
            set(k.split()) <= set(words) for k in top
        ):
            return text[0].upper() + text[1:]
    if top:
        return ", ".join(top)
    if representative:
        text = " ".join(str(texts[representative[0]]).split())
        words = text.split()
        return " ".join(words[:_MAX_LABEL_WORDS]) + ("…" if len(words) > _MAX_LABEL_WORDS else "")
    return "(no text)"
