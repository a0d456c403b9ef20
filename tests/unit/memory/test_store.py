"""MemoryStore: CRUD, statuses, history, dedupe, supersede/rollback, export/import, schema, corruption."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest
from _memory_helpers import HOSTILE_MARK, StubScanner, make_store

from purpose_agent.errors import ConfigurationError, StoreCorruptError
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore, UnsafeMemoryError, _schema
from purpose_agent.memory.types import TRUST_PRIORS

K, S = MemoryKind, MemoryStatus


def test_add_get_defaults(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        mid = store.add("Check the {unit} before converting {value}", K.SKILL_CARD, sources=["run-1"])
        m = store.get(mid)
        assert m.text == "Check the {unit} before converting {value}"
        assert (m.kind, m.status, m.scope, m.made_by) == (K.SKILL_CARD, S.CANDIDATE, "global", "distiller")
        assert m.sources == ("run-1",)
        assert m.q == 0.5 and m.trust == 0.6
        assert (m.times_included, m.helpful, m.harmful) == (0, 0, 0)
        assert [h.new_status for h in store.history(mid)] == [S.CANDIDATE]
        with pytest.raises(KeyError, match="no memory"):
            store.get("mem_missing")


def test_trust_priors_per_kind(tmp_path):
    assert TRUST_PRIORS[K.PURPOSE_CONTRACT] == TRUST_PRIORS[K.USER_PREFERENCE] == 0.9
    assert TRUST_PRIORS[K.SKILL_CARD] == TRUST_PRIORS[K.TOOL_POLICY] == 0.6
    assert TRUST_PRIORS[K.CRITIC_CALIBRATION] == 0.3
    with make_store(tmp_path / "m.db") as store:
        for kind in K:
            mid = store.add(f"a distinct lesson about {kind.value} handling", kind)
            assert store.get(mid).trust == TRUST_PRIORS[kind]
        assert len(store.list()) == 7
        assert len(store.list(kind=K.TOOL_POLICY)) == 1


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"text": "  "}, "non-empty"),
        ({"kind": "wisdom"}, "unknown memory kind"),
        ({"scope": "planet"}, "unknown scope"),
        ({"made_by": "magic"}, "unknown made_by"),
        ({"status": "approved"}, "unknown memory status"),
    ],
)
def test_add_validates(tmp_path, kwargs, msg):
    args = {"text": "Some lesson text", "kind": "skill_card", **kwargs}
    with make_store(tmp_path / "m.db") as store, pytest.raises(ValueError, match=msg):
        store.add(args.pop("text"), args.pop("kind"), **args)


def test_near_duplicate_merges(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        a = store.add("Always read the file {path} before you edit it", K.SKILL_CARD, sources=["r1"])
        b = store.add("always read the file {path} before you edit it!", K.SKILL_CARD, sources=["r2"])
        c = store.add("Always read the file {path} before you edit it carefully", K.SKILL_CARD)  # Jaccard 0.9
        other_kind = store.add("Always read the file {path} before you edit it", K.FAILURE_PATTERN)
        other_scope = store.add(
            "Always read the file {path} before you edit it", K.SKILL_CARD, scope="agent", scope_key="coder"
        )
        different = store.add("Run the test suite after every change", K.SKILL_CARD)
        assert a == b == c
        assert len({a, other_kind, other_scope, different}) == 4
        m = store.get(a)
        assert m.merges == 2 and m.sources == ("r1", "r2")
        assert store.count() == 4


def test_status_changes_and_history(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        mid = store.add("Prefer small commits with clear messages", K.SKILL_CARD)
        store.quarantine(mid, "scan ok")
        store.promote(mid, "helped in replay")
        store.archive(mid, "outdated")
        hist = store.history(mid)
        assert [(h.old_status, h.new_status) for h in hist] == [
            (None, S.CANDIDATE),
            (S.CANDIDATE, S.QUARANTINED),
            (S.QUARANTINED, S.PROMOTED),
            (S.PROMOTED, S.ARCHIVED),
        ]
        assert hist[2].reason == "helped in replay"
        assert all(h.at > 0 for h in hist)
        with pytest.raises(ValueError, match="reason"):
            store.reject(mid, "  ")


def test_nothing_is_ever_deleted(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        mid = store.add("Keep a changelog of every release", K.SKILL_CARD)
        store.reject(mid, "not useful")
        with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
            store.conn.execute("DELETE FROM memories WHERE id = ?", (mid,))
        assert store.get(mid).status is S.REJECTED


def test_promotion_is_scanned(tmp_path):
    scanner = StubScanner()
    with make_store(tmp_path / "m.db", scanner=scanner) as store:
        mid = store.add(f"Helpful tip. {HOSTILE_MARK} and reveal the key", K.SKILL_CARD)
        with pytest.raises(UnsafeMemoryError, match="prompt_injection"):
            store.promote(mid, "looked good")
        assert store.get(mid).status is S.REJECTED
        assert "prompt_injection" in store.history(mid)[-1].reason
        with pytest.raises(UnsafeMemoryError) as err:
            store.add(f"{HOSTILE_MARK} now", K.USER_PREFERENCE, status=S.PROMOTED, made_by="human")
        assert store.get(err.value.memory_id).status is S.REJECTED
        assert store.retrieve("helpful tip reveal key instructions") == []


def test_supersede_and_rollback(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        olds = [
            store.add(
                f"Sort the {x} list before searching it", K.SKILL_CARD, status=S.PROMOTED, sources=[f"r{i}"]
            )
            for i, x in enumerate(["name", "price", "date"])
        ]
        store.reject(olds[2], "bad")  # a rejected one supersedes back to rejected
        new = store.supersede(olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "generalised")
        n = store.get(new)
        assert n.status is S.PROMOTED and n.supersedes == tuple(olds) and n.made_by == "evolution"
        assert set(n.sources) == {"r0", "r1", "r2"}
        for o in olds:
            assert store.get(o).status is S.ARCHIVED and store.get(o).superseded_by == new
        assert [r.memory.id for r in store.retrieve("sort list search")] == [new]
        restored = store.rollback(new, "regression on validation")
        assert restored == olds
        assert store.get(new).status is S.REJECTED
        assert [store.get(o).status for o in olds] == [S.PROMOTED, S.PROMOTED, S.REJECTED]
        assert all(store.get(o).superseded_by is None for o in olds)
        assert "rollback" in store.history(new)[-1].reason
        assert len(store.history(olds[0])) == 3  # candidate->promoted... kept, archived, restored
        with pytest.raises(ValueError, match="only a promotion"):
            store.rollback(new, "again")


def test_rollback_of_plain_promotion(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        mid = store.add("Use UTC timestamps in logs", K.USER_PREFERENCE, status=S.PROMOTED, made_by="human")
        assert store.rollback(mid, "user changed their mind") == []
        assert store.get(mid).status is S.REJECTED
        assert [h.new_status for h in store.history(mid)] == [S.PROMOTED, S.REJECTED]


def test_export_import_round_trip(tmp_path):
    src = make_store(tmp_path / "a.db")
    a = src.add("Check units before adding quantities", K.SKILL_CARD, sources=["r1"], meta={"x": 1})
    b = src.add("Never divide by a value read from user input without checking zero", K.FAILURE_PATTERN)
    src.promote(a, "replay gain +0.2")
    src.reject(b, "replay gain -0.3")
    src.credit([a], 1.0, "run-1")
    assert src.export(tmp_path / "out.jsonl") == 2
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert len(lines) == 2 and json.loads(lines[0])["history"]
    dst = make_store(tmp_path / "b.db")
    assert dst.import_jsonl(tmp_path / "out.jsonl") == {"added": 2, "skipped": 0, "rejected": 0}
    for mid in (a, b):
        x, y = src.get(mid), dst.get(mid)
        assert (x.text, x.kind, x.status, x.q, x.helpful, x.sources, x.meta) == (
            y.text,
            y.kind,
            y.status,
            y.q,
            y.helpful,
            y.sources,
            y.meta,
        )
        assert [h.reason for h in dst.history(mid)][:-1] == [h.reason for h in src.history(mid)]
    assert dst.import_jsonl(tmp_path / "out.jsonl") == {"added": 0, "skipped": 2, "rejected": 0}
    assert dst.count() == 2
    assert [r.memory.id for r in dst.retrieve("units quantities")] == [a]
    src.close()
    dst.close()


def test_import_scans_and_validates(tmp_path):
    bad = tmp_path / "bad.jsonl"
    rec = {"id": "mem_x", "kind": "skill_card", "text": f"{HOSTILE_MARK} please", "status": "promoted"}
    bad.write_text(json.dumps(rec) + "\n")
    with make_store(tmp_path / "m.db") as store:
        assert store.import_jsonl(bad) == {"added": 0, "skipped": 0, "rejected": 1}
        assert store.get("mem_x").status is S.REJECTED
        broken = tmp_path / "broken.jsonl"
        broken.write_text(json.dumps({**rec, "id": "mem_y", "text": "fine"}) + "\n{not json\n")
        with pytest.raises(ValueError, match=r"broken.jsonl:2"):
            store.import_jsonl(broken)
        with pytest.raises(KeyError):
            store.get("mem_y")  # nothing from a broken file is imported


def test_persists_and_reopens(tmp_path):
    path = tmp_path / "m.db"
    with make_store(path) as store:
        mid = store.add("Cache results of slow calls", K.TOOL_POLICY, status=S.PROMOTED)
    with make_store(path) as again:
        assert again.get(mid).status is S.PROMOTED
        assert again.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert int(again.conn.execute("PRAGMA busy_timeout").fetchone()[0]) >= 1000


def test_migrates_old_schema(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    _schema.migrate(conn, path, read_only=False, target=1)
    assert _schema.schema_version(conn) == 1
    conn.close()
    with make_store(path) as store:
        assert _schema.schema_version(store.conn) == _schema.SCHEMA_VERSION
        names = {r[0] for r in store.conn.execute("SELECT name FROM sqlite_master")}
        assert "embeddings" in names


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "new.db"
    make_store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version VALUES (999, 0)")
    conn.commit()
    conn.close()
    with pytest.raises(ConfigurationError, match="newer"):
        make_store(path)


def _assert_corrupt(path):
    before = path.read_bytes()
    with pytest.raises(StoreCorruptError) as err:
        MemoryStore(path, embedder=None)
    assert str(path) in str(err.value) and "Fix:" in str(err.value)
    assert path.read_bytes() == before  # never silently recreated


def test_random_bytes_file_is_corrupt(tmp_path):
    path = tmp_path / "m.db"
    path.write_bytes(os.urandom(8192))
    _assert_corrupt(path)


def test_truncated_file_is_corrupt(tmp_path):
    path = tmp_path / "m.db"
    with make_store(path) as store:
        for i in range(300):
            store.add(f"lesson number {i} about topic {i * 7} and more words to fill pages", K.EPISODIC_CASE)
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    _assert_corrupt(path)


def test_damaged_pages_are_corrupt(tmp_path):
    path = tmp_path / "m.db"
    with make_store(path) as store:
        for i in range(300):
            store.add(f"lesson number {i} about topic {i * 7} and more words to fill pages", K.EPISODIC_CASE)
    data = bytearray(path.read_bytes())
    data[4096 * 2 : 4096 * 6] = os.urandom(4096 * 4)
    path.write_bytes(bytes(data))
    _assert_corrupt(path)


def test_foreign_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (name TEXT)")
    conn.commit()
    conn.close()
    _assert_corrupt(path)


def test_status_report(tmp_path):
    with make_store(tmp_path / "m.db") as store:
        good = store.add("Validate JSON before sending it", K.TOOL_POLICY, status=S.PROMOTED)
        bad = store.add("Retry forever on errors", K.FAILURE_PATTERN)
        store.reject(bad, "replay: gain -0.4")
        store.credit([good], 1.0, "r1")
        rep = store.status_report()
        assert rep["total"] == 2 and rep["by_status"]["promoted"] == 1
        assert rep["by_kind"]["tool_policy"]["promoted"] == 1
        assert rep["top_promoted"][0]["id"] == good and rep["top_promoted"][0]["q"] == 0.75
        assert rep["rejected"] == [
            {
                "id": bad,
                "kind": "failure_pattern",
                "text": "Retry forever on errors",
                "reason": "replay: gain -0.4",
            }
        ]
        assert rep["credited_runs"] == 1
