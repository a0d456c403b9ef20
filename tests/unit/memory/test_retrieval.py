"""Retrieval: FTS query sanitising, BM25 recall, Q re-rank, filters, Mixture-of-Heuristics."""

from __future__ import annotations

import pytest
from _memory_helpers import make_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purpose_agent.memory import MemoryKind, MemoryStatus, fts_query

K, S = MemoryKind, MemoryStatus


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path / "m.db")
    yield s
    s.close()


def _promoted(store, text, kind=K.SKILL_CARD, **kw):
    return store.add(text, kind, status=S.PROMOTED, **kw)


def test_fts_query_quotes_every_term():
    q = fts_query('find "quoted" AND NOT x* OR NEAR(a b) col:val ^start -minus')
    assert q is not None
    terms = q.split(" OR ")
    assert all(t.startswith('"') and t.endswith('"') for t in terms)
    assert '"and"' not in terms  # stopword dropped
    assert {'"quoted"', '"near"', '"col"', '"val"', '"start"', '"minus"', '"find"'} <= set(terms)
    assert fts_query("   ") is None and fts_query("!!! ??? ...") is None
    assert fts_query("the a of") is not None  # only stopwords: keep them rather than nothing


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "'",
        "AND",
        "OR NOT",
        "NEAR(",
        "a:b",
        "*",
        "^",
        "(((",
        "x - y",
        "naïve café",
        "日本語の検索",
        "emoji 🚀 test",
        "\x00\x01",
        "ｆｕｌｌｗｉｄｔｈ",
        "Ünïcödé dïäcritics",
        "sql'; DROP TABLE memories; --",
    ],
)
def test_hostile_queries_never_break_match(store, query):
    _promoted(store, "Search the index before scanning every row")
    assert isinstance(store.retrieve(query), list)
    assert store.count() == 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(max_size=60))
def test_any_text_is_a_valid_query(store, text):
    if store.count() == 0:
        _promoted(store, "Quote user text before matching it")
    store.retrieve(text)
    store.retrieve_mixture(text)


def test_unicode_and_diacritics_match(store):
    a = _promoted(store, "Le café naïve doit être servi chaud")
    b = _promoted(store, "日本語 の テキスト を 検索 する")
    assert [r.memory.id for r in store.retrieve("cafe naive")] == [a]
    assert [r.memory.id for r in store.retrieve("検索")] == [b]


def test_stemming_and_relevance_order(store):
    a = _promoted(store, "Sort files by size before copying files to the backup drive")
    b = _promoted(store, "Copy the newest file first")
    _promoted(store, "Ask the user for a deadline")
    res = store.retrieve("sorting the files by size", k=5)
    assert [r.memory.id for r in res] == [a, b]
    assert res[0].relevance == 1.0 and 0 < res[1].relevance < 1.0


def test_q_reranks_equally_relevant_memories(store):
    low = _promoted(store, "Use the calculator for long multiplication of prices")
    high = _promoted(store, "Use the calculator for long multiplication of totals")
    for i in range(5):
        store.credit([high], 1.0, f"good-{i}")
        store.credit([low], 0.0, f"bad-{i}")
    res = store.retrieve("calculator long multiplication", k=2)
    assert [r.memory.id for r in res] == [high, low]
    assert res[0].score > res[1].score
    # with the Q weight off, order falls back to pure relevance (equal) then trust/id
    flat = store.retrieve("calculator long multiplication", k=2, q_weight=0.0)
    assert flat[0].score == flat[1].score


def test_q_does_not_rescue_an_irrelevant_memory(store):
    rel = _promoted(store, "Unlock the door with the brass key from the kitchen")
    other = _promoted(store, "Unlock the chest")
    for i in range(10):
        store.credit([other], 1.0, f"r{i}")
    res = store.retrieve("unlock door brass key kitchen", k=2, q_weight=0.3)
    assert res[0].memory.id == rel


def test_only_promoted_by_default_and_filters(store):
    p = _promoted(store, "Write tests for every parser change")
    c = store.add("Write tests for every config change", K.SKILL_CARD)
    r = store.add("Write tests only at the end of a project", K.SKILL_CARD)
    store.reject(r, "harmful")
    t = _promoted(store, "Write tests with the python tool", K.TOOL_POLICY)
    assert {x.memory.id for x in store.retrieve("write tests")} == {p, t}
    assert {x.memory.id for x in store.retrieve("write tests", kinds=["tool_policy"])} == {t}
    assert {x.memory.id for x in store.retrieve("write tests", statuses=[S.CANDIDATE])} == {c}
    assert r not in {x.memory.id for x in store.retrieve("write tests end project", k=10)}
    assert {x.memory.id for x in store.retrieve("write tests", exclude_ids=[p])} == {t}


def test_scope_filters(store):
    g = _promoted(store, "Log every deployment step")
    coder = _promoted(store, "Log every compile step", scope="agent", scope_key="coder")
    tester = _promoted(store, "Log every test step", scope="agent", scope_key="tester")
    ids = lambda **kw: {x.memory.id for x in store.retrieve("log every step", k=10, **kw)}  # noqa: E731
    assert ids() == {g, coder, tester}
    assert ids(scope_key="coder") == {g, coder}
    assert ids(scope="agent") == {coder, tester}
    assert ids(scope="agent", scope_key="tester") == {tester}


def test_mixture_of_heuristics_shape(store):
    prefs = [
        _promoted(store, f"Preference number {i}: keep answers short", K.USER_PREFERENCE, made_by="human")
        for i in range(4)
    ]
    store.credit([prefs[3]], 1.0, "r1")
    contract = _promoted(store, "The purpose: produce a correct invoice total", K.PURPOSE_CONTRACT)
    routed = [
        _promoted(store, f"Invoice rule {w}: add the tax to the invoice total")
        for w in ("alpha", "beta", "gamma", "delta", "epsilon", "zeta")
    ]
    res = store.retrieve_mixture("invoice total tax", shared=2, routed=4)
    assert len(res) == 6
    shared = [r for r in res if r.route == "shared"]
    assert [r.memory.id for r in shared] == [prefs[3], prefs[0]]  # highest trust × Q first
    routed_ids = [r.memory.id for r in res if r.route == "routed"]
    assert len(routed_ids) == 4 and set(routed_ids) <= {*routed, contract, *prefs}
    assert len({r.memory.id for r in res}) == 6  # no memory twice
    # the prompt does not grow with the library
    for i in range(40):
        _promoted(store, f"Invoice note {i}: invoice totals and tax number {i}")
    assert len(store.retrieve_mixture("invoice total tax", shared=2, routed=4)) == 6
    assert [r.route for r in store.retrieve_mixture("nothing matches xyzzy", shared=2, routed=4)] == [
        "shared"
    ] * 2
