"""Plumbing of a MemoryStore: connection, transactions, run-mode checks, reads."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, Self

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ReadOnlyModeError
from purpose_agent.memory import _schema
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.embeddings import DenseIndex, Embedder
from purpose_agent.memory.types import (
    Memory,
    MemoryKind,
    MemoryStatus,
    ReplayResult,
    Scanner,
    StatusChange,
    coerce_kind,
    coerce_status,
)

P = MemoryStatus
_list = list
EmbedderArg = Embedder | Literal["auto"] | None


def new_id() -> str:
    return "mem_" + uuid.uuid4().hex[:16]


def scan_text(scanner: Scanner | None, text: str, kind: Any = None, scope: Any = None) -> tuple[bool, str]:
    """(safe, reason) from a scanner, or the real ImmuneSystem when none is given."""
    if scanner is None:
        from purpose_agent.memory.immune import ImmuneSystem

        scanner = ImmuneSystem()
    result = scanner.scan(text, kind=kind, scope=scope)
    if result.safe:
        return True, ""
    parts = list(
        dict.fromkeys(f"{t.category}: {str(t.evidence)[:120]!r}" for t in getattr(result, "threats", ()))
    )
    return False, "immune scan: " + ("; ".join(parts) or "unsafe")


class StoreBase:
    """Connection, transactions, run-mode checks and reads of a MemoryStore."""

    def __init__(
        self,
        path: str | Path,
        *,
        mode: RunMode | str = RunMode.LEARNING_TRAIN,
        scanner: Scanner | None = None,
        embedder: EmbedderArg = "auto",
        q_weight: float = 0.5,
        dedupe_threshold: float = 0.8,
    ) -> None:
        self.path = Path(path)
        self.mode = RunMode(mode)
        self.q_weight = q_weight
        self.dedupe_threshold = dedupe_threshold
        self._scanner = scanner
        self._embedder_arg: EmbedderArg = embedder
        self._lock = threading.RLock()
        self._writes = 0
        self._dense = DenseIndex()
        self._conn: sqlite3.Connection | None = None
        self._conn = self._open()

    def _open(self) -> sqlite3.Connection:
        """Open the file and bring its schema up to date (another backend opens its database here)."""
        conn = _schema.connect(self.path, read_only=self.mode is RunMode.EVAL_TEST)
        try:
            _schema.migrate(conn, self.path, read_only=self.mode is RunMode.EVAL_TEST)
        except sqlite3.Error as exc:
            conn.close()
            raise _schema.translate(exc, self.path) or exc from exc
        except BaseException:
            conn.close()
            raise
        return conn

    # ------------------------------------------------------------------ plumbing
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError(f"memory store {str(self.path)!r} is closed")
        return self._conn

    def with_mode(self, mode: RunMode | str) -> Self:
        """Another store on the same file in another mode (the embedder and scanner are shared)."""
        return type(self)(
            self.path,
            mode=mode,
            scanner=self._scanner,
            embedder=self._embedder_arg,
            q_weight=self.q_weight,
            dedupe_threshold=self.dedupe_threshold,
        )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, mode={self.mode.value})"

    def _deny(self, what: str, allowed: str) -> ReadOnlyModeError:
        return ReadOnlyModeError(
            f"{what} is not allowed in {self.mode.name}: {allowed} (store {str(self.path)!r}). "
            "Use store.with_mode(RunMode.LEARNING_TRAIN) for learning writes."
        )

    def _require_write(self, what: str) -> None:
        if self.mode is RunMode.EVAL_TEST:
            raise self._deny(what, "EVAL_TEST writes nothing")
        if not self.mode.can_write:
            raise self._deny(what, "LEARNING_VALIDATION writes staging data only")

    def _require_stage(self, what: str) -> None:
        if not self.mode.can_stage:
            raise self._deny(what, "EVAL_TEST writes nothing")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (BEGIN IMMEDIATE … COMMIT), rolled back on any error. Read the
        state a write depends on inside it: another process may change it up to BEGIN."""
        with self._lock, self._sqlite_errors():
            conn = self.conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            self._writes += 1

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads, under the lock; a damaged page raises StoreCorruptError."""
        with self._lock, self._sqlite_errors():
            yield self.conn

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        """Turn SQLite's corrupt / read-only / cannot-open errors into the store's own errors."""
        try:
            yield
        except sqlite3.Error as exc:
            err = _schema.translate(exc, self.path)
            if err is None:
                raise
            raise err from exc

    def verify(self) -> None:
        """Run the full integrity check (``PRAGMA quick_check``, O(size): about 1 ms per MB).
        Opening a big store skips it; raises StoreCorruptError naming the file and the fix."""
        with self._lock:
            _schema.quick_check(self.conn, self.path)

    def _version(self) -> tuple[int, int]:
        row = self.conn.execute("PRAGMA data_version").fetchone()
        return int(row[0]), self._writes

    def _history(
        self, c: sqlite3.Connection, mid: str, old: P | None, new: P, reason: str, at: float | None = None
    ) -> None:
        c.execute(
            "INSERT INTO status_history (memory_id, old_status, new_status, reason, at) VALUES (?,?,?,?,?)",
            (mid, old.value if old else None, new.value, reason, time.time() if at is None else at),
        )

    def _get(self, c: sqlite3.Connection, mid: str) -> Memory:
        row = c.execute(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?", (mid,)).fetchone()
        if row is None:
            raise KeyError(f"no memory with id {mid!r} in {str(self.path)!r}")
        return row_to_memory(row)

    def scanner(self) -> Scanner:
        """The scanner in use: the one given, else the ImmuneSystem (imported on first use)."""
        if self._scanner is None:
            from purpose_agent.memory.immune import ImmuneSystem

            self._scanner = ImmuneSystem()
        return self._scanner

    def _scan(self, text: str, kind: Any = None, scope: Any = None) -> tuple[bool, str]:
        return scan_text(self.scanner(), text, kind, scope)

    # ------------------------------------------------------------------ reads
    def get(self, memory_id: str) -> Memory:
        """The memory with this id; KeyError when there is none."""
        with self._reading() as c:
            return self._get(c, memory_id)

    def list(
        self,
        kind: MemoryKind | str | None = None,
        status: MemoryStatus | str | None = None,
        scope: str | None = None,
        *,
        scope_key: str | None = None,
        limit: int | None = None,
    ) -> _list[Memory]:
        """Memories in insertion order, optionally filtered."""
        where, params = [], []
        for col, val in (
            ("kind", kind and coerce_kind(kind).value),
            ("status", status and coerce_status(status).value),
            ("scope", scope),
            ("scope_key", scope_key),
        ):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        sql = f"SELECT {MEMORY_COLUMNS} FROM memories" + (" WHERE " + " AND ".join(where) if where else "")
        sql += " ORDER BY seq" + (f" LIMIT {int(limit)}" if limit is not None else "")
        with self._reading() as c:
            return [row_to_memory(r) for r in c.execute(sql, params)]

    def history(self, memory_id: str) -> _list[StatusChange]:
        """Every status change of a memory, oldest first."""
        with self._reading() as c:
            rows = c.execute(
                "SELECT memory_id, old_status, new_status, reason, at FROM status_history "
                "WHERE memory_id = ? ORDER BY seq",
                (memory_id,),
            ).fetchall()
        return [StatusChange(r[0], P(r[1]) if r[1] else None, P(r[2]), r[3], r[4]) for r in rows]

    def replays(self, memory_id: str | None = None) -> _list[ReplayResult]:
        """Recorded memory-CI replay results (all, or of one memory)."""
        sql = "SELECT memory_id, with_scores, without_scores, gain, decision, reason, at FROM replay_results"
        args: tuple[str, ...] = ()
        if memory_id is not None:
            sql, args = sql + " WHERE memory_id = ?", (memory_id,)
        with self._reading() as c:
            rows = c.execute(sql + " ORDER BY seq", args).fetchall()
        return [
            ReplayResult(r[0], tuple(json.loads(r[1])), tuple(json.loads(r[2])), r[3], r[4], r[5], r[6])
            for r in rows
        ]

    def count(self, status: MemoryStatus | str | None = None) -> int:
        with self._reading() as c:
            if status is None:
                return int(c.execute("SELECT COUNT(*) FROM memories").fetchone()[0])
            q = "SELECT COUNT(*) FROM memories WHERE status = ?"
            return int(c.execute(q, (coerce_status(status).value,)).fetchone()[0])
