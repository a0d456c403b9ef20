"""Environments: where actions happen. Ground truth, when known, comes from ``outcome``."""

from __future__ import annotations

import abc
import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core.types import DONE, Action, State
from purpose_agent.errors import PurposeAgentError

# The params of an action described only in words: an open object of scalar values under any
# keys. llama.cpp's grammar closes an object that has ``properties`` unless ``additionalProperties``
# opens it (``{"properties": {}}`` alone allows only ``{}``), and it reads
# ``additionalProperties: true`` as "values are objects", so the value schema is spelled out.
FREE_FORM_PARAMS: Mapping[str, Any] = {
    "type": "object",
    "properties": {},
    "additionalProperties": {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]},
}


class GroundTruthError(PurposeAgentError):
    """``Environment.outcome`` raised, or returned something that is neither a number nor None:
    the run's ground truth is unknown, so the run cannot be judged (it fails, never succeeds)."""


def is_free_form(parameters: Mapping[str, Any] | None) -> bool:
    """True for params that list no properties but accept any (see ``FREE_FORM_PARAMS``)."""
    if not parameters or parameters.get("properties"):
        return False
    return parameters.get("additionalProperties") not in (None, False)


@dataclass(frozen=True)
class ActionSpec:
    """An action the actor may choose: a name, what it does, and a JSON schema of its params."""

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


DONE_SPEC = ActionSpec(
    DONE,
    "Finish: the purpose is achieved (or cannot be achieved). Put a short final answer in 'answer'.",
    {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]},
)


class Environment(abc.ABC):
    """Subclass and implement ``execute``; the rest has defaults.

    ``answer_ends_run``: the task ends with an answer (DONE), so a high Φ on a state before it
    does not end the run (the default lets a trusted Φ ≥ threshold stop a run that has no
    ground truth, which for a question would leave it without an answer)."""

    answer_ends_run: bool = False

    @abc.abstractmethod
    def execute(self, action: Action, state: State) -> State:
        """Apply ``action`` to ``state`` and return the new state."""

    def reset(self) -> State:
        return State()

    def is_terminal(self, state: State) -> bool:
        return False

    def outcome(self, state: State) -> float | None:
        """Ground truth: 1.0 solved, 0.0 failed, fractions for partial, None when unknown.

        When it is known it decides success; the critic's Φ decides only when it is None. An
        exception here (or a value that is not a number) is not "unknown": the orchestrator
        records an ``error`` event and fails the run with a ``GroundTruthError`` as its cause,
        so a broken check can never let Φ declare a success."""
        return None

    def actions(self, state: State) -> Sequence[ActionSpec] | None:
        """The actions available in ``state`` (None: the orchestrator's ``available_actions``)."""
        return None


class SimpleEnvironment(Environment):
    """An environment from plain functions. Without ``execute_fn`` it records each action in the
    state's history, which is enough for tasks where the answer is the final DONE."""

    def __init__(
        self,
        execute_fn: Callable[[Action, State], State] | None = None,
        *,
        initial_state: State | None = None,
        terminal_fn: Callable[[State], bool] | None = None,
        outcome_fn: Callable[[State], float | None] | None = None,
        actions: Sequence[ActionSpec] | Mapping[str, str] | None = None,
    ) -> None:
        self._execute = execute_fn
        self._initial = initial_state or State()
        self._terminal = terminal_fn
        self._outcome = outcome_fn
        self._actions = to_action_specs(actions) if actions is not None else None

    def execute(self, action: Action, state: State) -> State:
        if self._execute is not None:
            return self._execute(action, state)
        history = [*state.data.get("history", []), action.to_dict()]
        data = {**state.data, "history": history}
        if action.is_done:
            data["answer"] = action.params.get("answer", "")
        return State(data, f"{len(history)} actions taken; last: {action.name} {dict(action.params)}")

    def reset(self) -> State:
        return self._initial

    def is_terminal(self, state: State) -> bool:
        return self._terminal(state) if self._terminal else False

    def outcome(self, state: State) -> float | None:
        return self._outcome(state) if self._outcome else None

    def actions(self, state: State) -> Sequence[ActionSpec] | None:
        return self._actions


def to_action_specs(actions: Any) -> list[ActionSpec]:
    """Accept ActionSpecs, tools (name/description/parameters), or a {name: description} map.

    An action of a map is described only in words, so its params are free-form
    (``FREE_FORM_PARAMS``): the description says what to put in them."""
    if actions is None:
        return []
    if isinstance(actions, Mapping):
        return [ActionSpec(str(k), str(v), copy.deepcopy(dict(FREE_FORM_PARAMS))) for k, v in actions.items()]
    out: list[ActionSpec] = []
    for a in actions:
        if isinstance(a, ActionSpec):
            out.append(a)
        elif isinstance(a, str):
            out.append(ActionSpec(a))
        elif hasattr(a, "name") and hasattr(a, "parameters"):
            out.append(ActionSpec(a.name, getattr(a, "description", ""), a.parameters))
        else:
            raise TypeError(f"cannot use {a!r} as an action")
    return out
