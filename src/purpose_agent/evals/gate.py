"""Gates for the memory conditions: the full memory CI with a validation replay (baseline
runs cached), and the ungated ExpeL-like gate that promotes every scanned lesson at once."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.orchestrator import MemoryHook, Orchestrator
from purpose_agent.errors import RunFailedError
from purpose_agent.evals.meter import reseed
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.hook import StoreMemoryHook
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
    """``replay(include, exclude) -> outcomes`` over the validation tasks, in
    ``LEARNING_VALIDATION``, through the condition's own orchestrator factory (same critic as
    its training runs). The baseline ("without") runs depend only on the promoted set, so they
    are cached by it: each candidate then costs one replay, not two."""

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
        self._cache: dict[tuple[tuple[str, ...], tuple[str, ...]], list[float]] = {}

    def __call__(self, include_ids: Sequence[str], exclude_ids: Sequence[str]) -> list[float]:
        promoted = {m.id for m in self.store.list(status=MemoryStatus.PROMOTED)} - set(exclude_ids)
        key = (tuple(sorted(include_ids)), tuple(sorted(promoted)))
        if key not in self._cache:
            self._cache[key] = [self._run(t, include_ids, exclude_ids) for t in self.tasks]
        return list(self._cache[key])

    def _run(self, task: BenchmarkTask, include: Sequence[str], exclude: Sequence[str]) -> float:
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
        self.runs += 1
        try:
            result = orch.run_task(task.purpose, task.initial_state, task.max_steps)
        except RunFailedError:
            return 0.0
        return float(result.outcome if result.outcome is not None else result.final_phi / 10.0)


def gate_candidates(ci: MemoryCI, store: MemoryStore, limit: int) -> list[Decision]:
    """Run the memory CI over the waiting candidates, most-merged (most often re-learned) first,
    at most ``limit`` of them; the rest wait for a later block."""
    waiting = store.list(status=MemoryStatus.CANDIDATE) + store.list(status=MemoryStatus.QUARANTINED)
    waiting.sort(key=lambda m: (-m.merges, -m.created_at))
    return ci.process([m.id for m in waiting[:limit]])
