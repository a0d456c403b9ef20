"""Soak and fault tests of one memory store shared by many processes (no model is loaded).

Eight writer processes start together and each does a fixed number of updates (no timing):
every update must be there afterwards, counters exact, contended status changes applied once.
Each test runs on a SQLite file and on a real PostgreSQL server (the processes stand in for
machines sharing one database; tests/_postgres.py starts the server).
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from purpose_agent.memory import MemoryStatus, MemoryStore
from purpose_agent.memory.protocol import is_database_url

pytestmark = pytest.mark.integration

S = MemoryStatus
WRITERS = 8
N = 40

PRELUDE = textwrap.dedent(
    """
    import sys
    from types import SimpleNamespace
    from purpose_agent.memory import MemoryStore

    class Scanner:
        def scan(self, text, kind=None, scope=None):
            return SimpleNamespace(safe=True, threats=())

    PATH = sys.argv[1]
    def open_store():
        return MemoryStore(PATH, scanner=Scanner(), embedder=None)
    """
)

WRITER = """
w, n = int(sys.argv[2]), int(sys.argv[3])
shared, flip, old_a, old_b, taught = sys.argv[4:9]
store = open_store()
print("ready", flush=True)
sys.stdin.readline()  # start barrier: all writers at once
try:
    new = store.supersede([old_a, old_b], "Sort a {field} list before a binary search", "skill_card", f"w{w}")
    print("supersede ok", new, flush=True)
except ValueError:
    print("supersede refused", flush=True)
for i in range(n):
    if i % 10 == 9:  # reopen now and then: opening while others write must be cheap and safe
        store.close()
        store = open_store()
    store.add(f"worker {w} private lesson {i}: " + " ".join(f"t{w}x{i}y{j}" for j in range(4)), "episodic_case")
    store.add("Everyone learns this same shared lesson", "skill_card")
    store.record_inclusion([shared], f"w{w}-run{i}")
    store.credit([shared], 1.0 if i % 2 else 0.0, f"w{w}-run{i}")
    store.credit([shared], 1.0, f"w{w}-run{i}")  # a retried credit: must not count twice
    store.set_status(flip, "archived" if (w + i) % 2 else "promoted", f"w{w} step {i}")
    if i == n // 2:
        try:
            store.rollback(taught, f"w{w} withdrew it")
            print("rollback ok", flush=True)
        except ValueError:
            print("rollback refused", flush=True)
print("done", flush=True)
"""

VICTIM = """
store = open_store()
print("ready", flush=True)
sys.stdin.readline()
i = 0
while True:
    mid = store.add(f"victim lesson {i}: " + " ".join(f"v{i}z{j}" for j in range(4)), "failure_pattern")
    store.promote(mid, "replay gain")
    print(mid, flush=True)
    i += 1
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


class _AlwaysSafe:
    def scan(self, text: str, kind: Any = None, scope: Any = None) -> SimpleNamespace:
        return SimpleNamespace(safe=True, threats=())


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The shared store: a SQLite file, or a fresh database on the test PostgreSQL server."""
    return str(tmp_path / "m.db") if request.param == "sqlite" else str(request.getfixturevalue("pg_url"))


def _seed(db: str) -> list[str]:
    with MemoryStore(db, embedder=None, scanner=_AlwaysSafe()) as store:
        return [
            store.add("The shared lesson everyone credits", "skill_card", status="promoted"),
            store.add("A lesson whose status everyone flips", "tool_policy", status="promoted"),
            store.add("Sort the name list before searching it", "skill_card", status="promoted"),
            store.add("Sort the price list before searching it", "skill_card", status="promoted"),
            store.add("Answer in metric units", "user_preference", status="promoted", made_by="human"),
        ]


def _start(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr and p.stderr.read()
    for p in procs:  # release every writer before waiting for any
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()  # communicate() closes it


def _finish(procs: list[subprocess.Popen[str]]) -> list[list[str]]:
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err
        lines = out.split("\n")
        assert lines[-2] == "done", out
        outs.append(lines)
    return outs


def _check_writers(db: str, ids: list[str], outs: list[list[str]], writers: int, n: int) -> None:
    shared, flip, old_a, old_b, taught = ids
    with MemoryStore(db, embedder=None) as store:
        m = store.get(shared)
        runs = writers * n
        assert (m.times_included, m.q_n) == (runs, runs)
        assert (m.helpful, m.harmful) == (writers * (n // 2), writers * (n - n // 2))
        assert store.conn.execute("SELECT COUNT(*) FROM credits").fetchone()[0] == runs
        texts = [x.text.split(":")[0] for x in store.list(kind="episodic_case")]
        assert sorted(texts) == sorted(
            f"worker {w} private lesson {i}" for w in range(writers) for i in range(n)
        )
        dup = [x for x in store.list(kind="skill_card") if x.text.startswith("Everyone")]
        assert len(dup) == 1 and dup[0].merges == runs - 1
        # status flips: a gap-free chain, one row per real change, ending at the current status
        chain = store.history(flip)
        assert all(b.old_status is a.new_status for a, b in itertools.pairwise(chain))
        assert all(h.old_status is not h.new_status for h in chain[1:])
        assert chain[-1].new_status is store.get(flip).status
        # contended supersede and rollback: applied exactly once
        sup = [line for lines in outs for line in lines if line.startswith("supersede ok")]
        rb = [line for lines in outs for line in lines if line == "rollback ok"]
        assert len(sup) == 1 and len(rb) == 1
        new = sup[0].split()[-1]
        assert store.get(new).supersedes == (old_a, old_b)
        assert {store.get(o).superseded_by for o in (old_a, old_b)} == {new}
        assert [h.new_status for h in store.history(old_a)] == [S.PROMOTED, S.ARCHIVED]
        assert [h.new_status for h in store.history(taught)] == [S.PROMOTED, S.REJECTED]
        store.verify()
        index = "memories WHERE tsv IS NOT NULL" if is_database_url(db) else "memories_fts"
        fts = store.conn.execute(f"SELECT COUNT(*) FROM {index}").fetchone()[0]
        assert fts == store.count()


def test_eight_writers_lose_no_update(db):
    ids = _seed(db)
    procs = [_spawn(WRITER, str(db), str(w), str(N), *ids) for w in range(WRITERS)]
    _start(procs)
    outs = _finish(procs)
    _check_writers(db, ids, outs, WRITERS, N)


def test_a_writer_killed_mid_run_costs_only_its_own_uncommitted_write(db):
    ids = _seed(db)
    writers = WRITERS - 1
    procs = [_spawn(WRITER, str(db), str(w), str(N), *ids) for w in range(writers)]
    victim = _spawn(VICTIM, str(db))
    _start([*procs, victim])
    assert victim.stdout is not None
    committed: list[str] = []
    try:
        while len(committed) < 25:
            line = victim.stdout.readline()
            if not line:
                pytest.fail(f"victim died early: {victim.stderr.read() if victim.stderr else ''}")
            committed.append(line.strip())
        os.kill(victim.pid, signal.SIGKILL)  # mid-write, while seven others write too
    finally:
        victim.kill()
        victim.wait(timeout=60)
    assert victim.returncode == -signal.SIGKILL
    outs = _finish(procs)
    _check_writers(db, ids, outs, writers, N)
    if not is_database_url(db):
        conn = sqlite3.connect(db)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        conn.close()
    with MemoryStore(db, embedder=None) as store:
        for mid in committed:  # each committed add + promote is whole
            assert store.get(mid).status is S.PROMOTED
        orphans = store.conn.execute(
            "SELECT COUNT(*) FROM memories m WHERE NOT EXISTS "
            "(SELECT 1 FROM status_history h WHERE h.memory_id = m.id)"
        ).fetchone()[0]
        assert orphans == 0
