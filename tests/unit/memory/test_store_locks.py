"""A process that opens one SQLite store file twice (``with_mode``, as every gate does) keeps its
SQLite locks on the file, so another process that closes its connection never deletes the WAL
this process still commits to (its later commits would be lost to every other process)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from purpose_agent.core.modes import RunMode
from purpose_agent.memory import _schema
from purpose_agent.memory.store import MemoryStore

READ = "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); print(c.execute('SELECT status FROM memories WHERE id = ?', (sys.argv[2],)).fetchone()[0]); c.close()"


def _status_elsewhere(path: Path, mid: str) -> str:
    """The memory's status as another process reads it (it opens, reads and closes the file)."""
    done = subprocess.run(
        [sys.executable, "-c", READ, str(path), mid], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _second_open_then_commit(path: Path) -> tuple[str, str]:
    with MemoryStore(path, embedder=None) as store:
        mid = store.add("Prefer the standard library.", "tool_policy")
        with store.with_mode(RunMode.LEARNING_VALIDATION):  # the file opened again in this process
            before = _status_elsewhere(path, mid)
            store.quarantine(mid, "scanned")
            return before, _status_elsewhere(path, mid)


def test_a_commit_after_a_second_open_is_seen_by_other_processes(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    assert _second_open_then_commit(path) == ("candidate", "quarantined")


def test_without_the_guard_the_commit_is_lost_to_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure the guard prevents: reading the header again drops this process's locks."""
    monkeypatch.setattr(_schema, "held_here", lambda path: False)
    assert _second_open_then_commit(tmp_path / "m.sqlite") == ("candidate", "candidate")
