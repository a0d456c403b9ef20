"""Credit assignment: only included ids, helpful/harmful, Q update, idempotent per run."""

from __future__ import annotations

import pytest
from _memory_helpers import make_store
from hypothesis import given
from hypothesis import strategies as st

from purpose_agent.memory import MemoryKind, MemoryStatus, compile_memories
from purpose_agent.memory.credit import updated_q

K, S = MemoryKind, MemoryStatus


@given(st.lists(st.floats(min_value=0, max_value=1), max_size=30))
def test_q_is_the_mean_with_one_prior_observation(outcomes):
    q, n = 0.5, 0
    for o in outcomes:
        q, n = updated_q(q, n, o), n + 1
    assert 0.0 <= q <= 1.0
    assert q == pytest.approx((0.5 + sum(outcomes)) / (len(outcomes) + 1))


def test_updated_q_clamps_outcome():
    assert updated_q(0.5, 0, 7.0) == 0.75 and updated_q(0.5, 0, -3.0) == 0.25


@pytest.fixture
def store(tmp_path):
    s = make_store(tmp_path / "m.db")
    yield s
    s.close()


def test_only_included_ids_get_credit(store):
    ids = [
        store.add(f"Lesson {w}: check the {w} value of the order", K.SKILL_CARD, status=S.PROMOTED)
        for w in ("alpha", "beta", "gamma", "delta")
    ]
    retrieved = store.retrieve("check value order", k=4)
    compiled = compile_memories(retrieved, budget_tokens=90)  # room for only some of them
    assert 0 < len(compiled.ids) < 4
    store.record_inclusion(compiled.ids, "run-1")
    # the caller passes every retrieved id by mistake: only the included ones are credited
    credited = store.credit([r.memory.id for r in retrieved], 1.0, "run-1")
    assert sorted(credited) == sorted(compiled.ids)
    for mid in ids:
        m = store.get(mid)
        if mid in compiled.ids:
            assert (m.helpful, m.harmful, m.times_included, m.q) == (1, 0, 1, 0.75)
        else:
            assert (m.helpful, m.harmful, m.times_included, m.q) == (0, 0, 0, 0.5)


def test_credit_without_recorded_inclusions_credits_exactly_the_ids(store):
    a = store.add("Use a lock file for concurrent writes", K.TOOL_POLICY, status=S.PROMOTED)
    b = store.add("Print progress every hundred items", K.SKILL_CARD, status=S.PROMOTED)
    assert store.credit([a], 0.2, "run-x") == [a]
    assert (store.get(a).harmful, store.get(a).helpful) == (1, 0)
    assert store.get(a).q == pytest.approx(0.35)
    assert store.get(b).q == 0.5 and store.get(b).harmful == 0


def test_credit_is_idempotent_per_run(store):
    a = store.add("Validate inputs at the boundary", K.SKILL_CARD, status=S.PROMOTED)
    store.record_inclusion([a], "run-1")
    store.record_inclusion([a], "run-1")  # retried
    assert store.credit([a], 1.0, "run-1") == [a]
    assert store.credit([a], 1.0, "run-1") == []  # retried credit does not double count
    assert store.credit([a, a], 0.0, "run-1") == []
    m = store.get(a)
    assert (m.helpful, m.harmful, m.times_included, m.q_n) == (1, 0, 1, 1)
    store.credit([a], 0.0, "run-2")
    m = store.get(a)
    assert (m.helpful, m.harmful, m.q_n) == (1, 1, 2) and m.q == pytest.approx(0.5)


def test_unknown_ids_are_ignored(store):
    assert store.credit(["mem_nope"], 1.0, "run-1") == []
