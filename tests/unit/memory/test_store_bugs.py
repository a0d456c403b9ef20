"""Hardening of the memory store (issue 15): each test pins one bug that was fixed."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _memory_helpers import HOSTILE_MARK, StubScanner, make_store

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError, ReadOnlyModeError, StoreCorruptError, StorePathError
from purpose_agent.memory import MemoryCI, MemoryKind, MemoryStatus, MemoryStore, UnsafeMemoryError, _schema

K, S = MemoryKind, MemoryStatus

# Long enough that appending the hostile mark keeps it a near-duplicate (Jaccard 20/24 > 0.8).
LESSON = (
    "When the invoice total looks wrong recompute every line amount in cents then compare "
    "the sum with the stated total before you report it"
)
HOSTILE_TWIN = f"{LESSON} {HOSTILE_MARK}"


class _AlwaysSafe:
    def scan(self, text: str, kind: Any = None, scope: Any = None) -> SimpleNamespace:
        return SimpleNamespace(safe=True, threats=())


def _row_state(store: MemoryStore, mid: str) -> tuple[Any, ...]:
    m = store.get(mid)
    return (m.status, m.merges, m.sources, m.trust, len(store.history(mid)))


# ---------------------------------------------------------------- 1. unsafe near-duplicates
def test_teach_unsafe_near_duplicate_never_rejects_the_promoted_original(tmp_path):
    store = make_store(tmp_path / "m.db")
    ci = MemoryCI(store, None)
    first = ci.teach(LESSON, kind=K.SKILL_CARD)
    assert first.action == "promoted"
    before = _row_state(store, first.memory_id)
    bad = ci.teach(HOSTILE_TWIN, kind=K.SKILL_CARD)
    assert bad.action == "rejected" and "prompt_injection" in bad.reason
    assert bad.memory_id != first.memory_id
    assert _row_state(store, first.memory_id) == before  # not rejected, not merged into
    assert store.get(bad.memory_id).status is S.REJECTED
    assert store.get(bad.memory_id).text == HOSTILE_TWIN
    assert "prompt_injection" in store.history(bad.memory_id)[-1].reason
    store.close()


def test_teach_uses_the_ci_verdict_even_when_the_store_scanner_is_laxer(tmp_path):
    store = make_store(tmp_path / "m.db", scanner=_AlwaysSafe())
    ci = MemoryCI(store, None, scanner=StubScanner())
    first = ci.teach(LESSON, kind=K.SKILL_CARD)
    before = _row_state(store, first.memory_id)
    bad = ci.teach(HOSTILE_TWIN, kind=K.SKILL_CARD)
    assert bad.action == "rejected" and bad.memory_id != first.memory_id
    assert _row_state(store, first.memory_id) == before
    store.close()


def test_teach_of_an_unsafe_text_twice_keeps_one_rejected_row(tmp_path):
    store = make_store(tmp_path / "m.db")
    ci = MemoryCI(store, None)
    a = ci.teach(HOSTILE_TWIN, kind=K.SKILL_CARD)
    b = ci.teach(HOSTILE_TWIN, kind=K.SKILL_CARD)
    assert a.action == b.action == "rejected" and a.memory_id == b.memory_id
    assert store.count() == 1 and store.get(a.memory_id).status is S.REJECTED
    store.close()


def test_add_promoted_unsafe_near_duplicate_raises_and_leaves_the_original(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        good = store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED, sources=["r1"])
        before = _row_state(store, good)
        with pytest.raises(UnsafeMemoryError) as err:
            store.add(HOSTILE_TWIN, K.SKILL_CARD, status=S.PROMOTED, sources=["r2"])
        assert err.value.memory_id != good
        assert store.get(err.value.memory_id).status is S.REJECTED
        assert _row_state(store, good) == before


def test_add_promoted_does_not_promote_an_unscanned_near_duplicate(tmp_path):
    scanner = StubScanner()
    with make_store(tmp_path / "m.db", scanner=scanner) as store:
        hostile = store.add(HOSTILE_TWIN, K.SKILL_CARD)  # a candidate: not scanned yet
        mid = store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED)
        assert mid != hostile
        assert store.get(hostile).status is S.CANDIDATE and store.get(hostile).merges == 0
        assert store.get(mid).status is S.PROMOTED and store.get(mid).text == LESSON
        assert [r.memory.id for r in store.retrieve("invoice total cents")] == [mid]


def test_add_promoted_still_promotes_a_safe_near_duplicate(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        cand = store.add(LESSON + " quickly", K.SKILL_CARD)
        assert store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED) == cand
        assert store.get(cand).status is S.PROMOTED and store.get(cand).merges == 1


def test_unsafe_candidate_never_merges_into_a_promoted_memory(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        good = store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED, sources=["r1"])
        before = _row_state(store, good)
        cand = store.add(HOSTILE_TWIN, K.SKILL_CARD, sources=["r2"])
        assert cand != good and store.get(cand).status is S.CANDIDATE
        assert _row_state(store, good) == before
        safe_twin = store.add(LESSON + " quickly", K.SKILL_CARD, sources=["r3"])  # scanned, safe: merges
        assert safe_twin == good and store.get(good).merges == 1 and store.get(good).sources == ("r1", "r3")


# ---------------------------------------------------------------- 2. reads inside the write transaction
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


def test_validation_quarantine_does_not_demote_a_concurrently_promoted_memory(tmp_path, monkeypatch):
    train = make_store(tmp_path / "m.db")
    cand = train.add(LESSON, K.SKILL_CARD)
    val = make_store(tmp_path / "m.db", mode=RunMode.LEARNING_VALIDATION)
    _before_next_tx(monkeypatch, val, lambda: train.promote(cand, "replay gain"))
    with pytest.raises(ReadOnlyModeError, match="only candidates"):
        val.quarantine(cand, "immune scan passed")
    assert train.get(cand).status is S.PROMOTED
    assert [h.new_status for h in train.history(cand)] == [S.CANDIDATE, S.PROMOTED]
    val.close()
    train.close()


def test_promote_scans_a_memory_rejected_concurrently(tmp_path, monkeypatch):
    lax = make_store(tmp_path / "m.db", scanner=_AlwaysSafe())
    mid = lax.add(HOSTILE_TWIN, K.SKILL_CARD, status=S.PROMOTED)
    strict = make_store(tmp_path / "m.db")
    _before_next_tx(monkeypatch, strict, lambda: lax.reject(mid, "a reviewer found an injection"))
    with pytest.raises(UnsafeMemoryError):
        strict.promote(mid, "replay gain")
    assert strict.get(mid).status is S.REJECTED
    assert [h.new_status for h in strict.history(mid)] == [S.PROMOTED, S.REJECTED]
    strict.close()
    lax.close()


def test_rollback_twice_from_two_processes_rolls_back_once(tmp_path, monkeypatch):
    a = make_store(tmp_path / "m.db")
    b = make_store(tmp_path / "m.db")
    mid = a.add(LESSON, K.USER_PREFERENCE, status=S.PROMOTED, made_by="human")
    _before_next_tx(monkeypatch, a, lambda: b.rollback(mid, "first"))
    with pytest.raises(ValueError, match="only a promotion"):
        a.rollback(mid, "second")
    assert [h.new_status for h in a.history(mid)] == [S.PROMOTED, S.REJECTED]
    a.close()
    b.close()


def test_supersede_records_the_status_each_old_memory_really_had(tmp_path, monkeypatch):
    a = make_store(tmp_path / "m.db")
    b = make_store(tmp_path / "m.db")
    olds = [a.add(f"Sort the {x} list before searching it", K.SKILL_CARD, status=S.PROMOTED) for x in "ab"]
    _before_next_tx(monkeypatch, a, lambda: b.archive(olds[0], "outdated"))
    new = a.supersede(olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "generalised")
    assert a.history(olds[0])[-1].old_status is S.ARCHIVED
    assert a.rollback(new, "regression") == olds
    assert [a.get(o).status for o in olds] == [S.ARCHIVED, S.PROMOTED]  # archived stays archived
    a.close()
    b.close()


def test_supersede_refuses_a_memory_superseded_concurrently(tmp_path, monkeypatch):
    a = make_store(tmp_path / "m.db")
    b = make_store(tmp_path / "m.db")
    olds = [a.add(f"Sort the {x} list before searching it", K.SKILL_CARD, status=S.PROMOTED) for x in "ab"]
    other: list[str] = []
    _before_next_tx(
        monkeypatch, a, lambda: other.append(b.supersede(olds[:1], "Sort before search", K.SKILL_CARD, "b"))
    )
    with pytest.raises(ValueError, match="already superseded"):
        a.supersede(olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "generalised")
    assert a.get(olds[0]).superseded_by == other[0]
    assert a.get(olds[1]).status is S.PROMOTED and a.count() == 3  # nothing of a's attempt stayed
    assert b.rollback(other[0], "undo") == olds[:1]  # b's link is intact
    a.close()
    b.close()


# ---------------------------------------------------------------- 3. cheap open
def _fill(path: Path, n: int) -> None:
    with make_store(path) as store:
        for i in range(n):
            store.add(f"lesson number {i} about topic {i * 7} and more words to fill pages", K.EPISODIC_CASE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


@contextmanager
def _traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement run by connections opened inside the block."""
    statements: list[str] = []
    real = sqlite3.connect

    def connect(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = real(*args, **kwargs)
        conn.set_trace_callback(statements.append)
        return conn

    with monkeypatch.context() as m:
        m.setattr(sqlite3, "connect", connect)
        yield statements


def _open_statements(path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    with _traced(monkeypatch) as statements:
        MemoryStore(path, embedder=None).close()
    return [" ".join(s.split()) for s in statements]


def test_opening_a_large_store_runs_no_full_check(tmp_path, monkeypatch):
    monkeypatch.setattr(_schema, "FULL_CHECK_MAX_BYTES", 16 * 1024, raising=False)
    small, large = tmp_path / "small.db", tmp_path / "large.db"
    _fill(small, 60)
    _fill(large, 600)
    assert small.stat().st_size > 16 * 1024
    stmts_small = _open_statements(small, monkeypatch)
    stmts_large = _open_statements(large, monkeypatch)
    assert not [s for s in stmts_large if "quick_check" in s or "integrity_check" in s]
    assert stmts_small == stmts_large  # the same few statements whatever the size
    assert len(stmts_large) < 15


def test_a_small_store_is_still_fully_checked_on_open(tmp_path, monkeypatch):
    path = tmp_path / "m.db"
    _fill(path, 20)
    assert any("quick_check" in s for s in _open_statements(path, monkeypatch))


def test_truncated_large_store_is_detected_on_open(tmp_path, monkeypatch):
    monkeypatch.setattr(_schema, "FULL_CHECK_MAX_BYTES", 16 * 1024, raising=False)
    path = tmp_path / "m.db"
    _fill(path, 300)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptError, match="Fix:"):
        MemoryStore(path, embedder=None)
    assert path.read_bytes() == data[: len(data) // 2]


def test_damaged_large_store_gives_the_clear_error_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setattr(_schema, "FULL_CHECK_MAX_BYTES", 16 * 1024, raising=False)
    path = tmp_path / "m.db"
    _fill(path, 300)
    data = bytearray(path.read_bytes())
    data[4096 * 8 : 4096 * 12] = os.urandom(4096 * 4)
    path.write_bytes(bytes(data))
    # at open, or at the latest on a full read
    with pytest.raises(StoreCorruptError, match="Fix:"), MemoryStore(path, embedder=None) as store:
        store.list()
        store.retrieve("lesson topic words")
        store.verify()


def test_verify_passes_on_a_healthy_store(tmp_path):
    path = tmp_path / "m.db"
    _fill(path, 30)
    with make_store(path) as store:
        store.verify()


# ---------------------------------------------------------------- 4. unusable paths
def test_a_directory_is_not_a_store(tmp_path):
    for mode in (RunMode.LEARNING_TRAIN, RunMode.EVAL_TEST):
        with pytest.raises(StorePathError, match="is a directory") as err:
            MemoryStore(tmp_path, mode=mode, embedder=None)
        assert str(tmp_path) in str(err.value) and "Fix:" in str(err.value)
        assert isinstance(err.value, ConfigurationError)


def test_a_store_under_a_file_cannot_be_created(tmp_path):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    for path in (blocker / "m.db", blocker / "deeper" / "m.db"):
        with pytest.raises(StorePathError, match="Fix:") as err:
            MemoryStore(path, embedder=None)
        assert str(path) in str(err.value)
    assert blocker.read_text() == "keep me"


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_store_under_a_read_only_directory_cannot_be_created(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        for path in (locked / "m.db", locked / "missing" / "m.db"):
            with pytest.raises(StorePathError, match="Fix:") as err:
                MemoryStore(path, embedder=None)
            assert str(path) in str(err.value)
    finally:
        locked.chmod(stat.S_IRWXU)


# ---------------------------------------------------------------- 5. read-only stores asked to write
def _read_only_connection(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)


def test_a_read_only_file_refuses_writes_with_a_clear_error(tmp_path):
    """A file SQLite can only read (permissions, a read-only mount) in a learning mode."""
    path = tmp_path / "m.db"
    with make_store(path) as store:
        mid = store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED)
    store = make_store(path)
    store.conn.close()
    store._conn = _read_only_connection(path)  # what SQLite gives for a file it may not write
    for write in (
        lambda: store.add("A new lesson about caching", K.SKILL_CARD),
        lambda: store.credit([mid], 1.0, "run-1"),
        lambda: store.reject(mid, "x"),
    ):
        with pytest.raises(ReadOnlyModeError, match="read-only") as err:
            write()
        assert str(path) in str(err.value)
    assert store.get(mid).status is S.PROMOTED  # reads still work
    store.close()


def test_eval_test_store_refuses_writes_but_verifies(tmp_path):
    path = tmp_path / "m.db"
    with make_store(path) as store:
        mid = store.add(LESSON, K.SKILL_CARD, status=S.PROMOTED)
    with make_store(path, mode=RunMode.EVAL_TEST) as ro:
        with pytest.raises(ReadOnlyModeError, match="EVAL_TEST writes nothing"):
            ro.add("A new lesson about caching", K.SKILL_CARD)
        with pytest.raises(ReadOnlyModeError, match="EVAL_TEST writes nothing"):
            ro.credit([mid], 1.0, "run-1")
        ro.verify()  # a full check only reads: allowed
        assert ro.get(mid).status is S.PROMOTED
