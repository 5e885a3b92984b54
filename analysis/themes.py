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
   :attr:`ThemeParams.micro_clusters` tight groups (about 30 texts each at
   60,000), far finer than any theme, so it decides little a consultant would
   see; it makes step 3 affordable. Below the limit every distinct text is
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

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse

from analysis.embeddings import FILLER_WORDS, normalise_text

UNASSIGNED = -1


@dataclass(frozen=True)
class ThemeParams:
    """Constants of the theme engine, tuned per embedding engine.

    The defaults are for the MiniLM sentence embeddings; use
    :meth:`for_engine` to get the right set for an embedder by name.
    """

    #: Two groups merge while the mean cosine over all their item pairs is at
    #: least this. Why 0.30 for MiniLM: a theme is a topic, so it must hold
    #: both opinions of it, and the measured cosines put a topic's answers at
    #: 0.33-0.64 pairwise ("fast response times" ~ "slow to reply" 0.60-0.64,
    #: ~ "waited two weeks for an answer" 0.33-0.38; "friendly knowledgeable
    #: staff" ~ "rude staff on the phone" 0.47) while unrelated answers score
    #: 0.0-0.2. On hand-written sets of six ideas (tests/analysis/test_themes.py)
    #: the mean cosine within an idea is 0.42-0.69 and between two ideas 0.09
    #: (median) to 0.29 (worst: "the app keeps crashing" ~ "the network keeps
    #: dropping" share a sentence shape); every set stays whole and apart for
    #: thresholds 0.27-0.35, and 0.30 sits inside that range, nearer its low
    #: end because splitting a topic hides a contradiction while an
    #: over-broad theme can still be split by a consultant. Not fitted to
    #: banking77: its 39 intents are finer than survey topics (median mean
    #: cosine to the nearest other intent 0.44), so there related intents merge
    #: ("card problems") and ARI is lower by design (bench/themes_quality.py).
    merge_similarity: float = 0.30
    #: A lone mention (a text said once that merged with nothing) joins the
    #: nearest theme when its cosine to the theme's normalised centroid reaches
    #: this, else it stays unassigned. The same number as ``merge_similarity``:
    #: "as similar as two answers about one topic" -- a centroid below it is in
    #: the unrelated band, which is what "genuinely isolated" means. Also the
    #: floor to pass to :func:`assign_to_themes` for new items across runs.
    attach_floor: float = 0.30
    #: Up to this many distinct texts are clustered exactly (step 3 on the
    #: texts themselves). The similarity matrix is max_direct^2 float64:
    #: 3,000 -> 72 MB and about a second of linkage; the limit keeps both small.
    max_direct: int = 3000
    #: Number of k-means micro-clusters above ``max_direct``. 2,000 keeps the
    #: linkage matrix at 32 MB and gives ~30 texts per micro-cluster at 60,000
    #: texts: near-paraphrases, far finer than a theme. More micro-clusters cost
    #: k-means time (every pass is n x k dot products) for no visible change.
    micro_clusters: int = 2000
    #: Passes of mini-batch k-means over the texts. The micro-clusters only
    #: need to hold near-paraphrases together, not to be optimal: at 60,000
    #: texts three passes reach a k-means objective within ~2% of twenty
    #: passes', and each pass costs about a second on 2 cores.
    micro_passes: int = 3
    #: A theme needs at least this many answer items (mentions): one remark
    #: that resembles nothing else is not a theme a consultant can act on.
    min_theme_size: int = 2
    #: Keywords kept per theme (the issue asks for 5-8).
    n_keywords: int = 8
    #: Seeds k-means, so the same input always gives the same themes.
    random_state: int = 0

    @classmethod
    def for_engine(cls, engine_name: str) -> ThemeParams:
        """The parameters that suit an embedder, by its ``name``."""
        if engine_name.startswith("tfidf"):
            return TFIDF_PARAMS
        return cls()


#: The TF-IDF fallback sees only shared words and character n-grams, so its
#: cosines live on another scale: answers that share no word score ~0 whatever
#: they mean, one shared content word gives roughly 0.1-0.3. On banking77 the
#: mean cosine within an intent is 0.26-0.29 and to the nearest other intent
#: 0.12-0.15; on the hand-written sets within an idea 0.03-0.14, between ideas
#: at most 0.04. 0.10 asks that a theme's answers share, on average, about one
#: content word: it keeps unrelated topics apart on both and groups what word
#: overlap can group. A lone mention joins a theme only with a clear word
#: match to its centroid (0.30); otherwise it stays unassigned.
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
    """One theme id per input text and the themes, numbered 0.. by size.

    ``-1`` (unassigned) marks only a genuinely isolated item: said once (no
    other item has the same text), merged with nothing, and with a cosine
    below ``attach_floor`` to every theme's centroid.
    """

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
    # Count-weighted mean vector of each unit, via a sparse units x texts matrix.
    weighting = sparse.csr_matrix(
        (counts, (unit_of_unique, np.arange(len(counts)))), shape=(n_units, len(counts))
    )
    unit_weight = np.asarray(weighting.sum(axis=1)).ravel()
    unit_mean = np.asarray(weighting @ unique_vectors, dtype=np.float64) / unit_weight[:, None]

    # Step 3.
    group_of_unit = _average_linkage(unit_mean, unit_weight, params.merge_similarity)
    group_of_unique = group_of_unit[unit_of_unique]

    # Step 4.
    group_of_unique = _settle_lone_mentions(group_of_unique, unique_vectors, counts, params)

    labels = _renumber(group_of_unique[inverse])
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
        batch_size=2048,
        max_iter=params.micro_passes,
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
    # Count-weighted vector sums of the real themes (assign_to_themes normalises them).
    membership = sparse.csr_matrix((counts, (inverse, np.arange(len(counts)))), shape=(len(groups), len(counts)))
    sums = np.asarray(membership @ vectors)
    centroids = {int(groups[g]): sums[g] for g in np.flatnonzero(~small)}
    lone = small[inverse]
    group_of_unique[lone] = assign_to_themes(vectors[lone], centroids, params.attach_floor)
    return group_of_unique


def _renumber(item_groups: np.ndarray) -> np.ndarray:
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

#: Words of two or more letters; digits and apostrophes split words, so
#: "didn't" leaves "didn", which is a stop word below.
_WORD_RE = re.compile(r"[^\W\d_][^\W\d_']+")
#: Words of scikit-learn's general stop list that name topics in customer
#: feedback ("unexpected bill", "call centre", "booking system", "interest
#: rate", "account details", "top up", "amount charged"): kept as keywords.
_TOPICAL_WORDS = frozenset(
    ["bill", "call", "system", "interest", "detail", "fire", "full", "top", "amount",
     "empty", "front", "move", "name", "serious", "fill", "side", "bottom", "describe"]
)
#: A two-word keyword must occur in at least this share of the theme's items
#: (and in two of them): a phrase that recurs names the topic ("exchange
#: rate"), one that occurs by accident of wording does not ("change got").
_MIN_PHRASE_SHARE = 0.1


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
        central = _most_central(texts, members, embeddings, centroid, _LABEL_CANDIDATES)
        themes[tid] = ThemeInfo(
            label=_label(texts, central, keywords[tid]),
            keywords=keywords[tid],
            centroid=centroid.astype(np.float32),
            size=len(members),
            representative=central[:3],
        )
    return themes


def _most_central(
    texts: Sequence[str], members: np.ndarray, embeddings: np.ndarray, centroid: np.ndarray, k: int
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


def _stem(word: str) -> str:
    """A crude grouping key so inflections count as one keyword.

    "crashes"/"crashing"/"crash", "charged"/"charges", "replies"/"replied"
    share a key; the keyword shown is the form respondents used most. Not a
    linguistic stemmer (none ships with the dependencies): a few English suffix
    rules, enough for keyword counts, where an odd key only costs a merge of
    two rare words.
    """
    w = word
    if len(w) > 4 and w.endswith("ies"):
        w = w[:-3] + "y"
    elif len(w) > 4 and w.endswith(("sses", "shes", "ches", "xes", "zes")):
        w = w[:-2]
    elif len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ing", "ed"):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)]
            if w[-1] == w[-2] and w[-1] not in "lsz":
                w = w[:-1]  # dropping -> drop (but calling -> call)
            if w.endswith("i"):
                w = w[:-1] + "y"  # replied -> reply
            break
    if len(w) > 3 and w.endswith("e"):
        w = w[:-1]  # charge / charg(ed) / charg(es)
    return w


def _keyword_terms(docs: Sequence[str]) -> tuple[list[set[str]], dict[str, str]]:
    """Per document the set of unigram and bigram keys; and each key's display form."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = (ENGLISH_STOP_WORDS - _TOPICAL_WORDS) | FILLER_WORDS
    surface_counts: dict[str, Counter[str]] = {}
    doc_terms: list[set[str]] = []
    for doc in docs:
        terms: set[str] = set()
        previous: str | None = None
        for word in _WORD_RE.findall(str(doc).lower()):
            if word in stop:
                previous = None  # a phrase is words side by side: "exchange rate", not "charged (a) fee"
                continue
            key = _stem(word)
            surface_counts.setdefault(key, Counter())[word] += 1
            terms.add(key)
            if previous is not None and previous != key:
                terms.add(f"{previous} {key}")
            previous = key
        doc_terms.append(terms)
    # The most used surface form; ties go to the shorter, then alphabetical.
    display = {
        key: min(forms.items(), key=lambda item: (-item[1], len(item[0]), item[0]))[0]
        for key, forms in surface_counts.items()
    }
    for term in {t for terms in doc_terms for t in terms if " " in t}:
        first, second = term.split(" ")
        display[term] = f"{display[first]} {display[second]}"
    return doc_terms, display


def _class_tfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, theme_ids: list[int], n_keywords: int
) -> dict[int, list[str]]:
    assigned = np.flatnonzero(labels != UNASSIGNED)
    doc_terms, display = _keyword_terms([texts[i] for i in assigned])
    vocabulary = sorted({t for terms in doc_terms for t in terms})
    if not vocabulary:  # nothing but stop words and digits
        return {tid: [] for tid in theme_ids}
    column = {t: j for j, t in enumerate(vocabulary)}
    row_of_theme = {tid: r for r, tid in enumerate(theme_ids)}

    # themes x terms: in how many of the theme's items each term occurs.
    rows, cols = [], []
    for i, terms in zip(assigned, doc_terms):
        r = row_of_theme[int(labels[i])]
        for t in terms:
            rows.append(r)
            cols.append(column[t])
    per_theme = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, cols)), shape=(len(theme_ids), len(vocabulary))
    )
    per_theme.sum_duplicates()
    theme_sizes = np.bincount(
        [row_of_theme[int(labels[i])] for i in assigned], minlength=len(theme_ids)
    )
    term_total = np.asarray(per_theme.sum(axis=0)).ravel()
    words_per_theme = np.asarray(per_theme.sum(axis=1)).ravel()
    idf = np.log1p(words_per_theme.mean() / np.maximum(term_total, 1.0))
    is_phrase = np.array([" " in t for t in vocabulary])
    names = np.array(vocabulary)

    result: dict[int, list[str]] = {}
    for tid in theme_ids:
        r = row_of_theme[tid]
        start, end = per_theme.indptr[r], per_theme.indptr[r + 1]
        cols_r = per_theme.indices[start:end]
        freq = per_theme.data[start:end]
        keep = ~is_phrase[cols_r] | (freq >= max(2.0, _MIN_PHRASE_SHARE * theme_sizes[r]))
        cols_r, freq = cols_r[keep], freq[keep]
        scores = freq / max(words_per_theme[r], 1.0) * idf[cols_r]
        order = np.lexsort((names[cols_r], -scores))  # best first, ties alphabetical
        ranked = [display[vocabulary[cols_r[o]]] for o in order]
        result[tid] = _pick_keywords(ranked, n_keywords)
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


#: Labels longer than this read as a quotation, not as a name.
_MAX_LABEL_WORDS = 8
#: How many of the most central distinct items may name the theme.
_LABEL_CANDIDATES = 5


def _label(texts: Sequence[str], candidates: list[int], keywords: list[str]) -> str:
    """A short readable name for the theme.

    The most central item of at most 8 words reads like the respondents' own
    words and is what a consultant recognises ("Slow to reply"); when every
    central item is longer, the top three keywords joined ("exchange rate,
    currency, fees"). Consultants can rename themes, so this only has to be a
    good first name.
    """
    for index in candidates:
        text = " ".join(str(texts[index]).split()).strip(" .!?;,:")
        if 0 < len(text.split()) <= _MAX_LABEL_WORDS:
            return text[0].upper() + text[1:]
    if keywords:
        return ", ".join(keywords[:3])
    if candidates:
        words = " ".join(str(texts[candidates[0]]).split()).split()
        return " ".join(words[:_MAX_LABEL_WORDS]) + ("…" if len(words) > _MAX_LABEL_WORDS else "")
    return "(no text)"
