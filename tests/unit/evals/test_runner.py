"""The learning benchmark on a toy family driven by a FunctionModel: every arm learns, the
floor does not; the report (CIs, comparisons, never-worse, cost per point, gate cost, bar);
resume after SIGKILL and after a crash inside a training unit; EVAL_TEST writes nothing."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import _toy
import pytest

from purpose_agent.core.types import State
from purpose_agent.evals import (
    CRITIC_OFF,
    FULL,
    BenchmarkConfig,
    BenchmarkRunner,
    BenchmarkTask,
    GroundTruthPurposeFunction,
    OrchestratorSettings,
)
from purpose_agent.evals.conditions import ArmSetup
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus
from purpose_agent.models.testing import FunctionModel

HERE = Path(__file__).parent
LEARNERS = ("ungated", "reflection", "full", "critic_off", "examples_only", "procedures_only")


def test_every_learning_arm_learns_the_toy_task_and_the_floor_does_not(tmp_path: Path) -> None:
    result = _toy.runner(tmp_path).run(_toy.tasks, 1, "toy")
    c = result.conditions
    assert list(c) == ["no_memory", *LEARNERS[:4], "examples_only", "procedures_only", "failures_only"]
    assert c["no_memory"]["after"]["mean"] == 0.0 and c["no_memory"]["learning"]["runs"] == 0
    for name in LEARNERS:
        assert c[name]["curve"][0]["mean"] == 0.0, name  # block 0 is the floor
        assert c[name]["after"]["mean"] == 1.0, name
        assert c[name]["vs_no_memory"]["low"] > 0, name
        assert c[name]["learning"]["runs"] == 8, name  # 4 training tasks per seed × 2 seeds in every arm
        assert c[name]["cost_per_point"]["calls"] is not None, name
    # the same attempt budget: in every learning arm a failed first attempt got a second one
    root = tmp_path / "toy"
    trains = [json.loads(x) for x in (root / "ledger.jsonl").read_text().splitlines()]
    trains = [r for r in trains if r["key"]["phase"] == "train"]
    assert {r["key"]["condition"] for r in trains} == {*LEARNERS, "failures_only"}
    for r in trains:
        first = r["attempt_successes"][0]
        assert r["attempts"] == (1 if first else 2), r["key"]
    assert any(r["attempts"] == 2 for r in trains)
    assert c["full"]["learning"]["promoted"] >= 1 and c["full"]["gate"]["candidates"] >= 1
    gate = c["full"]["gate"]
    assert gate["per_candidate"]["runs"] > 0 and gate["training_attempt"]["calls"] > 0
    assert c["ungated"]["gate"]["candidates"] == 0  # promoted at once, no replay
    with MemoryStore(root / "memory" / "ungated-s0.sqlite", embedder=None) as store:
        assert store.list(status=MemoryStatus.PROMOTED)
        assert not store.list(status=MemoryStatus.CANDIDATE) + store.list(status=MemoryStatus.QUARANTINED)
    data = json.loads((root / "results.json").read_text())
    checks = data["bar"]["checks"]
    assert checks["gain_at_least_15_points"] and checks["ci_above_zero"]
    assert checks["promoted_memory_never_worse"]
    assert not checks["at_least_3_seeds"] and not checks["at_least_60_paired_episodes"]
    assert not checks["ahead_of_ungated"] and data["bar"]["met"] is False  # ties with the baselines
    assert "NOT MET" in data["bar"]["statement"] or "Not met" in data["bar"]["statement"]
    assert set(data["comparisons"]) >= {
        "full_minus_ungated",
        "full_minus_reflection",
        "full_minus_critic_off",
    }
    assert (root / "curve.png").read_bytes()[:4] == b"\x89PNG"
    table = (root / "table.md").read_text()
    assert "| full |" in table and "Bar (SPEC §9): NOT MET" in table


def test_full_arm_calibrates_its_critic_and_critic_off_makes_no_critic_calls(tmp_path: Path) -> None:
    calls: list[str] = []

    def reply(messages, schema):  # type: ignore[no-untyped-def]
        calls.append("critic" if "score" in (schema or {}).get("properties", {}) else "other")
        return _toy.reply(messages, schema)

    c = (
        _toy.runner(tmp_path, FunctionModel(reply), (FULL, CRITIC_OFF), (0,))
        .run(_toy.tasks, 1, "t")
        .conditions
    )
    assert (
        c["critic_off"]["critic_calls"]["calls"] == 0 and c["critic_off"]["critic_calls"]["ground_truth"] > 0
    )
    assert c["full"]["critic_calls"]["calls"] > 0
    mem = tmp_path / "t" / "memory"

    def calibrations(stem: str) -> int:
        with MemoryStore(mem / f"{stem}-s0.sqlite", embedder=None) as store:
            return sum(m.kind == "critic_calibration" for m in store.list())

    assert calibrations("full") >= 1 and calibrations("critic_off") == 0
    # test runs score from ground truth in every arm: no critic call at test
    calls.clear()
    tasks = [t for t in _toy.tasks(0) if t.split == "test"]
    setup = ArmSetup(
        FULL, FunctionModel(reply), mem, 0, [t for t in _toy.tasks(0) if t.split == "validation"]
    )
    from purpose_agent.core.modes import RunMode

    setup.orchestrator(tasks[0], RunMode.EVAL_TEST).run_task(tasks[0].purpose, max_steps=2)
    assert calls == ["other"]


def test_ground_truth_purpose_function_scores_from_outcome_without_a_model() -> None:
    env = _toy.SecretEnv()
    pf = GroundTruthPurposeFunction(env)
    assert pf.score("p", State({"answer": "42"})).phi == 10.0
    assert pf.score("p", State({})).phi == 0.0


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(path.parent.glob(path.name + "*")):
        h.update(p.name.encode() + p.read_bytes())
    return h.hexdigest()


def test_test_split_runs_write_nothing(tmp_path: Path) -> None:
    """Every test unit runs in EVAL_TEST: every memory file is byte-identical across them."""
    mem = tmp_path / "t" / "memory"
    seen: dict[str, str] = {}

    def on_unit(key, rec):  # type: ignore[no-untyped-def]
        # the data: each memory file and its write-ahead log, and the reflections (a read-only
        # open leaves an empty -wal and the -shm index beside the file, no data)
        files = sorted(
            p
            for p in mem.glob("*")
            if p.is_file()
            and not p.name.endswith("-shm")
            and (p.stat().st_size or not p.name.endswith("-wal"))
        )
        state = hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()
        if key.phase == "test":
            prev = seen.get(key.condition)
            assert prev is None or prev == state, f"a test run of {key.condition} changed a memory file"
        seen[key.condition] = state

    runner = _toy.runner(tmp_path, seeds=(0,), on_unit=on_unit)
    runner.run(_toy.tasks, 1, "t")
    assert {"full", "reflection", "ungated"} <= set(seen)


def test_given_orchestrator_call_shape_of_the_spec(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = Orchestrator(FunctionModel(_toy.reply), _toy.make_env(0), memory=store, trace=False)
    result = BenchmarkRunner(orch, out_dir=tmp_path).run(_toy.tasks(0), 2, "spec")
    assert list(result.conditions) == ["system"]
    assert result.conditions["system"]["curve"][0]["n"] == 3
    assert result.conditions["system"]["after"]["n"] == 3


def test_resume_refuses_a_different_configuration_but_accepts_new_arms(tmp_path: Path) -> None:
    _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "x")
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 2, "x")
    fewer = lambda seed: _toy.tasks(seed)[1:]  # noqa: E731  (one training task less)
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(fewer, 1, "x")
    other = OrchestratorSettings(train_attempts=1, units_per_gate=4)
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,), settings=other).run(_toy.tasks, 1, "x")
    from dataclasses import replace

    with pytest.raises(ValueError, match="arm 'full'"):
        _toy.runner(tmp_path, conditions=(replace(FULL, sources=("examples",)),), seeds=(0,)).run(
            _toy.tasks, 1, "x"
        )
    # a new arm joins the benchmark; the report covers both
    result = _toy.runner(tmp_path, conditions=(CRITIC_OFF,), seeds=(0,)).run(_toy.tasks, 1, "x")
    assert list(result.conditions) == ["no_memory", "full", "critic_off"]


def test_a_killed_benchmark_resumes_where_it_stopped(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{HERE}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    child = subprocess.Popen(
        [sys.executable, "-c", f"import _toy; _toy.main({str(tmp_path)!r})"],
        stdout=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    assert child.stdout is not None
    finished_before_kill = []
    for line in child.stdout:
        if line.startswith("UNIT"):
            finished_before_kill.append(line.split()[1])
        if len(finished_before_kill) == 9:  # in the middle of the full arm's second block
            child.kill()  # SIGKILL mid-benchmark: no cleanup runs
            break
    child.wait()
    assert child.returncode != 0
    ledger = tmp_path / "toy" / "ledger.jsonl"
    assert len(ledger.read_text().splitlines()) >= 9

    rerun: list[str] = []
    result = _toy.resumable(tmp_path, on_unit=lambda k, r: rerun.append(k.as_str())).run(_toy.tasks, 2, "toy")
    keys = [json.loads(x)["key"] for x in ledger.read_text().splitlines()]
    flat = ["|".join(str(v) for v in k.values()) for k in keys]
    assert len(flat) == len(set(flat)), "a unit ran twice"
    assert not set(rerun) & set(finished_before_kill), "a finished unit was re-run"
    reference = _toy.resumable(tmp_path / "ref").run(_toy.tasks, 2, "toy")
    assert len(flat) == len((tmp_path / "ref" / "toy" / "ledger.jsonl").read_text().splitlines())
    for name, c in reference.conditions.items():
        assert result.conditions[name]["curve"] == c["curve"], name
        assert result.conditions[name]["learning"]["promoted"] == c["learning"]["promoted"], name


def test_a_crash_inside_a_training_unit_resumes_from_the_memory_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gate has already written to the store when the unit dies before its ledger line:
    the resume restores the checkpoint of the last recorded unit and reruns the unit, so the
    memory and results equal an uninterrupted run."""
    original = ArmSetup.checkpoint
    state = {"n": 0}

    def dying(self: ArmSetup, done: int) -> None:
        state["n"] += 1
        if self.condition.name == "full" and done == 3:
            raise KeyboardInterrupt  # after the unit ran and its gate wrote, before its line
        original(self, done)

    monkeypatch.setattr(ArmSetup, "checkpoint", dying)
    with pytest.raises(KeyboardInterrupt):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "c")
    monkeypatch.setattr(ArmSetup, "checkpoint", original)
    result = _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "c")
    reference = _toy.runner(tmp_path / "ref", conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "c")
    assert result.conditions["full"]["after"] == reference.conditions["full"]["after"]
    assert (
        result.conditions["full"]["learning"]["promoted"]
        == reference.conditions["full"]["learning"]["promoted"]
    )

    def memories(root: Path) -> list[tuple[str, str, int]]:
        with MemoryStore(root / "c" / "memory" / "full-s0.sqlite", embedder=None) as s:
            return sorted((m.text, m.status.value, m.merges) for m in s.list())

    assert memories(tmp_path) == memories(tmp_path / "ref")


def test_ledger_line_is_written_after_the_checkpoint(tmp_path: Path) -> None:
    order: list[str] = []
    original = ArmSetup.checkpoint

    def spy(self: ArmSetup, done: int) -> None:
        original(self, done)
        order.append(f"ckpt{done}")

    runner = _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,), on_unit=lambda k, r: order.append(k.phase))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ArmSetup, "checkpoint", spy)
        runner.run(_toy.tasks, 1, "o")
    trains = [i for i, x in enumerate(order) if x == "train"]
    assert [order[i - 1] for i in trains] == ["ckpt1", "ckpt2", "ckpt3", "ckpt4"]


def test_a_gated_arm_needs_at_least_four_validation_tasks(tmp_path: Path) -> None:
    short = lambda seed: _toy.tasks(seed, validation=3)  # noqa: E731
    with pytest.raises(ValueError, match=r"3 validation task\(s\).*at least 4"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(short, 1, "v")


def test_unknown_task_split_and_missing_tests_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown split"):
        BenchmarkTask("x", "p", split="dev")  # type: ignore[arg-type]
    no_test = lambda seed: [t for t in _toy.tasks(seed) if t.split != "test"]  # noqa: E731
    with pytest.raises(ValueError, match="no test tasks"):
        _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(no_test, 1, "n")
    config = BenchmarkConfig(conditions=(FULL,), seeds=(0,))
    assert BenchmarkRunner(llm=FunctionModel(_toy.reply), config=config).conditions()[0].name == "no_memory"


def test_an_arm_that_promoted_nothing_reuses_the_floor_runs(tmp_path: Path) -> None:
    """Nothing learned can reach the prompt, so its test runs are the no-memory runs: they are
    recorded as shared with the floor, not run again; an arm with promoted memory runs its own."""
    phases: list[str] = []

    def stubborn(messages, schema):  # type: ignore[no-untyped-def]
        props = (schema or {}).get("properties", {})
        if schema is not None and not {"lessons", "score", "title"} & set(props):
            phases.append("actor")
            return {"thought": "guess", "action": "DONE", "params": {"answer": "7"}}
        return _toy.reply(messages, schema)

    no_tips = lambda seed: [  # noqa: E731  (no training task is ever solved)
        BenchmarkTask(
            t.id, t.purpose.replace(f" {_toy.TIP}", ""), make_env=t.make_env, split=t.split, max_steps=2
        )
        for t in _toy.tasks(seed)
    ]
    marks: list[tuple[str, str, int]] = []
    runner = _toy.runner(
        tmp_path, FunctionModel(stubborn), (FULL,), (0,),
        on_unit=lambda k, r: marks.append((k.condition, k.phase, len(phases))),
    )  # fmt: skip
    result = runner.run(no_tips, 1, "s")
    assert result.conditions["full"]["learning"]["promoted"] == 0
    full_tests = [m for m in marks if m[:2] == ("full", "test")]
    assert len(full_tests) == 3 and len({m[2] for m in full_tests}) == 1  # no actor call at test
    assert result.conditions["full"]["test"]["shared_with_no_memory"] == 3
    assert result.conditions["full"]["vs_no_memory"]["mean"] == 0.0
    # with a promoted memory the arm runs its own test runs
    learned = _toy.runner(tmp_path / "l", conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "l")
    assert learned.conditions["full"]["test"]["shared_with_no_memory"] == 0


def test_a_model_that_is_down_stops_the_benchmark_and_records_no_episode(tmp_path: Path) -> None:
    from purpose_agent.models._llama_errors import ContextOverflowError, LlamaServerError

    calls = {"n": 0}

    def dies_after(n: int, error: Exception) -> FunctionModel:
        def fn(messages, schema):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] > n:
                raise error
            return _toy.reply(messages, schema)

        return FunctionModel(fn)

    crashed = LlamaServerError("llama-server exited with code -11 while starting")
    with pytest.raises(LlamaServerError, match="code -11"):
        _toy.runner(tmp_path, model=dies_after(6, crashed), conditions=(FULL,), seeds=(0,)).run(
            _toy.tasks, 1, "d"
        )
    ledger = tmp_path / "d" / "ledger.jsonl"
    rows = [json.loads(x) for x in ledger.read_text().splitlines()] if ledger.exists() else []
    assert not any(r["stop_reason"].startswith("error") for r in rows)
    # the same command resumes at the unit that met the dead model; the result is an unbroken run's
    result = _toy.runner(tmp_path, conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "d")
    reference = _toy.runner(tmp_path / "ref", conditions=(FULL,), seeds=(0,)).run(_toy.tasks, 1, "d")
    assert result.conditions["full"]["curve"] == reference.conditions["full"]["curve"]
    # a prompt too long for the context is that episode's failure: recorded, and the run goes on
    calls["n"] = 0
    overflow = ContextOverflowError("the prompt is longer than the context")
    _toy.runner(tmp_path / "o", model=dies_after(0, overflow), conditions=(FULL,), seeds=(0,)).run(
        _toy.tasks, 1, "o"
    )
    rows = [json.loads(x) for x in (tmp_path / "o" / "o" / "ledger.jsonl").read_text().splitlines()]
    assert rows and all(r["stop_reason"] == "error: ContextOverflowError" for r in rows)
