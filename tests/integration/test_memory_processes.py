"""The memory store across processes: persistence, SIGKILL crash safety, concurrent writers."""

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


def test_sigkill_mid_learning_loses_nothing_committed(tmp_path):
    db = tmp_path / "m.db"
    child = _spawn(CRASH_CHILD, str(db))
    assert child.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 60:
            line = child.stdout.readline()
            if not line:
                pytest.fail(f"child died early: {child.stderr.read() if child.stderr else ''}")
            committed.append(line.strip())
        os.kill(child.pid, signal.SIGKILL)  # in the middle of its next writes
    finally:
        child.kill()
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with MemoryStore(db, embedder=None) as store:
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
        fts = store.conn.execute("SELECT COUNT(*) FROM memories_fts").fetchone()[0]
        assert fts == store.count()
        assert store.retrieve("retry with backoff factor", k=3)


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


def test_four_concurrent_writers_lose_no_update(tmp_path):
    db = tmp_path / "m.db"
    with MemoryStore(db, embedder=None, scanner=_AlwaysSafe()) as store:
        shared = store.add("The shared lesson everyone credits", "skill_card", status="promoted")
    n = 60
    procs = [_spawn(WORKER, str(db), str(w), shared, str(n)) for w in range(4)]
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
    with MemoryStore(db, embedder=None) as store:
        m = store.get(shared)
        assert (m.helpful, m.q_n, m.times_included, m.harmful) == (4 * n, 4 * n, 4 * n, 0)
        assert m.q == pytest.approx((0.5 + 4 * n) / (4 * n + 1))
        assert store.count("candidate") == 4 * n + 1  # private lessons + one merged shared lesson
        dup = [x for x in store.list(kind="skill_card") if x.text.startswith("Everyone")]
        assert len(dup) == 1 and dup[0].merges == 4 * n - 1
        assert store.conn.execute("SELECT COUNT(*) FROM credits").fetchone()[0] == 4 * n
        assert store.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


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
