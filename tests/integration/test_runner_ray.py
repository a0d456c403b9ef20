"""The benchmark runner and the gate's validation replays on a local Ray instance (``ray.init()``
on this machine; no model is loaded): the same per-episode results, ledger lines and gate
decisions as the local executor, resume, and a worker that dies mid-run retried once, then
reported, never lost; with ``memory_url=`` (a real PostgreSQL server, ``tests/_postgres.py``)
the workers share the arms' memories in the database."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from _ray_local import local_ray

import purpose_agent as pa
from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError, MissingExtraError, WorkerLostError
from purpose_agent.evals import FULL, REFLECTION, UNGATED, BenchmarkConfig, BenchmarkRunner, BenchmarkTask
from purpose_agent.evals.ledger import UnitKey
from purpose_agent.loop._fanout import fan_out
from purpose_agent.loop.replay import ReplayTask, ValidationReplay
from purpose_agent.memory.ci import MemoryCI
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus
from purpose_agent.models.testing import FunctionModel, ScriptedModel

pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
EVALS = HERE.parent / "unit" / "evals"  # _toy, the toy learnable benchmark of the unit tests
#: what differs between two runs of the same benchmark on any executor: time
TIMES = ("wall_s", "model_time_s", "seconds")


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """One local Ray instance for the module; the workers import this folder's helpers and _toy."""
    with local_ray(HERE, EVALS, missing="executor='ray' needs the ray extra: run `make install-test`") as ray:
        yield ray


def _answer(value: str) -> dict[str, Any]:
    return {"thought": "answer", "action": "DONE", "params": {"answer": value}}


def _ledger(root: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (root / "ledger.jsonl").read_text().splitlines()]


def _untimed(value: Any, ids: dict[str, str]) -> Any:
    """A ledger record without its times, memory ids numbered by first appearance."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in TIMES:
                continue
            if k == "id" and isinstance(v, str):
                v = ids.setdefault(v, f"m{len(ids)}")
            out[k] = _untimed(v, ids)
        return out
    if isinstance(value, list):
        return [_untimed(v, ids) for v in value]
    if isinstance(value, str):
        return re.sub(r"\d+\.\d+s\b", "<t>s", value)
    return value


def _lines(root: Path) -> list[dict[str, Any]]:
    ids: dict[str, str] = {}
    return [_untimed(rec, ids) for rec in _ledger(root)]


# ---------------------------------------------------------------------- the benchmark runner
def _floor_tasks(seed: int) -> list[BenchmarkTask]:
    from _ray_bench import Expect

    answers = ["42", "7", "42", "9"]
    return [
        BenchmarkTask(
            f"q{seed}-{i}",
            f"Say the secret number of box {i}.",
            make_env=Expect(a),
            split="test",
            max_steps=2,
        )
        for i, a in enumerate(answers)
    ]


def _floor_runner(out: Path, model: ScriptedModel, **kw: Any) -> BenchmarkRunner:
    """The no-memory floor only."""
    return BenchmarkRunner(llm=model, config=BenchmarkConfig(conditions=(), seeds=(0, 1)), out_dir=out, **kw)


def test_scripted_floor_on_ray_gives_the_local_episodes_and_ledger(ray_local, tmp_path: Path) -> None:
    here, there = ScriptedModel([_answer("42")] * 16), ScriptedModel([_answer("42")] * 16)  # always 42
    local = _floor_runner(tmp_path / "local", here).run(_floor_tasks, 1, "floor")
    on_ray = _floor_runner(tmp_path / "ray", there, executor="ray").run(_floor_tasks, 1, "floor")
    assert here.remaining == 8 and there.remaining == 16  # every episode ran on a worker's copy
    lines = _lines(tmp_path / "ray" / "floor")
    assert lines == _lines(tmp_path / "local" / "floor")  # the same lines, in the same order
    assert [(r["key"]["task"], r["success"]) for r in lines] == [
        ("q0-0", True), ("q0-1", False), ("q0-2", True), ("q0-3", False),
        ("q1-0", True), ("q1-1", False), ("q1-2", True), ("q1-3", False),
    ]  # fmt: skip
    assert on_ray.conditions["no_memory"]["after"] == local.conditions["no_memory"]["after"]
    # resume: every unit is in the ledger, so nothing runs again (no model call at all)
    again = BenchmarkRunner(
        llm=ScriptedModel([]), config=BenchmarkConfig(conditions=(), seeds=(0, 1)), out_dir=tmp_path / "ray",
        executor="ray",
    )  # fmt: skip
    again.run(_floor_tasks, 1, "floor")
    assert _lines(tmp_path / "ray" / "floor") == lines


def test_a_learning_benchmark_on_ray_gives_the_local_ledger_and_gate_decisions(
    ray_local, tmp_path: Path
) -> None:
    """The toy benchmark (a FunctionModel): the full arm trains here, its gate replays and every
    block's test episodes run on Ray; the ledger, gate decisions included, is the local one."""
    import _toy

    def tasks(seed: int) -> list[BenchmarkTask]:
        return _toy.tasks(seed, train=2, test=3)

    def runner(out: Path, model: FunctionModel, **kw: Any) -> BenchmarkRunner:
        return _toy.runner(out, model, conditions=(FULL,), seeds=(0,), **kw)

    here, there = FunctionModel(_toy.reply), FunctionModel(_toy.reply)
    local = runner(tmp_path / "local", here).run(tasks, 1, "toy")
    on_ray = runner(tmp_path / "ray", there, executor="ray").run(tasks, 1, "toy")
    lines = _lines(tmp_path / "ray" / "toy")
    assert lines == _lines(tmp_path / "local" / "toy")
    # exactly the test episodes and the gate's replays ran on workers (and are counted in the ledger)
    remote = sum(r["calls"] for r in lines if r["key"]["phase"] == "test")
    remote += sum(r["gate"]["calls"] for r in lines if r["key"]["phase"] == "train")
    assert remote > 0 and len(here.calls) - len(there.calls) == remote
    gates = [d for r in lines if r["key"]["phase"] == "train" for d in r["gate"]["decisions"]]
    assert "promoted" in {d["action"] for d in gates}  # the gate decided on evidence, the same way
    assert on_ray.conditions["full"]["after"] == local.conditions["full"]["after"]
    assert on_ray.conditions["full"]["after"]["mean"] == 1.0  # and the arm learned


def _contents(store: MemoryStore) -> list[tuple[str, str, str, int, int]]:
    with store:
        return sorted(
            (m.kind.value, m.text, m.status.value, m.merges, m.times_included) for m in store.list()
        )


def test_a_benchmark_on_ray_with_postgres_memory_gives_the_local_sqlite_ledger(
    ray_local, pg_url: str, tmp_path: Path
) -> None:
    """``executor="ray"`` with ``memory_url=``: the arms' memories, checkpoints and reflections in
    PostgreSQL; the test episodes and the gate's replays run on workers that read them there (no
    memory file exists). The ledger and the results equal the local SQLite run's; each (arm,
    seed) schema holds what that arm's SQLite file (or reflections file) holds; a test episode
    whose worker dies is retried, and every planned unit is recorded once, in order.

    A FunctionModel, not a ScriptedModel: a ScriptedModel answers by call order, and each worker
    gets a copy at the driver's position, so the learning arms' interleaved actor, distiller
    and reflection calls could not be scripted the same way for both executors."""
    import _toy
    from _ray_bench import DiesFirst, deaths

    arms, seeds = (FULL, UNGATED, REFLECTION), (0, 1)
    marker = str(tmp_path / "died")

    def tasks(seed: int) -> list[BenchmarkTask]:
        return _toy.tasks(seed, train=2, test=3)

    def dying_tasks(seed: int) -> list[BenchmarkTask]:
        # the first test task's first episode (the floor's, on a worker) kills its worker once
        out = tasks(seed)
        i = next(i for i, t in enumerate(out) if t.split == "test")
        out[i] = replace(out[i], make_env=DiesFirst(marker, 1))
        return out

    here, there = FunctionModel(_toy.reply), FunctionModel(_toy.reply)
    local = _toy.runner(tmp_path / "local", here, conditions=arms, seeds=seeds).run(tasks, 1, "toy")
    recorded: list[str] = []
    runner = _toy.runner(
        tmp_path / "ray", there, conditions=arms, seeds=seeds, executor="ray", memory_url=pg_url,
        on_unit=lambda key, rec: recorded.append(key.as_str()),
    )  # fmt: skip
    on_ray = runner.run(dying_tasks, 1, "toy")
    root, ref_root = tmp_path / "ray" / "toy", tmp_path / "local" / "toy"
    lines = _lines(root)
    assert lines == _lines(ref_root)  # gate decisions, memory ids (numbered) and reflections' effect included
    assert deaths(marker) == 1  # the episode was retried on a new worker, and recorded
    # nothing lost or doubled: every unit of the plan once, in plan order
    planned = [UnitKey(**r["key"]).as_str() for r in _ledger(ref_root)]
    assert recorded == planned and len(set(recorded)) == len(planned)
    # the test episodes and the gate's replays ran on workers (their calls are in the ledger)
    remote = sum(r["calls"] for r in lines if r["key"]["phase"] == "test" and "shared_from" not in r)
    remote += sum(r["gate"]["calls"] for r in lines if r["key"]["phase"] == "train")
    assert remote > 0 and len(here.calls) - len(there.calls) == remote
    for name, c in local.conditions.items():
        assert on_ray.conditions[name]["curve"] == c["curve"], name
        assert on_ray.conditions[name]["after"] == c["after"], name
    for arm in arms:  # every arm learned, and its test episodes on workers found what it learned
        assert on_ray.conditions[arm.name]["after"]["mean"] == 1.0, arm.name

    # the memories: in PostgreSQL only, each (arm, seed) in its own schema, as the SQLite files
    assert not [p for p in root.rglob("*") if ".sqlite" in p.name or "reflections" in p.name]
    pg = runner._pg
    assert pg is not None
    for arm in (FULL, UNGATED):
        for seed in seeds:
            stem = f"{arm.name}-s{seed}"
            store = pg.store(stem, RunMode.EVAL_TEST, embedder=None)
            sqlite = MemoryStore(
                ref_root / "memory" / f"{stem}.sqlite", mode=RunMode.EVAL_TEST, embedder=None
            )
            assert _contents(store) == _contents(sqlite) != [], stem
    for seed in seeds:
        stem = f"reflection-s{seed}"
        written = json.loads((ref_root / "memory" / f"{stem}.reflections.json").read_text())
        assert written and pg.reflections(stem).read(3) == written, stem
        assert not pg.has_store(stem)


def test_a_test_episode_whose_worker_dies_is_retried_then_reported_and_resumed(
    ray_local, tmp_path: Path
) -> None:
    from _ray_bench import DiesFirst, Expect, deaths

    once, twice = str(tmp_path / "once"), str(tmp_path / "twice")
    envs = {"once": DiesFirst(once, 1), "twice": DiesFirst(twice, 2), "fine": Expect("42")}

    def tasks(seed: int) -> list[BenchmarkTask]:
        return [
            BenchmarkTask(
                name, f"Say the secret number of box {i}.", make_env=make, split="test", max_steps=2
            )
            for i, (name, make) in enumerate(envs.items())
        ]

    units: list[str] = []

    def runner() -> BenchmarkRunner:
        return BenchmarkRunner(
            llm=ScriptedModel([_answer("42")] * 3), config=BenchmarkConfig(conditions=(), seeds=(0,)),
            out_dir=tmp_path, executor="ray", on_unit=lambda key, rec: units.append(key.task),
        )  # fmt: skip

    with pytest.raises(WorkerLostError, match=r"twice.*the Ray worker running it died \(1 retry\)"):
        runner().run(tasks, 1, "dies")
    assert deaths(once) == 1 and deaths(twice) == 2  # "once" was retried on a new worker
    assert [r["key"]["task"] for r in _ledger(tmp_path / "dies")] == ["once", "fine"]  # "twice" not recorded
    assert all(r["success"] for r in _ledger(tmp_path / "dies"))
    units.clear()
    runner().run(tasks, 1, "dies")  # the same command resumes with the lost episode only
    assert units == ["twice"] and deaths(twice) == 2
    assert {r["key"]["task"]: r["success"] for r in _ledger(tmp_path / "dies")} == {
        "once": True,
        "fine": True,
        "twice": True,
    }


# ---------------------------------------------------------------------- the gate's replays
def _gate(store_path: Path, executor: str, make_env: Any = None) -> list[tuple[Any, ...]]:
    """Two candidates (one that helps, one that changes nothing) through MemoryCI with a
    ValidationReplay of four toy tasks; the decisions without their times."""
    import _toy

    make = make_env or _toy.make_env
    with MemoryStore(store_path, embedder=None) as store:
        helps = store.add("ANSWER IS 42 for a secret number question.", "tool_policy")
        neutral = store.add("Read the question twice.", "tool_policy")
        tasks = [
            ReplayTask(f"Say the secret number of box {i}.", make, max_steps=2, key=f"v{i}") for i in range(4)
        ]
        replay = ValidationReplay(store, FunctionModel(_toy.reply), tasks, executor=executor)  # type: ignore[arg-type]
        try:
            decisions = MemoryCI(store, replay).process([helps, neutral])
        finally:
            replay.close()
        names = {helps: "helps", neutral: "neutral"}
        out = [
            (names[d.memory_id], d.action, d.wins, d.losses, d.ties, d.pairs, d.new_pairs, d.p_value, d.gain,
             d.runs, d.calls, d.baseline_reused, re.sub(r"\d+\.\d+s\b", "<t>s", d.reason))
            for d in decisions
        ]  # fmt: skip
        out.append(
            ("statuses", store.get(helps).status, store.get(neutral).status, replay.runs, replay.calls)
        )
        return out


def test_gate_replays_on_ray_make_the_local_decisions(ray_local, tmp_path: Path) -> None:
    local = _gate(tmp_path / "local.sqlite", "local")
    on_ray = _gate(tmp_path / "ray.sqlite", "ray")
    assert on_ray == local
    assert local[0][:2] == ("helps", "promoted") and local[1][:2] == ("neutral", "deferred")
    assert local[-1][1:3] == (MemoryStatus.PROMOTED, MemoryStatus.QUARANTINED)


def test_a_replay_whose_worker_dies_is_retried_then_reported(ray_local, tmp_path: Path) -> None:
    from _ray_bench import DiesFirst, deaths

    # the first replay's worker dies once: retried on a new worker, the same decisions as locally
    once = str(tmp_path / "once")
    assert _gate(tmp_path / "once.sqlite", "ray", DiesFirst(once, 1)) == _gate(
        tmp_path / "local.sqlite", "local"
    )
    assert deaths(once) == 1
    # every replay's worker dies: the candidate stays quarantined, the decision says why, nothing recorded
    always = str(tmp_path / "always")
    with MemoryStore(tmp_path / "always.sqlite", embedder=None) as store:
        mid = store.add("ANSWER IS 42 for a secret number question.", "tool_policy")
        tasks = [ReplayTask("Say the secret number of box 0.", DiesFirst(always, 99), max_steps=2, key="v0")]
        replay = ValidationReplay(store, FunctionModel(lambda m, s: "unused"), tasks, executor="ray")
        [decision] = MemoryCI(store, replay).process([mid])
        replay.close()
        assert decision.action == "deferred"
        assert "replay failed: WorkerLostError" in decision.reason and "'v0#0'" in decision.reason
        assert "the Ray worker running it died (1 retry)" in decision.reason
        assert store.get(mid).status is MemoryStatus.QUARANTINED and not store.replays(mid)
    assert deaths(always) == 4  # the unit's two runs (sent side by side) and the retry of each


def test_the_gate_sends_a_units_two_replays_to_ray_at_once(
    ray_local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate's units run one after another (each result can end the gate), but on Ray a
    unit's baseline and its run with the candidate are two Ray tasks in flight together, never
    more; the decisions are the local ones."""
    import purpose_agent.loop.replay as replay_module

    real = replay_module.afan_out_one
    in_flight: list[str] = []
    starts: list[tuple[str, int]] = []  # (unit, runs in flight once it started)

    async def counting(fn: Any, payload: Any, name: str, **kw: Any) -> Any:
        in_flight.append(name)
        starts.append((name, len(in_flight)))
        try:
            return await real(fn, payload, name, **kw)
        finally:
            in_flight.remove(name)

    monkeypatch.setattr(replay_module, "afan_out_one", counting)
    on_ray = _gate(tmp_path / "ray.sqlite", "ray")
    local = _gate(tmp_path / "local.sqlite", "local")
    assert on_ray == local
    decisions = on_ray[:-1]
    runs = sum(d[9] for d in decisions)
    pairs = sum(d[6] - d[11] for d in decisions)  # new pairs whose baseline ran in this gate
    assert len(starts) == runs and pairs >= 4  # every run of the gate went to Ray
    assert max(n for _, n in starts) == 2  # a pair at a time: units stay one after another
    together = [(a, b) for (a, _), (b, n) in itertools.pairwise(starts) if n == 2]
    assert len(together) == pairs and all(a == b for a, b in together)  # the two runs of one unit


def test_learning_sends_its_replays_to_ray(ray_local, tmp_path: Path) -> None:
    """``Learning(replay_executor="ray")`` on an Orchestrator: the gate's replays run as Ray tasks."""
    import _toy
    from _ray_bench import DiesFirst, deaths

    marker = str(tmp_path / "died")
    validation = [
        ReplayTask(f"Say the secret number of box {i}.", DiesFirst(marker, 1 if i == 0 else 0), max_steps=2)
        for i in range(4)
    ]
    learning = pa.Learning(validation=validation, units_per_gate=4, replay_executor="ray")
    orch = pa.Orchestrator(
        FunctionModel(_toy.reply), _toy.make_env(0), memory=MemoryStore(tmp_path / "m.sqlite", embedder=None),
        learning=learning, trace=False,
    )  # fmt: skip
    orch.run_task("Say the secret number of box 9. " + _toy.TIP, max_steps=2)
    assert deaths(marker) == 1  # the replay ran on a worker (it died there, and was retried)
    with MemoryStore(tmp_path / "m.sqlite", embedder=None) as store:
        assert store.list(status=MemoryStatus.PROMOTED)  # and the gate promoted on its evidence


# ---------------------------------------------------------------------- clear errors
def test_a_local_model_is_refused_before_anything_runs(tmp_path: Path) -> None:
    backend = pa.resolve_backend("local-server:qwen2.5-coder-1.5b")  # not started: nothing is loaded
    with pytest.raises(ConfigurationError, match="OpenAI-compatible endpoint"):
        BenchmarkRunner(llm=backend, executor="ray", out_dir=tmp_path)
    with MemoryStore(tmp_path / "m.sqlite", embedder=None) as store:
        tasks = [ReplayTask("Say it.", lambda seed: None)]  # type: ignore[arg-type, return-value]
        with pytest.raises(ConfigurationError, match="serve the model on each node"):
            ValidationReplay(store, backend, tasks, executor="ray")


def test_unknown_executors_and_misplaced_options_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="unknown executor 'dask'"):
        BenchmarkRunner(llm=ScriptedModel([]), executor="dask", out_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"unknown Learning\.replay_executor 'dask'"):
        pa.Learning(replay_executor="dask")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="ray_address= is the Ray cluster of executor='ray'"):
        BenchmarkRunner(llm=ScriptedModel([]), ray_address="ray://h:10001", out_dir=tmp_path)
    given = pa.Orchestrator(ScriptedModel([]), _AnyEnv(), trace=False)
    with pytest.raises(ConfigurationError, match="a given orchestrator runs in this process"):
        BenchmarkRunner(given, executor="ray", out_dir=tmp_path)


def test_without_the_ray_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    fix = r"pip install 'purpose-agent\[ray\]'"
    with pytest.raises(MissingExtraError, match=rf"BenchmarkRunner\(executor='ray'\).*{fix}"):
        BenchmarkRunner(llm=ScriptedModel([]), executor="ray", out_dir=tmp_path)
    with pytest.raises(MissingExtraError, match=rf"Learning.replay_executor='ray'.*{fix}"):
        pa.Learning(replay_executor="ray")
    with pytest.raises(MissingExtraError, match=fix):
        fan_out(len, [[1]], ["a run"])


def test_bench_learning_takes_the_executor_and_refuses_a_local_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("bench_learning", ROOT / "benchmarks" / "bench_learning.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_learning", bench)
    spec.loader.exec_module(bench)
    local = pa.resolve_backend("local-server:qwen2.5-coder-1.5b")  # not started
    monkeypatch.setattr(bench, "resolve_backend", lambda spec: local)
    out = tmp_path / "out"
    base = ["--testbed", "reasoning", "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        bench.main([*base, "--ray-address", "ray://h:10001"])
    assert exc.value.code == 2 and "--ray-address is the cluster of --executor ray" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        bench.main([*base, "--executor", "ray"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--executor ray" in err and "OpenAI-compatible endpoint" in err
    assert not out.exists()  # refused before anything was written
    seen: dict[str, Any] = {}

    class Runner:
        def __init__(self, **kw: Any) -> None:
            seen.update(kw)
            raise SystemExit(0)  # stop before any run

    monkeypatch.setattr(bench, "BenchmarkRunner", Runner)
    monkeypatch.setattr(bench, "resolve_backend", lambda spec: ScriptedModel([]))
    with pytest.raises(SystemExit):
        bench.main([*base, "--executor", "ray", "--ray-address", "ray://h:10001", "--model", "openai:x"])
    assert seen["executor"] == "ray" and seen["ray_address"] == "ray://h:10001"


class _AnyEnv(pa.Environment):
    def reset(self) -> pa.State:
        return pa.State({}, "")

    def execute(self, action: pa.Action, state: pa.State) -> pa.State:
        return state
