"""Human override of Φ: a person's score replaces the critic's for a state.

Φ is a function of the state, so the person's score replaces Φ wherever the run was in that
state (as Φ after and as Φ before), and the shaped rewards r = Φ(s') − Φ(s) follow.
``review_scores`` is the path for a human-in-the-loop layer: a reviewer sees each step and
may return a new score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from purpose_agent.core.types import State, Step
from purpose_agent.critic.anomalies import MANIPULATION

#: what a reviewer returns for a step: nothing (keep), a score, or (score, note)
Review = float | int | tuple[float, str] | None
Reviewer = Callable[[Step], Review]


class _Overridable(Protocol):
    def override_score(
        self, run_or_result: Any, step_index: int, phi: float, note: str = ""
    ) -> list[Step]: ...


def target_state(steps: Sequence[Step], step_index: int, initial: State | None = None) -> State:
    """The state whose Φ step ``step_index`` set (0 = the initial state)."""
    if step_index == 0:
        if steps:
            return steps[0].state_before
        if initial is None:
            raise ValueError("step 0 needs the initial state")
        return initial
    for s in steps:
        if s.index == step_index:
            return s.state_after
    raise ValueError(f"no step {step_index}; the run has steps 1..{len(steps)}")


def apply_override(
    steps: Sequence[Step], target: State, phi: float, note: str = ""
) -> tuple[list[Step], tuple[int, ...]]:
    """The steps with Φ of ``target`` replaced by ``phi``; also the indices that changed."""
    fp = target.fingerprint()
    out: list[Step] = []
    changed: list[int] = []
    evidence = f"human override{': ' + note if note else ''}"
    for s in steps:
        before = phi if s.state_before.fingerprint() == fp else s.phi_before
        if s.state_after.fingerprint() == fp:
            kept = tuple(a for a in s.anomalies if a == MANIPULATION)
            new = replace(
                s,
                phi_before=before,
                phi_after=phi,
                evidence=evidence,
                confidence=1.0,
                anomalies=kept,
                weight=1.0 if not kept else s.weight,
                phi_source="human",
            )
        else:
            new = replace(s, phi_before=before)
        if new != s:
            changed.append(s.index)
        out.append(new)
    return out, tuple(changed)


def _as_review(value: Review) -> tuple[float, str] | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        return float(value[0]), str(value[1])
    return float(value), ""


def review_scores(orchestrator: _Overridable, run_or_result: Any, reviewer: Reviewer) -> list[Step]:
    """Show every step to ``reviewer``; each score it returns (different from Φ) overrides
    that transition through ``orchestrator.override_score``. Returns the steps changed."""
    changed: dict[int, Step] = {}
    for step in list(run_or_result.steps):
        current = next(s for s in run_or_result.steps if s.index == step.index)
        review = _as_review(reviewer(current))
        if review is None or review[0] == current.phi_after:
            continue
        for s in orchestrator.override_score(run_or_result, step.index, review[0], review[1]):
            changed[s.index] = s
    return [changed[i] for i in sorted(changed)]
