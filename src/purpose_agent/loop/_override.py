"""A person's score in place of Φ: ``Engine.override_score`` (and ``review_scores``, through
``critic.override``). The engine is passed in as an ``OverrideHost``, the few things this
needs from it, so this module sits below the engine in the loop's layers."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, cast

from purpose_agent.core import events as ev
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Score, State, Step, TaskResult
from purpose_agent.critic.events import ScoreOverridden
from purpose_agent.critic.override import apply_override, target_state
from purpose_agent.loop import _steps
from purpose_agent.loop._run import Run


class OverrideHost(Protocol):
    mode: RunMode
    purpose_function: Any
    bus: ev.EventBus

    @property
    def phi_threshold(self) -> float: ...

    @property
    def success_outcome(self) -> float: ...

    def _emit(self, run: Run, event: ev.Event) -> None: ...

    def _calibration_store(self) -> Any: ...

    def _phi_success(self, phi: float, weight: float) -> bool: ...


def override_score(
    host: OverrideHost, run_or_result: Run | TaskResult, step_index: int, phi: float, note: str = ""
) -> list[Step]:
    """See ``Engine.override_score``."""
    if isinstance(phi, bool) or not 0.0 <= float(phi) <= 10.0:
        raise ValueError(f"an override score must be in [0, 10], got {phi!r}")
    phi = float(phi)
    is_run = isinstance(run_or_result, Run)
    initial = run_or_result.initial_state if isinstance(run_or_result, Run) else run_or_result.final_state
    target = target_state(run_or_result.steps, step_index, initial)
    fp = target.fingerprint()
    old = next(
        (s.phi_after for s in run_or_result.steps if s.state_after.fingerprint() == fp),
        next((s.phi_before for s in run_or_result.steps if s.state_before.fingerprint() == fp), None),
    )
    if old is None:
        old = run_or_result.phi if isinstance(run_or_result, Run) else run_or_result.final_phi
    new_steps, changed = apply_override(run_or_result.steps, target, phi, note)
    run_or_result.steps[:] = new_steps
    if isinstance(run_or_result, Run):
        if run_or_result.state.fingerprint() == fp:
            run_or_result.phi, run_or_result.weight, run_or_result.source = phi, 1.0, "human"
        run_or_result.history = [(h, phi if h == fp else p) for h, p in run_or_result.history]
    else:
        res = run_or_result
        if res.final_state.fingerprint() == fp:
            res.final_phi, res.final_weight = phi, 1.0
            if res.outcome is None:
                res.success = host._phi_success(res.final_phi, res.final_weight)
        res.critic_agreement = _steps.critic_agreement(res.steps, host.phi_threshold, host.success_outcome)
    purpose = run_or_result.purpose
    remember = getattr(host.purpose_function, "remember", None)
    if callable(remember):
        remember(purpose, target, Score(phi, note or "human override", "human override", 1.0, False, "human"))
    mid, status = _teach_calibration(host, purpose, target, phi, note)
    event = ScoreOverridden(
        step=step_index,
        old_phi=float(old),
        phi=phi,
        note=note[:500],
        steps_changed=changed,
        memory_id=mid,
        memory_status=status,
    )
    if is_run:
        host._emit(cast(Run, run_or_result), event)
    else:
        _emit_after(host, cast(TaskResult, run_or_result), event)
    return [s for s in run_or_result.steps if s.index in changed]


def _teach_calibration(
    host: OverrideHost, purpose: str, state: State, phi: float, note: str
) -> tuple[str | None, str]:
    store = host._calibration_store()
    if store is None:
        return None, "not stored: no memory store attached"
    if not host.mode.can_write:
        return None, f"not stored: run mode {host.mode.value} does not write memories"
    from purpose_agent.critic.calibration import calibration_text, label_key
    from purpose_agent.memory.ci import MemoryCI

    why = f"(a person's score{': ' + ' '.join(note.split())[:200] if note else ''})"
    try:
        decision = MemoryCI(store, replay=None).teach(
            calibration_text(purpose, state, phi, why),
            kind="critic_calibration",
            scope_key=label_key(phi),
        )
    except Exception as exc:
        return None, f"not stored: {type(exc).__name__}: {exc}"
    return decision.memory_id, decision.action


def _emit_after(host: OverrideHost, result: TaskResult, event: ev.Event) -> None:
    """An event about a finished run: to the listeners and appended to its trace."""
    object.__setattr__(event, "run_id", result.run_id)
    host.bus.emit(event)
    if result.trace_path and Path(result.trace_path).exists():
        trace = ev.JsonlTrace(Path(result.trace_path))
        try:
            trace(event)
        finally:
            trace.close()
