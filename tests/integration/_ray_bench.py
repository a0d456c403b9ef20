"""Environments for the Ray runner and gate tests, importable by the Ray workers (their PYTHONPATH
has this folder): a one-answer question whose expected answer is set per task, and a factory of
it that kills the process it runs in for its first ``times`` calls (counted in files under
``marker_dir``, so a retry on a new worker sees the count)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from purpose_agent.core.environment import Environment
from purpose_agent.core.types import Action, State


class AnswerEnv(Environment):
    """One DONE(answer); ground truth 1.0 for the expected answer, else 0.0."""

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def reset(self) -> State:
        return State({}, "A question about the secret number.")

    def execute(self, action: Action, state: State) -> State:
        if not action.is_done:
            return state
        answer = str(action.params.get("answer", ""))
        note = (
            "Correct."
            if answer == self.expected
            else f"Wrong answer: the expected answer is {self.expected}."
        )
        return State({"answer": answer}, note)

    def is_terminal(self, state: State) -> bool:
        return "answer" in state.data

    def outcome(self, state: State) -> float | None:
        if "answer" not in state.data:
            return None
        return 1.0 if state.data["answer"] == self.expected else 0.0


@dataclass(frozen=True)
class Expect:
    """``make_env``: an AnswerEnv expecting ``answer`` (the seed is not used)."""

    answer: str

    def __call__(self, _seed: int) -> AnswerEnv:
        return AnswerEnv(self.answer)


@dataclass(frozen=True)
class DiesFirst:
    """``make_env`` that kills its process on its first ``times`` calls, then is ``Expect(answer)``."""

    marker_dir: str
    times: int
    answer: str = "42"

    def __call__(self, _seed: int) -> AnswerEnv:
        os.makedirs(self.marker_dir, exist_ok=True)
        died = len(os.listdir(self.marker_dir))
        if died < self.times:
            open(os.path.join(self.marker_dir, f"death-{died}"), "w").close()
            os._exit(1)
        return AnswerEnv(self.answer)


def deaths(marker_dir: str) -> int:
    return len(os.listdir(marker_dir)) if os.path.isdir(marker_dir) else 0
