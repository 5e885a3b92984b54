"""Group free-text answer items into themes and describe each theme.

Plain Python and NumPy/scikit-learn, no ORM: the service that loads a wave's
items calls :func:`cluster_texts` (or :func:`cluster_texts_by_detail`) with the
texts and their embeddings (from :mod:`analysis.embeddings`) and stores the
result.

A theme is a *topic*, not a sentiment: the lead clusters the items of all four
questions and all three groups together, so a leader's strength "fast response
times" and a customer's improvement "waited two weeks for an answer" must land
in one theme -- that is how contradictions are found.

Method (why each step is there):

1. **Dedupe.** Survey answers repeat ("good service"); identical texts
   (whitespace and case folded, see :func:`analysis.embeddings.normalise_text`)
   are one node of the graph below.
2. **Nearest-neighbour graph.** Each distinct text is linked to its
   :attr:`ThemeParams.neighbours` most similar texts (cosine at least
   :attr:`ThemeParams.edge_floor`; below it two answers are unrelated and no
   link is made). A theme is a region of answers that are one another's near
   paraphrases, whatever its shape and size; a global similarity cut (average
   linkage, the earlier engine) has to pick one density for every topic and
   either merges tight neighbouring topics or shatters loose ones. This is the
   graph UMAP builds inside BERTopic, without the projection. Up to
   :attr:`ThemeParams.max_direct` distinct texts the nodes are the texts and
   the neighbours exact (similarities in row blocks, never an n x n matrix).
   Above it MiniBatchKMeans first cuts the texts into
   :attr:`ThemeParams.micro_clusters` tight groups (near-paraphrases, ~30 texts
   each at 60,000) and these are the nodes, linked by their mean vectors. Why
   not the texts themselves at scale: a large survey holds families of
   near-identical answers, each text's few nearest neighbours are then its own
   family, and the graph falls apart into thousands of families instead of
   topics; a micro-cluster's neighbours are the neighbouring families.
3. **Communities** (Louvain modularity, networkx): the graph is split where it
   is thin, so the number of themes follows the data (no fixed k). The
   ``resolution`` is the granularity knob: the consultant's detail setting
   (:data:`DETAIL_LEVELS`) halves or doubles it. On a handful of answers
   modularity may cut a big topic in pieces; nodes Louvain left with most
   of their links elsewhere move (:func:`_settle_nodes`), and communities
   that are pieces of one topic are joined (:func:`_join_pieces`).
4. **Lone mentions.** A theme is something at least two answer items say
   (:attr:`ThemeParams.min_theme_size`). A text in a smaller community joins the
   nearest theme whose centroid it resembles (cosine at least
   :attr:`ThemeParams.attach_floor`, the same rule :func:`assign_to_themes`
   applies to new items across runs); if no theme is that close it is
   genuinely isolated and gets label ``-1``.
5. **Description** (:func:`describe_themes`): class-based TF-IDF keywords,
   a 2-5 word label made of them, the normalised centroid and the three most
   central items.
6. **Growing** (:func:`grow_themes`, on re-runs after a few new answers): the
   existing items keep their themes; a new item joins the theme its nearest
   neighbours are in, and new items whose neighbours are mostly other new
   items are clustered among themselves into new themes. Nothing reshuffles.

Everything is deterministic: fixed ``random_state`` (k-means and Louvain),
ties broken by index, themes numbered by size (largest first), then by first
item. bench/themes and bench/themes_quality.py measure the method on labelled
customer messages (banking77); bench/README.md has the figures.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import sparse

from analysis.embeddings import FILLER_WORDS, normalise_text

UNASSIGNED = -1

#: The consultant's per-question detail setting: a factor on the Louvain
#: resolution. Each step halves or doubles it: on banking77 25 / 34 / 41 themes
#: (975 texts) and 29 / 39 / 59 (4,938 texts).
DETAIL_LEVELS: dict[str, float] = {"coarser": 0.5, "standard": 1.0, "finer": 2.0}
DEFAULT_DETAIL = "standard"


@dataclass(frozen=True)
class ThemeParams:
    """Constants of the theme engine, tuned per embedding engine.

    The defaults are for the MiniLM sentence embeddings; use
    :meth:`for_engine` to get the right set for an embedder by name.
    """

    #: Links per text in the neighbour graph. Few on purpose: an answer's
    #: closest few texts are paraphrases of it, while its 10th-15th neighbours
    #: in a topic of 25 answers already reach into the neighbouring topic and
    #: glue the two together. Measured on banking77 (bench/README.md): 5 is
    #: the smallest that keeps a topic one piece on both files (3 shatters the
    #: larger one, 10 merges topics in the smaller one).
    neighbours: int = 5
    #: Louvain resolution at the "standard" detail. 1.0 is plain modularity;
    #: a sparse 5-neighbour graph of short texts is one long chain of related
    #: topics, at 1.0 the modularity optimum joins pairs of neighbouring topics
    #: ("card not working" with "card declined") that a consultant would keep
    #: apart. 1.5 asks each theme to be half again as self-contained as chance
    #: would make it; bench/README.md has 1.0 and 2.0 for comparison.
    resolution: float = 1.5
    #: No link between two texts below this cosine: they are unrelated. For
    #: MiniLM, topic-mates measure 0.33-0.64 and unrelated answers 0.0-0.2
    #: (hand-written survey sets in tests/analysis/test_themes.py), so 0.30
    #: sits at the top of the unrelated band.
    edge_floor: float = 0.30
    #: A lone mention (a text whose community is smaller than a theme) joins
    #: the nearest theme when its cosine to the theme's normalised centroid
    #: reaches this, else it stays unassigned. The same number as
    #: ``edge_floor``: "as similar as two answers about one topic". Also the
    #: floor :func:`assign_to_themes` uses for new items across runs.
    attach_floor: float = 0.30
    #: Up to this many distinct texts the neighbours are exact: row blocks of
    #: similarities, 3,000 x 3,000 float32 in all, a second on 2 cores.
    max_direct: int = 3000
    #: Number of k-means micro-clusters above ``max_direct``. 2,000 gives ~30
    #: texts per micro-cluster at 60,000 texts: near-paraphrases, far finer than
    #: a theme, and a graph Louvain finishes in a second or two.
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
    #: Seeds k-means and Louvain, so the same input always gives the same themes.
    random_state: int = 0

    @classmethod
    def for_engine(cls, engine_name: str) -> ThemeParams:
        """The parameters that suit an embedder, by its ``name``."""
        if engine_name.startswith("tfidf"):
            return TFIDF_PARAMS
        return cls()

    def at_detail(self, detail: str) -> ThemeParams:
        """These parameters at one of :data:`DETAIL_LEVELS` (unknown names raise ``ValueError``)."""
        if detail not in DETAIL_LEVELS:
            raise ValueError(f"unknown detail {detail!r}; expected one of {sorted(DETAIL_LEVELS)}")
        return replace(self, resolution=self.resolution * DETAIL_LEVELS[detail])


#: The TF-IDF fallback sees only shared words and character n-grams, so its
#: cosines live on another scale: answers that share no word score ~0 whatever
#: they mean, one shared content word gives roughly 0.1-0.3. On banking77 the
#: mean cosine within an intent is 0.26-0.29 and to the nearest other intent
#: 0.12-0.15; on the hand-written sets within an idea 0.03-0.14, between ideas
#: at most 0.04. A link needs about one shared content word (0.10). A lone
#: mention joins a theme only with a clear word match to its centroid (0.30);
#: otherwise it stays unassigned.
TFIDF_PARAMS = replace(ThemeParams(), edge_floor=0.10, attach_floor=0.30)


@dataclass
class ThemeInfo:
    """What a consultant sees of a theme."""

    #: A short readable name: 2-5 words of the theme's own keywords.
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

    ``-1`` (unassigned) marks only a genuinely isolated item: no other item
    has the same text, its community holds fewer than ``min_theme_size``
    items, and its cosine to every theme's centroid is below ``attach_floor``.
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
    for the method; ``params`` defaults to :class:`ThemeParams` (MiniLM) at
    the standard detail.
    """
    params = params or ThemeParams()
    return cluster_texts_by_detail(texts, embeddings, params=params, resolutions={"": params.resolution})[""]


def cluster_texts_by_detail(
    texts: Sequence[str],
    embeddings: np.ndarray,
    *,
    params: ThemeParams | None = None,
    resolutions: dict[str, float] | None = None,
) -> dict[str, ThemeResult]:
    """One :class:`ThemeResult` per named resolution, all from one neighbour graph.

    ``resolutions`` defaults to every :data:`DETAIL_LEVELS` entry applied to
    ``params.resolution``. Building the graph is the costly part; each further
    resolution is only another Louvain pass.
    """
    params = params or ThemeParams()
    if resolutions is None:
        resolutions = {name: params.at_detail(name).resolution for name in DETAIL_LEVELS}
    n = len(texts)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    if embeddings.ndim != 2 or embeddings.shape[0] != n:
        raise ValueError(f"expected {n} embedding rows, got shape {embeddings.shape}")
    if n == 0:
        return {name: ThemeResult(labels=np.zeros(0, dtype=np.int64), themes={}) for name in resolutions}

    first_index, inverse, counts = _dedupe(texts)
    unique_vectors = embeddings[first_index]

    # Step 2: the nodes (distinct texts, or micro-clusters of them) and their links.
    if len(first_index) <= params.max_direct:
        unit_of_unique = np.arange(len(first_index))
        unit_vectors = unique_vectors
    else:
        unit_of_unique = _micro_clusters(unique_vectors, counts, params)
        n_units = int(unit_of_unique.max()) + 1
        membership = sparse.csr_matrix(
            (counts, (unit_of_unique, np.arange(len(counts)))), shape=(n_units, len(counts))
        )
        unit_vectors = np.asarray(membership @ unique_vectors, dtype=np.float32)
        unit_vectors /= np.maximum(np.linalg.norm(unit_vectors, axis=1, keepdims=True), 1e-12)
    links = _exact_neighbours(unit_vectors, params)
    graph = _graph(links)

    results: dict[str, ThemeResult] = {}
    for name, resolution in resolutions.items():
        # Step 3.
        group_of_unit = _louvain(graph, resolution, params.random_state)
        group_of_unit = _join_pieces(_settle_nodes(group_of_unit, links), links, unit_vectors)
        group_of_unique = group_of_unit[unit_of_unique]
        # Step 4.
        group_of_unique = _settle_lone_mentions(group_of_unique, unique_vectors, counts, params)
        labels = _renumber(group_of_unique[inverse])
        themes = describe_themes(texts, labels, embeddings, n_keywords=params.n_keywords)
        results[name] = ThemeResult(labels=labels, themes=themes)
    return results


def cluster_texts_by_question(
    texts: Sequence[str],
    questions: Sequence[str],
    embeddings: np.ndarray,
    *,
    params: ThemeParams | None = None,
    details: dict[str, str] | None = None,
) -> ThemeResult:
    """Themes over all questions together, each question's items cut at its own detail.

    ``details`` maps a question to one of :data:`DETAIL_LEVELS` (missing
    questions: :data:`DEFAULT_DETAIL`). With one detail for all this is
    :func:`cluster_texts`. Otherwise one graph is cut at each detail in use and
    every item takes its theme from its question's cut, so a question asked to
    be finer gets narrower themes while the others keep theirs; a theme that
    spans questions of the same detail still spans them.
    """
    params = params or ThemeParams()
    details = details or {}
    if len(questions) != len(texts):
        raise ValueError(f"expected {len(texts)} questions, got {len(questions)}")
    detail_of = [details.get(q, DEFAULT_DETAIL) for q in questions]
    used = sorted(set(detail_of))
    resolutions = {d: params.at_detail(d).resolution for d in used}
    results = cluster_texts_by_detail(texts, embeddings, params=params, resolutions=resolutions)
    if len(used) <= 1:
        return results[used[0]] if used else ThemeResult(labels=np.zeros(0, dtype=np.int64), themes={})
    combined = np.full(len(texts), UNASSIGNED, dtype=np.int64)
    offset = 0
    for detail in used:
        rows = np.array([d == detail for d in detail_of])
        cut = results[detail].labels
        combined[rows & (cut >= 0)] = cut[rows & (cut >= 0)] + offset
        offset += len(results[detail].themes)
    labels = _renumber(combined)
    return ThemeResult(labels=labels, themes=describe_themes(texts, labels, embeddings, n_keywords=params.n_keywords))


def grow_themes(
    texts: Sequence[str],
    embeddings: np.ndarray,
    labels: np.ndarray,
    fresh: np.ndarray,
    *,
    params: ThemeParams | None = None,
) -> tuple[np.ndarray, np.ndarray, ThemeResult]:
    """Place the ``fresh`` items among existing themes without moving any other item.

    ``labels`` holds each item's existing theme id (any non-negative ints;
    ``-1`` for none) and ``fresh`` marks the items to place: new since the
    themes were found, or unassigned then. The rule is the clustering's own: a
    theme is where an item's nearest neighbours are. Each fresh item looks at
    its ``params.neighbours`` most similar items (cosine at least
    ``edge_floor``, fresh ones included) and joins the theme that holds most
    of that similarity, unless more of it lies with other fresh items that
    have no theme yet -- then it is part of something new. Those are clustered
    among themselves (:func:`cluster_texts`) and form new themes; a lone one
    left over joins the nearest theme centroid above ``attach_floor`` or stays
    unassigned.

    Returns the labels (existing ids, ``-1`` for items of new themes and the
    unassigned), the row indices of the items clustered anew, and their
    :class:`ThemeResult` (its labels index those rows).
    """
    params = params or ThemeParams()
    embeddings = np.asarray(embeddings, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64).copy()
    fresh = np.asarray(fresh, dtype=bool)
    labels[fresh] = UNASSIGNED
    settled = labels.copy()  # what the votes read: only items that already had a theme
    open_rows = np.flatnonzero(fresh)
    k = min(params.neighbours, len(labels) - 1)
    if k > 0 and (settled >= 0).any():
        # Row blocks of fresh items x all items: never an items x items matrix.
        for start in range(0, len(open_rows), 512):
            rows = open_rows[start : start + 512]
            sims = embeddings[rows] @ embeddings.T
            sims[np.arange(len(rows)), rows] = -np.inf
            # The k best of each row (a partial sort: rows are 60,000 long), then in order.
            order = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            best = np.take_along_axis(sims, order, axis=1)
            ranked = np.argsort(-best, axis=1, kind="stable")
            order, best = np.take_along_axis(order, ranked, axis=1), np.take_along_axis(best, ranked, axis=1)
            for r, row in enumerate(rows):
                votes: dict[int, float] = {}
                for neighbour, similarity in zip(order[r], best[r]):
                    if similarity < params.edge_floor:
                        break
                    theme = int(settled[neighbour])
                    votes[theme] = votes.get(theme, 0.0) + float(similarity)
                if votes:
                    theme, weight = max(votes.items(), key=lambda item: (item[1], -item[0]))
                    if theme != UNASSIGNED:
                        labels[row] = theme
    rest = np.flatnonzero(fresh & (labels == UNASSIGNED))
    new = cluster_texts([texts[i] for i in rest], embeddings[rest], params=params)
    lone = rest[new.labels == UNASSIGNED]
    known = np.flatnonzero(settled >= 0)
    if len(lone) and len(known):
        ids, inverse = np.unique(settled[known], return_inverse=True)
        sums = np.zeros((len(ids), embeddings.shape[1]), dtype=np.float64)
        np.add.at(sums, inverse, embeddings[known])
        labels[lone] = assign_to_themes(embeddings[lone], dict(zip(ids.tolist(), sums)), params.attach_floor)
    return labels, rest, new


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


#: Rows per block of the exact neighbour search: 1,024 x 3,000 float32 is 12 MB.
_BLOCK = 1024


def _top_neighbours(
    sims: np.ndarray, columns: np.ndarray, rows: np.ndarray, params: ThemeParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``params.neighbours`` best columns of each row of ``sims`` at or above the floor, as COO triples."""
    k = min(params.neighbours, sims.shape[1])
    if k <= 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0, dtype=np.float32)
    # Ties are broken by column position, so the graph never depends on sort internals.
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    best = np.take_along_axis(sims, order, axis=1)
    keep = best >= params.edge_floor
    source = np.broadcast_to(rows[:, None], order.shape)[keep]
    return source, columns[order][keep], best[keep]


def _exact_neighbours(vectors: np.ndarray, params: ThemeParams) -> sparse.csr_matrix:
    """The neighbour links of every text, by exact search in row blocks."""
    n = len(vectors)
    columns = np.arange(n)
    parts = []
    for start in range(0, n, _BLOCK):
        rows = columns[start : start + _BLOCK]
        sims = vectors[rows] @ vectors.T
        sims[np.arange(len(rows)), rows] = -np.inf  # a text is not its own neighbour
        parts.append(_top_neighbours(sims, columns, rows, params))
    return _links(parts, n)


def _links(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n: int) -> sparse.csr_matrix:
    """Symmetric link weights: a link exists when either text has the other among its neighbours."""
    source = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    target = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    weight = np.concatenate([p[2] for p in parts]).astype(np.float64) if parts else np.zeros(0)
    directed = sparse.csr_matrix((weight, (source, target)), shape=(n, n))
    return directed.maximum(directed.T).tocsr()


def _graph(links: sparse.csr_matrix):
    """The networkx graph of the links, each undirected link once."""
    import networkx as nx

    upper = sparse.coo_matrix(sparse.triu(links, k=1))
    graph = nx.Graph()
    graph.add_nodes_from(range(links.shape[0]))
    graph.add_weighted_edges_from(zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist()))
    return graph


def _louvain(graph, resolution: float, seed: int) -> np.ndarray:
    """A community id per node of ``graph`` (Louvain modularity at ``resolution``)."""
    import networkx as nx

    communities = nx.community.louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    group = np.empty(graph.number_of_nodes(), dtype=np.int64)
    # Numbered by smallest member, so the ids never depend on set iteration order.
    for number, members in enumerate(sorted(communities, key=min)):
        group[list(members)] = number
    return group


#: Rounds of :func:`_settle_nodes`; each moves only nodes that gain, so it settles in a few.
_SETTLE_ROUNDS = 10


def _settle_nodes(group: np.ndarray, links: sparse.csr_matrix) -> np.ndarray:
    """Move each node into the community that holds most of its link weight, until none moves.

    Louvain moves nodes only before each aggregation, so a node can end in a
    community that later merged around it, with most of its links elsewhere
    (the flaw the Leiden algorithm's refinement step addresses). Every node
    moves at once per round, to the community its links favour (ties: stay,
    else the lowest id).
    """
    group = group.copy()
    n = len(group)
    for _ in range(_SETTLE_ROUNDS):
        ids, inverse = np.unique(group, return_inverse=True)
        membership = sparse.csr_matrix((np.ones(n), (np.arange(n), inverse)), shape=(n, len(ids)))
        pull = (links @ membership).toarray()
        own = pull[np.arange(n), inverse]
        best = pull.argmax(axis=1)
        move = pull[np.arange(n), best] > own
        if not move.any():
            break
        group[move] = ids[best[move]]
    return group


#: See :func:`_join_pieces`: a pair whose link weight across is at least this
#: share of the smaller inside weight...
_PIECE_LINKS = 1 / 3
#: ...and whose mean cosine across is at least this share of the lower mean
#: cosine within is one topic cut in two.
_PIECE_LIKENESS = 0.9


def _join_pieces(group: np.ndarray, links: sparse.csr_matrix, vectors: np.ndarray) -> np.ndarray:
    """Join communities that are pieces of one topic.

    Modularity's null model expects a community holding a large share of the
    graph (a survey with few, big topics) to have even more links inside than
    a uniform region of answers has, so Louvain may cut one topic in pieces.
    Two pieces are recognisable on both counts: they share much link weight
    (two halves of a topic about as much across as inside) and their items
    are as alike across as within (mean pairwise cosine). Two topics meet at
    a seam and are less alike across than within. Measured: pieces of one
    topic (synthetic clusters Louvain cut) 0.39-1.0 links and 0.95-0.99
    likeness; neighbouring banking77 intents at most 0.17 links (likeness
    0.40-0.85); two hand-written survey ideas that share wording ("staff",
    tests/analysis/test_themes.py) 0.52 links but 0.54 likeness. Joined
    strongest first, one pair at a time.
    """
    ids, inverse = np.unique(group, return_inverse=True)
    n = len(group)
    membership = sparse.csr_matrix((np.ones(n), (inverse, np.arange(n))), shape=(len(ids), n))
    weights = (membership @ links @ membership.T).toarray()  # a link inside a community counts twice
    sums = np.asarray(membership @ vectors, dtype=np.float64)
    sizes = np.bincount(inverse).astype(np.float64)
    norms = np.einsum("ij,ij->i", vectors, vectors).astype(np.float64)
    self_sims = np.bincount(inverse, weights=norms)
    while len(sizes) > 1:
        inside = np.diag(weights) / 2
        cross = weights - np.diag(inside * 2)
        pairs = sizes * (sizes - 1)
        within = np.where(pairs > 0, (np.einsum("ij,ij->i", sums, sums) - self_sims) / np.maximum(pairs, 1), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            linked = np.where(cross > 0, cross / np.minimum.outer(inside, inside), 0.0)
            alike = (sums @ sums.T) / np.outer(sizes, sizes) / np.minimum.outer(within, within)
        candidate = (linked >= _PIECE_LINKS) & (alike >= _PIECE_LIKENESS)
        np.fill_diagonal(candidate, False)
        if not candidate.any():
            break
        a, b = np.unravel_index(np.argmax(np.where(candidate, linked, -np.inf)), linked.shape)
        a, b = min(a, b), max(a, b)
        weights[a, :] += weights[b, :]
        weights[:, a] += weights[:, b]
        weights = np.delete(np.delete(weights, b, axis=0), b, axis=1)
        sums[a] += sums[b]
        sizes[a] += sizes[b]
        self_sims[a] += self_sims[b]
        sums, sizes, self_sims = np.delete(sums, b, axis=0), np.delete(sizes, b), np.delete(self_sims, b)
        inverse[inverse == b] = a
        inverse[inverse > b] -= 1
    return inverse.astype(np.int64)


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

    keywords, word_scores = _class_tfidf_keywords(texts, labels, theme_ids, n_keywords)
    themes: dict[int, ThemeInfo] = {}
    for tid in theme_ids:
        members = np.flatnonzero(labels == tid)
        centroid = embeddings[members].astype(np.float64).sum(axis=0)
        centroid /= max(np.linalg.norm(centroid), 1e-12)
        central = _most_central(texts, members, embeddings, centroid, _LABEL_CANDIDATES)
        themes[tid] = ThemeInfo(
            label="",
            keywords=keywords[tid],
            centroid=centroid.astype(np.float32),
            size=len(members),
            representative=central[:3],
        )
    _name_themes(themes, texts, word_scores)
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


@functools.lru_cache(maxsize=100_000)
def _doc_tokens(doc: str) -> tuple[tuple[str, str, str | None], ...]:
    """(key, surface word, key of the word before it or ``None``) per content word of one text.

    Cached: a run describes the same texts several times (all themes, then per
    question), and a worker's next run mostly the same texts again.
    """
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = (ENGLISH_STOP_WORDS - _TOPICAL_WORDS) | FILLER_WORDS
    tokens = []
    previous: str | None = None
    for word in _WORD_RE.findall(doc.lower()):
        if word in stop:
            previous = None  # a phrase is words side by side: "exchange rate", not "charged (a) fee"
            continue
        key = _stem(word)
        tokens.append((key, word, previous if previous != key else None))
        previous = key
    return tuple(tokens)


def _keyword_terms(docs: Sequence[str]) -> list[dict[str, str]]:
    """Per document its unigram and bigram keys, each with the words the document wrote it in."""
    doc_terms: list[dict[str, str]] = []
    for doc in docs:
        tokens = _doc_tokens(str(doc))
        terms: dict[str, str] = {}
        for n, (key, word, previous) in enumerate(tokens):
            terms.setdefault(key, word)
            if previous is not None:  # the token before is that word, right before this one
                terms.setdefault(f"{previous} {key}", f"{tokens[n - 1][1]} {word}")
        doc_terms.append(terms)
    return doc_terms


def _surface_forms(surface_counts: Counter[tuple[int, int, str]]) -> dict[tuple[int, int], str]:
    """
    How each theme writes each term: per (theme row, term column) the form its
    own items use most ("charges" in a theme of unexpected charges, though
    "charged" is commoner across themes); ties go to the shorter, then
    alphabetical. A label is so made of words its own items contain.
    """
    best: dict[tuple[int, int], tuple[int, int, str]] = {}
    for (row, col, form), count in surface_counts.items():
        rank = (-count, len(form), form)
        if (row, col) not in best or rank < best[(row, col)]:
            best[(row, col)] = rank
    return {cell: rank[2] for cell, rank in best.items()}


def _class_tfidf_keywords(
    texts: Sequence[str], labels: np.ndarray, theme_ids: list[int], n_keywords: int
) -> tuple[dict[int, list[str]], dict[int, dict[str, float]]]:
    """Per theme its keywords, best first, and the scores of its best single-word keys (for naming)."""
    assigned = np.flatnonzero(labels != UNASSIGNED)
    doc_terms = _keyword_terms([texts[i] for i in assigned])
    vocabulary = sorted({t for terms in doc_terms for t in terms})
    if not vocabulary:  # nothing but stop words and digits
        return {tid: [] for tid in theme_ids}, {tid: {} for tid in theme_ids}
    column = {t: j for j, t in enumerate(vocabulary)}
    row_of_theme = {tid: r for r, tid in enumerate(theme_ids)}

    # themes x terms: in how many of the theme's items each term occurs.
    rows, cols = [], []
    surface_counts: Counter[tuple[int, int, str]] = Counter()
    for i, terms in zip(assigned, doc_terms):
        r = row_of_theme[int(labels[i])]
        for t, form in terms.items():
            c = column[t]
            rows.append(r)
            cols.append(c)
            surface_counts[(r, c, form)] += 1
    display = _surface_forms(surface_counts)
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
    word_scores: dict[int, dict[str, float]] = {}
    for tid in theme_ids:
        r = row_of_theme[tid]
        start, end = per_theme.indptr[r], per_theme.indptr[r + 1]
        cols_r = per_theme.indices[start:end]
        freq = per_theme.data[start:end]
        keep = ~is_phrase[cols_r] | (freq >= max(2.0, _MIN_PHRASE_SHARE * theme_sizes[r]))
        cols_r, freq = cols_r[keep], freq[keep]
        scores = freq / max(words_per_theme[r], 1.0) * idf[cols_r]
        order = np.lexsort((names[cols_r], -scores))  # best first, ties alphabetical
        ranked = [display[(r, int(cols_r[o]))] for o in order]
        result[tid] = _pick_keywords(ranked, n_keywords)
        words = [o for o in order if not is_phrase[cols_r[o]]][:_SCORED_WORDS]
        word_scores[tid] = {vocabulary[cols_r[o]]: float(scores[o]) for o in words}
    return result, word_scores


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


#: A label is at most this many words: a name, not a quotation.
_MAX_LABEL_WORDS = 5
#: How many of the most central distinct items are kept for naming fallbacks.
_LABEL_CANDIDATES = 3


def _repeats(words: list[str], keyword: str) -> bool:
    """Whether ``keyword`` only repeats a word of ``words`` in another form ("delivered" / "delivery")."""
    return any(w[:5] == k[:5] for w in words for k in keyword.split())


def _label_words(keywords: list[str]) -> list[str]:
    """The best keywords joined until the label has two words, within five, no word said twice."""
    words: list[str] = []
    for keyword in keywords:
        terms = keyword.split()
        if len(words) + len(terms) > _MAX_LABEL_WORDS or _repeats(words, keyword):
            continue
        words.extend(terms)
        if len(words) >= 2:
            break
    return words


def _context_words(texts: Sequence[str], representative: list[int], words: list[str]) -> list[str]:
    """Content words (no stop or filler word) of the most central items that the label does not have yet."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    stop = (ENGLISH_STOP_WORDS - _TOPICAL_WORDS) | FILLER_WORDS
    found: list[str] = []
    for index in representative:
        for word in _WORD_RE.findall(str(texts[index]).lower()):
            if word not in stop and not _repeats(words + found, word):
                found.append(word)
    return found


#: Single-word keys per theme whose scores name it (its best keywords).
_SCORED_WORDS = 20
#: Splits an answer where a phrase cannot run on: sentence and clause punctuation.
_CLAUSE_RE = re.compile(r"[.,;:!?()\[\]{}\"“”/]+|\s[-–—]+\s")
#: A word as written, apostrophes kept ("didn't").
_SPAN_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def _span_labels(texts: Sequence[str], representative: list[int], scores: dict[str, float]) -> list[str]:
    """
    Labels cut from the theme's most central items, best first: every run of
    2-5 words within one clause that starts and ends with one of the theme's
    keywords ("unexpected charges", "slow to reply"), scored by the keywords
    it holds divided by the square root of its length, so a phrase as people
    wrote it names the theme rather than two keywords side by side.
    """
    if not scores:
        return []
    found: dict[str, float] = {}
    for index in representative:
        for clause in _CLAUSE_RE.split(str(texts[index])):
            words = _SPAN_WORD_RE.findall(clause)
            keys = [_stem(w.lower()) if _WORD_RE.fullmatch(w.lower()) else "" for w in words]
            for i in range(len(words)):
                if scores.get(keys[i], 0.0) <= 0:
                    continue
                for j in range(i + 1, min(i + _MAX_LABEL_WORDS, len(words))):
                    if scores.get(keys[j], 0.0) <= 0:
                        continue
                    label = " ".join(words[i : j + 1])
                    value = sum(scores.get(k, 0.0) for k in set(keys[i : j + 1])) / (j + 1 - i) ** 0.5
                    if value > found.get(label, 0.0):
                        found[label] = value
    return sorted(found, key=lambda label: (-found[label], len(label), label))


def _fallback_label(texts: Sequence[str], representative: list[int]) -> str:
    """The most central item's first words, for a theme without a keyword (all stop words or digits)."""
    for index in representative:
        words = [w for w in " ".join(str(texts[index]).split()).strip(" .!?;,:").split() if any(c.isalnum() for c in w)]
        if words:
            return " ".join(words[:_MAX_LABEL_WORDS])
    return "Other answers"


def _name_themes(themes: dict[int, ThemeInfo], texts: Sequence[str], word_scores: dict[int, dict[str, float]]) -> None:
    """Give every theme a 2-5 word label of its own keywords, no two alike.

    The label is a phrase of one of its most central items that starts and
    ends with its class-based TF-IDF keywords (``_span_labels``: "they hit
    me with unexpected charges on my bill" gives "unexpected charges on my
    bill" when "unexpected", "charges" and "bill" are keywords). Where no such phrase
    exists (one keyword per clause), it is the best keyword joined with the
    next one when it is a single word ("exchange rate", "card declined"):
    the terms that set this theme apart from the others, in the respondents'
    words, and never a stop word (the keyword list has none). Larger themes
    choose first; a later theme whose label is taken takes its next phrase,
    or adds its next keyword, and if every keyword is spent, its place
    ("... (2)").
    Consultants can rename themes, so this only has to be a good first name.
    """
    taken: set[str] = set()
    for tid in sorted(themes, key=lambda t: (-themes[t].size, t)):
        info = themes[tid]
        span = next(
            (label for label in _span_labels(texts, info.representative, word_scores.get(tid, {}))
             if label.casefold() not in taken),
            None,
        )
        if span is not None:
            taken.add(span.casefold())
            info.label = span[:1].upper() + span[1:]
            continue
        words = _label_words(info.keywords)
        if len(words) == 1:
            # One distinguishing word ("refund"): its most central item says what about it.
            words += _context_words(texts, info.representative, words)[:1]
        label = " ".join(words) if words else _fallback_label(texts, info.representative)
        if label.casefold() in taken:
            for extra in info.keywords:
                if len(label.split()) + len(extra.split()) > _MAX_LABEL_WORDS or _repeats(label.split(), extra):
                    continue
                candidate = f"{label} {extra}"
                if candidate.casefold() not in taken:
                    label = candidate
                    break
        base, number = label, 2
        while label.casefold() in taken:
            label = f"{base} ({number})"
            number += 1
        taken.add(label.casefold())
        info.label = label[:1].upper() + label[1:]
