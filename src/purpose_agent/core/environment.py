"""Environments: where actions happen. Ground truth, when known, comes from ``outcome``."""

from __future__ import annotations

import abc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core.types import DONE, Action, State


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
    """Subclass and implement ``execute``; the rest has defaults."""

    @abc.abstractmethod
    def execute(self, action: Action, state: State) -> State:
        """Apply ``action`` to ``state`` and return the new state."""

    def reset(self) -> State:
        return State()

    def is_terminal(self, state: State) -> bool:
        return False

    def outcome(self, state: State) -> float | None:
        """Ground truth: 1.0 solved, 0.0 failed, fractions for partial, None when unknown."""
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
    """Accept ActionSpecs, tools (name/description/parameters), or a {name: description} map."""
    if actions is None:
        return []
    if isinstance(actions, Mapping):
        return [ActionSpec(str(k), str(v)) for k, v in actions.items()]
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
