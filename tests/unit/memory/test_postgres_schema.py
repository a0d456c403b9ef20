"""PostgresStore(url, schema=...): several isolated memory spaces in one database.

Each schema is a store of its own (created on first open in a learning mode, never by
EVAL_TEST); a store's ``with_mode`` and its copy on a Ray worker keep the schema; dropping one
store's schema leaves the others whole (the unaccent extension lives in ``public``)."""

from __future__ import annotations

import psycopg
import pytest
from _memory_helpers import StubScanner

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError, ReadOnlyModeError
from purpose_agent.loop._fanout import _reopen_store, _store_state
from purpose_agent.memory.postgres import PostgresStore
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, MemoryStatus

K = MemoryKind.SKILL_CARD
ANY = tuple(MemoryStatus)


def _store(url: str, schema: str | None, mode: RunMode = RunMode.LEARNING_TRAIN) -> MemoryStore:
    return MemoryStore(url, mode=mode, embedder=None, scanner=StubScanner(), schema=schema)


def _schemas(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace").fetchall()}


def test_two_schemas_of_one_database_are_two_stores(pg_url: str) -> None:
    with _store(pg_url, "team_a") as a, _store(pg_url, "team_b") as b, _store(pg_url, None) as plain:
        assert isinstance(a, PostgresStore) and a.schema == "team_a"
        ida = a.add("When the oven is cold, preheat it to 200 degrees first.", K)
        idb = b.add("Slice the carrots thinly before frying them.", K)
        assert [m.id for m in a.list()] == [ida]
        assert [m.id for m in b.list()] == [idb]
        assert plain.list() == []  # the public schema holds a third, empty store
        assert [r.memory.id for r in a.retrieve("preheat the oven", statuses=ANY)] == [ida]
        assert b.retrieve("preheat the oven", statuses=ANY) == []
        assert "schema team_b" in str(b.path) and "team_b" in repr(b)
        with pytest.raises(KeyError, match="schema team_b"):
            b.get(ida)
        reader = a.with_mode(RunMode.EVAL_TEST)
        assert reader.schema == "team_a" and [m.id for m in reader.list()] == [ida]
        reader.close()
        worker = _reopen_store(_store_state(a))  # what a Ray worker opens
        assert worker.schema == "team_a" and [m.id for m in worker.list()] == [ida]
        worker.close()
    assert {"team_a", "team_b", "public"} <= _schemas(pg_url)


def test_eval_test_never_creates_a_schema(pg_url: str) -> None:
    with pytest.raises(ReadOnlyModeError, match="cannot be created"):
        _store(pg_url, "nobody_here", RunMode.EVAL_TEST)
    assert "nobody_here" not in _schemas(pg_url)


@pytest.mark.parametrize("name", ["Team", "a-b", 'x"; DROP TABLE memories; --', "pg_temp", "", "a" * 64])
def test_a_schema_name_must_be_a_plain_identifier(pg_url: str, name: str) -> None:
    with pytest.raises(ConfigurationError, match="schema name"):
        _store(pg_url, name)


def test_dropping_one_schema_leaves_the_others_whole(pg_url: str) -> None:
    """The first store's migration would put the unaccent extension in its own schema, and
    DROP SCHEMA ... CASCADE would then take every other store's full-text column with it."""
    _store(pg_url, "first").close()
    with _store(pg_url, "second") as second:
        mid = second.add("Café owners grind the beans fresh every morning.", K)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        ext = conn.execute(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'unaccent'"
        )
        assert ext.fetchall() in ([("public",)], [])  # in public (or not installed at all)
        conn.execute('DROP SCHEMA "first" CASCADE')
    with _store(pg_url, "second", RunMode.EVAL_TEST) as second:
        assert [r.memory.id for r in second.retrieve("cafe beans", statuses=ANY)] == [mid]
