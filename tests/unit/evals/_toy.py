"""A toy learnable benchmark driven by a FunctionModel.

The actor answers 42 only when "42" (or "forty-two") is somewhere in its prompt, else 7. Some
training tasks carry a tip ("the answer is forty-two"): those are solved, so they leave
verified worked examples (whose action, answer "42", teaches the other tasks). A wrong answer
gets "Wrong answer: the expected answer is 42." from the environment, which grounded failure
patterns quote. The distiller writes "ANSWER IS 42"; the reflection "remember: 42".
Validation and test tasks carry no tip. Importable by the tests and runnable as a child
process (for the kill test)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from purpose_agent.core.environment import Environment
from purpose_agent.core.types import Action, State
from purpose_agent.evals import BenchmarkConfig, BenchmarkRunner, BenchmarkTask, OrchestratorSettings
from purpose_agent.evals.conditions import STANDARD, Condition
from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel

TIP = "Tip: the answer is forty-two."


class Counter:
    """Model calls by role."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {"actor": 0, "critic": 0, "distiller": 0, "reflection": 0}


COUNTS = Counter()


def reply(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
    text = "\n".join(m.content for m in messages)
    props = (schema or {}).get("properties", {})
    if schema is None:  # a reflection
        COUNTS.calls["reflection"] += 1
        return "Next time remember: the answer is 42."
    if "lessons" in props:  # the distiller
        COUNTS.calls["distiller"] += 1
        lesson = {
            "kind": "tool_policy",
            "trigger": "a secret number question",
            "text": "ANSWER IS 42 for it.",
        }
        return {"lessons": [lesson], "achieved": ""}
    if "title" in props:
        return {"title": "secret number"}
    if "score" in props:  # the critic
        COUNTS.calls["critic"] += 1
        return {"evidence": "state", "reason": "toy", "score": 5, "confidence": "medium"}
    COUNTS.calls["actor"] += 1
    answer = "42" if ("42" in text or "forty-two" in text) else "7"
    return {"thought": "answer", "action": "DONE", "params": {"answer": answer}}


class SecretEnv(Environment):
    """One DONE(answer); ground truth 1.0 for the expected answer (42 unless told), else 0.0;
    a wrong answer is told the expected one."""

    def __init__(self, expected: str = "42") -> None:
        self.expected = expected

    def reset(self) -> State:
        return State({}, "A question about the secret number.")

    def execute(self, action: Action, state: State) -> State:
        if not action.is_done:
            return state
        answer = str(action.params.get("answer", ""))
        if answer == self.expected:
            return State({"answer": answer}, "Correct.")
        return State({"answer": answer}, f"Wrong answer: the expected answer is {self.expected}.")

    def is_terminal(self, state: State) -> bool:
        return "answer" in state.data

    def outcome(self, state: State) -> float | None:
        if "answer" not in state.data:
            return None
        return 1.0 if state.data["answer"] == self.expected else 0.0


def make_env(_seed: int) -> SecretEnv:
    return SecretEnv()


def tasks(seed: int, *, train: int = 4, validation: int = 4, test: int = 3) -> list[BenchmarkTask]:
    out = []
    # four validation tasks: the gate promotes on evidence (four paired wins), not on one run
    for split, n in (("train", train), ("validation", validation), ("test", test)):
        for i in range(n):
            tip = f" {TIP}" if split == "train" and i % 2 == 0 else ""
            out.append(
                BenchmarkTask(
                    f"{split}-{seed}-{i}",
                    f"Say the secret number of box {i}.{tip}",
                    make_env=make_env,
                    split=split,  # type: ignore[arg-type]
                    max_steps=2,
                )
            )
    return out


def runner(
    out: Path,
    model: FunctionModel | None = None,
    conditions: tuple[Condition, ...] = STANDARD,
    seeds: tuple[int, ...] = (0, 1),
    settings: OrchestratorSettings | None = None,
    **kw: Any,
) -> BenchmarkRunner:
    config = BenchmarkConfig(
        conditions=conditions,
        seeds=seeds,
        settings=settings or OrchestratorSettings(train_attempts=2, units_per_gate=4),
    )
    return BenchmarkRunner(llm=model or FunctionModel(reply), config=config, out_dir=out, **kw)


def resumable(out: Path, **kw: Any) -> BenchmarkRunner:
    """The benchmark of the kill test: the floor, full, ungated and reflection, one seed."""
    from purpose_agent.evals import FULL, REFLECTION, UNGATED

    return runner(out, conditions=(FULL, UNGATED, REFLECTION), seeds=(0,), **kw)


def main(out: str) -> None:
    """Child process: print one line per finished unit (the parent kills it mid-way)."""

    def on_unit(key: Any, rec: Any) -> None:
        print("UNIT", key.as_str(), flush=True)

    resumable(Path(out), on_unit=on_unit).run(tasks, 2, "toy")
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
