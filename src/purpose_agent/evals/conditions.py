"""The conditions a learning benchmark compares: baselines, ablations and the full system,
each built the same way from one model so they share the budget."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.orchestrator import MemoryHook, Orchestrator
from purpose_agent.evals.critics import GroundTruthPurposeFunction
from purpose_agent.evals.gate import BenchReplay, PromoteAll
from purpose_agent.evals.reflection import ReflectionMemory
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.memory.ci import MemoryCI
from purpose_agent.memory.hook import StoreMemoryHook
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.base import Backend

MemoryKindName = Literal["none", "ungated", "reflection", "gated", "given"]
CriticKind = Literal["llm", "ground_truth"]


@dataclass(frozen=True)
class Condition:
    """One arm of the comparison: what memory it learns with, and what scores its steps."""

    name: str
    memory: MemoryKindName = "gated"
    critic: CriticKind = "llm"
    description: str = ""

    @property
    def learns(self) -> bool:
        return self.memory != "none"

    @property
    def before_key(self) -> str:
        """Conditions that start from an empty memory with the same critic have identical
        before-learning runs; they share them under this name."""
        return f"before[{self.critic}]"


NO_MEMORY = Condition("no_memory", "none", "llm", "no memory at all (the floor)")
UNGATED = Condition(
    "ungated", "ungated", "llm", "every distilled lesson promoted at once (ExpeL-insights-like)"
)
REFLECTION = Condition(
    "reflection", "reflection", "llm", "last 3 verbal self-reflections in the prompt (Reflexion-like)"
)
FULL = Condition(
    "full", "gated", "llm", "distil → immune → quarantine → validation replay → promote/reject → credit"
)
CRITIC_OFF = Condition(
    "critic_off", "gated", "ground_truth", "full system with Φ = 10·outcome, no critic calls"
)
STANDARD: tuple[Condition, ...] = (NO_MEMORY, UNGATED, REFLECTION, FULL, CRITIC_OFF)
BY_NAME = {c.name: c for c in STANDARD}


@dataclass(frozen=True)
class OrchestratorSettings:
    """Knobs passed to every Orchestrator the benchmark builds (the same for all conditions)."""

    actor_max_tokens: int = 256
    phi_threshold: float = 9.0
    retry_repeats: bool = True
    trace: bool = False
    gate_limit: int = 4  # candidates gated per training block (the rest wait)
    #: the full system calibrates its critic: training judgments checked against ground truth
    #: become ``critic_calibration`` memories (baselines and critic-off never do)
    meta_reward: bool = True


class ConditionSetup:
    """Everything one (condition, seed) needs: its store or reflection file, its orchestrator
    factory, its memory hook per mode, and its gate."""

    def __init__(
        self,
        condition: Condition,
        llm: Backend,
        workdir: Path,
        seed: int,
        validation: Sequence[BenchmarkTask],
        *,
        critic_llm: Backend | None = None,
        settings: OrchestratorSettings = OrchestratorSettings(),
    ) -> None:
        self.condition = condition
        self.llm = llm
        self.critic_llm = critic_llm
        self.seed = seed
        self.settings = settings
        self.store: MemoryStore | None = None
        self.reflections: ReflectionMemory | None = None
        self.ci: MemoryCI | None = None
        self._stores: dict[RunMode, MemoryStore] = {}
        stem = f"{condition.name}-s{seed}"
        if condition.memory in ("ungated", "gated"):
            workdir.mkdir(parents=True, exist_ok=True)
            self.store = MemoryStore(workdir / f"{stem}.sqlite")
            if condition.memory == "ungated":
                self.ci = PromoteAll(self.store)
            else:
                replay = BenchReplay(
                    self.store, validation, self.factory, llm, seed=seed, count_tokens=self._count_tokens()
                )
                self.ci = MemoryCI(self.store, replay)
        elif condition.memory == "reflection":
            self.reflections = ReflectionMemory(llm, workdir / f"{stem}.reflections.json")

    def _count_tokens(self) -> Callable[[str], int] | None:
        fn = getattr(self.llm, "count_tokens", None)
        return fn if callable(fn) else None

    def factory(self, env: Environment, mode: RunMode, hook: MemoryHook | None) -> Orchestrator:
        s = self.settings
        pf = GroundTruthPurposeFunction(env) if self.condition.critic == "ground_truth" else None
        return Orchestrator(
            self.llm,
            env,
            critic_llm=self.critic_llm,
            memory=hook,
            mode=mode,
            purpose_function=pf,
            phi_threshold=s.phi_threshold,
            trace=s.trace,
            actor_max_tokens=s.actor_max_tokens,
            retry_repeats=s.retry_repeats,
            meta_reward=s.meta_reward and self.condition.memory == "gated" and self.condition.critic == "llm",
        )

    def hook(self, mode: RunMode) -> MemoryHook | None:
        if self.reflections is not None:
            return self.reflections
        if self.store is None:
            return None
        # ungated: promote at once after each run; gated: candidates wait for the block's gate
        ci = self.ci if isinstance(self.ci, PromoteAll) else None
        if mode not in self._stores:
            self._stores[mode] = self.store if self.store.mode is mode else self.store.with_mode(mode)
        return StoreMemoryHook(
            self._stores[mode],
            llm=self.llm,
            distill=mode is RunMode.LEARNING_TRAIN,
            ci=ci,
            count_tokens=self._count_tokens(),
        )

    def close(self) -> None:
        for store in [*self._stores.values(), *([self.store] if self.store is not None else [])]:
            store.close()
        self._stores.clear()
