"""A stand-in model for running the examples without the embedded model (``--fake``): a
FunctionModel that plays the actor (by the role in its prompt), the critic, the distiller and
the router. Real runs use ``model="local"``."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import purpose_agent as pa

FIB = "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
TYPED = FIB.replace("def fibonacci(n):", "def fibonacci(n: int) -> int:")


def _done(answer: str) -> dict[str, Any]:
    return {"thought": "done", "action": "DONE", "params": {"answer": answer}}


def _actor(prompt: str, turn: int) -> dict[str, Any]:
    names = re.findall(r"You are (\w+)[,.]\s", prompt)
    who = names[0] if names else "agent"
    if who == "architect":
        return _done("fibonacci(n: int) -> int, the n-th Fibonacci number; fibonacci(0) == 0.")
    if who == "tester":
        return _done("assert fibonacci(0) == 0\nassert fibonacci(1) == 1\nassert fibonacci(10) == 55")
    if who == "coder":
        if turn == 0:
            code = TYPED if "type hints" in prompt else FIB
            return {"thought": "write it", "action": "submit_code", "params": {"code": code}}
        return _done("submitted")
    if "capital of France" in prompt:
        return _done("Paris")
    return _done(f"{who}: a short answer")


def _reply(messages: Sequence[pa.Message], schema: Mapping[str, Any] | None) -> Any:
    props = (schema or {}).get("properties", {})
    prompt = "\n".join(m.content for m in messages)
    if "lessons" in props:
        return {"lessons": [], "achieved": ""}
    if "score" in props:
        return {"evidence": "the state", "reason": "looks complete", "score": 9, "confidence": "high"}
    if "choice" in props:
        return {"reason": "first fit", "choice": props["choice"]["enum"][0]}
    return _actor(prompt, sum(1 for m in messages if m.role == "assistant"))


def model() -> pa.Backend | str:
    """``--fake``: the stand-in; otherwise the embedded model."""
    return pa.FunctionModel(_reply, name="function") if "--fake" in sys.argv else "local"
