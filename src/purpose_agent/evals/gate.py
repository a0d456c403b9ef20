"""Gates for the memory conditions: the full memory CI (the evidence rule of
``purpose_agent.memory.evidence``) with a ground-truth validation replay (baseline runs cached),
and the ungated ExpeL-like gate that promotes every scanned lesson at once."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.orchestrator import MemoryHook, Orchestrator
from purpose_agent.errors import RunFailedError
from purpose_agent.evals.meter import reseed
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.evidence import UnitRun, past_evidence
from purpose_agent.memory.hook import StoreMemoryHook
from purpose_agent.memory.replay import NoCriticPurposeFunction
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus

#: (environment, mode, memory hook) -> a configured Orchestrator
OrchestratorFactory = Callable[[Environment, RunMode, MemoryHook | None], Orchestrator]


def unit_seed(seed: int, *parts: str) -> int:
    """A stable per-unit sampling seed (independent of run order, so resume is exact)."""
    return (seed * 1_000_003 + zlib.crc32("|".join(parts).encode())) % (2**31 - 1)


class PromoteAll(MemoryCI):
    """Ungated memory (ExpeL-insights-like): every distilled lesson that passes the immune scan
    is promoted at once, with no validation replay."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store, None)

    def process(self, candidate_ids: Sequence[str]) -> list[Decision]:
        return [self.process_one(mid) for mid in dict.fromkeys(candidate_ids)]

    def process_one(self, memory_id: str) -> Decision:
        m = self.store.get(memory_id)
        if m.status not in (MemoryStatus.CANDIDATE, MemoryStatus.QUARANTINED):
            return Decision(memory_id, "skipped", f"memory is {m.status.value}")
        safe, why = self._scan(m.text, m.kind.value, m.scope)
        if not safe:
            self.store.reject(memory_id, why)
            return Decision(memory_id, "rejected", why)
        try:
            self.store.promote(memory_id, "ungated baseline: promoted at once")
        except Exception as exc:
            return Decision(memory_id, "rejected", str(exc))
        return Decision(memory_id, "promoted", "ungated baseline: promoted at once")


class BenchReplay:
    """The memory CI's replay over the validation tasks (one unit per task), in
    ``LEARNING_VALIDATION``, through the condition's own orchestrator factory (same actor,
    actions and settings as its training runs), scored from ground truth with no critic call
    (``ground_truth_phi=True`` and a Purpose Function that never calls a model). The baseline
    ("without") runs depend only on the promoted set, so they are cached by it across gates."""

    def __init__(
        self,
        store: MemoryStore,
        tasks: Sequence[BenchmarkTask],
        factory: OrchestratorFactory,
        llm: object,
        *,
        seed: int = 0,
        count_tokens: Callable[[str], int] | None = None,
    ) -> None:
        if not tasks:
            raise ValueError("a validation replay needs at least one validation task")
        self.store = store.with_mode(RunMode.LEARNING_VALIDATION)
        self.tasks = list(tasks)
        self.factory = factory
        self.llm = llm
        self.seed = seed
        self.count_tokens = count_tokens
        self.runs = 0
        self._cache: dict[tuple[frozenset[str], str], UnitRun] = {}

    def units(self) -> list[str]:
        return [t.id for t in self.tasks]

    def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
        task = next((t for t in self.tasks if t.id == key), None)
        if task is None:
            raise KeyError(f"no validation task {key!r}")
        cache_key: tuple[frozenset[str], str] | None = None
        if not include:
            promoted = {m.id for m in self.store.list(status=MemoryStatus.PROMOTED)} - set(exclude)
            cache_key = (frozenset(promoted), key)
            if cache_key in self._cache:
                return replace(self._cache[cache_key], calls=0, seconds=0.0, cached=True)
        run = self._run(task, include, exclude)
        if cache_key is not None:
            self._cache[cache_key] = run
        return run

    def __call__(self, include_ids: Sequence[str], exclude_ids: Sequence[str]) -> list[float | None]:
        return [self.run_unit(k, include_ids, exclude_ids).outcome for k in self.units()]

    def _run(self, task: BenchmarkTask, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
        if task.make_env is None:
            raise ValueError(f"validation task {task.id!r} has no make_env")
        reseed(self.llm, unit_seed(self.seed, "validation", task.id))
        hook = StoreMemoryHook(
            self.store,
            distill=False,
            force_include=include,
            force_exclude=exclude,
            count_tokens=self.count_tokens,
        )
        orch = self.factory(task.make_env(self.seed), RunMode.LEARNING_VALIDATION, hook)
        orch.ground_truth_phi = True
        orch.purpose_function = NoCriticPurposeFunction()
        self.runs += 1
        t0 = time.perf_counter()
        try:
            result = orch.run_task(task.purpose, task.initial_state, task.max_steps)
            outcome = None if result.outcome is None else float(result.outcome)
        except RunFailedError as exc:
            result, outcome = exc.result, 0.0  # type: ignore[assignment]
        calls = int(getattr(getattr(result, "usage", None), "calls", 0) or 0)
        return UnitRun(outcome, calls, time.perf_counter() - t0)


def gate_candidates(ci: MemoryCI, store: MemoryStore, limit: int) -> list[Decision]:
    """Run the memory CI over the waiting candidates that have validation units they were not
    replayed on (quarantined ones replayed on all of them wait for new units at no cost),
    most-merged (most often re-learned) first, at most ``limit`` of them; the rest wait for a
    later block."""
    units_of = getattr(ci.replay, "units", None)
    units = list(units_of()) if callable(units_of) else []
    waiting = store.list(status=MemoryStatus.CANDIDATE) + [
        m
        for m in store.list(status=MemoryStatus.QUARANTINED)
        if not units or any(u not in past_evidence(store, m.id).seen for u in units)
    ]
    waiting.sort(key=lambda m: (-m.merges, -m.created_at))
    return ci.process([m.id for m in waiting[:limit]])
