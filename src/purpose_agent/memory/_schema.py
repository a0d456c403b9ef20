"""SQLite schema of a memory store: DDL, versioned migrations, safe opening."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError, ReadOnlyModeError, StoreCorruptError
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus

SQLITE_MAGIC = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000

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


def check_header(path: Path) -> None:
    """Reject a non-empty file that is not SQLite before SQLite touches it."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb") as fh:
        head = fh.read(len(SQLITE_MAGIC))
    if head != SQLITE_MAGIC:
        raise corrupt(path, "the file does not start with the SQLite header")


def connect(path: Path, *, read_only: bool) -> sqlite3.Connection:
    """Open the file: read-only through a ``mode=ro`` URI, else read-write with WAL."""
    check_header(path)
    if read_only:
        if not path.exists():
            raise ReadOnlyModeError(
                f"EVAL_TEST opens memory stores read-only and {str(path)!r} does not exist; "
                "it cannot be created in this mode (create it in LEARNING_TRAIN, or run without memory)"
            )
        uri = f"{path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        row = conn.execute("PRAGMA quick_check").fetchone()
        if row is None or row[0] != "ok":
            raise corrupt(path, f"quick_check: {row[0] if row else 'no answer'}")
        if schema_version(conn) < 0:
            raise corrupt(path, "it is a SQLite file without a schema_version table")
        if not read_only:  # only once the file is known to be ours: this pragma writes the header
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise corrupt(path, str(exc)) from exc
    except StoreCorruptError:
        conn.close()
        raise
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
