"""The SQLite checkpoint file of flow runs: one row per run, one row per node execution.

After every node, its record, the new state and the next node are written in one transaction,
so a process killed at any moment leaves the last completed node's checkpoint behind.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError

DONE_SIGNAL = "__done__"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS flow_runs(
    run_id TEXT PRIMARY KEY,
    flow TEXT NOT NULL,
    status TEXT NOT NULL,
    initial TEXT NOT NULL,
    state TEXT NOT NULL,
    last_node TEXT,
    next_node TEXT,
    steps INTEGER NOT NULL,
    error TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS flow_steps(
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    node TEXT NOT NULL,
    input_keys TEXT NOT NULL,
    output TEXT,
    duration REAL NOT NULL,
    error TEXT,
    PRIMARY KEY(run_id, seq)
);
"""


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """One node execution: which node, the state keys it saw, what it returned, how long, any error."""

    node: str
    input_keys: tuple[str, ...]
    output: Any
    duration_s: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A checkpointed run: its id, status (running, failed, done), where it goes next, steps done."""

    run_id: str
    status: str
    next_node: str | None
    steps: int
    error: str | None
    updated: float


@dataclass(slots=True)
class StoredRun:
    status: str
    initial: dict[str, Any]
    state: dict[str, Any]
    last_node: str | None
    next_node: str | None
    steps: int
    records: list[NodeRecord]


class Checkpoints:
    """The SQLite checkpoint file of flow runs, or nothing at all (``path=None``)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> Checkpoints:
        if self.path is None:
            return self
        if self.path.is_dir():
            raise ConfigurationError(
                f"flow checkpoint path {str(self.path)!r} is a directory; pass a file path"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigurationError(f"cannot open flow checkpoint file {str(self.path)!r}: {exc}") from exc
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise ConfigurationError(
                f"flow checkpoint file {str(self.path)!r} is not a checkpoint database: {exc}"
            ) from exc
        self.conn = conn
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def _tx(self, statements: list[tuple[str, tuple[Any, ...]]]) -> None:
        if self.conn is None:
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                self.conn.execute(sql, params)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def start(self, run_id: str, flow: str, state: dict[str, Any]) -> None:
        now = time.time()
        blob = json.dumps(state)
        self._tx(
            [
                (
                    "INSERT INTO flow_runs(run_id, flow, status, initial, state, steps, created, updated) "
                    "VALUES (?, ?, 'running', ?, ?, 0, ?, ?)",
                    (run_id, flow, blob, blob, now, now),
                )
            ]
        )

    def set_next(self, run_id: str, node: str) -> None:
        self._tx(
            [
                (
                    "UPDATE flow_runs SET next_node = ?, updated = ? WHERE run_id = ?",
                    (node, time.time(), run_id),
                )
            ]
        )

    def step(
        self,
        run_id: str,
        record: NodeRecord,
        state: dict[str, Any] | None,
        last: str,
        nxt: str | None,
        steps: int,
        failed: str | None = None,
    ) -> None:
        """Record one node execution and move the run on, in one transaction."""
        if self.conn is None:
            return
        seq = int(
            self.conn.execute("SELECT count(*) FROM flow_steps WHERE run_id = ?", (run_id,)).fetchone()[0]
        )
        output = json.dumps(record.output, default=repr) if record.output is not None else None
        run_sql = (
            "UPDATE flow_runs SET status = ?, error = ?, last_node = ?, next_node = ?, steps = ?, updated = ?"
            + (", state = ?" if state is not None else "")
            + " WHERE run_id = ?"
        )
        params: tuple[Any, ...] = ("failed" if failed else "running", failed, last, nxt, steps, time.time())
        params += (json.dumps(state),) if state is not None else ()
        self._tx(
            [
                (
                    "INSERT INTO flow_steps(run_id, seq, node, input_keys, output, duration, error) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        run_id,
                        seq,
                        record.node,
                        json.dumps(list(record.input_keys)),
                        output,
                        record.duration_s,
                        record.error,
                    ),
                ),
                (run_sql, (*params, run_id)),
            ]
        )

    def fail(self, run_id: str, error: str) -> None:
        self._tx(
            [
                (
                    "UPDATE flow_runs SET status = 'failed', error = ?, updated = ? WHERE run_id = ?",
                    (error, time.time(), run_id),
                )
            ]
        )

    def finish(self, run_id: str) -> None:
        self._tx(
            [
                (
                    "UPDATE flow_runs SET status = 'done', error = NULL, next_node = ?, updated = ? WHERE run_id = ?",
                    (DONE_SIGNAL, time.time(), run_id),
                )
            ]
        )

    def runs(self, flow: str) -> list[RunInfo]:
        if self.conn is None:
            return []
        rows = self.conn.execute(
            "SELECT run_id, status, next_node, steps, error, updated FROM flow_runs WHERE flow = ? "
            "ORDER BY updated DESC, run_id",
            (flow,),
        ).fetchall()
        return [RunInfo(r[0], r[1], r[2], int(r[3]), r[4], float(r[5])) for r in rows]

    def load(self, run_id: str, flow: str) -> StoredRun:
        if self.conn is None:
            raise ConfigurationError("this flow has checkpoint=None, so there is no run to resume")
        row = self.conn.execute(
            "SELECT flow, status, initial, state, last_node, next_node, steps FROM flow_runs WHERE run_id = ?",
            (run_id,),
        ).fetchone()
        if row is None:
            raise ConfigurationError(f"no run {run_id!r} in the flow checkpoint file {str(self.path)!r}")
        if row[0] != flow:
            raise ConfigurationError(f"run {run_id!r} belongs to flow {row[0]!r}, not to flow {flow!r}")
        steps = self.conn.execute(
            "SELECT node, input_keys, output, duration, error FROM flow_steps WHERE run_id = ? ORDER BY seq",
            (run_id,),
        ).fetchall()
        records = [
            NodeRecord(n, tuple(json.loads(k)), json.loads(o) if o is not None else None, float(d), e)
            for n, k, o, d, e in steps
        ]
        return StoredRun(row[1], json.loads(row[2]), json.loads(row[3]), row[4], row[5], int(row[6]), records)
