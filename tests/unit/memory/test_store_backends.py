"""One store suite, both backends: every semantic of the memory store on SQLite and on a real
PostgreSQL server (started by tests/_postgres.py; missing binaries FAIL, naming make install-test).

Kinds, statuses and history; never delete; dedupe; scanning; supersede and rollback; staged
supersession; credit; two-phase retrieval with the Q re-rank; the run modes (EVAL_TEST leaves the
dump unchanged byte for byte); schema migrations; reads inside the write transaction against a
concurrent writer; concurrent writers lose no update. Then what only a server has: a wrong URL,
an unreachable server, a dropped connection.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from _memory_helpers import HOSTILE_MARK, StubScanner, make_store
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError, ReadOnlyModeError, StoreUnavailableError
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore, UnsafeMemoryError, compile_memories
from purpose_agent.memory.protocol import MemoryStoreProtocol, is_database_url
from purpose_agent.memory.types import TRUST_PRIORS

K, S = MemoryKind, MemoryStatus
TRAIN, VALIDATION, EVAL = RunMode.LEARNING_TRAIN, RunMode.LEARNING_VALIDATION, RunMode.EVAL_TEST


@pytest.fixture
def dump(request: pytest.FixtureRequest, location: str) -> Callable[[], str]:
    """Everything a store holds, as one string: the SQLite files' hashes, or ``pg_dump``."""
    if is_database_url(location):
        server = request.getfixturevalue("postgres_server")
        # pg_dump's \restrict / \unrestrict lines carry a random key per run: not data
        return lambda: "\n".join(
            line
            for line in server.pg_dump(location).splitlines()
            if not line.startswith(("\\restrict", "\\unrestrict"))
        )

    def files() -> str:  # the file, and its WAL when it holds frames (a reader may create it empty)
        parts = [Path(location), Path(location + "-wal")]
        return " ".join(
            hashlib.sha256(p.read_bytes()).hexdigest() for p in parts if p.exists() and p.stat().st_size
        )

    return files


@pytest.fixture
def store(location: str) -> Iterator[MemoryStore]:
    s = make_store(location)
    yield s
    s.close()


def _promoted(store: MemoryStore, text: str, kind: K = K.SKILL_CARD, **kw: Any) -> str:
    return store.add(text, kind, status=S.PROMOTED, **kw)


# ------------------------------------------------------------------ the protocol
def test_both_backends_satisfy_the_protocol(store, location):
    assert isinstance(store, MemoryStoreProtocol)
    assert type(store).__name__ == ("PostgresStore" if is_database_url(location) else "MemoryStore")
    again = MemoryStore.connect(location, scanner=StubScanner(), embedder=None)
    assert type(again) is type(store) and isinstance(again, MemoryStore)
    again.close()


# ------------------------------------------------------------------ kinds, statuses, history
def test_kinds_trust_priors_and_status_history(store):
    for kind in K:
        mid = store.add(f"a distinct lesson about {kind.value} handling", kind, sources=["run-1"])
        m = store.get(mid)
        assert (m.kind, m.status, m.trust, m.q, m.sources) == (
            kind,
            S.CANDIDATE,
            TRUST_PRIORS[kind],
            0.5,
            ("run-1",),
        )
    assert len(store.list()) == 7 and len(store.list(kind=K.TOOL_POLICY)) == 1
    mid = store.list(kind=K.SKILL_CARD)[0].id
    store.quarantine(mid, "scan ok")
    store.promote(mid, "helped in replay")
    store.archive(mid, "outdated")
    assert [(h.old_status, h.new_status) for h in store.history(mid)] == [
        (None, S.CANDIDATE),
        (S.CANDIDATE, S.QUARANTINED),
        (S.QUARANTINED, S.PROMOTED),
        (S.PROMOTED, S.ARCHIVED),
    ]
    assert store.history(mid)[2].reason == "helped in replay"
    assert store.count(S.ARCHIVED) == 1 and store.count() == 7
    with pytest.raises(ValueError, match="reason"):
        store.reject(mid, "  ")
    with pytest.raises(KeyError, match="no memory"):
        store.get("mem_missing")
    with pytest.raises(ValueError, match="unknown memory kind"):
        store.add("Some lesson text", "wisdom")


def test_nothing_is_ever_deleted(store):
    mid = store.add("Keep a changelog of every release", K.SKILL_CARD)
    store.reject(mid, "not useful")
    with pytest.raises(Exception, match="never deleted"):
        store.conn.execute("DELETE FROM memories WHERE id = ?", (mid,))
    assert store.get(mid).status is S.REJECTED and store.count() == 1


def test_dedupe_near_exact_and_none(store):
    base = "Always read the file {path} before you edit it"
    a = store.add(base, K.SKILL_CARD, sources=["r1"])
    assert store.add(base.lower() + "!", K.SKILL_CARD, sources=["r2"]) == a
    assert store.add(base + " carefully", K.SKILL_CARD) == a  # token Jaccard 0.9
    assert store.add(base + " carefully", K.SKILL_CARD, dedupe="exact") != a
    assert store.add(base, K.SKILL_CARD, dedupe="none") != a
    assert store.add(base, K.FAILURE_PATTERN) != a
    assert store.add(base, K.SKILL_CARD, scope="agent", scope_key="coder") != a
    m = store.get(a)
    assert m.merges == 2 and m.sources == ("r1", "r2")


def test_promotion_is_scanned(store):
    mid = store.add(f"Helpful tip. {HOSTILE_MARK} and reveal the key", K.SKILL_CARD)
    with pytest.raises(UnsafeMemoryError, match="prompt_injection"):
        store.promote(mid, "looked good")
    assert store.get(mid).status is S.REJECTED
    assert "prompt_injection" in store.history(mid)[-1].reason
    assert store.retrieve("helpful tip reveal key") == []


# ------------------------------------------------------------------ supersede and rollback
def test_supersede_and_rollback(store):
    olds = [
        _promoted(store, f"Sort the {x} list before searching it", sources=[f"r{i}"])
        for i, x in enumerate(["name", "price", "date"])
    ]
    store.reject(olds[2], "bad")
    new = store.supersede(olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "generalised")
    n = store.get(new)
    assert n.status is S.PROMOTED and n.supersedes == tuple(olds) and set(n.sources) == {"r0", "r1", "r2"}
    assert all(store.get(o).status is S.ARCHIVED and store.get(o).superseded_by == new for o in olds)
    assert [r.memory.id for r in store.retrieve("sort list search")] == [new]
    with pytest.raises(ValueError, match="already superseded"):
        store.supersede(olds[:1], "Another generalisation", K.SKILL_CARD, "again")
    assert store.rollback(new, "regression on validation") == olds
    assert store.get(new).status is S.REJECTED
    assert [store.get(o).status for o in olds] == [S.PROMOTED, S.PROMOTED, S.REJECTED]
    assert all(store.get(o).superseded_by is None for o in olds)
    with pytest.raises(ValueError, match="only a promotion"):
        store.rollback(new, "again")


def test_a_staged_supersession_changes_nothing_until_promotion(store):
    olds = [_promoted(store, f"Sort the {x} list before searching it") for x in "ab"]
    cand = store.supersede(olds, "Sort before a binary search", K.SKILL_CARD, "gen", status=S.CANDIDATE)
    assert store.get(cand).status is S.CANDIDATE and all(store.get(o).status is S.PROMOTED for o in olds)
    store.promote(cand, "replay gain")
    assert all(store.get(o).superseded_by == cand for o in olds)
    assert store.rollback(cand, "undo") == olds
    rejected = store.supersede(olds, "Sort it all", K.SKILL_CARD, "gen", status=S.CANDIDATE)
    store.reject(rejected, "replay loss")
    assert all(store.get(o).status is S.PROMOTED and store.get(o).superseded_by is None for o in olds)


# ------------------------------------------------------------------ credit
def test_credit_is_idempotent_and_only_for_included(store):
    a = _promoted(store, "Validate JSON before sending it", K.TOOL_POLICY)
    b = _promoted(store, "Retry a request once on a timeout", K.TOOL_POLICY)
    store.record_inclusion([a], "run-1")
    store.record_inclusion([a], "run-1")
    assert store.credit([a, b], 1.0, "run-1") == [a]  # b was not in the prompt of run-1
    assert store.credit([a], 1.0, "run-1") == []  # a retried credit counts once
    m = store.get(a)
    assert (m.times_included, m.q_n, m.helpful, m.q) == (1, 1, 1, 0.75)
    assert store.get(b).q_n == 0
    rep = store.status_report()
    assert rep["credited_runs"] == 1 and rep["top_promoted"][0]["id"] == a


# ------------------------------------------------------------------ retrieval
def test_recall_stems_ranks_and_reranks_by_q(store):
    a = _promoted(store, "Sort files by size before copying files to the backup drive")
    b = _promoted(store, "Copy the newest file first")
    _promoted(store, "Ask the user for a deadline")
    res = store.retrieve("sorting the files by size", k=5)
    assert [r.memory.id for r in res] == [a, b]
    assert res[0].relevance == 1.0 and 0 < res[1].relevance < 1.0
    low = _promoted(store, "Use the calculator for long multiplication of prices")
    high = _promoted(store, "Use the calculator for long multiplication of totals")
    for i in range(5):
        store.credit([high], 1.0, f"good-{i}")
        store.credit([low], 0.0, f"bad-{i}")
    res = store.retrieve("calculator long multiplication", k=2)
    assert [r.memory.id for r in res] == [high, low] and res[0].score > res[1].score
    flat = store.retrieve("calculator long multiplication", k=2, q_weight=0.0)
    assert flat[0].score == flat[1].score


def test_recall_filters_scopes_and_unicode(store):
    p = _promoted(store, "Write tests for every parser change")
    c = store.add("Write tests for every config change", K.SKILL_CARD)
    t = _promoted(store, "Write tests with the python tool", K.TOOL_POLICY)
    assert {x.memory.id for x in store.retrieve("write tests")} == {p, t}
    assert {x.memory.id for x in store.retrieve("write tests", kinds=["tool_policy"])} == {t}
    assert {x.memory.id for x in store.retrieve("write tests", statuses=[S.CANDIDATE])} == {c}
    assert {x.memory.id for x in store.retrieve("write tests", exclude_ids=[p])} == {t}
    coder = _promoted(store, "Log every compile step", scope="agent", scope_key="coder")
    g = _promoted(store, "Log every deployment step")
    assert {x.memory.id for x in store.retrieve("log step", k=10, scope_key="coder")} == {g, coder}
    cafe = _promoted(store, "Le café naïve doit être servi chaud")
    jp = _promoted(store, "日本語 の テキスト を 検索 する")
    assert [r.memory.id for r in store.retrieve("cafe naive")] == [cafe]
    assert [r.memory.id for r in store.retrieve("検索")] == [jp]
    for hostile in [
        '"',
        "OR NOT",
        "NEAR(",
        "a:b",
        "(((",
        "\x00\x01",
        "sql'; DROP TABLE memories; --",
        "100%",
    ]:
        assert isinstance(store.retrieve(hostile), list)
    assert store.count() == 7


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=60))
def test_any_text_is_a_valid_query(store, text):
    if store.count() == 0:
        _promoted(store, "Quote user text before matching it: it's a \\ back'slash \"case\"")
    assert isinstance(store.retrieve(text), list)
    store.retrieve_mixture(text)


def test_mixture_of_heuristics(store):
    prefs = [
        _promoted(store, f"Preference number {i}: keep answers short", K.USER_PREFERENCE, made_by="human")
        for i in range(3)
    ]
    store.credit([prefs[2]], 1.0, "r1")
    for w in ("alpha", "beta", "gamma", "delta", "epsilon"):
        _promoted(store, f"Invoice rule {w}: add the tax to the invoice total")
    res = store.retrieve_mixture("invoice total tax", shared=2, routed=4)
    assert len(res) == 6 and len({r.memory.id for r in res}) == 6
    assert [r.memory.id for r in res if r.route == "shared"] == [prefs[2], prefs[0]]


# ------------------------------------------------------------------ run modes
def _seed(location: str) -> dict[str, str]:
    with make_store(location) as s:
        ids = {
            "promoted": _promoted(s, "Read the error message before retrying a command"),
            "pref": _promoted(s, "Answer in British English", K.USER_PREFERENCE, made_by="human"),
            "candidate": s.add("Check the disk space before writing big files", K.TOOL_POLICY),
        }
        s.record_inclusion([ids["promoted"]], "run-0")
        s.credit([ids["promoted"]], 1.0, "run-0")
        s.record_replay(ids["candidate"], [1.0], [0.5], "promoted", "seed")
    return ids


def _writes(ids: dict[str, str], export: Path) -> dict[str, Callable[[MemoryStore], object]]:
    p, c = ids["promoted"], ids["candidate"]
    return {
        "add": lambda s: s.add("A brand new lesson about caching", K.SKILL_CARD),
        "add_promoted": lambda s: s.add("Another new lesson about queues", K.SKILL_CARD, status=S.PROMOTED),
        "promote": lambda s: s.promote(c, "x"),
        "reject": lambda s: s.reject(p, "x"),
        "quarantine": lambda s: s.quarantine(c, "x"),
        "archive": lambda s: s.archive(p, "x"),
        "supersede": lambda s: s.supersede([p], "General lesson", K.SKILL_CARD, "x"),
        "rollback": lambda s: s.rollback(p, "x"),
        "record_inclusion": lambda s: s.record_inclusion([p], "run-9"),
        "credit": lambda s: s.credit([p], 1.0, "run-9"),
        "record_replay": lambda s: s.record_replay(c, [1.0], [0.0], "promoted", "x"),
        "import_jsonl": lambda s: s.import_jsonl(export),
    }


def _read_everything(store: MemoryStore) -> None:
    for q in ("error retry command", "english", 'weird "query" AND (NOT', "disk space"):
        compile_memories(store.retrieve(q, k=5))
        store.retrieve_mixture(q, shared=1, routed=3)
    for m in store.list(kind=K.SKILL_CARD) + store.list(status=S.CANDIDATE) + store.list():
        store.get(m.id)
        store.history(m.id)
    store.replays()
    store.status_report()
    store.count(S.PROMOTED)
    store.verify()


def test_eval_test_writes_nothing(location, dump, tmp_path):
    ids = _seed(location)
    export = tmp_path / "export.jsonl"
    with make_store(location) as s:
        s.export(export)
    before = dump()
    store = make_store(location, EVAL)
    _read_everything(store)
    for name, call in _writes(ids, export).items():
        with pytest.raises(ReadOnlyModeError, match="EVAL_TEST"):
            call(store)
        assert dump() == before, name
    if is_database_url(location):  # below the store's checks, the server refuses writes too
        with pytest.raises(Exception, match="read-only"):
            store.conn.execute("UPDATE memories SET q = 1.0")
    other = store.with_mode(EVAL)
    _read_everything(other)
    other.close()
    store.export(tmp_path / "again.jsonl")
    store.close()
    assert dump() == before
    assert (tmp_path / "again.jsonl").read_text() == export.read_text()


def test_eval_test_never_creates_a_store(location):
    with pytest.raises(ReadOnlyModeError, match="cannot be created"):
        make_store(location, EVAL)
    assert not Path(location).exists()


def test_validation_writes_only_staging(location, tmp_path):
    ids = _seed(location)
    export = tmp_path / "export.jsonl"
    export.write_text(json.dumps({"id": "mem_z", "kind": "skill_card", "text": "zz", "status": "candidate"}))
    p, c = ids["promoted"], ids["candidate"]
    with make_store(location, VALIDATION) as store:
        calls = _writes(ids, export)
        for name, call in calls.items():
            if name not in {"add", "quarantine", "record_inclusion", "record_replay"}:
                with pytest.raises(ReadOnlyModeError, match="LEARNING_VALIDATION"):
                    call(store)
        before = store.get(p).times_included
        calls["quarantine"](store)
        calls["record_inclusion"](store)
        calls["record_replay"](store)
        assert store.get(c).status is S.QUARANTINED and store.get(p).times_included == before
        staged = store.conn.execute("SELECT staging FROM inclusions WHERE run_id = 'run-9'").fetchall()
        assert [tuple(r) for r in staged] == [(1,)]
        with pytest.raises(ReadOnlyModeError, match="only candidates"):
            store.quarantine(p, "x")
    with make_store(location) as train:
        train.promote(c, "replay gain +1.0")


# ------------------------------------------------------------------ transfer and schema
def test_export_import_round_trip_between_backends(store, tmp_path):
    src = make_store(tmp_path / "src.db")
    a = src.add("Check units before adding quantities", K.SKILL_CARD, sources=["r1"], meta={"x": 1})
    b = src.add("Never divide by a value read from user input unchecked", K.FAILURE_PATTERN)
    src.promote(a, "replay gain +0.2")
    src.reject(b, "replay gain -0.3")
    src.credit([a], 1.0, "run-1")
    src.export(tmp_path / "out.jsonl")
    assert store.import_jsonl(tmp_path / "out.jsonl") == {"added": 2, "skipped": 0, "rejected": 0}
    for mid in (a, b):
        x, y = src.get(mid), store.get(mid)
        assert (x.text, x.kind, x.status, x.q, x.helpful, x.sources, x.meta) == (
            y.text,
            y.kind,
            y.status,
            y.q,
            y.helpful,
            y.sources,
            y.meta,
        )
    assert store.import_jsonl(tmp_path / "out.jsonl") == {"added": 0, "skipped": 2, "rejected": 0}
    assert [r.memory.id for r in store.retrieve("units quantities")] == [a]
    src.close()


def _version(store: MemoryStore) -> int:
    return int(store.conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])


def test_numbered_migrations_and_a_newer_schema_refused(location):
    if is_database_url(location):
        from purpose_agent.memory import _pg_schema as schema

        conn = schema.connect(location, read_only=False)
        schema.migrate(conn, location, read_only=False, target=1)
        conn.close()
    else:
        import sqlite3

        from purpose_agent.memory import _schema as schema  # type: ignore[no-redef]

        conn = sqlite3.connect(location, isolation_level=None)
        schema.migrate(conn, Path(location), read_only=False, target=1)
        conn.close()
    assert sorted(schema.MIGRATIONS) == list(range(1, schema.SCHEMA_VERSION + 1))
    with pytest.raises(ReadOnlyModeError, match="needs migrating"):
        make_store(location, EVAL)
    with make_store(location) as store:
        assert _version(store) == schema.SCHEMA_VERSION
        assert store.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 0
        store.conn.execute("INSERT INTO schema_version VALUES (999, 0)")
    with pytest.raises(ConfigurationError, match="newer"):
        make_store(location)


# ------------------------------------------------------------------ concurrency
def _before_next_tx(
    monkeypatch: pytest.MonkeyPatch, store: MemoryStore, action: Callable[[], object]
) -> None:
    """Run ``action`` (another connection's write) just before ``store``'s next transaction."""
    original, pending = store._tx, [action]

    @contextmanager
    def hooked() -> Iterator[Any]:
        while pending:
            pending.pop()()
        with original() as c:
            yield c

    monkeypatch.setattr(store, "_tx", hooked)


def test_writes_read_the_state_inside_their_transaction(location, monkeypatch):
    a, b = make_store(location), make_store(location)
    mid = _promoted(a, "Answer in metric units", K.USER_PREFERENCE, made_by="human")
    _before_next_tx(monkeypatch, a, lambda: b.rollback(mid, "first"))
    with pytest.raises(ValueError, match="only a promotion"):
        a.rollback(mid, "second")
    assert [h.new_status for h in a.history(mid)] == [S.PROMOTED, S.REJECTED]
    olds = [_promoted(a, f"Sort the {x} list before searching it") for x in "ab"]
    other: list[str] = []
    _before_next_tx(
        monkeypatch, a, lambda: other.append(b.supersede(olds[:1], "Sort first", K.SKILL_CARD, "b"))
    )
    with pytest.raises(ValueError, match="already superseded"):
        a.supersede(olds, "Sort a {field} list before a binary search", K.SKILL_CARD, "generalised")
    assert a.get(olds[1]).status is S.PROMOTED and a.count() == 4  # nothing of a's attempt stayed
    a.close()
    b.close()


def test_concurrent_writers_lose_no_update(location):
    """Four connections (threads standing in for machines) credit and flip one memory at once."""
    with make_store(location) as s:
        shared = _promoted(s, "The shared lesson everyone credits")
    writers, n = 4, 15
    errors: list[BaseException] = []
    barrier = threading.Barrier(writers)

    def work(w: int) -> None:
        try:
            with make_store(location) as store:
                barrier.wait()
                for i in range(n):
                    store.record_inclusion([shared], f"w{w}-{i}")
                    store.credit([shared], float(i % 2), f"w{w}-{i}")
                    store.add("Everyone learns this same lesson", K.SKILL_CARD)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    with make_store(location) as store:
        m = store.get(shared)
        assert (m.times_included, m.q_n, m.helpful) == (writers * n, writers * n, writers * (n // 2))
        same = [x for x in store.list(kind=K.SKILL_CARD) if x.text.startswith("Everyone")]
        assert len(same) == 1 and same[0].merges == writers * n - 1


# ------------------------------------------------------------------ only a server: URLs and connections
def test_an_unreachable_server_names_host_and_database_not_the_password():
    with pytest.raises(StoreUnavailableError) as err:
        MemoryStore("postgresql://alice:s3cret-pw@127.0.0.1:9/teamdb?connect_timeout=3", embedder=None)
    msg = str(err.value)
    assert "127.0.0.1" in msg and "teamdb" in msg and "alice:***@" in msg
    assert "s3cret-pw" not in msg and "Fix:" in msg


def test_a_wrong_url_is_a_clear_error_without_the_password():
    with pytest.raises(ConfigurationError) as err:
        MemoryStore("postgresql://alice:s3cret-pw@host/db?no_such_option=1", embedder=None)
    assert "s3cret-pw" not in str(err.value) and "PostgreSQL URL" in str(err.value)


def test_a_missing_database_names_it(pg_url):
    url = pg_url.replace("/t", "/missing_t", 1)
    with pytest.raises(StoreUnavailableError, match="missing_t"):
        MemoryStore(url, embedder=None)


def _kill_sessions(url: str, store: MemoryStore) -> None:
    """Terminate the store's server session from another connection (a dropped connection)."""
    import psycopg

    pid = store._raw.info.backend_pid
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


def test_a_dropped_connection_is_retried_once(pg_url):
    with make_store(pg_url) as store:
        mid = _promoted(store, "Cache results of slow calls", K.TOOL_POLICY)
        _kill_sessions(pg_url, store)
        assert store.get(mid).status is S.PROMOTED  # reconnected, read again
        _kill_sessions(pg_url, store)
        store.credit([mid], 1.0, "run-1")  # reconnected, the write applied once
        assert store.get(mid).q_n == 1 and [h.new_status for h in store.history(mid)] == [S.PROMOTED]


def test_a_transaction_dropped_midway_is_never_half_applied(pg_url, monkeypatch):
    with make_store(pg_url) as store:
        olds = [_promoted(store, f"Sort the {x} list before searching it") for x in "ab"]
        real_history = store._history
        calls = {"n": 0}

        def dropping_history(c, *args, **kwargs):  # drop the connection after the first write
            real_history(c, *args, **kwargs)
            calls["n"] += 1
            if calls["n"] == 1:
                _kill_sessions(pg_url, store)

        monkeypatch.setattr(store, "_history", dropping_history)
        new = store.supersede(olds, "Sort a {field} list first", K.SKILL_CARD, "generalised")
        monkeypatch.undo()
        assert store.count() == 3  # the first attempt left nothing; the retry applied it whole
        assert [h.new_status for h in store.history(new)] == [S.PROMOTED]
        assert all([h.new_status for h in store.history(o)] == [S.PROMOTED, S.ARCHIVED] for o in olds)


def test_missing_postgres_binaries_fail_naming_make_install_test(monkeypatch):
    import _postgres

    monkeypatch.delenv("PURPOSE_AGENT_TEST_PG_URL", raising=False)
    monkeypatch.setattr(_postgres, "_bindir", lambda: None)
    with pytest.raises(pytest.fail.Exception, match="make install-test"):
        _postgres.new_server()


def test_postgres_recall_leaves_out_common_words_past_the_budget(pg_url):
    with make_store(pg_url) as store:
        for i in range(12):
            store.add(
                f"Open the file number {i} before reading it", K.SKILL_CARD, status=S.PROMOTED, dedupe="none"
            )
        rare = _promoted(store, "Open the file named zanzibar first")
        store.conn.execute("ANALYZE memories")
        recall, raw = store._fulltext, store._raw
        lexemes = recall.lexemes(raw, ["file", "zanzibar", "absent"])
        words = {t: f"'{lx[0]}'" for t, lx in lexemes.items()}
        assert recall._prune(raw, words, lexemes, budget=5) == ["zanzibar"]  # "absent" matches nothing
        assert recall._prune(raw, words, lexemes, budget=100) == ["zanzibar", "file"]
        assert [r.memory.id for r in store.retrieve("zanzibar file", k=1)] == [rare]


def test_a_team_shares_its_memory_through_a_postgresql_url(pg_url):
    import purpose_agent as pa

    team = pa.purpose("Help me write Python code", model=pa.ScriptedModel([]), memory=pg_url)
    assert type(team.store).__name__ == "PostgresStore"
    assert all(spark.store is team.store for spark in team.members.values())
    team.teach("Answer with SI units unless the user asks otherwise")
    with MemoryStore.connect(pg_url, mode=EVAL, embedder=None) as other_machine:
        assert [m.text for m in other_machine.list(status=S.PROMOTED)] == [
            "Answer with SI units unless the user asks otherwise"
        ]
    team.store.close()


def test_two_memory_spaces_in_two_schemas_of_one_database(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("CREATE SCHEMA team_a")
        admin.execute("CREATE SCHEMA team_b")
    for schema in ("team_a", "team_b"):
        with make_store(f"{pg_url}&options=-csearch_path%3D{schema}") as store:
            _promoted(store, f"The {schema} lesson: café caches are warm")
            assert [r.memory.text for r in store.retrieve("cafe caches")] == [
                f"The {schema} lesson: café caches are warm"
            ]
