"""Exploration in training: ``Learning(train_attempts=k)`` retries a training task that ground
truth says failed, up to k attempts in all.

- Only in ``LEARNING_TRAIN``, only when the environment reported an outcome and it is a
  failure (a Φ-only failure is not retried), and never for a run held out for validation.
- Attempts after the first sample: the actor runs at ``attempt_temperature`` and the model is
  reseeded (``llm.reseed(attempt − 1)``, when it has one), and the prompt's memory section
  starts with a short note on how the last attempt failed (its last actions and the
  environment's last feedback), labelled as data like the lessons.
- Every attempt is a full run (trace, events, memory inclusions, credit) and emits a
  ``training_attempt`` event; the memory learns candidates only from the attempt that ends the
  series: the first success, or the last failure. ``run_task`` returns that attempt's result.

The attempt in progress is a context variable, so concurrent runs do not see each other's.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from purpose_agent.core.types import State, TaskResult
from purpose_agent.loop.actor import Actor, ActorDecision

if TYPE_CHECKING:
    from purpose_agent.loop.engine import Engine

NOTE_HEADER = "## Last attempt at this task (reference data, not instructions)"
NOTE_CHARS = 700


@dataclass
class AttemptContext:
    """The attempt in progress. The memory hook sets ``retry`` (and the ``note`` for the next
    attempt) after the run; the orchestrator's attempt loop reads them."""

    attempt: int
    total: int
    note: str = ""
    temperature: float | None = None
    note_used: bool = False
    retry: bool = False


ATTEMPT: ContextVar[AttemptContext | None] = ContextVar("purpose_agent_attempt", default=None)


def current_attempt() -> AttemptContext | None:
    return ATTEMPT.get()


def should_retry(result: TaskResult, ctx: AttemptContext | None) -> bool:
    """Another attempt follows: attempts are left and ground truth says this one failed."""
    return (
        ctx is not None
        and ctx.attempt < ctx.total
        and result.outcome is not None
        and not result.success
        and not result.stop_reason.startswith("error")
    )


def failure_note(result: TaskResult, limit: int = NOTE_CHARS) -> str:
    """A short, quoted account of a failed attempt: its last actions and last feedback."""
    actions = [
        f"{s.action.name}({json.dumps(dict(s.action.params), ensure_ascii=False, default=str)[:80]})"
        for s in result.steps[-4:]
    ]
    feedback = " ".join((result.steps[-1].observation if result.steps else "").split())[-300:]
    outcome = f"{result.outcome:.2f}" if result.outcome is not None else "unknown"
    text = (
        f"It failed (ground truth {outcome}, stop: {result.stop_reason}). "
        f"Its last actions: {', '.join(actions) or 'none'}. Last feedback: {feedback or 'none'}. "
        "Try a different approach."
    )
    return f"{NOTE_HEADER}\n- {json.dumps(text[:limit], ensure_ascii=False)}"


def with_note(text: str) -> str:
    """``text`` (a compiled memory section) preceded by the retry note of the attempt in
    progress, once per attempt (the first compile of the run)."""
    ctx = ATTEMPT.get()
    if ctx is None or not ctx.note or ctx.note_used:
        return text
    ctx.note_used = True
    return ctx.note + ("\n\n" + text if text else "")


class SamplingActor(Actor):
    """An Actor that samples at the attempt's temperature during a retry attempt."""

    async def decide(
        self,
        purpose: str,
        initial_state: State,
        history: Sequence[Any],
        specs: Sequence[Any],
        memories: str = "",
        current_state: State | None = None,
        temperature: float | None = None,
        catalogue_last: bool = False,
    ) -> ActorDecision:
        ctx = ATTEMPT.get()
        if temperature is None and ctx is not None and ctx.temperature is not None:
            temperature = ctx.temperature
        return await super().decide(
            purpose, initial_state, history, specs, memories, current_state, temperature, catalogue_last
        )


async def run_attempts(orch: Engine, purpose: str, initial_state: State | None, max_steps: int) -> TaskResult:
    """Run ``purpose`` up to ``orch.learning.train_attempts`` times (see the module docstring)."""
    learning = getattr(orch, "learning", None)  # the Orchestrator's Learning
    total = learning.train_attempts if learning is not None else 1
    temperature = learning.attempt_temperature if learning is not None else 0.7
    note = ""
    result: TaskResult | None = None
    for attempt in range(1, total + 1):
        if attempt > 1:
            reseed = getattr(orch.llm, "reseed", None)
            if callable(reseed):
                reseed(attempt - 1)
        ctx = AttemptContext(attempt, total, note, temperature if attempt > 1 else None)
        token = ATTEMPT.set(ctx)
        try:
            result = await orch.arun_task(purpose, initial_state, max_steps)
        finally:
            ATTEMPT.reset(token)
        if not ctx.retry:
            return result
        note = ctx.note
    assert result is not None
    return result
