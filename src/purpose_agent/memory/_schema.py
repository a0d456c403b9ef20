"""SQLite schema of a memory store: DDL, versioned migrations, safe opening."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError, ReadOnlyModeError, StoreCorruptError, StorePathError
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
#: Opening runs the full ``PRAGMA quick_check`` (O(size), about 1 ms per MB) only on files up to
#: this size, or when the header claims more pages than the file holds. Bigger stores are checked
#: lazily: any read or write that meets a damaged page raises StoreCorruptError, and
#: ``MemoryStore.verify()`` runs the full check on demand.
FULL_CHECK_MAX_BYTES = 8 * 1024 * 1024
_HEADER_BYTES = 100

_V1 = """
CREATE TABLE memories (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    norm TEXT NOT NULL,
    status TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT 'global',
    scope_key TEXT,
    made_by TEXT NOT NULL,
    sources TEXT NOT NULL DEFAULT '[]',
    trust REAL NOT NULL,
    q REAL NOT NULL DEFAULT 0.5,
    q_n INTEGER NOT NULL DEFAULT 0,
    times_included INTEGER NOT NULL DEFAULT 0,
    helpful INTEGER NOT NULL DEFAULT 0,
    harmful INTEGER NOT NULL DEFAULT 0,
    merges INTEGER NOT NULL DEFAULT 0,
    supersedes TEXT NOT NULL DEFAULT '[]',
    superseded_by TEXT,
    meta TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX memories_kind_status ON memories(kind, status);
CREATE INDEX memories_status ON memories(status);
CREATE INDEX memories_norm ON memories(kind, norm);
CREATE VIRTUAL TABLE memories_fts USING fts5(
    text, content='memories', content_rowid='seq', tokenize='porter unicode61 remove_diacritics 2'
);
CREATE TRIGGER memories_ai AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER memories_au AFTER UPDATE OF text ON memories BEGIN
    INSERT INTO memories_fts(memories_fts, rowid, text) VALUES ('delete', old.seq, old.text);
    INSERT INTO memories_fts(rowid, text) VALUES (new.seq, new.text);
END;
CREATE TRIGGER memories_never_deleted BEFORE DELETE ON memories BEGIN
    SELECT RAISE(ABORT, 'memories are never deleted: reject, archive or supersede them instead');
END;
CREATE TABLE status_history (
    seq INTEGER PRIMARY KEY,
    memory_id TEXT NOT NULL,
    old_status TEXT,
    new_status TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX status_history_memory ON status_history(memory_id, seq);
CREATE TABLE inclusions (
    run_id TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    staging INTEGER NOT NULL DEFAULT 0,
    at REAL NOT NULL,
    PRIMARY KEY (run_id, memory_id)
);
CREATE TABLE credits (
    run_id TEXT NOT NULL,
    memory_id TEXT NOT NULL,
    outcome REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (run_id, memory_id)
);
CREATE TABLE replay_results (
    seq INTEGER PRIMARY KEY,
    memory_id TEXT NOT NULL,
    with_scores TEXT NOT NULL,
    without_scores TEXT NOT NULL,
    gain REAL NOT NULL,
    decision TEXT NOT NULL,
    reason TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX replay_results_memory ON replay_results(memory_id);
"""

_V2 = """
CREATE TABLE embeddings (
    memory_id TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vec BLOB NOT NULL
);
"""

#: Ordered migrations: version -> DDL script. Append only; never edit a released one.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2}
SCHEMA_VERSION = max(MIGRATIONS)


def _split(script: str) -> list[str]:
    """Split a DDL script into statements (triggers contain ';' inside BEGIN … END)."""
    out: list[str] = []
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def corrupt(path: Path, detail: str) -> StoreCorruptError:
    return StoreCorruptError(
        f"memory store {str(path)!r} is corrupt or not a memory store ({detail}). Nothing was "
        f"changed or recreated. Fix: restore the file from a backup, or move it aside and import "
        f"a JSONL export into a new store (MemoryStore(new_path).import_jsonl(export_path))."
    )


def path_error(path: Path, problem: str, fix: str) -> StorePathError:
    return StorePathError(f"cannot use {str(path)!r} as a memory store: {problem}. Fix: {fix}.")


def read_only_file(path: Path, detail: str) -> ReadOnlyModeError:
    return ReadOnlyModeError(
        f"memory store {str(path)!r} is read-only on disk, so it cannot be written ({detail}). Fix: "
        f"make the file and its folder writable, or open it with mode=RunMode.EVAL_TEST to only read it."
    )


def translate(exc: sqlite3.Error, path: Path) -> Exception | None:
    """The store's own error for a SQLite error (corrupt file, read-only file, cannot open), else None."""
    name, msg = str(getattr(exc, "sqlite_errorname", "") or ""), str(exc)
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in msg or "not a database" in msg:
        return corrupt(path, msg)
    if name.startswith("SQLITE_READONLY") or "readonly database" in msg:
        return read_only_file(path, msg)
    if name.startswith("SQLITE_CANTOPEN"):
        return path_error(path, f"SQLite cannot open it ({msg})", "check the path and its permissions")
    return None


def check_path(path: Path, *, read_only: bool) -> None:
    """Refuse a path that cannot hold a store, with the store's own error; creates missing folders."""
    if path.is_dir():
        raise path_error(path, "it is a directory", f"pass a file path, such as {str(path / 'memory.db')!r}")
    if read_only:
        return
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise path_error(path, f"{str(existing)!r} is a file, not a folder", "choose a path under a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise path_error(
            path, f"its folder cannot be created ({exc.strerror or exc})", "choose a writable location"
        ) from exc
    if not path.exists() and not os.access(path.parent, os.W_OK | os.X_OK):
        raise path_error(
            path, f"the folder {str(path.parent)!r} is not writable", "choose a writable location"
        )


class _Connection(sqlite3.Connection):
    """A store's connection (a subclass only so this process can track its open ones)."""


#: the store connections this process opened, per resolved file path (see ``held_here``)
_HELD: dict[str, weakref.WeakSet[_Connection]] = {}
_HELD_LOCK = threading.Lock()


def _is_open(conn: sqlite3.Connection) -> bool:
    try:
        conn.in_transaction  # noqa: B018 - raises on a closed connection
    except sqlite3.ProgrammingError:
        return False
    return True


def held_here(path: Path) -> bool:
    """Whether this process holds an open store connection to ``path``.

    Such a process must not open (and close) another descriptor of the file: closing any
    descriptor drops all of the process's POSIX locks on it, SQLite's included, so another
    process that closes its last connection takes itself for the last one and deletes the WAL
    this process still writes to (its commits are then lost to every other process)."""
    with _HELD_LOCK:
        return any(_is_open(c) for c in list(_HELD.get(str(path.resolve()), ())))


def _hold(path: Path, conn: _Connection) -> None:
    with _HELD_LOCK:
        _HELD.setdefault(str(path.resolve()), weakref.WeakSet()).add(conn)


def check_header(path: Path) -> bytes:
    """Reject a non-empty file that is not SQLite before SQLite touches it; returns the header
    (the first 100 bytes, or b'' for a missing or empty file). Call it only when this process
    holds no connection to the file (``held_here``)."""
    if not path.exists() or path.stat().st_size == 0:
        return b""
    with path.open("rb") as fh:
        head = fh.read(_HEADER_BYTES)
    if head[: len(SQLITE_MAGIC)] != SQLITE_MAGIC:
        raise corrupt(path, "the file does not start with the SQLite header")
    return head


def needs_full_check(path: Path, head: bytes) -> bool:
    """True for a small file (the check costs little), a short header, or a header that claims
    more pages than the file holds (a truncated copy). O(1): reads no page."""
    if not head:
        return False
    size = path.stat().st_size
    if size <= FULL_CHECK_MAX_BYTES or len(head) < _HEADER_BYTES:
        return True
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        return True
    counter, pages, valid_for = (int.from_bytes(head[i : i + 4], "big") for i in (24, 28, 92))
    # A checkpoint in progress can make this true for a healthy file: it only triggers the check.
    return valid_for == counter and pages * page_size > size


def quick_check(conn: sqlite3.Connection, path: Path) -> None:
    """The full integrity check (``PRAGMA quick_check``, O(size)); raises StoreCorruptError."""
    try:
        row = conn.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise translate(exc, path) or corrupt(path, str(exc)) from exc
    if row is None or row[0] != "ok":
        raise corrupt(path, f"quick_check: {row[0] if row else 'no answer'}")


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open the file: read-only through a ``mode=ro`` URI, else read-write with WAL. The cost does
    not grow with the store (see FULL_CHECK_MAX_BYTES)."""
    check_path(path, read_only=read_only)
    # the header was checked when this process opened its first connection to the file; reading
    # it again would drop the process's locks on the file (see held_here)
    head = b"" if held_here(path) else check_header(path)
    try:
        if read_only:
            if not path.exists():
                raise ReadOnlyModeError(
                    f"EVAL_TEST opens memory stores read-only and {str(path)!r} does not exist; "
                    "it cannot be created in this mode (create it in LEARNING_TRAIN, or run without memory)"
                )
            uri = f"{path.resolve().as_uri()}?mode=ro"
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, factory=_Connection
            )
        else:
            conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, factory=_Connection
            )
    except sqlite3.Error as exc:
        raise translate(exc, path) or exc from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if needs_full_check(path, head):
            quick_check(conn, path)
        if schema_version(conn) < 0:
            raise corrupt(path, "it is a SQLite file without a schema_version table")
        if not read_only:  # only once the file is known to be ours: this pragma writes the header
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        err = translate(exc, path)
        if err is None and isinstance(exc, sqlite3.OperationalError):
            raise  # e.g. still locked after the busy timeout: not a damaged file
        raise err or corrupt(path, str(exc)) from exc
    except (StoreCorruptError, StorePathError, ReadOnlyModeError):
        conn.close()
        raise
    _hold(path, conn)
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    """0 for an empty database; raises for a database that holds other tables."""
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "schema_version" not in names:
        return -1 if names else 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection, path: Path, *, read_only: bool, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema to ``target`` in one transaction; returns the version found."""
    found = schema_version(conn)
    if found < 0:
        raise corrupt(path, "it is a SQLite file without a schema_version table")
    if found > SCHEMA_VERSION:
        raise ConfigurationError(
            f"memory store {str(path)!r} has schema version {found}, newer than this purpose-agent "
            f"understands ({SCHEMA_VERSION}); upgrade purpose-agent"
        )
    if found >= target:
        return found
    if read_only:
        raise ReadOnlyModeError(
            f"memory store {str(path)!r} has schema version {found} and needs migrating to "
            f"{target}; open it once in LEARNING_TRAIN first (EVAL_TEST changes nothing)"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = schema_version(conn)  # another process may have migrated meanwhile
        if found == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, at REAL NOT NULL)")
        for version in range(found + 1, target + 1):
            for stmt in _split(MIGRATIONS[version]):
                conn.execute(stmt)
            conn.execute("INSERT INTO schema_version VALUES (?, strftime('%s','now'))", (version,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found


MEMORY_COLUMNS = (
    "id, kind, text, status, scope, scope_key, made_by, sources, trust, q, q_n, times_included, "
    "helpful, harmful, merges, supersedes, superseded_by, meta, created_at, updated_at"
)


def row_to_memory(row: tuple[Any, ...] | sqlite3.Row) -> Memory:
    """Build a Memory from a row selected with MEMORY_COLUMNS (in that order)."""
    return Memory(
        id=row[0],
        kind=MemoryKind(row[1]),
        text=row[2],
        status=MemoryStatus(row[3]),
        scope=row[4],
        scope_key=row[5],
        made_by=row[6],
        sources=tuple(json.loads(row[7])),
        trust=float(row[8]),
        q=float(row[9]),
        q_n=int(row[10]),
        times_included=int(row[11]),
        helpful=int(row[12]),
        harmful=int(row[13]),
        merges=int(row[14]),
        supersedes=tuple(json.loads(row[15])),
        superseded_by=row[16],
        meta=json.loads(row[17]),
        created_at=float(row[18]),
        updated_at=float(row[19]),
    )
