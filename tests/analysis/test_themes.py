"""Theme engine: embeddings in, themes out -- pure Python, no database.

The paraphrase sets below are written as survey answers: each idea said six or
seven ways with different words, and the response-speed set holds both
opinions of its topic ("fast response times" / "slow to reply"), which must
share a theme for contradictions to be found. MiniLM is loaded once per test
session (module-level cache); without the model those tests skip locally and
fail in CI, while the TF-IDF and pure-NumPy tests always run.
"""

from __future__ import annotations

import functools
import os
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import embeddings
from analysis.embeddings import (
    MiniLMEmbedder,
    TfidfEmbedder,
    get_embedder,
    normalise_text,
)
from analysis.themes import (
    DETAIL_LEVELS,
    ThemeParams,
    assign_to_themes,
    cluster_texts,
    cluster_texts_by_detail,
    cluster_texts_by_question,
    describe_themes,
    grow_themes,
)

BANKING77_DEV = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "banking77-dev.csv"

PARAPHRASES: dict[str, list[str]] = {
    # One topic, both opinions: the contradiction the analysis must find.
    "response speed": [
        "fast response times",
        "slow to reply",
        "they take ages to get back to you",
        "waited two weeks for an answer",
        "you answer our emails really quickly",
        "replies take far too long",
        "it takes days before anyone responds",
    ],
    "friendly staff": [
        "friendly knowledgeable staff",
        "the staff are always polite and helpful",
        "your people are warm and welcoming",
        "lovely employees who go out of their way",
        "courteous and pleasant team",
        "rude staff on the phone",
    ],
    "billing surprises": [
        "unexpected charges on my bill",
        "hidden fees on the invoice",
        "my bill was higher than I was quoted",
        "surprise extra costs on the monthly statement",
        "I was charged for things I never ordered",
        "the invoice had fees nobody told me about",
    ],
    "app problems": [
        "the app keeps crashing",
        "your mobile app freezes all the time",
        "the app is buggy and closes on its own",
        "the phone app stops working whenever I open it",
        "constant crashes in the app",
        "the app is really unstable",
    ],
    "passed between departments": [
        "passed from one department to another",
        "bounced around between departments",
        "I keep getting transferred from team to team",
        "every department sends me on to a different department",
        "shuffled between departments and nobody helps",
        "they just pass you around the departments",
    ],
    "network reliability": [
        "the network keeps dropping",
        "frequent network outages",
        "the connection is unreliable",
        "my internet goes down every evening",
        "constant connection drops",
        "the network is down again and again",
    ],
}
TEXTS = [text for texts in PARAPHRASES.values() for text in texts]
IDEAS = [idea for idea, texts in PARAPHRASES.items() for _ in texts]

# Words a consultant would expect among the top keywords of each idea's theme.
EXPECTED_KEYWORDS = {
    "response speed": {"reply", "replies", "response", "respond", "responds", "answer"},
    "friendly staff": {"staff", "employees", "people", "team", "friendly", "polite"},
    "billing surprises": {"bill", "invoice", "fees", "charges", "charged", "price", "prices"},
    "app problems": {"app"},
    "passed between departments": {"department", "departments"},
    "network reliability": {"network", "connection"},
}


def _running_in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes", "on"}


@functools.cache
def _minilm_or_reason() -> MiniLMEmbedder | str:
    """The default MiniLM engine, loaded once for the whole session (or why not)."""
    embedder = MiniLMEmbedder()
    try:
        embedder.load()
    except Exception as exc:  # noqa: BLE001 - reported as the skip reason
        return f"MiniLM cannot load here: {type(exc).__name__}: {exc}"
    return embedder


def minilm() -> MiniLMEmbedder:
    embedder = _minilm_or_reason()
    if isinstance(embedder, str):
        if _running_in_ci():
            pytest.fail(f"{embedder} (CI is set, so this is an error, not a skip)", pytrace=False)
        pytest.skip(embedder)
    return embedder


@functools.cache
def _paraphrase_vectors() -> np.ndarray:
    return minilm().embed(TEXTS)


def minilm_themes():
    return cluster_texts(TEXTS, _paraphrase_vectors(), params=ThemeParams.for_engine(minilm().name))


def majority(labels: np.ndarray, idea: str) -> tuple[int, float]:
    """The theme most of an idea's texts are in, and the share they make up."""
    own = [int(label) for label, i in zip(labels, IDEAS) if i == idea]
    theme, count = Counter(own).most_common(1)[0]
    return theme, count / len(own)


def blobs(n: int, centres: int, dim: int = 32, spread: float = 0.15, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around ``centres`` orthogonal random directions, and which centre each came from."""
    rng = np.random.default_rng(seed)
    directions = np.linalg.qr(rng.normal(size=(dim, dim)))[0][:centres]  # unrelated topics: cosine 0
    truth = rng.integers(0, centres, size=n)
    vectors = directions[truth] + rng.normal(scale=spread, size=(n, dim))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), truth


class ThemeTests:
    # --- MiniLM on the paraphrase sets ------------------------------------------------

    def test_paraphrases_of_one_idea_share_a_theme(self) -> None:
        labels = minilm_themes().labels
        for idea in PARAPHRASES:
            theme, share = majority(labels, idea)
            assert theme != -1, idea
            assert share >= 0.8, f"{idea}: only {share:.0%} in theme {theme}"

    def test_different_ideas_get_different_themes(self) -> None:
        labels = minilm_themes().labels
        themes = {idea: majority(labels, idea)[0] for idea in PARAPHRASES}
        assert len(set(themes.values())) == len(PARAPHRASES), themes

    def test_opposite_opinions_of_response_speed_share_one_theme(self) -> None:
        labels = dict(zip(TEXTS, minilm_themes().labels))
        together = {labels[t] for t in ("fast response times", "slow to reply", "waited two weeks for an answer")}
        assert len(together) == 1 and -1 not in together

    def test_labels_are_short_readable_phrases(self) -> None:
        from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

        result = minilm_themes()
        for theme_id, theme in result.themes.items():
            assert isinstance(theme.label, str)
            assert theme.label.strip() == theme.label and theme.label
            assert 2 <= len(theme.label.split()) <= 5 and "\n" not in theme.label, theme.label
            assert theme.label.casefold() not in ENGLISH_STOP_WORDS
            # Drawn from the theme's own items.
            own = " ".join(TEXTS[i] for i in np.flatnonzero(result.labels == theme_id)).casefold()
            assert all(word.casefold() in own for word in theme.label.split()), theme.label
        labels = [t.label.casefold() for t in result.themes.values()]
        assert len(labels) == len(set(labels)), labels

    def test_a_label_uses_the_words_its_own_items_use(self) -> None:
        # "charged" is the commoner form overall, but the second theme's items all say "charges".
        charged = [f"I was charged twice {when}" for when in ("today", "again", "this month", "last week", "in May")]
        charges = ["Unexpected charges on my bill", "unexpected charges again", "so many unexpected charges"]
        texts = charged + ["charged for nothing", "charged wrongly"] + charges
        vectors, _ = blobs(len(texts), centres=2, seed=3)
        labels = np.array([0] * 7 + [1] * 3)
        described = describe_themes(texts, labels, vectors)
        own = " ".join(charges).casefold().split()
        assert all(word in own for word in described[1].label.casefold().split()), described[1].label
        assert "charges" in described[1].label.casefold() and "charged" in described[0].label.casefold()

    def test_a_label_is_a_phrase_people_wrote_not_keywords_side_by_side(self) -> None:
        slow = ["They are slow to reply to emails", "So slow to reply, again", "slow to reply when I call",
                "Always slow to reply"]
        friendly = ["Friendly staff on the phone", "the phone staff are friendly", "friendly phone staff"]
        vectors, _ = blobs(len(slow) + len(friendly), centres=2, seed=3)
        described = describe_themes(slow + friendly, np.array([0] * len(slow) + [1] * len(friendly)), vectors)
        label = described[0].label.casefold()
        assert label == "slow to reply", described[0].label  # "to" kept: as written, not "Slow reply"
        assert any(label in text.casefold() for text in slow)

    def test_themes_with_the_same_words_get_different_labels(self) -> None:
        texts = ["app crashes", "the app crashes", "app crashes daily", "app crashes again", "app crashes often"]
        vectors, _ = blobs(5, centres=5, seed=3)
        described = describe_themes(texts, np.array([0, 0, 1, 1, 2]), vectors)
        labels = [info.label.casefold() for info in described.values()]
        assert len(set(labels)) == 3, labels
        assert all(1 <= len(label.split()) <= 5 for label in labels)

    def test_keywords_name_the_topic(self) -> None:
        result = minilm_themes()
        for idea, expected in EXPECTED_KEYWORDS.items():
            theme, _ = majority(result.labels, idea)
            keywords = result.themes[theme].keywords
            assert 3 <= len(keywords) <= 8, keywords
            assert expected & set(keywords[:5]), f"{idea}: {keywords}"
            assert not {"the", "and", "my", "is", "really"} & set(keywords), keywords

    def test_theme_descriptions_fit_their_members(self) -> None:
        result = minilm_themes()
        vectors = _paraphrase_vectors()
        for theme_id, theme in result.themes.items():
            members = np.flatnonzero(result.labels == theme_id)
            assert theme.size == len(members)
            assert np.isclose(np.linalg.norm(theme.centroid), 1.0, atol=1e-5)
            assert 1 <= len(theme.representative) <= 3
            assert set(theme.representative) <= set(members.tolist())
            # Representatives are the members closest to the centroid.
            sims = vectors[members] @ theme.centroid
            closest = sims.max()
            assert np.isclose(vectors[theme.representative[0]] @ theme.centroid, closest, atol=1e-5)

    def test_same_input_gives_the_same_themes(self) -> None:
        first, second = minilm_themes(), minilm_themes()
        assert np.array_equal(first.labels, second.labels)
        assert {k: (t.label, t.keywords) for k, t in first.themes.items()} == {
            k: (t.label, t.keywords) for k, t in second.themes.items()
        }

    def test_an_unrelated_one_off_remark_is_left_unassigned(self) -> None:
        texts = [*TEXTS, "the car park needs more trees"]
        result = cluster_texts(texts, minilm().embed(texts))
        assert result.labels[-1] == -1
        assert np.array_equal(result.labels[:-1] >= 0, np.ones(len(TEXTS), dtype=bool))

    def test_minilm_vectors_are_unit_float32_and_ignore_case_and_spacing(self) -> None:
        embedder = minilm()
        assert embedder.cacheable and embedder.name == "minilm-l6-v2-int8" and embedder.fallback_reason is None
        vectors = embedder.embed(["Slow to reply", "slow   to reply ", "frequent outages", ""])
        assert vectors.shape == (4, embedder.dim) and vectors.dtype == np.float32
        assert np.allclose(np.linalg.norm(vectors[:3], axis=1), 1.0, atol=1e-5)
        assert np.array_equal(vectors[0], vectors[1])
        assert not vectors[3].any()  # an empty answer is similar to nothing

    # --- Banking77 quality regression -------------------------------------------------

    def test_banking77_quality_does_not_regress(self) -> None:
        if not BANKING77_DEV.exists():
            pytest.skip(f"{BANKING77_DEV} is missing")
        import pandas as pd
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        frame = pd.read_csv(BANKING77_DEV)
        texts = frame["text"].tolist()
        result = cluster_texts(texts, minilm().embed(texts))
        # Measured: ARI 0.639, NMI 0.857, 34 themes for 39 intents, 0.2% unassigned
        # (bench/themes; the issue's bar is ARI 0.61, NMI 0.84, <= 78 themes, <= 5%).
        assert adjusted_rand_score(frame["intent"], result.labels) >= 0.61
        assert normalized_mutual_info_score(frame["intent"], result.labels) >= 0.84
        assert 20 <= len(result.themes) <= 78
        assert (result.labels == -1).mean() <= 0.05

    def test_banking77_quality_of_the_tfidf_fallback_does_not_regress(self) -> None:
        if not BANKING77_DEV.exists():
            pytest.skip(f"{BANKING77_DEV} is missing")
        import pandas as pd
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        frame = pd.read_csv(BANKING77_DEV)
        texts = frame["text"].tolist()
        embedder = TfidfEmbedder()
        result = cluster_texts(texts, embedder.embed(texts), params=ThemeParams.for_engine(embedder.name))
        # Measured: ARI 0.418, NMI 0.716, 37 themes.
        assert adjusted_rand_score(frame["intent"], result.labels) >= 0.36
        assert normalized_mutual_info_score(frame["intent"], result.labels) >= 0.66

    # --- TF-IDF fallback --------------------------------------------------------------

    def test_tfidf_fallback_gives_sane_themes(self) -> None:
        embedder = TfidfEmbedder()
        vectors = embedder.embed(TEXTS)
        result = cluster_texts(TEXTS, vectors, params=ThemeParams.for_engine(embedder.name))
        # Word overlap cannot see that "slow to reply" and "waited two weeks" agree,
        # so the bar is lower: sets whose answers share words hold together...
        for idea in ("passed between departments", "app problems", "network reliability"):
            theme, share = majority(result.labels, idea)
            assert theme != -1 and share >= 0.5, (idea, share)
        # ...and no sizeable theme mixes ideas.
        for theme_id, theme in result.themes.items():
            ideas = Counter(i for label, i in zip(result.labels, IDEAS) if label == theme_id)
            if theme.size >= 3:
                assert ideas.most_common(1)[0][1] / theme.size >= 2 / 3, ideas
            assert theme.label and theme.keywords

    def test_tfidf_vectors_are_deterministic_unit_rows_and_not_cacheable(self) -> None:
        embedder = TfidfEmbedder()
        first, second = embedder.embed(TEXTS), embedder.embed(TEXTS)
        assert not embedder.cacheable
        assert first.shape == (len(TEXTS), embedder.dim) and first.dtype == np.float32
        assert np.array_equal(first, second)
        assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
        assert embedder.embed([]).shape == (0, embedder.dim)
        assert np.allclose(np.linalg.norm(embedder.embed(["only one answer"]), axis=1), 1.0, atol=1e-5)
        assert not embedder.embed(["the and of", ""]).any()  # nothing but stop words

    # --- Choosing the engine ----------------------------------------------------------

    def test_get_embedder_falls_back_to_tfidf_when_the_environment_says_so(self, monkeypatch) -> None:
        monkeypatch.setenv("GAPSURVEY_THEME_ENGINE", "tfidf")
        embedder = get_embedder()
        assert isinstance(embedder, TfidfEmbedder)
        assert "GAPSURVEY_THEME_ENGINE" in embedder.fallback_reason
        assert not embedder.cacheable

    def test_get_embedder_records_why_minilm_could_not_load(self, monkeypatch, caplog) -> None:
        def broken(variant: str):
            raise OSError(f"no model files for {variant}")

        monkeypatch.delenv("GAPSURVEY_THEME_ENGINE", raising=False)
        monkeypatch.setattr(embeddings, "_load_minilm", broken)
        monkeypatch.setattr(embeddings, "_load_failures", {})
        embedder = get_embedder("minilm")
        assert isinstance(embedder, TfidfEmbedder)
        assert "OSError: no model files for int8" in embedder.fallback_reason
        assert "OSError: no model files for fp32" in embedder.fallback_reason
        # Logged once; a second call reuses the recorded failure without retrying.
        warnings = [r for r in caplog.records if r.name == "analysis.embeddings" and r.levelname == "WARNING"]
        assert len(warnings) == 2
        again = get_embedder("minilm")
        assert again.fallback_reason == embedder.fallback_reason
        assert len([r for r in caplog.records if r.name == "analysis.embeddings"]) == 2

    def test_get_embedder_prefers_minilm_int8(self, monkeypatch) -> None:
        minilm()  # skips without the model
        monkeypatch.delenv("GAPSURVEY_THEME_ENGINE", raising=False)
        embedder = get_embedder()
        assert embedder.name == "minilm-l6-v2-int8" and embedder.cacheable and embedder.fallback_reason is None

    # --- Pure NumPy: clustering mechanics ---------------------------------------------

    def test_assign_to_themes_picks_the_nearest_centroid_above_the_floor(self) -> None:
        centroids = {7: np.array([1.0, 0.0]), 9: np.array([0.0, 2.0])}  # normalised inside
        vectors = np.array([[0.9, 0.1], [0.2, 0.8], [-1.0, 0.0], [0.6, 0.6]], dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        assert assign_to_themes(vectors, centroids, floor=0.5).tolist() == [7, 9, -1, 7]
        assert assign_to_themes(vectors, centroids, floor=0.99).tolist() == [7, -1, -1, -1]
        assert assign_to_themes(vectors, {}, floor=0.5).tolist() == [-1, -1, -1, -1]
        assert assign_to_themes(np.zeros((0, 2)), centroids, floor=0.5).shape == (0,)

    def test_nothing_in_nothing_out(self) -> None:
        result = cluster_texts([], np.zeros((0, 8), dtype=np.float32))
        assert result.labels.shape == (0,) and result.themes == {}
        with pytest.raises(ValueError):
            cluster_texts(["a", "b"], np.zeros((3, 8), dtype=np.float32))

    def test_repeated_answers_count_as_separate_mentions(self) -> None:
        directions = np.eye(3, 8, dtype=np.float32)  # three unrelated meanings
        texts = ["Good value", "good  value", "something else entirely", "a third thing"]
        result = cluster_texts(texts, directions[[0, 0, 1, 2]])
        # The same answer twice is a theme of two mentions; the two one-offs
        # resemble nothing, so they stay unassigned.
        assert result.labels[0] == result.labels[1] != -1
        assert result.themes[int(result.labels[0])].size == 2
        assert result.labels[2:].tolist() == [-1, -1]

    def test_the_number_of_themes_follows_the_data(self) -> None:
        for centres in (3, 12):
            vectors, truth = blobs(600, centres=centres, seed=centres)
            result = cluster_texts([f"answer {i}" for i in range(600)], vectors)
            assert len(result.themes) == centres
            assert _same_partition(result.labels, truth)

    def test_many_texts_go_through_micro_clusters_and_stay_right(self) -> None:
        # 5,000 distinct texts > max_direct, so the k-means micro-cluster path runs.
        vectors, truth = blobs(5000, centres=25, dim=64, spread=0.12, seed=1)
        texts = [f"synthetic answer number {i}" for i in range(5000)]
        params = ThemeParams()
        assert len(texts) > params.max_direct
        result = cluster_texts(texts, vectors, params=params)
        assert result.labels.shape == (5000,)
        assert len(result.themes) == 25
        assert _same_partition(result.labels, truth)
        assert sum(t.size for t in result.themes.values()) == int((result.labels >= 0).sum())

    def test_a_big_topic_is_one_theme_even_among_few(self) -> None:
        # Few, big topics: modularity alone may cut each in pieces; the engine must not.
        vectors, truth = blobs(900, centres=2, dim=32, spread=0.2, seed=4)
        result = cluster_texts([f"answer {i}" for i in range(900)], vectors)
        assert len(result.themes) == 2 and _same_partition(result.labels, truth)

    def test_finer_detail_gives_more_themes_and_coarser_fewer(self) -> None:
        if not BANKING77_DEV.exists():
            pytest.skip(f"{BANKING77_DEV} is missing")
        import pandas as pd

        texts = pd.read_csv(BANKING77_DEV)["text"].tolist()[:400]
        results = cluster_texts_by_detail(texts, minilm().embed(texts))
        assert set(results) == set(DETAIL_LEVELS)
        counts = {detail: len(result.themes) for detail, result in results.items()}
        assert counts["coarser"] < counts["standard"] < counts["finer"], counts
        standard = cluster_texts(texts, minilm().embed(texts))
        assert np.array_equal(standard.labels, results["standard"].labels)

    def test_each_question_is_cut_at_its_own_detail(self) -> None:
        vectors, truth = blobs(300, centres=6, dim=32, spread=0.15, seed=9)
        texts = [f"answer {i}" for i in range(300)]
        questions = ["strengths" if i % 2 else "improvements" for i in range(300)]
        same = cluster_texts_by_question(texts, questions, vectors, details={})
        assert np.array_equal(same.labels, cluster_texts(texts, vectors).labels)
        mixed = cluster_texts_by_question(texts, questions, vectors, details={"strengths": "finer"})
        improvements = np.array([q == "improvements" for q in questions])
        # The other question keeps its themes (ids renumbered, partition equal)...
        from sklearn.metrics import adjusted_rand_score

        assert adjusted_rand_score(same.labels[improvements], mixed.labels[improvements]) == 1.0
        # ...and no theme mixes a finer question's items with a standard one's.
        for theme_id in mixed.themes:
            members = mixed.labels == theme_id
            assert members[improvements].all() or not members[improvements].any() or not members[~improvements].any()
        with pytest.raises(ValueError):
            ThemeParams().at_detail("tiny")

    # --- Growing themes with new items ------------------------------------------------

    def test_growing_moves_no_existing_item(self) -> None:
        vectors, truth = blobs(400, centres=4, dim=32, spread=0.15, seed=11)
        texts = [f"answer {i}" for i in range(400)]
        start = cluster_texts(texts[:380], vectors[:380])
        labels = np.concatenate([start.labels + 100, np.full(20, -1)])  # any ids
        labels[:380][start.labels < 0] = -1
        fresh = np.arange(400) >= 380
        grown, rest, new = grow_themes(texts, vectors, labels, fresh)
        assert np.array_equal(grown[:380], labels[:380])
        # The new items join the theme of their own topic.
        for i in range(380, 400):
            same_topic = np.flatnonzero(truth[:380] == truth[i])
            assert grown[i] == np.bincount(labels[same_topic][labels[same_topic] >= 0]).argmax()
        assert len(rest) == 0 and new.themes == {}

    def test_a_new_topic_among_new_items_forms_a_new_theme(self) -> None:
        vectors, truth = blobs(300, centres=4, dim=32, spread=0.15, seed=12)
        texts = [f"answer {i}" for i in range(300)]
        old = truth < 3
        first = cluster_texts([t for t, o in zip(texts, old) if o], vectors[old])
        labels = np.full(300, -1)
        labels[old] = first.labels
        grown, rest, new = grow_themes(texts, vectors, labels, ~old)
        assert np.array_equal(grown[old], labels[old])
        assert set(rest.tolist()) == set(np.flatnonzero(~old).tolist())
        assert len(new.themes) == 1 and (new.labels == 0).all()

    def test_describe_themes_uses_the_ids_it_is_given(self) -> None:
        texts = ["unexpected charges on my bill", "my bill went up", "the app keeps crashing", "app crashes", "n/a"]
        vectors, _ = blobs(5, centres=5, seed=5)
        described = describe_themes(texts, np.array([41, 41, 7, 7, -1]), vectors)
        assert sorted(described) == [7, 41]
        assert described[41].keywords[0] == "bill" and described[7].keywords[0] in {"app", "crashes"}
        assert described[41].size == 2 and described[41].representative[0] in (0, 1)

    def test_normalise_text_folds_case_and_whitespace(self) -> None:
        assert normalise_text("  Slow\tto   REPLY \n") == "slow to reply"


def _same_partition(labels: np.ndarray, truth: np.ndarray) -> bool:
    from sklearn.metrics import adjusted_rand_score

    return labels.min() >= 0 and adjusted_rand_score(truth, labels) == 1.0


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    centres=st.integers(min_value=1, max_value=6),
    spread=st.floats(min_value=0.0, max_value=1.5),
    repeats=st.integers(min_value=0, max_value=10),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_theme_results_are_always_consistent(n: int, centres: int, spread: float, repeats: int, seed: int) -> None:
    """Whatever the data: one label per text, every theme described, sizes add up."""
    vectors, _ = blobs(n, centres=centres, dim=16, spread=spread, seed=seed)
    texts = [f"text {i}" for i in range(n)]
    # Some answers repeated word for word (in other case/spacing) by other respondents.
    rng = np.random.default_rng(seed)
    copies = rng.integers(0, n, size=repeats)
    texts += [f"  TEXT {i} " for i in copies]
    vectors = np.vstack([vectors, vectors[copies]])
    result = cluster_texts(texts, vectors)

    labels = result.labels
    assert labels.shape == (len(texts),)
    assert set(labels.tolist()) - {-1} == set(result.themes)
    assert sum(t.size for t in result.themes.values()) == int((labels >= 0).sum())
    for theme_id, theme in result.themes.items():
        assert theme.size >= ThemeParams().min_theme_size
        assert all(labels[i] == theme_id for i in theme.representative)
        assert theme.label
    for i, copy in enumerate(copies):
        assert labels[n + i] == labels[copy]  # the same answer always shares its theme
