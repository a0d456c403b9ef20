"""The shared lexical retrieval of Tool RAG and the vault: ``tokenize`` and ``BM25``."""

from __future__ import annotations

import math

import pytest

from purpose_agent._text import BM25, STOPWORDS, tokenize


def tiny() -> BM25[str]:
    """Three documents: lengths 2, 1 and 3 words, so avgdl = 2."""
    index: BM25[str] = BM25()
    index.add("a", ["apple", "banana"])
    index.add("b", ["apple"])
    index.add("c", ["cherry", "cherry", "date"])
    return index


# ---------------------------------------------------------------------- BM25
def test_scores_match_the_hand_computed_okapi_values() -> None:
    index = tiny()
    # cherry: N = 3, n = 1, idf = log(1 + 2.5 / 1.5) = log(8/3); in c tf = 2, |c| = 3:
    # 2 * 2.2 / (2 + 1.2 * (0.25 + 0.75 * 3 / 2)) = 4.4 / 3.65
    assert index.scores(["cherry"]) == {"c": pytest.approx(math.log(8 / 3) * 4.4 / 3.65)}
    assert index.scores(["cherry"])["c"] == pytest.approx(1.182370, abs=1e-6)
    # apple: n = 2, idf = log(1 + 1.5 / 2.5) = log(1.6); tf = 1 in a (|a| = 2 = avgdl: factor 1)
    # and in b (|b| = 1: 2.2 / (1 + 1.2 * (0.25 + 0.375)) = 2.2 / 1.75)
    apple = index.scores(["apple"])
    assert apple == {"a": pytest.approx(math.log(1.6)), "b": pytest.approx(math.log(1.6) * 2.2 / 1.75)}
    # the words of a query add up: banana (n = 1, factor 1 in a) is log(8/3)
    both = index.scores(["apple", "banana"])
    assert both["a"] == pytest.approx(math.log(1.6) + math.log(8 / 3))
    assert both["b"] == pytest.approx(apple["b"]) and "c" not in both


def test_k1_and_b_are_the_index_parameters() -> None:
    index: BM25[str] = BM25(k1=2.0, b=0.0)  # b = 0: no length normalisation
    index.add("short", ["x"])
    index.add("long", ["x", "y", "z", "w"])
    scores = index.scores(["x"])
    assert scores["short"] == pytest.approx(scores["long"]) == pytest.approx(math.log(1 + 0.5 / 2.5))


def test_a_word_in_every_document_still_counts() -> None:
    """The idf log(1 + (N - n + 0.5)/(n + 0.5)) stays positive where log((N - n + 0.5)/(n + 0.5))
    would be negative (here log(0.5 / 2.5)) and rank by length alone."""
    index: BM25[int] = BM25()
    index.add(1, ["invoice", "payment"])
    index.add(2, ["payment", "terms"])
    scores = index.scores(["payment"])
    assert set(scores) == {1, 2} and all(s > 0 for s in scores.values())


def test_empty_query_and_unknown_words_score_nothing() -> None:
    index = tiny()
    assert index.scores([]) == {} and index.top([], 5) == []
    assert index.scores(["durian"]) == {} and index.top(["durian", "fig"], 5) == []
    assert index.scores(["cherry", "durian"]) == index.scores(["cherry"])  # an unknown word adds 0


def test_a_repeated_query_word_counts_once() -> None:
    index = tiny()
    assert index.scores(["apple", "apple", "apple"]) == index.scores(["apple"])
    assert index.scores(iter(["cherry", "apple"])) == index.scores(["apple", "cherry"])


def test_an_empty_index() -> None:
    index: BM25[str] = BM25()
    assert len(index) == 0 and "a" not in index
    assert index.scores(["apple"]) == {} and index.top(["apple"], 3) == []
    index.remove("a")  # unknown keys are ignored
    index.add("empty", [])  # a document without words: counted, never matched
    assert len(index) == 1 and index.scores(["apple"]) == {}


def test_top_is_best_first_and_ties_keep_the_order_of_adding() -> None:
    index: BM25[str] = BM25()
    for key in ("d3", "d1", "d2"):
        index.add(key, ["same", "words"])
    index.add("best", ["rare", "same", "words"])
    assert [key for key, _ in index.top(["rare", "same"], 10)] == ["best", "d3", "d1", "d2"]
    assert [key for key, _ in index.top(["same"], 2)] == ["d3", "d1"]
    assert index.top(["same"], 0) == []
    top = index.top(["rare"], 1)
    assert top == [("best", pytest.approx(index.scores(["rare"])["best"]))]


def test_adding_a_key_again_replaces_and_remove_forgets_it() -> None:
    index = tiny()
    index.add("b", ["cherry"])  # replaces ["apple"]
    fresh: BM25[str] = BM25()
    fresh.add("a", ["apple", "banana"])
    fresh.add("c", ["cherry", "cherry", "date"])
    fresh.add("b", ["cherry"])
    assert len(index) == 3
    for query in (["apple"], ["cherry"], ["date", "banana"]):
        assert index.scores(query) == pytest.approx(fresh.scores(query))
    index.remove("c")
    assert "c" not in index and len(index) == 2
    assert index.scores(["date"]) == {}
    # now N = 2, avgdl = 1.5: idf = log(1 + 1.5 / 1.5) = log(2), 2.2 / (1 + 1.2 * (0.25 + 0.75 / 1.5))
    assert index.scores(["cherry"]) == {"b": pytest.approx(math.log(2) * 2.2 / 1.9)}


# ---------------------------------------------------------------------- tokenize
@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("read_file", ["read", "file"]),
        ("readFile ReadFile", ["read", "file", "read", "file"]),
        ("Reading the documents", ["read", "docume"]),  # -ing cut, "the" dropped, 6 letters kept
        ("calculate calculator", ["calcul", "calcul"]),
        ("boxes uses is", ["box", "use"]),  # a suffix is cut only when three letters stay
        ("log10 w10 sha256 2026-12-01", ["log10", "w10", "sha256", "2026", "12", "01"]),
        ("order 12345678", ["order", "12345678"]),  # numbers are not stemmed
        ("Café naïve ﬁle", ["cafe", "naive", "file"]),  # accents and ligatures folded
        ("Straße 日本語のテキスト", ["straße", "日本語のテキスト"]),  # non-English words kept whole
        ("'hello', (world)!", ["hello", "world"]),
        ("", []),
        ("the and of", []),
    ],
)
def test_tokenize(text: str, tokens: list[str]) -> None:
    assert tokenize(text) == tokens


def test_tokenize_drops_every_stopword() -> None:
    assert tokenize(" ".join(sorted(STOPWORDS)).upper()) == []
