"""Human in the loop: approve, edit or reject actions; review and override Φ; inject lessons;
a checkpoint after every step, and resume after a crash.

``HITLOrchestrator`` wraps an ``Orchestrator`` and drives its explicit steps (``astart`` /
``astep`` / ``finish``). It asks its input handler about each action before it runs (through
a wrapper around the orchestrator's actor) and about each step's Φ after it is scored.

Resume contract. A checkpoint (``<run_id>.checkpoint.json`` in ``checkpoint_dir``) is written
after the run starts and after every completed step. It holds the whole run: every step with its
states, the current ``State``, Φ and its history, the memories in the prompt, usage, loop
detection. ``run_task`` with the same purpose resumes the newest unfinished checkpoint: it
continues after the last completed step, so no recorded step is lost or repeated.

- The environment must be restorable from the ``State``: the loop hands it the state with every
  ``execute(action, state)``. An environment that keeps more than that (a process, a game
  engine) must define ``restore(state)``, which is called with the last state before the run
  goes on. ``State.data`` must be JSON data.
- A step that was in flight when the process died (chosen, maybe executed, not yet checkpointed)
  is chosen and executed again: its side effects outside the ``State`` happen at least once.
- The trace file of the run is appended to: the events of an interrupted step stay in it,
  followed by a ``resume`` event.
- Critic caches and the model's KV cache start cold after a resume (no effect on the result).
- One run at a time per ``HITLOrchestrator``. ``Learning(train_attempts=k)`` retries are not run.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from purpose_agent.core import events as ev
from purpose_agent.core.types import Action, State, Step, TaskResult
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._run import Run
from purpose_agent.loop._steps import would_repeat as _would_repeat
from purpose_agent.loop.actor import ActorDecision, describe_action
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.models.base import Usage, run_sync
from purpose_agent.runtime._checkpoint import CheckpointDir, CheckpointError
from purpose_agent.runtime._handlers import (
    ActionRequest,
    CLIInputHandler,
    InputHandler,
    ProgrammaticInputHandler,
    Review,
    Verdict,
    as_verdict,
)

__all__ = [
    "ActionRequest",
    "ActionReviewed",
    "CLIInputHandler",
    "CheckpointError",
    "HITLOrchestrator",
    "InputHandler",
    "ProgrammaticInputHandler",
    "RunResumed",
    "Verdict",
]

ApprovalRule = bool | Collection[str] | Callable[[Action], bool]


@dataclass(frozen=True, kw_only=True)
class ActionReviewed(ev.Event):
    """A person's verdict on an action before it ran (approve, edit or reject)."""

    kind: Literal["action_review"] = "action_review"
    step: int = 0
    decision: str = ""
    proposed: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class RunResumed(ev.Event):
    """A run resumed from its checkpoint after ``step`` completed steps."""

    kind: Literal["resume"] = "resume"
    step: int = 0
    checkpoint: str = ""


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


class _ReviewedActor:
    """The orchestrator's actor, with a person's verdict between the model's choice and its run.

    When the orchestrator resamples an action that would repeat itself, the person is asked
    about the resample only, and a verdict that itself repeats stands (it is served again, at
    no cost, instead of a resample)."""

    def __init__(self, inner: Any, hitl: HITLOrchestrator) -> None:
        self.inner = inner
        self.hitl = hitl
        self.pinned: ActorDecision | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def decide(
        self,
        purpose: str,
        initial_state: State,
        history: Sequence[Step],
        specs: Sequence[Any],
        memories: str = "",
        current_state: State | None = None,
        temperature: float | None = None,
        **kwargs: Any,
    ) -> ActorDecision:
        if self.pinned is not None:
            pinned, self.pinned = self.pinned, None
            free = replace(pinned.completion, usage=Usage(calls=0), latency_s=0.0)
            return replace(pinned, completion=free)
        decision: ActorDecision = await self.inner.decide(
            purpose, initial_state, history, specs, memories, current_state, temperature, **kwargs
        )
        hitl, run = self.hitl, self.hitl.current
        state = current_state if current_state is not None else initial_state
        if run is None or not decision.valid or not hitl.needs_approval(decision.action):
            return decision
        retries = hitl.orchestrator.retry_repeats and temperature is None
        if retries and _would_repeat(run, decision.action, state):
            return decision  # the orchestrator samples again; the person sees that one
        reviewed = await hitl.review_action(run, decision, state, specs)
        if retries and _would_repeat(run, reviewed.action, state):
            self.pinned = reviewed
        return reviewed


class HITLOrchestrator:
    """Runs an ``Orchestrator`` with a person in the loop and a checkpoint after every step.

    ``approve_actions``: True (every action), False (none), a collection of action names, or a
    predicate on the ``Action``. ``review_scores``: ask about Φ after every step; a new score
    overrides it through ``Orchestrator.override_score`` (a ``critic_calibration`` memory when a
    store is attached). ``checkpoint_dir``: where checkpoints go (None: no checkpoints, no resume).
    See the module docstring for the resume contract.
    """

    def __init__(
        self,
        orchestrator: Orchestrator,
        input_handler: InputHandler | None = None,
        approve_actions: ApprovalRule = True,
        review_scores: bool = False,
        checkpoint_dir: str | Path | None = None,
    ) -> None:
        if not isinstance(orchestrator, Orchestrator):
            raise ConfigurationError(
                f"HITLOrchestrator wraps an Orchestrator, got {type(orchestrator).__name__}"
            )
        self.orchestrator = orchestrator
        self.input_handler: InputHandler = input_handler if input_handler is not None else CLIInputHandler()
        self.approve_actions = approve_actions
        self.review_scores = review_scores
        self.checkpoints = CheckpointDir(checkpoint_dir) if checkpoint_dir is not None else None
        self.current: Run | None = None
        self._injected: dict[str, str] = {}  # memory id -> text added to the current run's prompt
        inner = orchestrator.actor
        self._actor = inner if isinstance(inner, _ReviewedActor) else _ReviewedActor(inner, self)
        self._actor.hitl = self
        orchestrator.actor = self._actor  # type: ignore[assignment]

    # ---------------------------------------------------------------------- actions and scores
    def needs_approval(self, action: Action) -> bool:
        rule = self.approve_actions
        if isinstance(rule, bool):
            return rule
        if callable(rule):
            return bool(rule(action))
        return action.name in rule

    async def review_action(
        self, run: Run, decision: ActorDecision, state: State, specs: Sequence[Any]
    ) -> ActorDecision:
        """Ask the input handler about ``decision``; returns the decision to run."""
        names = tuple(s.name for s in specs)
        request = ActionRequest(run.purpose, len(run.steps) + 1, decision.action, state, names)
        verdict = as_verdict(await _resolve(self.input_handler.review_action(request)))
        proposed = decision.action
        if verdict.decision == "approve":
            out = decision
        elif verdict.decision == "edit":
            assert verdict.action is not None
            edited = verdict.action
            if edited.name in names:
                out = ActorDecision(edited, decision.completion, True)
            else:
                problem = f"the edited action {edited.name!r} is not one of {', '.join(names)}"
                out = ActorDecision(edited, decision.completion, False, problem)
        else:
            rejected = Action("REJECTED", {"proposed": proposed.to_dict(), "reason": verdict.reason})
            problem = (
                f"a person rejected {describe_action(proposed)} ({verdict.reason}); choose a different action"
            )
            out = ActorDecision(
                replace(rejected, thought=proposed.thought), decision.completion, False, problem
            )
        self.orchestrator._emit(
            run,
            ActionReviewed(
                step=request.step,
                decision=verdict.decision,
                proposed=proposed.to_dict(),
                action=out.action.to_dict(),
                reason=verdict.reason[:500],
            ),
        )
        return out

    async def _review_score(self, run: Run, step: Step) -> None:
        review: Review = await _resolve(self.input_handler.review_score(step))
        if review is None:
            return
        phi, note = (float(review[0]), str(review[1])) if isinstance(review, tuple) else (float(review), "")
        if phi == step.phi_after:
            return
        self.orchestrator.override_score(run, step.index, phi, note)
        if run.stop_reason in ("", "phi_threshold"):  # Φ may now end the run, or no longer end it
            run.stop_reason = self.orchestrator._stop_reason(run, step.action, run.state, run.outcome)

    def override_score(
        self, run_or_result: Run | TaskResult, step_index: int, phi: float, note: str = ""
    ) -> list[Step]:
        """``Orchestrator.override_score``, then a checkpoint of the current run."""
        changed = self.orchestrator.override_score(run_or_result, step_index, phi, note)
        if isinstance(run_or_result, Run):
            self._save(run_or_result)
        return changed

    # ---------------------------------------------------------------------- lessons
    def _store(self) -> Any:
        store = self.orchestrator._calibration_store()
        if store is None:
            raise ConfigurationError(
                "inject_heuristic needs a memory store: build the Orchestrator with memory=MemoryStore(path)"
            )
        return store

    def inject_heuristic(
        self, pattern: str, strategy: str, *, kind: str = "user_preference", scope: str = "global"
    ) -> Any:
        """A person's lesson "When <pattern>: <strategy>": immune-scanned, then promoted at once
        with high trust (or kept as rejected, with the threats as the reason). During a run it
        reaches the prompt of the next step. Returns the ``memory.ci.Decision``; undo it with
        ``rollback_heuristic(decision.memory_id)``."""
        from purpose_agent.memory.ci import MemoryCI

        pattern, strategy = " ".join(str(pattern).split()), " ".join(str(strategy).split())
        if not pattern or not strategy:
            raise ConfigurationError("inject_heuristic needs a pattern (when) and a strategy (what to do)")
        store = self._store()
        text = f"When {pattern.rstrip('.:')}: {strategy}"
        decision = MemoryCI(store, replay=None).teach(text, kind=kind, scope=scope)
        run = self.current
        if run is not None and not run.done:
            event_kind: Literal["promoted", "rejected"] = "promoted" if decision.promoted else "rejected"
            self.orchestrator._emit(
                run, ev.MemoryDecided(kind=event_kind, memory_id=decision.memory_id, reason=decision.reason)
            )
            if decision.promoted and decision.memory_id not in run.memory_ids:
                self._include(run, store, decision.memory_id)
            self._save(run)
        return decision

    def _include(self, run: Run, store: Any, memory_id: str) -> None:
        from purpose_agent.memory.prompt import compile_memories
        from purpose_agent.memory.types import Retrieved

        compiled = compile_memories([Retrieved(store.get(memory_id), 1.0, 1.0)])
        if not compiled.text:
            return
        run.memory_ids.append(memory_id)
        run.pending_lessons = f"{run.pending_lessons}\n\n{compiled.text}".strip()
        self._injected[memory_id] = compiled.text
        self.orchestrator._emit(run, ev.MemoryIncluded(step=len(run.steps), ids=(memory_id,)))

    def rollback_heuristic(self, memory_id: str, reason: str = "rolled back by a person") -> list[str]:
        """Undo an injected lesson (the store's rollback: what it superseded comes back); it leaves
        the current run's prompt too if it has not reached it yet. Returns the ids restored."""
        from purpose_agent.memory.ci import MemoryCI

        restored = MemoryCI(self._store(), replay=None).rollback(memory_id, reason)
        run, text = self.current, self._injected.pop(memory_id, None)
        if run is not None and text and text in run.pending_lessons:
            run.pending_lessons = run.pending_lessons.replace(text, "").strip()
            run.memory_ids = [m for m in run.memory_ids if m != memory_id]
            self._save(run)
        return restored

    # ---------------------------------------------------------------------- checkpoints
    def _save(self, run: Run, status: str = "running") -> None:
        if self.checkpoints is not None:
            self.checkpoints.save(run, status, {"purpose": run.purpose, "steps": len(run.steps)})

    def unfinished(self, purpose: str | None = None) -> list[Path]:
        """Checkpoint files of runs that did not finish (for ``purpose``), newest first."""
        if self.checkpoints is None:
            return []
        return [file for file, _ in self.checkpoints.unfinished(purpose)]

    def restore(self, purpose: str | None = None) -> Run | None:
        """The newest unfinished run (for ``purpose``) from ``checkpoint_dir``, ready to step;
        None when there is none. A corrupt checkpoint raises ``CheckpointError`` naming the file."""
        if self.checkpoints is None:
            return None
        found = self.checkpoints.unfinished(purpose)
        if not found:
            return None
        from purpose_agent.runtime._checkpoint import decode_run

        file, record = found[0]
        run, trace_path = decode_run(record["run"])
        orch = self.orchestrator
        if orch.trace_enabled:
            run.trace = ev.JsonlTrace(
                Path(trace_path) if trace_path else orch.trace_dir / f"{run.run_id}.jsonl"
            )
        restore = getattr(orch.environment, "restore", None)
        if callable(restore):
            restore(run.state)
        self.current = run
        orch._emit(run, RunResumed(step=len(run.steps), checkpoint=str(file)))
        return run

    def _start_over(self, purpose: str) -> None:
        if self.checkpoints is None:
            return
        self.checkpoints.set_aside_corrupt()
        for file, _ in self.checkpoints.unfinished(purpose):
            self.checkpoints.mark(file, "abandoned")

    # ---------------------------------------------------------------------- the loop
    async def astart(self, purpose: str, initial_state: State | None = None, max_steps: int = 20) -> Run:
        """Open a new run (``Orchestrator.astart``) and write its first checkpoint."""
        run = await self.orchestrator.astart(purpose, initial_state, max_steps)
        self.current = run
        try:
            self._save(run)
        except CheckpointError:
            if run.trace is not None:
                run.trace.close()
            self.current = None
            raise
        return run

    async def astep(self, run: Run) -> Step:
        """One step: the action approved (or edited, or rejected) before it runs, Φ reviewed,
        then a checkpoint."""
        self.current = run
        step = await self.orchestrator.astep(run)
        if self.review_scores:
            await self._review_score(run, step)
        self._save(run)
        return step

    def _finished(self, run: Run, status: str, result: TaskResult) -> TaskResult:
        self._save(run, status)
        if self.current is run:
            self.current = None
        return result

    def finish(self, run: Run) -> TaskResult:
        """``Orchestrator.finish`` (learning, ``task_end``), then the checkpoint is marked done."""
        status = "failed" if run.stop_reason.startswith("error") else "done"
        return self._finished(run, status, self.orchestrator.finish(run))

    async def afinish(self, run: Run) -> TaskResult:
        """:meth:`finish` with the learning awaited (``Orchestrator.afinish``)."""
        status = "failed" if run.stop_reason.startswith("error") else "done"
        return self._finished(run, status, await self.orchestrator.afinish(run))

    async def arun_task(
        self, purpose: str, initial_state: State | None = None, max_steps: int = 20, *, resume: bool = True
    ) -> TaskResult:
        """Run to the end. With ``resume`` (the default) an unfinished checkpoint of the same purpose
        is continued; ``resume=False`` starts over (corrupt checkpoint files are renamed
        ``*.corrupt``, unfinished ones of this purpose are marked abandoned)."""
        if resume:
            run = self.restore(purpose)
        else:
            self._start_over(purpose)
            run = None
        if run is None:
            run = await self.astart(purpose, initial_state, max_steps)  # fails like a step
        orch = self.orchestrator
        try:
            while not run.done:
                await self.astep(run)
        except CheckpointError:
            if run.trace is not None:
                run.trace.close()
            raise
        except Exception as exc:
            self._save(run, "failed")
            self.current = None
            await orch._afail(run, "step", exc)  # the partial result, in RunFailedError
        except BaseException:  # cancelled: the checkpoint stays, the trace is closed
            if run.trace is not None:
                run.trace.close()
            self.current = None
            raise
        return await self.afinish(run)

    def run_task(
        self, purpose: str, initial_state: State | None = None, max_steps: int = 20, *, resume: bool = True
    ) -> TaskResult:
        return run_sync(lambda: self.arun_task(purpose, initial_state, max_steps, resume=resume))
