"""Step helpers of the loop: loop detection (novelty of a step), the actions still worth
offering, how a tool's result becomes the next state, and the critic's agreement with
ground truth, and how one action is executed."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.environment import ActionSpec, Environment, is_free_form
from purpose_agent.core.types import DONE, Action, State, Step, canonical_json
from purpose_agent.critic import anomalies as anom
from purpose_agent.loop._run import Run


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:24]


def action_key(action: Action) -> str:
    return canonical_json([action.name, dict(action.params)])


def would_repeat(run: Run, action: Action, state: State) -> bool:
    """The action was already taken from this state, or after this same observation: it can
    only bring back what it brought then (the no-op repeat and the A, B, A, B cycle)."""
    key = action_key(action)
    return (key, "s:" + state.fingerprint()) in run.tried or (key, "o:" + run.context) in run.tried


def fresh_specs(run: Run, specs: Sequence[ActionSpec], state: State, repeated: Action) -> list[ActionSpec]:
    """``specs`` without the choices known to bring nothing new from ``state``: the action
    about to be repeated, and every parameterless action already taken from this state or
    after this observation (a text game's "examine X" done twice). DONE always stays, and
    so does every action when all of them would repeat."""

    def stale(spec: ActionSpec) -> bool:
        if spec.name == DONE or (spec.parameters or {}).get("properties") or is_free_form(spec.parameters):
            return False
        return spec.name == repeated.name or would_repeat(run, Action(spec.name, {}), state)

    fresh = [s for s in specs if not stale(s)]
    return fresh if any(s.name != DONE for s in fresh) else list(specs)


def record_novelty(run: Run, action: Action, before: State, after_hash: str, brought: str) -> bool:
    """Record a step for loop detection; True when it brought nothing new: the same action
    already led to the same state or to the same observation earlier in this run."""
    key, seen_text = action_key(action), digest(brought)
    marks = {(key, "s:" + after_hash), (key, "o:" + seen_text)}
    stale = bool(marks & run.seen)
    run.seen |= marks
    run.tried |= {(key, "s:" + before.fingerprint()), (key, "o:" + run.context)}
    run.context = seen_text
    run.stale_streak = run.stale_streak + 1 if stale else 0
    return stale


def critic_agreement(steps: Sequence[Step], phi_threshold: float, success_outcome: float) -> float | None:
    """Share of states with ground truth scored by the critic (not by ground truth or a
    person) where its verdict (Φ ≥ threshold) matches it (outcome ≥ success level). None when
    no such step."""
    votes = [
        (s.phi_after >= phi_threshold) == (s.outcome >= success_outcome)
        for s in steps
        if s.outcome is not None and s.phi_source in anom.CRITIC_SOURCES
    ]
    return sum(votes) / len(votes) if votes else None


def tool_entry(action: Action, result: Any) -> dict[str, Any]:
    """What a state keeps of one tool call (its ``tool_results`` item): the tool, whether it
    worked, and its output or ``ERROR: ...`` (at most 2,000 characters; a state's summary
    shows at most 1,000 of them)."""
    ok = getattr(result, "ok", True)
    output = getattr(result, "output", "") if ok else f"ERROR: {getattr(result, 'error', '')}"
    return {"tool": action.name, "ok": ok, "output": str(output)[:2000]}


def apply_tool_result(env: Environment, action: Action, result: Any, state: State) -> State:
    hook: Callable[[Action, Any, State], State] | None = getattr(env, "observe_tool", None)
    if hook is not None:
        return hook(action, result, state)
    entry = tool_entry(action, result)
    results = [*state.data.get("tool_results", []), entry]
    summary = (state.summary + "\n" if state.summary else "") + f"[{action.name}] {entry['output'][:1000]}"
    return State({**state.data, "tool_results": results}, summary)


async def execute(
    environment: Environment,
    tool: Any,
    action: Action,
    before: State,
    emit: Callable[[ev.Event], None],
) -> tuple[State, str, str]:
    """Run a valid ``action`` (``tool``, when it names one, else the environment): the new
    state, the observation, and what the action brought (for loop detection: the observation,
    or a tool's own result, since a tool's state keeps growing)."""
    try:
        if tool is not None:
            result = await tool.arun(**dict(action.params))
            after = apply_tool_result(environment, action, result, before)
            brought = canonical_json(
                [
                    getattr(result, "ok", True),
                    str(getattr(result, "output", "")),
                    str(getattr(result, "error", "")),
                ]
            )
        else:
            after = await asyncio.to_thread(environment.execute, action, before)
            brought = ""
    except Exception as exc:  # an environment bug must not lose the run
        emit(ev.ErrorRaised(where=f"execute:{action.name}", message=repr(exc)))
        text = f"The action {action.name} failed: {type(exc).__name__}: {exc}"
        return before, text, text
    if not isinstance(after, State):
        emit(ev.ErrorRaised(where="execute", message=f"returned {type(after).__name__}"))
        return before, "The environment returned no state.", "no state"
    observation = after.describe()
    return after, observation, brought or observation
