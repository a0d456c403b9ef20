"""Run modes enforced by the store: EVAL_TEST writes nothing, LEARNING_VALIDATION only staging."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from _memory_helpers import make_store, sha256

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ReadOnlyModeError
from purpose_agent.memory import MemoryKind, MemoryStatus, compile_memories

K, S = MemoryKind, MemoryStatus


def _seed(path: Path) -> dict[str, str]:
    with make_store(path) as store:
        ids = {
            "promoted": store.add(
                "Read the error message before retrying a command", K.SKILL_CARD, status=S.PROMOTED
            ),
            "pref": store.add(
                "Answer in British English", K.USER_PREFERENCE, status=S.PROMOTED, made_by="human"
            ),
            "candidate": store.add("Check the disk space before writing big files", K.TOOL_POLICY),
        }
        store.record_inclusion([ids["promoted"]], "run-0")
        store.credit([ids["promoted"]], 1.0, "run-0")
    return ids


def _write_calls(ids: dict[str, str], export: Path) -> dict:
    p, c = ids["promoted"], ids["candidate"]
    return {
        "add": lambda s: s.add("A brand new lesson about caching", K.SKILL_CARD),
        "add_promoted": lambda s: s.add("Another new lesson about queues", K.SKILL_CARD, status=S.PROMOTED),
        "set_status": lambda s: s.set_status(c, S.REJECTED, "x"),
        "promote": lambda s: s.promote(c, "x"),
        "reject": lambda s: s.reject(p, "x"),
        "quarantine": lambda s: s.quarantine(c, "x"),
        "archive": lambda s: s.archive(p, "x"),
        "supersede": lambda s: s.supersede([p], "General lesson", K.SKILL_CARD, "x"),
        "rollback": lambda s: s.rollback(p, "x"),
        "record_inclusion": lambda s: s.record_inclusion([p], "run-9"),
        "credit": lambda s: s.credit([p], 1.0, "run-9"),
        "record_replay": lambda s: s.record_replay(c, [1.0], [0.0], "promoted", "x"),
        "index_embeddings": lambda s: s.index_embeddings(),
        "import_jsonl": lambda s: s.import_jsonl(export),
    }


def _read_session(store) -> None:
    for q in ("error retry command", "english", 'weird "query" AND (NOT', "disk space"):
        res = store.retrieve(q, k=5)
        store.retrieve_mixture(q, shared=1, routed=3)
        compile_memories(res)
    store.list()
    store.list(kind=K.SKILL_CARD, status=S.PROMOTED)
    for m in store.list():
        store.get(m.id)
        store.history(m.id)
    store.replays()
    store.status_report()
    store.count(S.PROMOTED)


@pytest.mark.parametrize("writer", ["closed", "open", "crashed"])
def test_eval_test_changes_no_byte(tmp_path, writer):
    """Also when the last writes are still in the WAL (writer open, or killed before a checkpoint)."""
    path = tmp_path / "m.db"
    ids = _seed(path)
    export = tmp_path / "export.jsonl"
    with make_store(path) as s:
        s.export(export)
    writer_open = writer != "closed"
    if writer_open:  # last write still in the WAL, not checkpointed into the main file
        w = make_store(path)
        w.conn.execute("PRAGMA wal_autocheckpoint = 0")
        ids["late"] = w.add("Late lesson still in the WAL", K.SKILL_CARD, status=S.PROMOTED)
        if writer == "crashed":  # the files as a killed writer leaves them: a WAL with frames
            crashed = tmp_path / "crashed"
            crashed.mkdir()
            for suffix in ("", "-wal"):
                shutil.copyfile(str(path) + suffix, str(crashed / "m.db") + suffix)
            w.close()
            path = crashed / "m.db"
            w = None
        writer_obj = w
    else:
        writer_obj = None
    before = sha256(path)
    wal = Path(str(path) + "-wal")
    wal_before = sha256(wal) if wal.exists() else None
    store = make_store(path, RunMode.EVAL_TEST)
    _read_session(store)
    if writer_open:
        assert [r.memory.id for r in store.retrieve("late lesson wal")] == [ids["late"]]
    for name, call in _write_calls(ids, export).items():
        with pytest.raises(ReadOnlyModeError, match="EVAL_TEST"):
            call(store)
        assert sha256(path) == before, name
    store.export(tmp_path / "again.jsonl")  # reading out to another file is fine
    other = store.with_mode(RunMode.EVAL_TEST)
    _read_session(other)
    other.close()
    store.close()
    assert sha256(path) == before
    if wal_before is not None:
        assert sha256(wal) == wal_before
    if writer_obj is not None:
        writer_obj.close()


def test_eval_test_never_creates_a_store(tmp_path):
    with pytest.raises(ReadOnlyModeError, match="cannot be created"):
        make_store(tmp_path / "missing.db", RunMode.EVAL_TEST)
    assert not (tmp_path / "missing.db").exists()


def test_eval_test_error_message_is_clear(tmp_path):
    path = tmp_path / "m.db"
    _seed(path)
    with make_store(path, RunMode.EVAL_TEST) as store, pytest.raises(ReadOnlyModeError) as err:
        store.add("x lesson", K.SKILL_CARD)
    assert "EVAL_TEST writes nothing" in str(err.value) and str(path) in str(err.value)


def test_validation_allows_only_staging(tmp_path):
    path = tmp_path / "m.db"
    ids = _seed(path)
    export = tmp_path / "export.jsonl"
    export.write_text(
        json.dumps({"id": "mem_z", "kind": "skill_card", "text": "zz lesson", "status": "candidate"}) + "\n"
    )
    store = make_store(path, RunMode.LEARNING_VALIDATION)
    p, c = ids["promoted"], ids["candidate"]
    allowed = {"add", "quarantine", "record_inclusion", "record_replay"}
    calls = _write_calls(ids, export)
    for name, call in calls.items():
        if name in allowed:
            continue
        with pytest.raises(ReadOnlyModeError, match="LEARNING_VALIDATION"):
            call(store)
    assert store.get(p).status is S.PROMOTED and store.get(c).status is S.CANDIDATE
    calls["quarantine"](store)
    assert store.get(c).status is S.QUARANTINED
    new = calls["add"](store)
    assert store.get(new).status is S.CANDIDATE
    before = store.get(p)
    calls["record_inclusion"](store)
    assert store.get(p).times_included == before.times_included  # staging rows only
    staged = store.conn.execute("SELECT staging FROM inclusions WHERE run_id = 'run-9'").fetchall()
    assert staged == [(1,)]
    calls["record_replay"](store)
    assert store.replays(c)[0].gain == 1.0
    with pytest.raises(ReadOnlyModeError, match="only candidates"):
        store.quarantine(p, "x")
    store.close()
    # a training store may now promote what validation staged
    with make_store(path) as train:
        train.promote(c, "replay gain +1.0")
