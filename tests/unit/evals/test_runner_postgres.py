"""BenchmarkRunner(memory_url="postgresql://..."): the arms' memories in PostgreSQL (issue 16).

On the toy benchmark (a FunctionModel) against a real server: every (arm, seed) keeps its
memory in a schema of its own and nothing in SQLite files, the ``reflection`` baseline its
reflections in a table of its schema and nothing in a JSON file; the ledger and the results
equal the SQLite run's; a test unit changes nothing in the database (``pg_dump`` before and
after); a crash inside a training unit resumes from the PostgreSQL checkpoint and finds the same
memories (or reflections); an unreachable server is a clear error, the password redacted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import _toy
import psycopg
import pytest

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError, StoreUnavailableError
from purpose_agent.evals import FULL, REFLECTION, UNGATED, BenchmarkResult
from purpose_agent.evals._pg_memory import PgReflections
from purpose_agent.evals.conditions import ArmSetup
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.memory.postgres import PostgresStore
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.testing import FunctionModel

#: the arms with a memory store, and all the arms of the benchmark (the reflection baseline too)
STORE_ARMS = (FULL, UNGATED)
ARMS = (*STORE_ARMS, REFLECTION)
SEEDS = (0, 1)
#: what differs between two runs of the same benchmark: times, and the memories' random ids
VOLATILE = {"wall_s", "model_time_s", "seconds", "id"}


def _stable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_stable(v) for v in value]
    return value


def _ledger(root: Path, condition: str | None = None) -> list[Any]:
    lines = [json.loads(x) for x in (root / "ledger.jsonl").read_text().splitlines()]
    return [_stable(r) for r in lines if condition is None or r["key"]["condition"] == condition]


def _contents(store: MemoryStore) -> list[tuple[str, str, str, int, int]]:
    with store:
        return sorted(
            (m.kind.value, m.text, m.status.value, m.merges, m.times_included) for m in store.list()
        )


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[BenchmarkResult, Path]:
    """The reference: the same benchmark with the default SQLite memories."""
    out = tmp_path_factory.mktemp("sqlite")
    result = _toy.runner(out, conditions=ARMS, seeds=SEEDS).run(_toy.tasks, 1, "b")
    return result, out / "b"


def _dump(server: Any, url: str) -> str:
    proc = subprocess.run(
        [str(server.bindir / "pg_dump"), "--no-owner", "--dbname", url],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    # pg_dump's \restrict / \unrestrict lines carry a random key per run: not data
    return "\n".join(x for x in proc.stdout.splitlines() if not x.startswith(("\\restrict", "\\unrestrict")))


def test_arms_keep_isolated_memories_in_postgres_with_the_sqlite_results_and_tests_write_nothing(
    pg_url: str, postgres_server: Any, sqlite_run: tuple[BenchmarkResult, Path], tmp_path: Path
) -> None:
    reference, ref_root = sqlite_run
    dumps: list[str] = []

    def on_unit(key, rec):  # type: ignore[no-untyped-def]
        # every unit: the whole database; a test unit must leave it exactly as the unit before
        dumps.append(_dump(postgres_server, pg_url))
        if key.phase == "test" and len(dumps) > 1:
            assert dumps[-1] == dumps[-2], f"test unit {key.as_str()} changed the database"

    runner = _toy.runner(tmp_path, conditions=ARMS, seeds=SEEDS, memory_url=pg_url, on_unit=on_unit)
    result = runner.run(_toy.tasks, 1, "b")
    root = tmp_path / "b"
    assert len(dumps) == len(_ledger(root)) and "CREATE TABLE" in dumps[-1]

    # the same benchmark: the same ledger (times and random ids aside) and the same report
    assert _ledger(root) == _ledger(ref_root)
    for name, c in reference.conditions.items():
        assert result.conditions[name]["curve"] == c["curve"], name
        assert _stable(result.conditions[name]["learning"]) == _stable(c["learning"]), name

    # the memories are in PostgreSQL, one schema per (arm, seed), and in no SQLite or JSON file
    assert not [p for p in root.rglob("*") if ".sqlite" in p.name or "reflections" in p.name]
    assert runner._pg is not None
    stems = [f"{a.name}-s{s}" for a in STORE_ARMS for s in SEEDS]
    ids: dict[str, set[str]] = {}
    for stem in stems:
        store = runner._pg.store(stem, RunMode.EVAL_TEST, embedder=None)
        assert isinstance(store, PostgresStore) and store.schema == runner._pg.schema(stem)
        ids[stem] = {m.id for m in store.list()}
        assert ids[stem], stem
        # each schema holds exactly what that arm's SQLite file holds: nothing of another arm or seed
        sqlite = MemoryStore(ref_root / "memory" / f"{stem}.sqlite", mode=RunMode.EVAL_TEST, embedder=None)
        assert _contents(store) == _contents(sqlite), stem
    for a in stems:
        for b in stems:
            assert a == b or not ids[a] & ids[b]
    with psycopg.connect(pg_url) as conn:  # nothing in the public schema
        assert conn.execute("SELECT to_regclass('public.memories')").fetchone() == (None,)
    # the reflection baseline's reflections: a table of its own schema, the window the file holds
    for seed in SEEDS:
        stem = f"reflection-s{seed}"
        log = runner._pg.reflections(stem)
        assert isinstance(log, PgReflections) and log.schema == runner._pg.schema(stem)
        written = json.loads((ref_root / "memory" / f"{stem}.reflections.json").read_text())
        assert written and log.read(3) == written
        # one row per training attempt (each writes one reflection), none in another arm's schema
        reflection_train = [r for r in _ledger(ref_root, "reflection") if r["key"]["seed"] == seed]
        attempts = sum(r["attempts"] for r in reflection_train if r["key"]["phase"] == "train")
        assert _reflection_rows(pg_url, log.schema) == list(range(1, attempts + 1))
        assert not runner._pg.has_store(stem)  # no memory store for this arm
    for stem in stems:
        assert runner._pg.reflections(stem).read(3) == []


def test_a_crash_inside_a_training_unit_resumes_from_the_postgres_checkpoint(
    pg_url: str, sqlite_run: tuple[BenchmarkResult, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate has written to the arm's schema when the unit dies before its ledger line; the
    resume restores the PostgreSQL checkpoint of the last recorded unit and reruns the unit, so
    the ledger and the memory equal an uninterrupted run; a run after that runs nothing."""
    _, ref_root = sqlite_run
    original = ArmSetup.checkpoint

    def dying(self: ArmSetup, done: int) -> None:
        if self.condition.name == "full" and done == 3:
            raise KeyboardInterrupt  # after the unit ran and its gate wrote, before its line
        original(self, done)

    monkeypatch.setattr(ArmSetup, "checkpoint", dying)
    with pytest.raises(KeyboardInterrupt):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,), memory_url=pg_url).run(_toy.tasks, 1, "c")
    monkeypatch.setattr(ArmSetup, "checkpoint", original)
    prefix = json.loads((tmp_path / "c" / "memory" / "postgres.json").read_text())["schema_prefix"]
    rerun: list[str] = []
    runner = _toy.runner(
        tmp_path,
        conditions=(FULL,),
        seeds=(0,),
        memory_url=pg_url,
        on_unit=lambda k, r: rerun.append(k.phase),
    )
    runner.run(_toy.tasks, 1, "c")
    assert runner._pg is not None and runner._pg.prefix == prefix  # the same schemas
    assert rerun == ["train", "train", "test", "test", "test"]  # the crashed unit, then the rest
    root = tmp_path / "c"
    full_s0 = [r for r in _ledger(ref_root, "full") if r["key"]["seed"] == 0]
    assert _ledger(root, "full") == full_s0
    pg = runner._pg.store("full-s0", RunMode.EVAL_TEST, embedder=None)
    sqlite = MemoryStore(ref_root / "memory" / "full-s0.sqlite", mode=RunMode.EVAL_TEST, embedder=None)
    assert _contents(pg) == _contents(sqlite)
    # a second run with the same name continues from the ledger: nothing left to run
    again: list[str] = []
    _toy.runner(
        tmp_path,
        conditions=(FULL,),
        seeds=(0,),
        memory_url=pg_url,
        on_unit=lambda k, r: again.append(k.phase),
    ).run(_toy.tasks, 1, "c")
    assert again == []
    # a resume without the database is another benchmark: refused
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "c")


def _reflection_rows(url: str, schema: str) -> list[int]:
    """The ids of the rows of a schema's reflections table, in order."""
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(f'SELECT id FROM "{schema}".reflections ORDER BY id').fetchall()]


def test_a_crash_in_the_reflection_arm_resumes_with_its_reflections_from_postgres(
    pg_url: str, sqlite_run: tuple[BenchmarkResult, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reflection of a training unit is in the arm's table when the unit dies before its
    ledger line; the resume restores the table from the PostgreSQL checkpoint (that row gone)
    and reruns the unit, so the ledger and the reflections equal an uninterrupted run's: one
    row per recorded training attempt, numbered without a gap."""
    _, ref_root = sqlite_run
    original = ArmSetup.checkpoint
    seen: list[int] = []

    def dying(self: ArmSetup, done: int) -> None:
        if self.condition.name == "reflection" and done == 2:
            assert self.pg is not None
            seen.extend(_reflection_rows(pg_url, self.pg.schema(self.stem)))
            raise KeyboardInterrupt  # after the unit wrote its reflection, before its line
        original(self, done)

    monkeypatch.setattr(ArmSetup, "checkpoint", dying)
    with pytest.raises(KeyboardInterrupt):
        _toy.runner(tmp_path, conditions=(REFLECTION,), seeds=(0,), memory_url=pg_url).run(_toy.tasks, 1, "r")
    monkeypatch.setattr(ArmSetup, "checkpoint", original)
    reference = [r for r in _ledger(ref_root, "reflection") if r["key"]["seed"] == 0]
    train = [r for r in reference if r["key"]["phase"] == "train"]
    assert len(seen) == train[0]["attempts"] + train[1]["attempts"]  # unit 2's reflections were written
    rerun: list[str] = []
    runner = _toy.runner(
        tmp_path, conditions=(REFLECTION,), seeds=(0,), memory_url=pg_url,
        on_unit=lambda k, r: rerun.append(f"{k.phase}:{k.task}"),
    )  # fmt: skip
    runner.run(_toy.tasks, 1, "r")
    assert rerun[0] == f"train:{train[1]['key']['task']}"  # the crashed unit first, run again
    assert _ledger(tmp_path / "r", "reflection") == reference
    assert runner._pg is not None
    log = runner._pg.reflections("reflection-s0")
    assert log.read(3) == json.loads((ref_root / "memory" / "reflection-s0.reflections.json").read_text())
    attempts = sum(r["attempts"] for r in train)
    assert _reflection_rows(pg_url, log.schema) == list(range(1, attempts + 1))  # no row twice, none lost
    assert not [p for p in (tmp_path / "r").rglob("*") if "reflections" in p.name]  # no file


def test_an_unreachable_or_wrong_memory_url_is_a_clear_error(tmp_path: Path) -> None:
    url = "postgresql://bob:s3cret-pw@127.0.0.1:1/benchdb"  # nothing listens on port 1
    runner = _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,), memory_url=url)
    with pytest.raises(StoreUnavailableError) as err:
        runner.run(_toy.tasks, 1, "u")
    message = str(err.value)
    assert "127.0.0.1" in message and "benchdb" in message and "bob:***" in message
    assert "s3cret-pw" not in message
    assert not (tmp_path / "u" / "config.json").exists() and not (tmp_path / "u" / "ledger.jsonl").exists()
    with pytest.raises(ConfigurationError, match="postgresql:// URL"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,), memory_url=str(tmp_path / "m.sqlite")).run(
            _toy.tasks, 1, "w"
        )
    given = Orchestrator(FunctionModel(_toy.reply), _toy.make_env(0), trace=False)
    with pytest.raises(ConfigurationError, match="given orchestrator"):
        _toy.BenchmarkRunner(given, memory_url=url, out_dir=tmp_path)
