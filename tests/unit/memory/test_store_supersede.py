"""MemoryStore: dedupe modes, supersede with meta and provenance, staged supersession."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from _memory_helpers import make_store

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ReadOnlyModeError
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore

K, S = MemoryKind, MemoryStatus
BASE = "Always read the file {path} before you edit it"
VARIANT = BASE + " carefully"  # token Jaccard 0.9 with BASE: a near-duplicate


def _sorts(store: MemoryStore, *statuses: S) -> list[str]:
    """One memory per status given, in that status (sources ra, rb, …)."""
    names = "abcdef"[: len(statuses)]
    ids = [
        store.add(f"Sort the {x} list before searching it", K.SKILL_CARD, sources=[f"r{x}"]) for x in names
    ]
    for mid, st in zip(ids, statuses, strict=True):
        if st is S.PROMOTED:
            store.promote(mid, "test")
        elif st is not S.CANDIDATE:
            store.set_status(mid, st, "test")
    return ids


def _state(store: MemoryStore, mid: str) -> tuple[object, ...]:
    m = store.get(mid)
    return (m.status, m.superseded_by, m.merges, m.sources, len(store.history(mid)))


def _before_next_tx(
    monkeypatch: pytest.MonkeyPatch, store: MemoryStore, action: Callable[[], object]
) -> None:
    """Run ``action`` (another connection's write) just before ``store``'s next BEGIN IMMEDIATE."""
    original = store._tx
    pending = [action]

    @contextmanager
    def hooked() -> Iterator[sqlite3.Connection]:
        while pending:
            pending.pop()()
        with original() as c:
            yield c

    monkeypatch.setattr(store, "_tx", hooked)


# ------------------------------------------------------------------ dedupe
def test_dedupe_near_exact_and_none(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        a = store.add(BASE, K.SKILL_CARD, sources=["r1"])
        assert store.add(VARIANT, K.SKILL_CARD, sources=["r2"]) == a  # the default: near
        exact_variant = store.add(VARIANT, K.SKILL_CARD, sources=["r3"], dedupe="exact")
        assert exact_variant != a and store.get(exact_variant).sources == ("r3",)
        same = store.add(BASE.upper() + "!", K.SKILL_CARD, sources=["r4"], dedupe="exact")  # same words
        assert same == a and store.get(a).merges == 2 and store.get(a).sources == ("r1", "r2", "r4")
        apart = store.add(BASE, K.SKILL_CARD, sources=["r5"], meta={"x": 1}, dedupe="none")
        assert apart not in (a, exact_variant) and store.get(apart).meta == {"x": 1}
        assert store.get(a).merges == 2 and store.count() == 3


def test_unknown_dedupe_raises_and_writes_nothing(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        with pytest.raises(ValueError, match="unknown dedupe"):
            store.add(BASE, K.SKILL_CARD, dedupe="fuzzy")  # type: ignore[arg-type]
        assert store.count() == 0


# ------------------------------------------------------------------ supersede: meta and provenance
def test_supersede_keeps_the_new_meta_and_provenance(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        olds = _sorts(store, S.PROMOTED, S.PROMOTED)
        new = store.supersede(
            olds,
            "Sort a {field} list before a binary search",
            K.SKILL_CARD,
            "generalised",
            meta={"case": {"run_id": "r9", "steps": 3}},
            sources=["r9", "ra"],
        )
        m = store.get(new)
        assert m.meta == {"case": {"run_id": "r9", "steps": 3}}
        assert m.sources == ("r9", "ra", "rb")  # its own first, then the old ones' (deduplicated)
        assert m.status is S.PROMOTED and m.supersedes == tuple(olds)
        assert all(store.get(o).superseded_by == new for o in olds)


# ------------------------------------------------------------------ staged supersession
def test_a_staged_supersession_changes_nothing_until_promotion(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        olds = _sorts(store, S.PROMOTED, S.CANDIDATE)
        before = [_state(store, o) for o in olds]
        new = store.supersede(
            olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "shorter", status=S.CANDIDATE
        )
        n = store.get(new)
        assert n.status is S.CANDIDATE and n.supersedes == tuple(olds) and n.superseded_by is None
        assert "supersedes 2 once promoted: shorter" in store.history(new)[0].reason
        assert [_state(store, o) for o in olds] == before
        assert [r.memory.id for r in store.retrieve("sort list search")] == [olds[0]]  # the live one
        store.quarantine(new, "scan passed")  # the gate's path: quarantined, then promoted
        store.promote(new, "replay gain")
        assert [(store.get(o).status, store.get(o).superseded_by) for o in olds] == [(S.ARCHIVED, new)] * 2
        assert [store.history(o)[-1].reason for o in olds] == [f"superseded by {new}: replay gain"] * 2
        assert store.history(new)[-1].reason == f"replay gain (supersedes {olds[0]}, {olds[1]})"
        assert [r.memory.id for r in store.retrieve("sort list search")] == [new]
        assert store.rollback(new, "regression") == olds
        assert [store.get(o).status for o in olds] == [S.PROMOTED, S.CANDIDATE]  # as they were
        assert all(store.get(o).superseded_by is None for o in olds)
        store.promote(new, "a second look")  # promoting it again supersedes them again
        assert all(store.get(o).superseded_by == new for o in olds)


def test_a_rejected_staged_supersession_leaves_the_old_memories(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        [old] = _sorts(store, S.PROMOTED)
        before = _state(store, old)
        new = store.supersede([old], "Sort first", K.SKILL_CARD, "x", status=S.CANDIDATE)
        store.reject(new, "no gain on replay")
        assert _state(store, old) == before


def test_a_failed_promotion_supersedes_nothing(tmp_path, monkeypatch):
    with make_store(tmp_path / "m.db") as store:
        olds = _sorts(store, S.PROMOTED, S.PROMOTED)
        before = [_state(store, o) for o in olds]
        new = store.supersede(olds, "Sort first", K.SKILL_CARD, "x", status=S.CANDIDATE)
        real = store._history

        def crash_on_second_archive(c, mid, old, status, reason, at=None):
            if mid == olds[1]:
                raise RuntimeError("disk full")
            return real(c, mid, old, status, reason, at)

        monkeypatch.setattr(store, "_history", crash_on_second_archive)
        with pytest.raises(RuntimeError, match="disk full"):
            store.promote(new, "replay gain")
        monkeypatch.undo()
        assert store.get(new).status is S.CANDIDATE and store.get(new).supersedes == tuple(olds)
        assert [_state(store, o) for o in olds] == before  # the first archive was rolled back too


def test_promotion_reads_the_links_inside_its_transaction(tmp_path, monkeypatch):
    a = make_store(tmp_path / "m.db")
    b = make_store(tmp_path / "m.db")
    [old, other] = _sorts(a, S.PROMOTED, S.PROMOTED)
    first = a.supersede([old], "Sort before searching", K.SKILL_CARD, "x", status=S.CANDIDATE)
    second = a.supersede([old, other], "Sort a list first", K.SKILL_CARD, "y", status=S.CANDIDATE)
    _before_next_tx(monkeypatch, a, lambda: b.promote(first, "gain"))  # another process wins the race
    a.promote(second, "gain")
    assert a.get(old).superseded_by == first  # left to the one that superseded it first
    assert a.get(other).superseded_by == second and a.get(second).supersedes == (other,)
    assert a.rollback(second, "undo") == [other] and a.get(old).status is S.ARCHIVED
    assert a.rollback(first, "undo") == [old] and a.get(old).status is S.PROMOTED
    a.close()
    b.close()


def test_staging_refuses_an_old_memory_already_superseded(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        [old] = _sorts(store, S.PROMOTED)
        store.supersede([old], "Sort first", K.SKILL_CARD, "x")
        n = store.count()
        with pytest.raises(ValueError, match="already superseded"):
            store.supersede([old], "Sort it first", K.SKILL_CARD, "y", status=S.CANDIDATE)
        assert store.count() == n


def test_a_superseded_memory_is_not_revived_by_a_promotion(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        [old] = _sorts(store, S.PROMOTED)
        new = store.supersede([old], "Sort a {field} list before a binary search", K.SKILL_CARD, "x")
        before = _state(store, old)
        with pytest.raises(ValueError, match=f"superseded by {new}"):
            store.promote(old, "looks good")
        again = store.add(store.get(old).text, K.SKILL_CARD, status=S.PROMOTED, made_by="human")
        assert again not in (old, new) and store.get(again).status is S.PROMOTED
        assert _state(store, old) == before


@pytest.mark.parametrize("status", [S.QUARANTINED, S.REJECTED, S.ARCHIVED])
def test_supersede_stores_only_promoted_or_candidate(tmp_path, status):
    with make_store(tmp_path / "m.db") as store:
        [old] = _sorts(store, S.PROMOTED)
        with pytest.raises(ValueError, match="promoted memory or a candidate"):
            store.supersede([old], "Sort first", K.SKILL_CARD, "x", status=status)
        assert store.count() == 1


def test_run_modes_of_a_staged_supersession(tmp_path):
    path = tmp_path / "m.db"
    with make_store(path) as store:
        [old] = _sorts(store, S.PROMOTED)
    with make_store(path, RunMode.LEARNING_VALIDATION) as val:
        with pytest.raises(ReadOnlyModeError):
            val.supersede([old], "Sort first", K.SKILL_CARD, "x")
        staged = val.supersede([old], "Sort first", K.SKILL_CARD, "x", status=S.CANDIDATE)  # staging data
        assert val.get(staged).status is S.CANDIDATE and val.get(old).status is S.PROMOTED
        with pytest.raises(ReadOnlyModeError):
            val.promote(staged, "gain")
    with make_store(path, RunMode.EVAL_TEST) as ro, pytest.raises(ReadOnlyModeError):
        ro.supersede([old], "Sort it", K.SKILL_CARD, "x", status=S.CANDIDATE)
