"""A toy learnable benchmark driven by a FunctionModel: the actor answers 42 only when a lesson
or reflection saying "ANSWER IS 42" is in its prompt; the distiller and the reflection write
that lesson. Importable by the tests and runnable as a child process (for the kill test)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from purpose_agent.core.environment import SimpleEnvironment
from purpose_agent.core.types import State
from purpose_agent.evals import BenchmarkConfig, BenchmarkRunner, BenchmarkTask, OrchestratorSettings
from purpose_agent.evals.conditions import STANDARD
from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel


def reply(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
    text = "\n".join(m.content for m in messages)
    props = (schema or {}).get("properties", {})
    if schema is None:  # a reflection
        return "Next time remember: ANSWER IS 42."
    if "lessons" in props:  # the distiller
        lesson = {
            "kind": "failure_pattern",
            "trigger": "a secret number question",
            "text": "ANSWER IS 42 for it.",
        }
        return {"lessons": [lesson], "achieved": ""}
    if "score" in props:  # the critic
        return {"evidence": "state", "reason": "toy", "score": 5, "confidence": "medium"}
    answer = "42" if "ANSWER IS 42" in text else "7"
    return {"thought": "answer", "action": "DONE", "params": {"answer": answer}}


def make_env(_seed: int) -> SimpleEnvironment:
    def outcome(state: State) -> float | None:
        if "answer" not in state.data:
            return None
        return 1.0 if state.data["answer"] == "42" else 0.0

    return SimpleEnvironment(outcome_fn=outcome)


def tasks(seed: int) -> list[BenchmarkTask]:
    out = []
    # four validation tasks: the gate promotes on evidence (four paired wins), not on one run
    for split, n in (("train", 4), ("validation", 4), ("test", 3)):
        for i in range(n):
            out.append(
                BenchmarkTask(
                    f"{split}-{seed}-{i}",
                    f"Say the secret number ({i}).",
                    make_env=make_env,
                    split=split,  # type: ignore[arg-type]
                    max_steps=2,
                )
            )
    return out


def runner(out: Path, model: FunctionModel | None = None, **kw: Any) -> BenchmarkRunner:
    config = BenchmarkConfig(conditions=STANDARD, seeds=(0, 1), settings=OrchestratorSettings(gate_limit=2))
    return BenchmarkRunner(llm=model or FunctionModel(reply), config=config, out_dir=out, **kw)


def main(out: str) -> None:
    """Child process: print one line per finished unit (the parent kills it mid-way)."""

    def on_unit(key: Any, rec: Any) -> None:
        print("UNIT", key.as_str(), flush=True)

    runner(Path(out), on_unit=on_unit).run(tasks, 2, "toy")
    print("FINISHED", flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
