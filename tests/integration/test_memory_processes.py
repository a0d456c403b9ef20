"""The memory store across processes: persistence, SIGKILL crash safety, concurrent writers.

The crash and concurrency tests run on a SQLite file and on a real PostgreSQL server
(tests/_postgres.py starts it): there the processes stand in for machines sharing one database,
each opening the store by its URL.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from purpose_agent.memory import MemoryStatus, MemoryStore
from purpose_agent.memory.protocol import is_database_url

PRELUDE = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    from purpose_agent.core.modes import RunMode
    from purpose_agent.memory import MemoryCI, MemoryStore, compile_memories

    class Scanner:
        def scan(self, text, kind=None, scope=None):
            return SimpleNamespace(safe=True, threats=())

    PATH = sys.argv[1]
    def open_store(mode=RunMode.LEARNING_TRAIN):
        return MemoryStore(PATH, mode=mode, scanner=Scanner(), embedder=None)
    """
)


#: Rows of ``memories`` whose full-text entry is there and matches the memory's own text.
FULLTEXT_ROWS = {
    "sqlite": "SELECT COUNT(*) FROM memories_fts",
    "postgres": "SELECT COUNT(*) FROM memories WHERE length(tsv) > 0 "
    "AND tsv @@ plainto_tsquery('purpose_agent', text)",
}


def _backend(location: str) -> str:
    return "postgres" if is_database_url(location) else "sqlite"


def _run(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_second_process_uses_what_the_first_learned(tmp_path):
    db = str(tmp_path / "m.db")
    learner = _run(
        """
        store = open_store()
        # four paired validation units, each better with the lesson: positive evidence
        ci = MemoryCI(store, lambda inc, exc: [0.9] * 4 if inc else [0.4] * 4)
        mid = store.add("Convert every {amount} to cents before adding invoice lines", "skill_card")
        [d] = ci.process([mid])
        store.record_inclusion([mid], "run-1")
        store.credit([mid], 1.0, "run-1")
        print(d.action, mid)
        store.close()
        """,
        db,
    )
    assert learner.returncode == 0, learner.stderr
    action, mid = learner.stdout.split()
    assert action == "promoted"
    user = _run(
        """
        store = open_store(RunMode.EVAL_TEST)
        c = compile_memories(store.retrieve_mixture("add the invoice lines for this order"))
        m = store.get(c.ids[0])
        print(" ".join(c.ids), m.helpful, m.times_included, m.q)
        """,
        db,
    )
    assert user.returncode == 0, user.stderr
    assert user.stdout.split() == [mid, "1", "1", "0.75"]


CRASH_CHILD = """
import uuid
store = open_store()
i = 0
while True:
    words = " ".join(uuid.uuid4().hex[:8] for _ in range(4))
    mid = store.add(f"When step {words} fails retry with backoff", "failure_pattern", sources=[f"run-{i}"])
    store.promote(mid, "replay gain")
    store.record_inclusion([mid], f"run-{i}")
    store.credit([mid], (i % 3) / 2, f"run-{i}")
    print(mid, flush=True)
    i += 1
"""


#: The killed writer's ``application_name`` on PostgreSQL: how the server's view of it is found.
CRASH_SESSION = "purpose-agent-crash-writer"


def _sessions(url: str, app: str, where: str = "TRUE") -> int:
    """How many server sessions named ``app`` match ``where`` (in pg_stat_activity)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            f"SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = %s AND ({where})", (app,)
        ).fetchone()
    return int(row[0]) if row else 0


def _assert_sqlite_file_whole(db: str) -> None:
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def _assert_server_let_go_of_the_killed_writer(url: str) -> None:
    """The server rolled the killed writer's open transaction back by itself: a new writer takes,
    at once, the locks any write of it held (every table it writes, the add lock), and no
    transaction of its session is still in progress."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '5s'")  # a transaction left open would hold these for ever
        with conn.transaction():  # EXCLUSIVE waits for any transaction that read FOR UPDATE or wrote
            conn.execute("LOCK TABLE memories, status_history, inclusions, credits IN EXCLUSIVE MODE")
    with MemoryStore(url, embedder=None, scanner=_AlwaysSafe()) as writer:
        writer.conn.execute("SET lock_timeout = '5s'")
        mid = writer.add("After a crash check the locks are free", "failure_pattern")  # the add lock
        writer.promote(mid, "replay gain")
        writer.record_inclusion([mid], "after-crash")
        assert writer.credit([mid], 1.0, "after-crash") == [mid]
    still_open = (
        "backend_xid IS NOT NULL OR state IN ('idle in transaction', 'idle in transaction (aborted)')"
    )
    assert _sessions(url, CRASH_SESSION, still_open) == 0


def test_sigkill_mid_learning_loses_nothing_committed(location):
    backend = _backend(location)
    # on PostgreSQL the writer's session is named, so the server's view of it can be checked
    where = f"{location}&application_name={CRASH_SESSION}" if backend == "postgres" else location
    child = _spawn(CRASH_CHILD, where)
    assert child.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 60:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child died early: {child.stderr.read() if child.stderr else ''}")
            committed.append(line.strip())
        if backend == "postgres":
            assert _sessions(location, CRASH_SESSION) == 1  # the check below looks at this session
        os.kill(child.pid, signal.SIGKILL)  # in the middle of its next writes
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    if backend == "postgres":
        _assert_server_let_go_of_the_killed_writer(location)
    else:
        _assert_sqlite_file_whole(location)
    with MemoryStore(location, embedder=None) as store:
        found = {m.id for m in store.list()}
        assert set(committed) <= found
        for mid in committed:  # each commit was whole: promoted, included, credited
            m = store.get(mid)
            assert m.status is MemoryStatus.PROMOTED and m.times_included == 1 and m.q_n == 1
        # a transaction cut by the kill left no half memory: every stored one has its history row
        orphans = store.conn.execute(
            "SELECT COUNT(*) FROM memories m WHERE NOT EXISTS "
            "(SELECT 1 FROM status_history h WHERE h.memory_id = m.id)"
        ).fetchone()[0]
        assert orphans == 0
        fts = store.conn.execute(FULLTEXT_ROWS[backend]).fetchone()[0]
        assert fts == store.count()
        assert store.retrieve("retry with backoff factor", k=3)
        last = store.get(committed[-1])  # found by its own words
        assert [r.memory.id for r in store.retrieve(" ".join(last.text.split()[2:6]), k=1)] == [last.id]


WORKER = """
w = int(sys.argv[2]); shared = sys.argv[3]; n = int(sys.argv[4])
store = open_store()
print("ready", flush=True)
sys.stdin.readline()  # start barrier: all four write at once
for i in range(n):
    store.add(f"worker {w} private lesson {i}: " + " ".join(f"t{w}x{i}y{j}" for j in range(4)), "episodic_case")
    store.add("Everyone learns this same shared lesson", "skill_card")
    store.record_inclusion([shared], f"w{w}-run{i}")
    store.credit([shared], 1.0, f"w{w}-run{i}")
    store.credit([shared], 1.0, f"w{w}-run{i}")  # a retried credit: must not double count
print("done", flush=True)
"""


def test_four_concurrent_writers_lose_no_update(location):
    """Four processes (machines, on PostgreSQL) open the store by its location and write at once."""
    with MemoryStore(location, embedder=None, scanner=_AlwaysSafe()) as store:
        shared = store.add("The shared lesson everyone credits", "skill_card", status="promoted")
    n = 60
    procs = [_spawn(WORKER, location, str(w), shared, str(n)) for w in range(4)]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:  # release all four before waiting for any
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.close()
    for p in procs:
        p.wait(timeout=300)
    outs = [(p.stdout.read() if p.stdout else "", p.stderr.read() if p.stderr else "") for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert out.strip() == "done"
    with MemoryStore(location, embedder=None) as store:
        m = store.get(shared)
        assert (m.helpful, m.q_n, m.times_included, m.harmful) == (4 * n, 4 * n, 4 * n, 0)
        assert m.q == pytest.approx((0.5 + 4 * n) / (4 * n + 1))
        assert store.count("candidate") == 4 * n + 1  # private lessons + one merged shared lesson
        dup = [x for x in store.list(kind="skill_card") if x.text.startswith("Everyone")]
        assert len(dup) == 1 and dup[0].merges == 4 * n - 1
        assert store.conn.execute("SELECT COUNT(*) FROM credits").fetchone()[0] == 4 * n
        store.verify()
        assert store.conn.execute(FULLTEXT_ROWS[_backend(location)]).fetchone()[0] == store.count()
    if not is_database_url(location):
        _assert_sqlite_file_whole(location)


class _AlwaysSafe:
    def scan(self, text, kind=None, scope=None):
        from types import SimpleNamespace

        return SimpleNamespace(safe=True, threats=())


def test_validation_process_does_not_touch_training_data(tmp_path):
    db = tmp_path / "m.db"
    with MemoryStore(db, embedder=None, scanner=_AlwaysSafe()) as store:
        mid = store.add("Measure twice, cut once", "skill_card", status="promoted")
    out = _run(
        """
        store = open_store(RunMode.LEARNING_VALIDATION)
        mid = sys.argv[2]
        store.record_inclusion([mid], "val-1")
        try:
            store.credit([mid], 1.0, "val-1")
        except PermissionError as exc:
            print("refused", type(exc).__name__)
        """,
        str(db),
        mid,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["refused", "ReadOnlyModeError"]
    with MemoryStore(db, embedder=None) as store:
        m = store.get(mid)
        assert (m.times_included, m.helpful, m.q) == (0, 0, 0.5)


def test_paths_are_plain_files(tmp_path: Path):
    db = tmp_path / "nested" / "dir" / "m.db"
    MemoryStore(db, embedder=None).close()
    assert db.is_file()
