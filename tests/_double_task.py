"""The tiny coding task the loop and critic tests share: double(x), with good, partial and
stub solutions, and the actor reply that submits one."""

from __future__ import annotations

from typing import Any

from purpose_agent.envs.coding import CodingTask

TASK = CodingTask(
    "double",
    "return twice the number.",
    "double",
    ("double(2) == 4", "double(-1) == -2"),
    "double(x: int) -> int",
)
GOOD = "def double(x):\n    return 2 * x\n"
HALF = "def double(x):\n    return 4 if x == 2 else 0\n"
STUB = "def double(x):\n    pass\n"


def submit(code: str, thought: str = "write it") -> dict[str, Any]:
    return {"thought": thought, "action": "submit_code", "params": {"code": code}}
