"""A counter environment for the HITL tests; run as a script it is the SIGKILL subject.

``python _hitl_env.py LOG CHECKPOINT_DIR WHERE`` runs a 3-step HITL run that blocks at step 2,
either while a person is asked about the action (WHERE=approval) or inside the environment
executing it (WHERE=execute), after printing READY; the test kills it there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import purpose_agent as pa
from purpose_agent.runtime import HITLOrchestrator, ProgrammaticInputHandler

PURPOSE = "Make n reach 3"
ACTIONS = {"increment": "add one to n", "decrement": "subtract one from n"}


class Counter(pa.Environment):
    """n in the State only (so it is restorable); every execution is logged to ``log``."""

    def __init__(self, log: Path | None = None, block_at: int | None = None) -> None:
        self.log = log
        self.block_at = block_at
        self.restored: list[pa.State] = []

    def reset(self) -> pa.State:
        return pa.State({"n": 0}, "n = 0")

    def execute(self, action: pa.Action, state: pa.State) -> pa.State:
        n = int(state.data["n"])
        if self.log is not None:
            with self.log.open("a") as fh:
                fh.write(f"{action.name} {n}\n")
        if self.block_at is not None and n + 1 == self.block_at:
            print("READY", flush=True)
            sys.stdin.readline()  # blocks until the test kills this process
        n = n + 1 if action.name == "increment" else n - 1 if action.name == "decrement" else n
        return pa.State({"n": n}, f"n = {n}")

    def outcome(self, state: pa.State) -> float | None:
        return 1.0 if state.data["n"] >= 3 else None

    def restore(self, state: pa.State) -> None:
        self.restored.append(state)


def actor(name: str = "increment") -> pa.FunctionModel:
    return pa.FunctionModel(lambda m, s: {"thought": "go up", "action": name, "params": {}}, name="actor")


def critic(score: int = 2) -> pa.FunctionModel:
    return pa.FunctionModel(
        lambda m, s: {"evidence": "n", "reason": "progress", "score": score, "confidence": "high"},
        name="critic",
    )


def orchestrator(env: pa.Environment, **kwargs: Any) -> pa.Orchestrator:
    return pa.Orchestrator(actor(), env, ACTIONS, critic_llm=critic(), **kwargs)


if __name__ == "__main__":
    log, cdir, where = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

    def approve(request: Any) -> str:
        if where == "approval" and request.step == 2:
            print("READY", flush=True)
            sys.stdin.readline()
        return "approve"

    env = Counter(log, block_at=2 if where == "execute" else None)
    hitl = HITLOrchestrator(orchestrator(env), ProgrammaticInputHandler(approve), checkpoint_dir=cdir)
    hitl.run_task(PURPOSE, max_steps=6)
