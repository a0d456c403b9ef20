"""The arms' memories of a BenchmarkRunner on PostgreSQL (``BenchmarkRunner(memory_url=...)``).

Each (arm, seed) gets its own schema of the database, ``pa_<name>_<token>_<arm>_s<seed>``, so
no arm sees another's memories; the token is drawn once per results folder and kept in it
(``memory/postgres.json``), so a resume finds the same schemas and another benchmark of the
same name (another ``out_dir``) never touches them. Checkpoints are schemas too
(``..._c<units>``), each written in one transaction (a crash leaves the previous one whole), so
every machine that reaches the database sees the memory the driver wrote; the results folder
only holds the ledger, the reports and the token. The ``reflection`` baseline's reflections are
a table of its schema (``PgReflections``, append-only), checkpointed with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError
from purpose_agent.memory import _pg_schema
from purpose_agent.memory.protocol import is_database_url

if TYPE_CHECKING:
    import psycopg

    from purpose_agent.memory.postgres import PostgresStore

#: The tables of a store that hold its data (``schema_version`` is written by the migration).
TABLES = ("memories", "status_history", "inclusions", "credits", "replay_results", "embeddings")
#: The ``reflection`` baseline's table (in its arm's schema; no store there).
REFLECTIONS = "reflections"
_REFLECTIONS_DDL = (
    "CREATE TABLE IF NOT EXISTS {schema}.reflections (id bigserial PRIMARY KEY, text text NOT NULL)"
)


def _slug(text: str, limit: int) -> str:
    """``text`` as a lower-case identifier part of at most ``limit`` characters (a hash when cut)."""
    s = re.sub(r"[^a-z0-9_]+", "_", text.lower()).strip("_") or "x"
    if len(s) <= limit:
        return s
    return s[: limit - 9] + "_" + hashlib.sha1(text.encode()).hexdigest()[:8]


def _q(schema: str) -> str:
    return f'"{_pg_schema.check_schema(schema)}"'


@dataclass(frozen=True)
class PgMemory:
    """Where a benchmark's arms keep their memory: ``url`` (password included: workers connect
    with it) and this benchmark's schema ``prefix``."""

    url: str
    prefix: str

    @classmethod
    def for_benchmark(cls, url: str, root: Path, name: str) -> PgMemory:
        """The arms' memories of the benchmark in ``root``: the server is reached first (a
        StoreUnavailableError naming host and database, password ``***``, when it cannot be),
        then the schema prefix is read from ``root`` or drawn."""
        if not is_database_url(url):
            raise ConfigurationError(
                f"memory_url= is a postgresql:// URL, not {_pg_schema.redact_message(str(url), str(url))!r}"
            )
        _pg_schema.connect(url, read_only=True).close()
        path = root / "memory" / "postgres.json"
        if path.exists():
            prefix = str(json.loads(path.read_text(encoding="utf-8"))["schema_prefix"])
        else:
            prefix = f"pa_{_slug(name, 12)}_{secrets.token_hex(4)}"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"schema_prefix": prefix}), encoding="utf-8")
            tmp.replace(path)
        return cls(url, _pg_schema.check_schema(prefix))

    # ------------------------------------------------------------------ names
    def schema(self, stem: str) -> str:
        """The schema of one (arm, seed), ``stem`` as ArmSetup names it (``full-s0``)."""
        return f"{self.prefix}_{_slug(stem, 30)}"

    def _ckpt(self, stem: str, done: int) -> str:
        return f"{self.schema(stem)}_c{done}"

    # ------------------------------------------------------------------ stores
    def store(self, stem: str, mode: RunMode = RunMode.LEARNING_TRAIN, **kwargs: Any) -> PostgresStore:
        """The store of one (arm, seed) (created on first open in a learning mode)."""
        from purpose_agent.memory.postgres import PostgresStore

        return PostgresStore(self.url, mode=mode, schema=self.schema(stem), **kwargs)

    def _connect(self) -> psycopg.Connection[Any]:
        return _pg_schema.connect(self.url, read_only=False)

    @staticmethod
    def _is_store(conn: psycopg.Connection[Any], schema: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{_q(schema)}.schema_version",)).fetchone()
        return bool(row and row[0])

    def reflections(self, stem: str) -> PgReflections:
        """The ``reflection`` baseline's reflections of one (arm, seed), in its schema."""
        return PgReflections(self.url, self.schema(stem))

    def has_store(self, stem: str) -> bool:
        """True when the (arm, seed) has a store (it has trained at least once)."""
        with _pg_schema.connect(self.url, read_only=True) as conn:
            return self._is_store(conn, self.schema(stem))

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, stem: str, done: int) -> None:
        """Copy the (arm, seed)'s store (or reflections) to its checkpoint after ``done`` training
        units (in one transaction), and drop checkpoints older than the one before it."""
        with self._connect() as conn:
            if not _has_schema(conn, self.schema(stem)):
                return
            _copy(conn, self.schema(stem), self._ckpt(stem, done))
            base = self.schema(stem) + "_c"
            for (old,) in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE starts_with(nspname, %s)", (base,)
            ).fetchall():
                n = str(old)[len(base) :]
                if n.isdigit() and int(n) < done - 1:
                    _drop(conn, str(old))

    def drop(self, stem: str) -> None:
        """Remove the (arm, seed)'s store (its checkpoints stay)."""
        with self._connect() as conn:
            _drop(conn, self.schema(stem))

    def restore(self, stem: str, done: int) -> bool:
        """Put the (arm, seed)'s store back as its checkpoint after ``done`` units left it;
        False (nothing changed) when there is no such checkpoint."""
        with self._connect() as conn:
            if not _has_schema(conn, self._ckpt(stem, done)):
                return False
            _copy(conn, self._ckpt(stem, done), self.schema(stem))
            return True


@dataclass(frozen=True)
class PgReflections:
    """The ``reflection`` baseline's reflections (``evals.reflection.ReflectionLog``) as the
    table ``reflections`` of ``schema``: one row per reflection, appended, never rewritten, so
    every machine reaching the database reads the same window. Read on a read-only connection
    (``EVAL_TEST`` writes nothing); the table is created by the first write."""

    url: str
    schema: str

    def read(self, window: int) -> list[str]:
        with _pg_schema.connect(self.url, read_only=True) as conn:
            if not _has_table(conn, self.schema, REFLECTIONS):
                return []
            rows = conn.execute(
                f"SELECT text FROM {_q(self.schema)}.{REFLECTIONS} ORDER BY id DESC LIMIT %s", (window,)
            ).fetchall()
        return [str(r[0]) for r in reversed(rows)]

    def append(self, text: str, window: int) -> None:
        with _pg_schema.connect(self.url, read_only=False) as conn:
            self._create(conn)
            conn.execute(f"INSERT INTO {_q(self.schema)}.{REFLECTIONS} (text) VALUES (%s)", (text,))

    def ensure(self) -> None:
        """Create the (empty) table now, so a checkpoint is taken even before a first reflection."""
        with _pg_schema.connect(self.url, read_only=False) as conn:
            self._create(conn)

    def _create(self, conn: psycopg.Connection[Any]) -> None:
        import psycopg  # installed: a connection is open

        # another process may create the schema or the table at the same moment
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateSchema):
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {_q(self.schema)}")
        with contextlib.suppress(psycopg.errors.UniqueViolation, psycopg.errors.DuplicateTable):
            conn.execute(_REFLECTIONS_DDL.format(schema=_q(self.schema)))


def _has_schema(conn: psycopg.Connection[Any], schema: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = %s)", (schema,)).fetchone()
    return bool(row and row[0])


def _has_table(conn: psycopg.Connection[Any], schema: str, table: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{_q(schema)}.{table}",)).fetchone()
    return bool(row and row[0])


def _drop(conn: psycopg.Connection[Any], schema: str) -> None:
    """Drop a store's schema, unless an extension lives in it (dropping it would take the
    extension, and the full-text column of every store of the database, with it)."""
    row = conn.execute(
        "SELECT string_agg(e.extname, ', ') FROM pg_extension e JOIN pg_namespace n "
        "ON n.oid = e.extnamespace WHERE n.nspname = %s",
        (schema,),
    ).fetchone()
    if row and row[0]:
        raise ConfigurationError(
            f"schema {schema} holds the extension(s) {row[0]}, which other stores of the database use; "
            f"move them out first (ALTER EXTENSION {str(row[0]).split(',')[0]} SET SCHEMA public)"
        )
    conn.execute(f"DROP SCHEMA IF EXISTS {_q(schema)} CASCADE")


def _copy(conn: psycopg.Connection[Any], src: str, dst: str) -> None:
    """Replace the store (and reflections) in schema ``dst`` by a copy of the ones in ``src``:
    every row of every table, and the identity and write counters, in one transaction."""
    _pg_schema.use_schema(conn, dst, create=True)  # outside the transaction: unaccent in public
    with conn.transaction():
        is_store = PgMemory._is_store(conn, src)
        tables = [*TABLES] if is_store else []
        if _has_table(conn, src, REFLECTIONS):
            tables.append(REFLECTIONS)
        _drop(conn, dst)
        conn.execute(f"CREATE SCHEMA {_q(dst)}")
        conn.execute(f"SET LOCAL search_path TO {_q(dst)}")
        if is_store:
            _pg_schema.migrate(conn, dst, read_only=False)
        if REFLECTIONS in tables:
            conn.execute(_REFLECTIONS_DDL.format(schema=_q(dst)))
        for table in tables:
            cols = ", ".join(
                str(r[0])
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                    "AND table_name = %s AND is_generated = 'NEVER' ORDER BY ordinal_position",
                    (src, table),
                ).fetchall()
            )
            conn.execute(f"INSERT INTO {_q(dst)}.{table} ({cols}) SELECT {cols} FROM {_q(src)}.{table}")
        sequences = conn.execute(
            "SELECT s.relname FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace "
            "WHERE s.relkind = 'S' AND n.nspname = %s",
            (src,),
        ).fetchall()
        for (seq,) in sequences:
            row = conn.execute(f'SELECT last_value, is_called FROM {_q(src)}."{seq}"').fetchone()
            assert row is not None
            conn.execute("SELECT setval(%s, %s, %s)", (f'{_q(dst)}."{seq}"', row[0], row[1]))
