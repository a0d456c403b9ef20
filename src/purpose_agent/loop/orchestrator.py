"""The public Orchestrator: the loop (``purpose_agent.loop.engine.Engine``) with the default
learning path. ``memory=MemoryStore(path)`` (or a path) gets the memory hook with the gate
(``purpose_agent.loop.hook``, configured by ``Learning``), and ``Learning(train_attempts=k)``
retries failed training tasks (``purpose_agent.loop.attempts``).

Configuration is a few frozen dataclasses (``purpose_agent.loop.settings``): ``actor=``,
``critic=``, ``trace=`` and ``learning=``. The older flat keywords (``actor_max_tokens=``,
``phi_threshold=``, ``trace_dir=``, ...) still work: each maps onto one settings field.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from purpose_agent.core import events as ev
from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import State, TaskResult
from purpose_agent.critic.purpose_function import PurposeFunction
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._run import MemoryHook, Run
from purpose_agent.loop.actor import Actor
from purpose_agent.loop.attempts import SamplingActor, current_attempt, run_attempts
from purpose_agent.loop.engine import Engine
from purpose_agent.loop.hook import as_hook
from purpose_agent.loop.learning import Learning, merge_teacher
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings, from_keywords
from purpose_agent.models.base import Backend
from purpose_agent.models.registry import resolve_backend

__all__ = ["MemoryHook", "Orchestrator", "Run"]


class Orchestrator(Engine):
    """Runs an actor toward a purpose in an environment, scored by a separate critic, and
    learns after each task when given a memory (see the module docstring).

    - ``actor`` (``ActorSettings``): reply budget, prompt layout, loop handling, Tool RAG.
    - ``critic`` (``CriticSettings``): success threshold, Φ from ground truth, anomaly policy,
      meta-rewarding.
    - ``trace`` (``TraceSettings``, or a bool for ``enabled``): the JSONL trace.
    - ``learning`` (``Learning``): the default learning path of ``memory=MemoryStore(path)``;
      ``distiller_llm=x`` is ``Learning(teacher=x)``.
    """

    def __init__(
        self,
        llm: Backend | str | None,
        environment: Environment,
        available_actions: Iterable[Any] | dict[str, str] | None = None,
        critic_llm: Backend | str | None = None,
        memory: MemoryHook | Any | None = None,
        mode: RunMode = RunMode.LEARNING_TRAIN,
        *,
        actor: ActorSettings | None = None,
        critic: CriticSettings | None = None,
        trace: TraceSettings | bool = True,
        learning: Learning | None = None,
        purpose_function: PurposeFunction | None = None,
        listeners: Sequence[ev.Listener] = (),
        distiller_llm: Backend | str | None = None,
        **keywords: Any,
    ) -> None:
        actor_settings, critic_settings, trace_settings = from_keywords(
            keywords, actor=actor, critic=critic, trace=trace
        )
        backend = resolve_backend(llm)
        if learning is not None or distiller_llm is not None:
            learning = merge_teacher(learning, distiller_llm)
        hook = _as_memory_hook(memory, backend, mode, learning)
        self._own_hook = hook is not memory  # built here from a store or a path: closed by close()
        #: the learning configuration (``Learning``) of the memory hook, if any
        self.learning: Learning | None = getattr(hook, "learning", None)
        retries = self.learning is not None and self.learning.train_attempts > 1
        super().__init__(
            backend,
            environment,
            available_actions,
            critic_llm,
            hook,
            mode,
            actor=actor_settings,
            critic=critic_settings,
            trace=trace_settings,
            purpose_function=purpose_function,
            listeners=listeners,
            actor_cls=SamplingActor if retries else Actor,  # samples on retries
        )

    async def arun_task(
        self, purpose: str, initial_state: State | None = None, max_steps: int = 20
    ) -> TaskResult:
        if self._retries_failed_training():  # Learning(train_attempts=k): loop/attempts.py
            return await run_attempts(self, purpose, initial_state, max_steps)
        return await super().arun_task(purpose, initial_state, max_steps)

    def close(self) -> None:
        """Close the SQLite connections the memory hook built here opened (the store opened from
        a path, the gate's validation-mode connection); a store or hook given stays open."""
        close = getattr(self.memory, "close", None)
        if self._own_hook and callable(close):
            close()

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retries_failed_training(self) -> bool:
        """Learning(train_attempts > 1) in LEARNING_TRAIN, and no attempt series running yet."""
        learning = self.learning
        if learning is None or learning.train_attempts <= 1 or self.mode is not RunMode.LEARNING_TRAIN:
            return False
        return current_attempt() is None


def _as_memory_hook(memory: Any, llm: Backend, mode: RunMode, learning: Any = None) -> MemoryHook | None:
    if memory is None:
        if learning is not None:
            raise ConfigurationError("learning= (or distiller_llm=) needs memory=MemoryStore(path) or a path")
        return None
    if hasattr(memory, "compile_for") and hasattr(memory, "after_task"):
        if learning is not None:
            raise ConfigurationError(
                "learning= (or distiller_llm=) configures the default memory path: pass the MemoryStore "
                f"(or its path) as memory=, not a {type(memory).__name__}"
            )
        return cast(MemoryHook, memory)
    return as_hook(memory, llm, mode, learning)
