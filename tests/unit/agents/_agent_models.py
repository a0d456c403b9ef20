"""A FunctionModel that plays every part of the user layer's tests: the actor (by the role in
its prompt), the critic, the distiller and the router."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import purpose_agent as pa
from purpose_agent.models.base import Message

Actor = Callable[[str, list[str], int], dict[str, Any]]

FIB = "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
FIB_TYPED = "def fibonacci(n: int) -> int:\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n"
TESTS = "assert fibonacci(0) == 0\nassert fibonacci(1) == 1\nassert fibonacci(10) == 55"


def done(answer: str) -> dict[str, Any]:
    return {"thought": "finish", "action": "DONE", "params": {"answer": answer}}


def code_actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
    """architect → a plan; tester → asserts; coder → submit_code (typed when a lesson asks for
    type hints), then DONE."""
    if "You are architect" in prompt:
        return done("fibonacci(n: int) -> int returns the n-th Fibonacci number, fibonacci(0) == 0.")
    if "You are tester" in prompt:  # the submit_tests action (one expression each, assert or not)
        tests = ["fibonacci(0) == 0", "assert fibonacci(1) == 1", "fibonacci(10) == 55"]
        return {"thought": "tests", "action": "submit_tests", "params": {"tests": tests}}
    if "You are coder" in prompt:
        if turn == 0:
            code = FIB_TYPED if "type hints" in prompt else FIB
            return {"thought": "write it", "action": "submit_code", "params": {"code": code}}
        return done("submitted")
    return done(f"answer from {prompt.split('.')[0]}")


class Fake:
    """Routes each call by its schema. ``actor(prompt, actions, turn)`` answers the actor
    (turn = how many actions this run already took); ``route(prompt, options)`` the router."""

    def __init__(
        self,
        actor: Actor = code_actor,
        *,
        score: int = 9,
        lessons: Sequence[Mapping[str, str]] = (),
        route: Callable[[str, list[str]], str] | None = None,
    ) -> None:
        self.actor = actor
        self.score = score
        self.lessons = list(lessons)
        self.route = route
        self.prompts: list[str] = []  # every actor prompt, in order
        self.routed: list[list[str]] = []
        self.model = pa.FunctionModel(self.reply, name="function")

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = (schema or {}).get("properties", {})
        prompt = "\n".join(m.content for m in messages)
        if "lessons" in props:
            return {"lessons": list(self.lessons), "achieved": ""}
        if "score" in props:
            return {"evidence": "the state", "reason": "fine", "score": self.score, "confidence": "high"}
        if "choice" in props:
            options = list(props["choice"]["enum"])
            self.routed.append(options)
            if self.route is None:
                raise AssertionError(f"unexpected routing call: {options}")
            return {"reason": "fits", "choice": self.route(prompt, options)}
        if schema and "oneOf" in schema:
            actions = [b["properties"]["action"]["const"] for b in schema["oneOf"]]
            self.prompts.append(prompt)
            turn = sum(1 for m in messages if m.role == "assistant")
            return self.actor(prompt, actions, turn)
        raise AssertionError(f"unexpected call with schema {schema!r}")
