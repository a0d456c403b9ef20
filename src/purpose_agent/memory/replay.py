"""Validation replay for the memory CI: run the validation tasks through the Orchestrator in
``LEARNING_VALIDATION`` mode with a candidate forced into, or kept out of, the prompt, with the
same tasks and seeds both ways."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.orchestrator import Orchestrator
from purpose_agent.core.types import State
from purpose_agent.errors import RunFailedError
from purpose_agent.memory.hook import StoreMemoryHook
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.base import Backend


@dataclass(frozen=True)
class ReplayTask:
    """A validation task: its purpose and an environment per seed."""

    purpose: str
    make_env: Callable[[int], Environment]
    initial_state: State | None = None
    max_steps: int = 6


def _reseed(llm: Backend, seed: int) -> None:
    reseed = getattr(llm, "reseed", None)
    if callable(reseed):
        reseed(seed)


class ValidationReplay:
    """``replay(include_ids, exclude_ids) -> outcomes`` as ``MemoryCI`` expects.

    Each outcome is the ground truth when the environment has it, else Φ/10; a run whose
    model fails counts as 0.0.
    """

    def __init__(
        self,
        store: MemoryStore,
        llm: Backend,
        tasks: Sequence[ReplayTask],
        *,
        critic_llm: Backend | None = None,
        seeds: Sequence[int] = (0,),
        trace: bool = False,
    ) -> None:
        if not tasks:
            raise ValueError("a validation replay needs at least one task")
        self.store = store.with_mode(RunMode.LEARNING_VALIDATION)
        self.llm = llm
        self.critic_llm = critic_llm
        self.tasks = list(tasks)
        self.seeds = list(seeds)
        self.trace = trace
        self.runs = 0

    def __call__(self, include_ids: Sequence[str], exclude_ids: Sequence[str]) -> list[float]:
        outcomes: list[float] = []
        for task in self.tasks:
            for seed in self.seeds:
                _reseed(self.llm, seed)
                if self.critic_llm is not None and self.critic_llm is not self.llm:
                    _reseed(self.critic_llm, seed)
                hook = StoreMemoryHook(
                    self.store,
                    distill=False,
                    force_include=include_ids,
                    force_exclude=exclude_ids,
                    count_tokens=getattr(self.llm, "count_tokens", None),
                )
                orch = Orchestrator(
                    self.llm,
                    task.make_env(seed),
                    critic_llm=self.critic_llm,
                    memory=hook,
                    mode=RunMode.LEARNING_VALIDATION,
                    trace=self.trace,
                )
                self.runs += 1
                try:
                    result = orch.run_task(task.purpose, task.initial_state, task.max_steps)
                except RunFailedError:
                    outcomes.append(0.0)
                    continue
                outcome = result.outcome if result.outcome is not None else result.final_phi / 10.0
                outcomes.append(float(outcome))
        return outcomes
