"""A three-node flow for the kill-and-resume test; run as a script it blocks inside node two.

``python _flow_kill.py LOG CHECKPOINT`` runs the flow; node ``slow`` prints READY once node
``first`` is checkpointed and then waits on stdin for ever, so the test can SIGKILL it there.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from purpose_agent.agents import BEGIN, DONE_SIGNAL, Flow


def build(log: Path, checkpoint: Path, *, block: bool) -> Flow:
    def note(name: str) -> None:
        with log.open("a") as fh:
            fh.write(name + "\n")

    def first(state: dict[str, Any]) -> dict[str, Any]:
        note("first")
        return {"a": state["start"] + 1}

    def slow(state: dict[str, Any]) -> dict[str, Any]:
        note("slow")
        if block:
            print("READY", flush=True)
            sys.stdin.readline()  # blocks until the test kills this process
        return {"b": state["a"] * 10}

    def last(state: dict[str, Any]) -> dict[str, Any]:
        note("last")
        return {"c": state["b"] + 1}

    flow = Flow("kill-test", checkpoint=checkpoint)
    flow.add_node("first", first).add_node("slow", slow).add_node("last", last)
    flow.add_edge(BEGIN, "first").add_edge("first", "slow").add_edge("slow", "last").add_edge(
        "last", DONE_SIGNAL
    )
    return flow


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(sys.argv[2]), block=True).run({"start": 1})
