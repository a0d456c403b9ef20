"""PostgresStore: the memory store on a PostgreSQL server, for a team on several machines.

``MemoryStore("postgresql://user:pw@host:5432/db")`` (or ``MemoryStore.connect(url)``) returns
one; extra ``postgres`` (psycopg 3). Same semantics as the SQLite store, because it *is* that
store: every rule (dedupe, scanning, supersede, rollback, credit, run modes) is
``MemoryStore``'s own code, run on a connection that speaks PostgreSQL. What differs:

- **Transactions with row locks.** A write is one READ COMMITTED transaction; every memory row
  it reads is read ``FOR UPDATE``, so a concurrent writer on another machine waits for it and
  then sees its result (no lost update). ``add`` also takes a transaction-scoped advisory lock
  on (kind, scope), so two machines adding the same lesson at once merge it, as on SQLite.
  A deadlock or a serialization failure rolls the whole transaction back and the call is run
  again; a dropped connection is reconnected and the call run again once, unless it had
  already committed something or the drop came during COMMIT (then StoreUnavailableError says
  the outcome is unknown). A transaction is never half-applied.
- **EVAL_TEST** connects with ``default_transaction_read_only = on``: the server itself refuses
  every write, on top of the store's own checks.
- **Recall** is full text over a stored ``tsvector`` (GIN index; ``ts_rank`` scaled so the best
  is 1.0), then the same Q re-rank as SQLite.
- **Migrations** are numbered (``_pg_schema.MIGRATIONS``) and run under an advisory lock.
- **Schemas**: ``PostgresStore(url, schema="team_a")`` keeps the store in that schema of the
  database (created on first open in a learning mode), so one database can hold several
  isolated memory spaces; without it, the connection's ``search_path`` decides (``public``).
- **Errors**: an unreachable server or a wrong URL raises StoreUnavailableError /
  ConfigurationError naming host and database, the password shown as ``***``.
"""

from __future__ import annotations

import functools
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar, cast

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ReadOnlyModeError, StoreCorruptError, StoreUnavailableError
from purpose_agent.memory import _pg_schema
from purpose_agent.memory._base import EmbedderArg
from purpose_agent.memory._pg_recall import Recall
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.protocol import MemoryStoreProtocol
from purpose_agent.memory.retrieval import Filters
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import Memory, MemoryKind, Scanner

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore", "translate_sql"]

T = TypeVar("T")
_list = list
#: Attempts of a call that meets a deadlock or a serialization failure (each attempt is whole).
CONFLICT_ATTEMPTS = 5
#: Conflict targets of the tables SQLite's ``INSERT OR REPLACE`` is used on.
_PRIMARY_KEYS = {
    "embeddings": ("memory_id",),
    "inclusions": ("run_id", "memory_id"),
    "credits": ("run_id", "memory_id"),
}


# ------------------------------------------------------------------ SQL dialect
def _placeholders(sql: str) -> str:
    """``?`` to ``%s`` and ``%`` to ``%%``, outside string literals."""
    out, quote = [], ""
    for ch in sql:
        if quote:
            out.append("%%" if ch == "%" else ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


_IS_PARAM = re.compile(r"\bIS\s+\?", re.I)
_SCALAR_MAX = re.compile(r"\bMAX\(\s*([\w.]+)\s*,\s*([^(),]+?)\s*\)", re.I)
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.I | re.S)
_LOCKABLE = re.compile(
    r"^\s*SELECT\b(?!.*(\bJOIN\b|\bGROUP\s+BY\b|\bCOUNT\s*\(|\bDISTINCT\b|\bUNION\b|\bFOR\s+UPDATE\b))"
    r".*\bFROM\s+memories\b(?!\s*,)",
    re.I | re.S,
)


@functools.lru_cache(maxsize=512)
def translate_sql(sql: str, lock_rows: bool = False) -> str:
    """The PostgreSQL form of a statement the SQLite store runs: ``?`` placeholders, ``IS ?``,
    scalar ``MAX(a, b)``, ``INSERT OR IGNORE / REPLACE``; with ``lock_rows`` (inside a write
    transaction) a plain read of ``memories`` gets ``FOR UPDATE``."""
    s = _IS_PARAM.sub("IS NOT DISTINCT FROM ?", sql)
    s = _SCALAR_MAX.sub(r"GREATEST(\1, \2)", s)
    m = _INSERT_OR.match(s)
    if m:
        how, table, cols = m.group(1).upper(), m.group(2), [c.strip() for c in m.group(3).split(",")]
        s = f"INSERT INTO {table} ({', '.join(cols)})" + s[m.end() :]
        if how == "IGNORE":
            s += " ON CONFLICT DO NOTHING"
        else:
            keys = _PRIMARY_KEYS[table.lower()]
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in cols if c not in keys)
            s += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    if lock_rows and _LOCKABLE.match(s):
        s += " FOR UPDATE"
    return _placeholders(s)


class _PgConnection:
    """What the store's code calls a connection (``execute``, ``executemany``, ``close``), on a
    psycopg connection: each statement is translated once (cached) to PostgreSQL."""

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.lock_rows = False  # True inside a write transaction

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(translate_sql(sql, self.lock_rows), tuple(params))

    def executemany(self, sql: str, rows: Any) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        cur.executemany(translate_sql(sql, False), [tuple(r) for r in rows])
        return cur

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status is not TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


# ------------------------------------------------------------------ retries
def _retrying(method: Callable[..., T]) -> Callable[..., T]:
    """Run a store call again when its transaction was rolled back by a deadlock or a
    serialization failure, and once after a dropped connection (reconnected) if nothing of the
    call had committed. Only the outermost store call retries; nested ones let it."""

    @functools.wraps(method)
    def call(self: PostgresStore, *args: Any, **kwargs: Any) -> T:
        from psycopg import errors as pg_errors

        state = self._call_state
        if getattr(state, "depth", 0):
            return method(self, *args, **kwargs)
        reconnected = False
        attempt = 0
        while True:
            attempt += 1
            state.depth, state.committed, state.committing = 1, 0, False
            try:
                return method(self, *args, **kwargs)
            except (pg_errors.DeadlockDetected, pg_errors.SerializationFailure):
                if attempt >= CONFLICT_ATTEMPTS or state.committed:
                    raise
            except StoreUnavailableError as exc:
                if state.committing:
                    raise StoreUnavailableError(
                        f"{exc} The connection dropped during COMMIT: whether this write was applied "
                        "is unknown (it was applied whole or not at all); read the store before retrying it."
                    ) from None
                if reconnected or state.committed or not exc.args[0].startswith("lost"):
                    raise
                reconnected = True
                self._reconnect()
            finally:
                state.depth = 0

    return call


class PostgresStore(MemoryStore):
    """A MemoryStore on a PostgreSQL database. See the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        mode: RunMode | str = RunMode.LEARNING_TRAIN,
        scanner: Scanner | None = None,
        embedder: EmbedderArg = "auto",
        q_weight: float = 0.5,
        dedupe_threshold: float = 0.8,
        schema: str | None = None,
    ) -> None:
        self._dsn = str(path).strip()
        #: The URL with the password shown as ``***``.
        self.url = _pg_schema.redact(self._dsn)
        #: The schema the store lives in (None: the connection's ``search_path``).
        self.schema = _pg_schema.check_schema(schema) if schema is not None else None
        #: What messages and reports name: the URL, and the schema if any.
        self.where = self.url if schema is None else f"{self.url} (schema {schema})"
        self._call_state = threading.local()
        self._pg: _PgConnection | None = None
        self._fulltext = Recall()
        super().__init__(
            self.where,
            mode=mode,
            scanner=scanner,
            embedder=embedder,
            q_weight=q_weight,
            dedupe_threshold=dedupe_threshold,
        )

    # ------------------------------------------------------------------ plumbing
    def _open(self) -> sqlite3.Connection:
        read_only = self.mode is RunMode.EVAL_TEST
        raw = _pg_schema.connect(self._dsn, read_only=read_only)
        try:
            if self.schema is not None:
                _pg_schema.use_schema(raw, self.schema, create=not read_only)
            _pg_schema.migrate(raw, self.where, read_only=read_only)
        except BaseException:
            raw.close()
            raise
        self._pg = _PgConnection(raw)
        # The store's code is typed against sqlite3.Connection; this object has the part it uses.
        return cast(sqlite3.Connection, self._pg)

    def _reconnect(self) -> None:
        with self._lock:
            if self._pg is not None:
                self._pg.raw.close()
            self._conn = None
            self._conn = self._open()

    @property
    def _raw(self) -> psycopg.Connection[Any]:
        self.conn  # noqa: B018 - raises "closed" like the SQLite store
        assert self._pg is not None
        return self._pg.raw

    def with_mode(self, mode: RunMode | str) -> Self:
        return type(self)(
            self._dsn,
            mode=mode,
            scanner=self._scanner,
            embedder=self._embedder_arg,
            q_weight=self.q_weight,
            dedupe_threshold=self.dedupe_threshold,
            schema=self.schema,
        )

    def __repr__(self) -> str:
        schema = f", schema={self.schema!r}" if self.schema is not None else ""
        return f"{type(self).__name__}({self.url!r}{schema}, mode={self.mode.value})"

    def _deny(self, what: str, allowed: str) -> ReadOnlyModeError:
        return ReadOnlyModeError(
            f"{what} is not allowed in {self.mode.name}: {allowed} (store {self.where}). "
            "Use store.with_mode(RunMode.LEARNING_TRAIN) for learning writes."
        )

    @contextmanager
    def _pg_errors(self) -> Iterator[None]:
        """psycopg's errors as the store's own: a lost connection, a write refused read-only."""
        import psycopg
        from psycopg import errors as pg_errors

        try:
            yield
        except pg_errors.ReadOnlySqlTransaction as exc:
            raise self._deny("writing", "EVAL_TEST writes nothing (the server refused it)") from exc
        except psycopg.OperationalError as exc:
            if isinstance(
                exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure | pg_errors.LockNotAvailable
            ):
                raise
            raw = self._pg.raw if self._pg is not None else None
            if raw is None or raw.closed or raw.broken:
                err = _pg_schema.unavailable(self._dsn, exc, "reach")
                raise StoreUnavailableError("lost the connection: " + str(err)) from None
            raise

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (READ COMMITTED; memory rows read FOR UPDATE), rolled back on
        any error."""
        with self._lock, self._pg_errors():
            conn, raw = self.conn, self._raw
            assert self._pg is not None
            state = self._call_state
            raw.execute("BEGIN")
            self._pg.lock_rows = True
            try:
                raw.execute(f"SELECT nextval('{_pg_schema.WRITES_SEQ}')")
                yield conn
                self._pg.lock_rows = False
                state.committing = True
                raw.execute("COMMIT")
                state.committing = False
                state.committed = getattr(state, "committed", 0) + 1
            except BaseException:
                self._pg.lock_rows = False
                if not raw.closed and not raw.broken and self._pg.in_transaction:
                    raw.execute("ROLLBACK")
                raise
            self._writes += 1

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads, under the lock. As on SQLite, each read statement sees
        its own snapshot (no transaction around a read: a retrieve costs no extra round trip);
        a write transaction's reads see it."""
        with self._lock, self._pg_errors():
            yield self.conn

    @contextmanager
    def _sqlite_errors(self) -> Iterator[None]:
        with self._pg_errors():
            yield

    def verify(self) -> None:
        """Check the schema is this version's and every table answers; StoreCorruptError if not."""
        with self._reading():
            found = _pg_schema.schema_version(self._raw, self.where)
            if found != _pg_schema.SCHEMA_VERSION:
                raise StoreCorruptError(
                    f"memory store {self.where} has schema version {found}, expected {_pg_schema.SCHEMA_VERSION}"
                )
            for table in (
                "memories",
                "status_history",
                "inclusions",
                "credits",
                "replay_results",
                "embeddings",
            ):
                self._raw.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()

    def _version(self) -> tuple[int, int]:
        row = self._raw.execute(f"SELECT last_value FROM {_pg_schema.WRITES_SEQ}").fetchone()
        return int(row[0]) if row else 0, self._writes

    def _get(self, c: sqlite3.Connection, mid: str) -> Memory:
        row = c.execute(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?", (mid,)).fetchone()
        if row is None:
            raise KeyError(f"no memory with id {mid!r} in {self.where}")
        return row_to_memory(row)

    def status_report(self, *, top: int = 10) -> dict[str, Any]:
        report = super().status_report(top=top)
        report["path"] = self.where
        return report

    # ------------------------------------------------------------------ the two differences
    def _find_duplicate(
        self, c: sqlite3.Connection, text: str, kind: MemoryKind, scope: str, key: str | None, dedupe: str
    ) -> Memory | None:
        """As on SQLite, with adds of one (kind, scope) serialised by an advisory lock (so two
        machines adding the same lesson merge it), and the duplicate re-read FOR UPDATE."""
        if dedupe == "none":
            return None
        where = f"|{self.schema}" if self.schema is not None else ""  # stores of other schemas: no wait
        self._raw.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"add|{kind.value}|{scope}{where}",)
        )
        dup = super()._find_duplicate(c, text, kind, scope, key, dedupe)
        return self._get(c, dup.id) if dup is not None else None

    def _recall_lexical(
        self, c: sqlite3.Connection, query: str, pool: int, f: Filters
    ) -> _list[tuple[Memory, float]]:
        """Full-text recall over the GIN-indexed ``tsv`` (``_pg_recall``: the words FTS5 gets,
        pruned like FTS5's, ranked by ``ts_rank``); relevance scaled so the best is 1.0."""
        return self._fulltext.recall(self._raw, query, pool, f, translate_sql)


# Every public call that talks to the server retries as _retrying says (nested calls do not).
for _name in (
    "add",
    "set_status",
    "supersede",
    "rollback",
    "record_inclusion",
    "credit",
    "record_replay",
    "index_embeddings",
    "import_jsonl",
    "get",
    "list",
    "history",
    "replays",
    "count",
    "retrieve",
    "retrieve_mixture",
    "status_report",
    "export",
    "verify",
):
    setattr(PostgresStore, _name, _retrying(getattr(PostgresStore, _name)))

if TYPE_CHECKING:  # both backends satisfy the protocol (checked by mypy)

    def _sqlite(s: MemoryStore) -> MemoryStoreProtocol:
        return s

    def _postgres(s: PostgresStore) -> MemoryStoreProtocol:
        return s
