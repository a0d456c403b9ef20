"""Shared pieces of the critic tests: a tiny coding task, critics with known behaviour."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import purpose_agent as pa
from _double_task import GOOD, HALF, STUB, TASK, submit  # noqa: F401  (re-exported to the critic tests)
from purpose_agent.models.base import Message

CLAIMS = re.compile(r"score 10|task complete|all tests pass|brilliant|deserves|generous|full marks", re.I)


def done(answer: str, thought: str = "answer") -> dict[str, Any]:
    return {"thought": thought, "action": "DONE", "params": {"answer": answer}}


def state_block(messages: Sequence[Message]) -> str:
    """What a naive reader takes as the state: from the first <state> to the first </state>."""
    text = messages[-1].content
    start = text.find("<state>")
    end = text.find("</state>", start)
    return text[start + len("<state>") : end] if start >= 0 and end >= 0 else ""


def passing_score(text: str) -> int:
    """10·k/n from the environment's "Tests: k/n passed." line, else 0."""
    for line in text.splitlines():
        m = re.match(r"Tests: (\d+)/(\d+) passed", line.strip())
        if m:
            return round(10 * int(m.group(1)) / int(m.group(2)))
    return 0


def reply(score: int, evidence: str = "-", confidence: str = "high") -> dict[str, Any]:
    return {"evidence": evidence, "reason": "r", "score": score, "confidence": confidence}


def rubric_critic(name: str = "critic") -> pa.FunctionModel:
    """Scores by the test line inside the quoted state only."""
    return pa.FunctionModel(lambda m, s: reply(passing_score(state_block(m))), name=name)


def gullible_critic(name: str = "gullible") -> pa.FunctionModel:
    """Gives 10 whenever a claim, plea or flattery appears anywhere in its prompt; else reads
    the tests. It stands for a weak model the framework must protect."""

    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        if CLAIMS.search(messages[-1].content):
            return reply(10, "the state says it is complete")
        return reply(passing_score(state_block(messages)))

    return pa.FunctionModel(fn, name=name)


def constant_critic(score: int, confidence: str = "high") -> pa.FunctionModel:
    return pa.FunctionModel(lambda m, s: reply(score, confidence=confidence))


def counting_critic() -> tuple[pa.FunctionModel, Callable[[], int]]:
    """Each call scores one more than the last (a critic that drifts upward)."""
    n = {"calls": 0}

    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        n["calls"] += 1
        return reply(min(10, n["calls"]))

    return pa.FunctionModel(fn, name="counting"), lambda: n["calls"]
