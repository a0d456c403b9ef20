from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import _toy
import pytest

from purpose_agent.core.environment import SimpleEnvironment
from purpose_agent.core.orchestrator import Orchestrator
from purpose_agent.core.types import State
from purpose_agent.evals import BenchmarkRunner, BenchmarkTask, GroundTruthPurposeFunction
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.testing import FunctionModel

HERE = Path(__file__).parent


def test_full_harness_learns_the_toy_task_and_the_floor_does_not(tmp_path: Path) -> None:
    result = _toy.runner(tmp_path).run(_toy.tasks, 2, "toy")
    c = result.conditions
    assert c["no_memory"]["after"]["mean"] == 0.0
    for name in ("ungated", "reflection", "full", "critic_off"):
        assert c[name]["before"]["mean"] == 0.0, name
        assert c[name]["after"]["mean"] == 1.0, name
        assert c[name]["vs_no_memory"]["low"] > 0, name
        assert c[name]["learning"]["runs"] == 8, name  # 4 per seed × 2 seeds, the same for every learner
    assert c["full"]["learning"]["promoted"] >= 1
    assert c["full"]["curve"][0]["mean"] == 0.0 and c["full"]["curve"][-1]["mean"] == 1.0
    assert c["full"]["cost_per_point"]["calls"] is not None
    root = tmp_path / "toy"
    data = json.loads((root / "results.json").read_text())
    assert data["bar"]["checks"]["gain_at_least_15_points"] is True
    assert data["bar"]["checks"]["at_least_3_seeds"] is False and data["bar"]["met"] is False
    assert (root / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "| full |" in (root / "table.md").read_text()


def test_full_arm_calibrates_its_critic_and_agreement_is_reported_per_block(tmp_path: Path) -> None:
    """The toy critic always answers 5: it agrees with ground truth while every test run fails
    and disagrees once they succeed, so the agreement curve must move from 100% to 0%."""
    c = _toy.runner(tmp_path).run(_toy.tasks, 2, "toy").conditions
    full = c["full"]["critic_agreement"]
    assert full[0] == {"mean": 1.0, "runs": 6} and full[-1] == {"mean": 0.0, "runs": 6}
    assert c["critic_off"]["critic_agreement"][-1] == {"mean": None, "runs": 0}  # no critic calls
    off, llm = c["critic_off"]["critic_calls"], c["full"]["critic_calls"]
    assert off["calls"] == 0 and off["ground_truth"] >= 20  # 10 runs per seed, each state scored
    assert llm["calls"] >= 20 and llm["ground_truth"] == 0
    mem = tmp_path / "toy" / "memory"

    def calibrations(stem: str) -> int:
        with MemoryStore(mem / f"{stem}-s0.sqlite") as store:
            return sum(m.kind == "critic_calibration" for m in store.list())

    assert calibrations("full") >= 1  # meta-rewarding: training judgments became examples
    assert calibrations("ungated") == 0 and calibrations("critic_off") == 0


def test_critic_off_makes_no_critic_calls(tmp_path: Path) -> None:
    calls: list[str] = []

    def reply(messages, schema):  # type: ignore[no-untyped-def]
        kind = "critic" if "score" in (schema or {}).get("properties", {}) else "other"
        calls.append(kind)
        return _toy.reply(messages, schema)

    from purpose_agent.evals import CRITIC_OFF, BenchmarkConfig

    config = BenchmarkConfig(conditions=(CRITIC_OFF,), seeds=(0,))
    BenchmarkRunner(llm=FunctionModel(reply), config=config, out_dir=tmp_path).run(_toy.tasks, 1, "off")
    assert "critic" not in calls and "other" in calls


def test_ground_truth_purpose_function_scores_from_outcome_without_a_model() -> None:
    env = SimpleEnvironment(outcome_fn=lambda s: s.data.get("o"))
    pf = GroundTruthPurposeFunction(env)
    assert pf.score("p", State({"o": 0.5})).phi == 5.0
    assert pf.score("p", State({})).phi == 0.0


def test_test_split_runs_cannot_write_the_store(tmp_path: Path) -> None:
    """Every test-phase unit runs in EVAL_TEST: the store file is byte-identical afterwards."""

    def tasks(seed: int) -> list[BenchmarkTask]:
        return list(_toy.tasks(seed))

    from purpose_agent.evals import FULL, BenchmarkConfig

    runner = BenchmarkRunner(
        llm=FunctionModel(_toy.reply), config=BenchmarkConfig((FULL,), (0,)), out_dir=tmp_path
    )
    snapshots: dict[str, bytes] = {}

    def on_unit(key, rec):  # type: ignore[no-untyped-def]
        db = tmp_path / "t" / "memory" / "full-s0.sqlite"
        if key.phase == "test" and key.condition == "full":
            data = db.read_bytes() + (
                db.with_name(db.name + "-wal").read_bytes()
                if db.with_name(db.name + "-wal").exists()
                else b""
            )
            prev = snapshots.get(f"{key.block}")
            if prev is not None:
                assert data == prev, "a test run changed the store"
            snapshots[f"{key.block}"] = data

    runner.on_unit = on_unit
    runner.run(tasks, 2, "t")
    assert len(snapshots) == 2


def test_given_orchestrator_call_shape_of_the_spec(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite")
    orch = Orchestrator(FunctionModel(_toy.reply), _toy.make_env(0), memory=store, trace=False)
    tasks = _toy.tasks(0)
    result = BenchmarkRunner(orch, out_dir=tmp_path).run(tasks, 2, "spec")
    assert list(result.conditions) == ["system"]
    assert result.conditions["system"]["before"]["n"] == 3
    assert result.conditions["system"]["after"]["n"] == 3


def test_resume_refuses_a_different_configuration(tmp_path: Path) -> None:
    _toy.runner(tmp_path).run(_toy.tasks, 1, "x")
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path).run(_toy.tasks, 2, "x")
    fewer = lambda seed: _toy.tasks(seed)[1:]  # noqa: E731  (one training task less)
    with pytest.raises(ValueError, match="another configuration"):
        _toy.runner(tmp_path).run(fewer, 1, "x")


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
        if len(finished_before_kill) == 9:
            child.kill()  # SIGKILL mid-benchmark: no cleanup runs
            break
    child.wait()
    assert child.returncode != 0
    ledger = tmp_path / "toy" / "ledger.jsonl"
    assert len(ledger.read_text().splitlines()) >= 9

    rerun: list[str] = []
    result = _toy.runner(tmp_path, on_unit=lambda k, r: rerun.append(k.as_str())).run(_toy.tasks, 2, "toy")
    keys = [json.loads(x)["key"] for x in ledger.read_text().splitlines()]
    flat = ["|".join(str(v) for v in k.values()) for k in keys]
    assert len(flat) == len(set(flat)), "a unit ran twice"
    assert not set(rerun) & set(finished_before_kill), "a finished unit was re-run"
    reference = _toy.runner(tmp_path / "ref").run(_toy.tasks, 2, "toy")
    assert len(flat) == len((tmp_path / "ref" / "toy" / "ledger.jsonl").read_text().splitlines())
    for name, c in reference.conditions.items():
        assert result.conditions[name]["after"] == c["after"], name
        assert result.conditions[name]["before"] == c["before"], name
