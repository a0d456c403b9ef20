"""BenchmarkRunner: learning curves on held-out test tasks, for several conditions and seeds.

For each (condition, seed): evaluate the test split in ``EVAL_TEST`` (block 0, before any
learning), then for each training block run its training tasks in ``LEARNING_TRAIN``, gate the
block's candidate lessons (full system), and evaluate the test split again in ``EVAL_TEST``.
Each finished run is one line of an append-only ledger, so an interrupted benchmark resumes at
the first unfinished run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from purpose_agent.core.modes import RunMode
from purpose_agent.core.orchestrator import Orchestrator
from purpose_agent.core.types import TaskResult
from purpose_agent.errors import RunFailedError
from purpose_agent.evals.conditions import STANDARD, Condition, ConditionSetup, OrchestratorSettings
from purpose_agent.evals.gate import gate_candidates, unit_seed
from purpose_agent.evals.ledger import Ledger, UnitKey
from purpose_agent.evals.meter import Meter, MeteredBackend, reseed
from purpose_agent.evals.progress import Progress, make_progress
from purpose_agent.evals.report import BenchmarkResult, summarize
from purpose_agent.evals.tasks import BenchmarkTask, TaskSource, blocks, by_split, tasks_for
from purpose_agent.memory.hook import StoreMemoryHook
from purpose_agent.models.base import Backend


@dataclass(frozen=True)
class BenchmarkConfig:
    """What a benchmark compares and how big it is. Saved beside the ledger; a resume with a
    different config is refused (the stores would not match)."""

    conditions: tuple[Condition, ...] = STANDARD
    seeds: tuple[int, ...] = (0,)
    settings: OrchestratorSettings = field(default_factory=OrchestratorSettings)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "conditions": [asdict(c) for c in self.conditions],
            "seeds": list(self.seeds),
            "settings": asdict(self.settings),
        }


def _result_record(result: TaskResult | None, cost: Meter, wall: float, error: str = "") -> dict[str, Any]:
    if result is None:
        return {
            "success": False, "outcome": 0.0, "steps": 0, "stop_reason": f"error: {error}",
            "calls": cost.calls, "tokens": cost.tokens, "model_time_s": cost.model_time_s, "wall_s": wall,
            "memories": 0,
        }  # fmt: skip
    return {
        "success": bool(result.success),
        "outcome": float(result.outcome if result.outcome is not None else result.final_phi / 10.0),
        "steps": len(result.steps),
        "stop_reason": result.stop_reason,
        "calls": cost.calls,
        "tokens": cost.tokens,
        "model_time_s": round(cost.model_time_s, 3),
        "wall_s": round(wall, 3),
        "memories": len(result.memory_ids),
        "critic_agreement": result.critic_agreement,
    }


class BenchmarkRunner:
    """Learning curves with baselines and ablations.

    ``BenchmarkRunner(orchestrator).run(tasks, iterations, name)`` measures one system as it is
    configured (its model, critic and memory store). ``BenchmarkRunner(llm=..., config=...)``
    compares the standard conditions (no memory, ungated, reflection, full, critic off), each
    from a fresh memory, on the same tasks, seeds and training runs.
    """

    def __init__(
        self,
        orchestrator: Orchestrator | None = None,
        *,
        llm: Backend | None = None,
        critic_llm: Backend | None = None,
        config: BenchmarkConfig | None = None,
        out_dir: str | Path = "bench_results",
        progress: bool | Progress = False,
        on_unit: Callable[[UnitKey, dict[str, Any]], None] | None = None,
    ) -> None:
        if orchestrator is None and llm is None:
            raise ValueError("give an orchestrator or an llm")
        self.orchestrator = orchestrator
        base = llm if llm is not None else orchestrator.llm  # type: ignore[union-attr]
        self.llm = MeteredBackend(base)
        critic = critic_llm if critic_llm is not None else getattr(orchestrator, "critic_llm", None)
        self.critic_llm = MeteredBackend(critic) if critic is not None and critic is not base else None
        if config is None:
            config = BenchmarkConfig(conditions=STANDARD) if orchestrator is None else BenchmarkConfig(())
        self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.on_unit = on_unit

    # ------------------------------------------------------------------ costs
    def _meter(self) -> Meter:
        m = self.llm.meter
        if self.critic_llm is not None:
            c = self.critic_llm.meter
            m = Meter(m.calls + c.calls, m.prompt_tokens + c.prompt_tokens, m.completion_tokens + c.completion_tokens,
                      m.model_time_s + c.model_time_s)  # fmt: skip
        return m

    # ------------------------------------------------------------------ public
    def run(self, tasks: TaskSource, iterations: int = 1, name: str = "benchmark") -> BenchmarkResult:
        """Run (or resume) the benchmark; returns the summary, also written to ``results.json``."""
        root = self.out_dir / name
        root.mkdir(parents=True, exist_ok=True)
        plan = {s: tasks_for(tasks, s) for s in self.config.seeds}
        self._check_config(root, iterations, plan)
        ledger = Ledger(root / "ledger.jsonl")
        conditions = list(self.config.conditions) or [self._given_condition()]
        for seed, ts in plan.items():
            if not by_split(ts, "test"):
                raise ValueError(f"seed {seed}: no test tasks (split='test')")
            if not by_split(ts, "train"):
                raise ValueError(f"seed {seed}: no training tasks (split='train')")
        planned = {
            k.as_str() for s, ts in plan.items() for c in conditions for k in self._plan(c, s, ts, iterations)
        }
        bar = self.progress if isinstance(self.progress, Progress) else make_progress(self.progress)
        started = time.time()
        with bar:
            bar.start(
                name,
                len(planned),
                already=sum(1 for r in ledger.records() if UnitKey(**r["key"]).as_str() in planned),
            )
            for seed, ts in plan.items():
                for cond in conditions:
                    self._run_condition(root, ledger, cond, seed, ts, iterations, bar)
        result = summarize(ledger.records(), conditions, self.config.seeds, iterations, name)
        result.meta.update({"model": self.llm.name, "wall_s_this_session": round(time.time() - started, 1)})
        result.write(root)
        return result

    # ------------------------------------------------------------------ internals
    def _given_condition(self) -> Condition:
        orch = self.orchestrator
        assert orch is not None
        return Condition(
            "system", "given" if orch.memory is not None else "none", "llm", "the given orchestrator"
        )

    def _check_config(self, root: Path, iterations: int, plan: dict[int, list[BenchmarkTask]]) -> None:
        tasks = {str(s): [f"{t.split}:{t.id}:{t.max_steps}" for t in ts] for s, ts in plan.items()}
        fp = {**self.config.fingerprint(), "iterations": iterations, "tasks": tasks}
        path = root / "config.json"
        if path.exists():
            old = json.loads(path.read_text(encoding="utf-8"))
            if old != json.loads(json.dumps(fp)):
                raise ValueError(
                    f"{root} holds a benchmark with another configuration; use another name or out_dir "
                    f"(old: {old}, new: {fp})"
                )
        else:
            path.write_text(json.dumps(fp, indent=2), encoding="utf-8")

    def _before_key(self, cond: Condition) -> str:
        return cond.before_key if self.orchestrator is None else cond.name

    def _plan(
        self, cond: Condition, seed: int, ts: Sequence[BenchmarkTask], iterations: int
    ) -> list[UnitKey]:
        test = by_split(ts, "test")
        keys = [UnitKey(self._before_key(cond), seed, 0, "test", t.id) for t in test]
        if not cond.learns:
            return keys
        for b, block in enumerate(blocks(by_split(ts, "train"), iterations), start=1):
            keys += [UnitKey(cond.name, seed, b, "train", t.id) for t in block]
            if cond.memory == "gated":
                keys.append(UnitKey(cond.name, seed, b, "gate", "*"))
            keys += [UnitKey(cond.name, seed, b, "test", t.id) for t in test]
        return keys

    def _setup(self, root: Path, cond: Condition, seed: int, ts: Sequence[BenchmarkTask]) -> ConditionSetup:
        setup = ConditionSetup(
            cond, self.llm, root / "memory", seed, by_split(ts, "validation"),
            critic_llm=self.critic_llm,
            settings=self.config.settings,
        )  # fmt: skip
        orch = self.orchestrator
        if orch is not None and cond.name == "system":
            setup.given = orch  # type: ignore[attr-defined]
        return setup

    def _run_condition(
        self, root: Path, ledger: Ledger, cond: Condition, seed: int, ts: list[BenchmarkTask], iterations: int,
        bar: Progress,
    ) -> None:  # fmt: skip
        if cond.memory == "gated" and not by_split(ts, "validation"):
            raise ValueError(f"condition {cond.name!r} gates lessons and needs validation tasks")
        setup = self._setup(root, cond, seed, ts)
        test = by_split(ts, "test")
        train_blocks = blocks(by_split(ts, "train"), iterations)
        try:
            before = self._before_key(cond)
            for t in test:
                self._unit(ledger, UnitKey(before, seed, 0, "test", t.id), setup, t, RunMode.EVAL_TEST, bar)
            if not cond.learns:
                return
            for b, block in enumerate(train_blocks, start=1):
                for t in block:
                    self._unit(
                        ledger,
                        UnitKey(cond.name, seed, b, "train", t.id),
                        setup,
                        t,
                        RunMode.LEARNING_TRAIN,
                        bar,
                    )
                if cond.memory == "gated":
                    self._gate(ledger, UnitKey(cond.name, seed, b, "gate", "*"), setup, bar)
                for t in test:
                    self._unit(
                        ledger, UnitKey(cond.name, seed, b, "test", t.id), setup, t, RunMode.EVAL_TEST, bar
                    )
        finally:
            setup.close()

    def _orchestrator(
        self, setup: ConditionSetup, task: BenchmarkTask, mode: RunMode, seed: int
    ) -> Orchestrator:
        given: Orchestrator | None = getattr(setup, "given", None)
        env = task.make_env(seed) if task.make_env is not None else None
        if given is None:
            if env is None:
                raise ValueError(f"task {task.id!r} has no make_env")
            return setup.factory(env, mode, setup.hook(mode))
        hook: Any = given.memory
        learning = None
        if isinstance(hook, StoreMemoryHook) and hook.learning is not None:
            # the default path: the same learning (its held-out tasks are shared by store file)
            teacher = None if hook.llm is given.llm else hook.llm
            hook, learning = hook.store.with_mode(mode), replace(hook.learning, teacher=teacher)
        elif isinstance(hook, StoreMemoryHook):
            hook = StoreMemoryHook(hook.store.with_mode(mode), llm=self.llm, distill=hook.distill, ci=hook.ci)
        return Orchestrator(
            self.llm, env or given.environment, critic_llm=self.critic_llm, memory=hook, mode=mode,
            purpose_function=given.purpose_function if given.purpose_function.llm is not given.llm else None,
            phi_threshold=given.phi_threshold, success_outcome=given.success_outcome, trace=given.trace_enabled,
            learning=learning,
        )  # fmt: skip

    def _unit(
        self,
        ledger: Ledger,
        key: UnitKey,
        setup: ConditionSetup,
        task: BenchmarkTask,
        mode: RunMode,
        bar: Progress,
    ) -> None:
        if ledger.done(key):
            return
        bar.describe(f"{key.condition} s{key.seed} b{key.block} {key.phase} {task.id}")
        reseed(self.llm, unit_seed(key.seed, key.condition if key.phase != "test" else "eval", task.id))
        m0, t0 = self._meter(), time.perf_counter()
        result: TaskResult | None
        error = ""
        orch: Orchestrator | None = None
        try:
            orch = self._orchestrator(setup, task, mode, key.seed)
            result = orch.run_task(task.purpose, task.initial_state, task.max_steps)
        except RunFailedError as exc:
            result = exc.result if isinstance(exc.result, TaskResult) else None
            error = repr(exc.__cause__)
        rec = _result_record(result, self._meter() - m0, time.perf_counter() - t0, error)
        rec["split"] = task.split
        stats = getattr(getattr(orch, "purpose_function", None), "stats", None)
        if stats is not None:  # critic calls made, and saved by the cache and by ground truth
            rec["critic"] = {
                "calls": stats.calls,
                "cache_hits": stats.cache_hits,
                "ground_truth": stats.ground_truth,
            }
        self._record(ledger, key, rec, bar)

    def _gate(self, ledger: Ledger, key: UnitKey, setup: ConditionSetup, bar: Progress) -> None:
        if ledger.done(key):
            return
        bar.describe(f"{key.condition} s{key.seed} b{key.block} gate")
        assert setup.store is not None and setup.ci is not None
        m0, t0 = self._meter(), time.perf_counter()
        decisions = gate_candidates(setup.ci, setup.store, self.config.settings.gate_limit)
        cost = self._meter() - m0
        rec = {
            "decisions": [
                {"id": d.memory_id, "action": d.action, "gain": d.gain, "wins": d.wins, "losses": d.losses,
                 "ties": d.ties, "pairs": d.pairs, "runs": d.runs, "calls": d.calls,
                 "seconds": round(d.seconds, 3), "reason": d.reason[:300]}
                for d in decisions
            ],
            "promoted": sum(d.action == "promoted" for d in decisions),
            "rejected": sum(d.action == "rejected" for d in decisions),
            "calls": cost.calls, "tokens": cost.tokens, "model_time_s": round(cost.model_time_s, 3),
            "wall_s": round(time.perf_counter() - t0, 3),
        }  # fmt: skip
        self._record(ledger, key, rec, bar)

    def _record(self, ledger: Ledger, key: UnitKey, rec: dict[str, Any], bar: Progress) -> None:
        ledger.record(key, rec)
        bar.advance()
        if self.on_unit is not None:
            self.on_unit(key, rec)
