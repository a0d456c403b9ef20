"""The arms are built through the public default path (``memory=MemoryStore(path)``,
``learning=pa.Learning(...)``); each ablation writes only its own source; the teacher writes
the lessons and reflections; ``Learning(sources=...)`` and the benchmark's ``--teacher`` reject
bad input clearly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import _toy
import pytest

import purpose_agent as pa
from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError
from purpose_agent.evals import (
    CRITIC_OFF,
    EXAMPLES_ONLY,
    FAILURES_ONLY,
    FULL,
    PROCEDURES_ONLY,
    REFLECTION,
    UNGATED,
    OrchestratorSettings,
)
from purpose_agent.evals.conditions import ArmSetup
from purpose_agent.evals.gate import PromoteAll
from purpose_agent.evals.reflection import ReflectionMemory
from purpose_agent.loop.hook import StoreMemoryHook
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore
from purpose_agent.memory.sources import is_procedure, is_worked_example
from purpose_agent.models.testing import FunctionModel

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = OrchestratorSettings(train_attempts=3, units_per_gate=4, candidates_per_gate=2)


def _split(seed: int, split: str) -> list[Any]:
    return [t for t in _toy.tasks(seed) if t.split == split]


def _setup(tmp_path: Path, arm: Any, teacher: Any = None) -> ArmSetup:
    return ArmSetup(
        arm,
        FunctionModel(_toy.reply),
        tmp_path,
        0,
        _split(0, "validation"),
        teacher=teacher,
        settings=SETTINGS,
    )


def test_learning_arms_are_the_default_path_with_pa_learning(tmp_path: Path) -> None:
    teacher = FunctionModel(_toy.reply)
    for arm in (FULL, CRITIC_OFF, EXAMPLES_ONLY, PROCEDURES_ONLY, FAILURES_ONLY):
        setup = _setup(tmp_path, arm, teacher)
        orch = setup.orchestrator(_split(0, "train")[0], RunMode.LEARNING_TRAIN)
        hook = orch.memory
        assert isinstance(hook, StoreMemoryHook) and hook.ci is None and hook.learner is not None
        assert isinstance(orch.learning, pa.Learning) and orch.learning is hook.learning
        assert orch.learning.train_attempts == 3 and orch.learning.units_per_gate == 4
        assert orch.learning.candidates_per_gate == 2 and orch.learning.sources == arm.sources
        assert orch.learning.teacher is teacher
        assert [t.key for t in hook.learner.validation_tasks()] == [t.id for t in _split(0, "validation")]
        assert (
            hook.store.path == tmp_path / f"{arm.name}-s0.sqlite"
            and hook.store.mode is RunMode.LEARNING_TRAIN
        )
        assert orch.meta_reward is (arm.critic == "llm")
        assert (type(orch.purpose_function).__name__ == "GroundTruthPurposeFunction") is (
            arm.critic == "ground_truth"
        )
        hook.store.close()
        test = setup.orchestrator(_split(0, "test")[0], RunMode.EVAL_TEST)
        assert test.mode is RunMode.EVAL_TEST and test.memory.store.mode is RunMode.EVAL_TEST  # type: ignore[union-attr]
        assert type(test.purpose_function).__name__ == "GroundTruthPurposeFunction"


def test_baselines_get_the_same_attempts_and_teacher(tmp_path: Path) -> None:
    teacher = FunctionModel(_toy.reply)
    ungated = _setup(tmp_path, UNGATED, teacher).orchestrator(_split(0, "train")[0], RunMode.LEARNING_TRAIN)
    hook = ungated.memory
    assert isinstance(hook, StoreMemoryHook) and isinstance(hook.ci, PromoteAll)
    assert hook.learning is not None and hook.learning.sources == pa.Learning().sources
    assert hook.llm is teacher and ungated.learning.train_attempts == 3 and not ungated.meta_reward
    refl = _setup(tmp_path, REFLECTION, teacher).orchestrator(_split(0, "train")[0], RunMode.LEARNING_TRAIN)
    assert isinstance(refl.memory, ReflectionMemory) and refl.memory.llm is teacher
    assert refl.learning.train_attempts == 3  # the same attempt budget (Reflexion's trials, in training)


def _run(tmp_path: Path, arm: Any, attempts: int = 1) -> MemoryStore:
    settings = OrchestratorSettings(train_attempts=attempts, units_per_gate=4)
    _toy.runner(tmp_path, conditions=(arm,), seeds=(0,), settings=settings).run(_toy.tasks, 1, "a")
    return MemoryStore(tmp_path / "a" / "memory" / f"{arm.name}-s0.sqlite", embedder=None)


def _learned(store: MemoryStore) -> list[Any]:
    """Memories that can reach a prompt (calibration examples and archived evidence left out)."""
    return [
        m
        for m in store.list()
        if m.kind is not MemoryKind.CRITIC_CALIBRATION and m.status is not MemoryStatus.ARCHIVED
    ]


def test_each_ablation_writes_only_its_own_source(tmp_path: Path) -> None:
    with _run(tmp_path / "e", EXAMPLES_ONLY) as store:
        learned = _learned(store)
        assert learned and all(is_worked_example(m) for m in learned)
        assert any(m.status is MemoryStatus.PROMOTED for m in learned)
    with _run(tmp_path / "p", PROCEDURES_ONLY) as store:
        learned = _learned(store)
        assert learned and all(is_procedure(m) for m in learned)
        # the verified successes it induced from are kept as archived evidence, never in a prompt
        assert [m for m in store.list(status=MemoryStatus.ARCHIVED) if is_worked_example(m)]
    with _run(tmp_path / "f", FAILURES_ONLY) as store:
        learned = _learned(store)
        assert learned and {m.kind for m in learned} <= {MemoryKind.FAILURE_PATTERN, MemoryKind.SKILL_CARD}
        assert not any(is_procedure(m) or is_worked_example(m) for m in learned)
        assert any("expected answer is 42" in m.text for m in learned)
    with _run(tmp_path / "full", FULL) as store:
        makers = {m.made_by for m in _learned(store)}
        assert makers == {"experience", "distiller"}  # every source, the distiller included


def test_ablations_make_no_distiller_calls(tmp_path: Path) -> None:
    for arm in (EXAMPLES_ONLY, PROCEDURES_ONLY, FAILURES_ONLY):
        before = _toy.COUNTS.calls["distiller"]
        _run(tmp_path / arm.name, arm).close()
        assert _toy.COUNTS.calls["distiller"] == before, arm.name
    before = _toy.COUNTS.calls["distiller"]
    _run(tmp_path / "full", FULL).close()
    assert _toy.COUNTS.calls["distiller"] > before


def test_the_teacher_writes_lessons_and_reflections_not_the_actor(tmp_path: Path) -> None:
    actor_calls: list[str] = []

    def actor(messages, schema):  # type: ignore[no-untyped-def]
        props = (schema or {}).get("properties", {})
        if schema is None or "lessons" in props:
            actor_calls.append("lesson")
        return _toy.reply(messages, schema)

    teacher = FunctionModel(_toy.reply)
    config_arms = (FULL, REFLECTION)
    runner = _toy.runner(tmp_path, FunctionModel(actor), config_arms, (0,), teacher=teacher)
    result = runner.run(_toy.tasks, 1, "t")
    assert actor_calls == []
    assert result.meta["teacher"] == teacher.name
    assert result.conditions["full"]["learning"]["calls"] > 0


def test_learning_sources_are_validated() -> None:
    assert pa.Learning(sources=("examples", "examples")).sources == ("examples",)
    with pytest.raises(ConfigurationError, match="non-empty subset"):
        pa.Learning(sources=("examples", "insights"))
    with pytest.raises(ConfigurationError, match="non-empty subset"):
        pa.Learning(sources=())
    with pytest.raises(ConfigurationError, match="tuple of names"):
        pa.Learning(sources="examples")  # type: ignore[arg-type]


def test_sources_select_the_hook_sources_on_the_default_path(tmp_path: Path) -> None:
    model = FunctionModel(_toy.reply)
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = pa.Orchestrator(
        model, _toy.make_env(0), memory=store, learning=pa.Learning(sources=("failures",)), trace=False
    )
    hook = orch.memory
    assert isinstance(hook, StoreMemoryHook) and hook.llm is None and len(hook.sources) == 1
    orch.run_task("Say the secret number of box 9.", max_steps=2)
    assert [m.kind for m in store.list()] == [MemoryKind.FAILURE_PATTERN]
    default = pa.Orchestrator(model, _toy.make_env(0), memory=tmp_path / "d.sqlite", trace=False)
    assert default.memory.llm is model  # type: ignore[union-attr]


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_learning", ROOT / "benchmarks" / "bench_learning.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_learning"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_bench_unknown_teacher_is_a_clear_error_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = _bench()
    loaded: list[str] = []
    monkeypatch.setattr(bench, "resolve_backend", lambda spec: loaded.append(spec))
    out = tmp_path / "out"
    argv = ["--testbed", "reasoning", "--teacher", "opnai:gpt-4o", "--out", str(out), "--no-progress"]
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--teacher 'opnai:gpt-4o'" in err and "Did you mean 'openai'" in err
    assert not out.exists() and loaded == []  # no model loaded, nothing written
    with pytest.raises(SystemExit):
        bench.main(["--testbed", "reasoning", "--conditions", "full,nosuch", "--out", str(out)])
    assert "unknown arm 'nosuch'" in capsys.readouterr().err
