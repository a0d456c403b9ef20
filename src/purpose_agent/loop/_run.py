"""The records of one live run, and what the loop needs from a memory and a tool."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from purpose_agent.core import events as ev
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import State, Step, TaskResult, Usage


class MemoryHook(Protocol):
    """What the loop needs from a memory system (the memory kernel implements it)."""

    def compile_for(
        self, purpose: str, context: str, *, exclude: Sequence[str] = ()
    ) -> tuple[str, list[str]]: ...

    def after_task(self, result: TaskResult, mode: RunMode) -> list[ev.Event]: ...


class ToolLike(Protocol):
    name: str
    description: str
    parameters: Any

    async def arun(self, **kwargs: Any) -> Any: ...


@dataclass
class Run:
    """The live state of one task run."""

    run_id: str
    purpose: str
    initial_state: State
    state: State
    max_steps: int
    phi: float = 0.0
    weight: float = 1.0  # trust in phi (see Step.weight)
    source: str = "critic"  # where phi came from (see Step.phi_source)
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(calls=0))
    memory_text: str = ""
    memory_ids: list[str] = field(default_factory=list)
    pending_lessons: str = ""
    stop_reason: str = ""
    started: float = field(default_factory=time.perf_counter)
    trace: ev.JsonlTrace | None = None
    history: list[tuple[str, float]] = field(default_factory=list)  # (state hash, Φ) from s0
    offered_tools: frozenset[str] | None = None  # Tool RAG: the tools offered (None: all)
    outcome: float | None = None  # ground truth of ``state``, computed once per state
    # loop detection: (action, "s:" state / "o:" observation) pairs; see _record_novelty
    seen: set[tuple[str, str]] = field(default_factory=set)  # what actions led to
    tried: set[tuple[str, str]] = field(default_factory=set)  # where actions were taken from
    context: str = ""  # digest of the observation the next action is chosen after
    first_actions: tuple[str, ...] = ()  # the action names offered at the first step
    catalogue_last: bool = False  # the actions change with the state: list them after the observation
    stale_streak: int = 0  # consecutive steps that brought nothing new

    @property
    def done(self) -> bool:
        return bool(self.stop_reason)
