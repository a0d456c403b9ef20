"""Strict deterministic test models that ship with the library.

``ScriptedModel(replies)`` serves its replies in order and fails loudly on a call it has no
reply for, or (via ``assert_consumed`` / ``with``) on replies left unconsumed.
``FunctionModel(fn)`` answers with ``fn(messages, schema)``.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.errors import ScriptExhaustedError
from purpose_agent.models.base import BaseBackend, Message, RawCompletion, Usage

Reply = str | dict[str, Any]


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4) if text else 0


def _usage(messages: Sequence[Message], text: str) -> Usage:
    return Usage(sum(_approx_tokens(m.content) for m in messages), _approx_tokens(text))


@dataclass(frozen=True, slots=True)
class RecordedCall:
    messages: tuple[Message, ...]
    schema: Mapping[str, Any] | None


def _to_raw(reply: Reply, messages: Sequence[Message]) -> RawCompletion:
    if isinstance(reply, dict):
        text = json.dumps(reply)
        return RawCompletion(text, _usage(messages, text), "stop", data=dict(reply))
    if isinstance(reply, str):
        return RawCompletion(reply, _usage(messages, reply), "stop")
    raise TypeError(f"a test model reply must be str or dict, got {type(reply).__name__}")


class ScriptedModel(BaseBackend):
    """Serves ``replies`` (str or dict) in order; an extra call raises ScriptExhaustedError."""

    def __init__(self, replies: Sequence[Reply], name: str = "scripted") -> None:
        self.replies: list[Reply] = list(replies)
        self.name = name
        self.calls: list[RecordedCall] = []
        self._next = 0

    @property
    def remaining(self) -> int:
        return len(self.replies) - self._next

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        self.calls.append(RecordedCall(tuple(messages), schema))
        if self._next >= len(self.replies):
            last = messages[-1].content[:200] if messages else ""
            raise ScriptExhaustedError(
                f"ScriptedModel {self.name!r} got call #{self._next + 1} but has only "
                f"{len(self.replies)} replies; last message: {last!r}"
            )
        reply = self.replies[self._next]
        self._next += 1
        return _to_raw(reply, messages)

    def assert_consumed(self) -> None:
        if self.remaining:
            raise ScriptExhaustedError(
                f"ScriptedModel {self.name!r} has {self.remaining} unconsumed replies: "
                f"{self.replies[self._next :]!r}"
            )

    def __enter__(self) -> ScriptedModel:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.assert_consumed()


ReplyFn = Callable[[Sequence[Message], Mapping[str, Any] | None], Any]


class FunctionModel(BaseBackend):
    """Answers each call with ``fn(messages, schema)`` (sync or async), returning str or dict."""

    def __init__(self, fn: ReplyFn, name: str = "function") -> None:
        self.fn = fn
        self.name = name
        self.calls: list[RecordedCall] = []

    async def _generate(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None,
        *,
        max_tokens: int,
        temperature: float,
    ) -> RawCompletion:
        self.calls.append(RecordedCall(tuple(messages), schema))
        reply = self.fn(messages, schema)
        if inspect.isawaitable(reply):
            reply = await reply
        return _to_raw(reply, messages)
