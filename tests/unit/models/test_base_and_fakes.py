"""The backend protocol's shared behaviour: schema sanitising, repair-and-retry, sync wrappers,
and the strict test models."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from purpose_agent.errors import ScriptExhaustedError
from purpose_agent.models.base import Message, sanitize_schema
from purpose_agent.models.testing import FunctionModel, ScriptedModel

SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "maxLength": 5000},
        "n": {"type": "integer", "minimum": 0, "maximum": 3},
    },
    "required": ["answer", "n"],
}
MSGS = [Message("user", "hi")]


def test_sanitize_drops_maxlength_and_turns_small_int_range_into_enum() -> None:
    clean = sanitize_schema(SCHEMA)
    assert "maxLength" not in clean["properties"]["answer"]
    assert clean["properties"]["n"]["enum"] == [0, 1, 2, 3]
    assert "minimum" not in clean["properties"]["n"]
    assert SCHEMA["properties"]["answer"]["maxLength"] == 5000  # the caller's schema is untouched


def test_scripted_serves_in_order_and_records_calls() -> None:
    m = ScriptedModel(["one", {"answer": "two", "n": 2}])
    assert m.complete(MSGS).text == "one"
    c = m.complete(MSGS, SCHEMA)
    assert c.data == {"answer": "two", "n": 2} and c.ok
    assert len(m.calls) == 2 and m.calls[1].schema is not None
    m.assert_consumed()


def test_scripted_fails_on_unexpected_call() -> None:
    m = ScriptedModel(["only"])
    m.complete(MSGS)
    with pytest.raises(ScriptExhaustedError, match="only 1 replies"):
        m.complete(MSGS)


def test_scripted_fails_on_unconsumed_replies() -> None:
    with pytest.raises(ScriptExhaustedError, match="1 unconsumed"), ScriptedModel(["a", "b"]) as m:
        m.complete(MSGS)


def test_repair_retry_once_on_unparseable_reply() -> None:
    m = ScriptedModel(["I think the answer is probably fine", '{"answer": "ok", "n": 1}'])
    c = m.complete(MSGS, SCHEMA)
    assert c.ok and c.data == {"answer": "ok", "n": 1} and c.attempts == 2
    retry_msgs = m.calls[1].messages
    assert retry_msgs[-2].role == "assistant" and "could not be used" in retry_msgs[-1].content
    assert c.usage.calls == 2


def test_second_failure_returns_error_without_raising() -> None:
    m = ScriptedModel(["garbage", "still garbage"])
    c = m.complete(MSGS, SCHEMA)
    assert not c.ok and c.parse_error and c.attempts == 2


def test_truncated_reply_retries_with_more_room() -> None:
    seen: list[int] = []

    class Truncating(ScriptedModel):
        async def _generate(
            self,
            messages: Sequence[Message],
            schema: Mapping[str, Any] | None,
            *,
            max_tokens: int,
            temperature: float,
        ):  # type: ignore[no-untyped-def]
            seen.append(max_tokens)
            raw = await super()._generate(messages, schema, max_tokens=max_tokens, temperature=temperature)
            from dataclasses import replace

            return replace(raw, finish_reason="length" if len(seen) == 1 else "stop")

    m = Truncating(['{"answer": "long text that got cu', '{"answer": "short", "n": 0}'])
    c = m.complete(MSGS, SCHEMA, max_tokens=50)
    assert c.ok and seen == [50, 100]
    assert "cut off" in m.calls[1].messages[-1].content


def test_function_model_sync_and_async() -> None:
    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"answer": messages[-1].content.upper(), "n": 3}

    async def afn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> str:
        await asyncio.sleep(0)
        return "plain"

    assert FunctionModel(fn).complete(MSGS, SCHEMA).data == {"answer": "HI", "n": 3}
    assert FunctionModel(afn).complete(MSGS).text == "plain"


def test_think_stripped_from_plain_text_replies() -> None:
    assert ScriptedModel(["<think>hmm</think>Paris"]).complete(MSGS).text == "Paris"


async def test_sync_wrapper_works_inside_a_running_loop() -> None:
    m = ScriptedModel(["x"])
    assert m.complete(MSGS).text == "x"  # called from within an event loop


def test_stream_default_yields_whole_reply_and_sync_stream_works() -> None:
    m = ScriptedModel(["streamed text"])
    assert list(m.stream(MSGS)) == ["streamed text"]


def test_usage_adds_up() -> None:
    m = ScriptedModel(["a" * 40, "b" * 80])
    u = m.complete(MSGS).usage + m.complete(MSGS).usage
    assert u.completion_tokens == 30 and u.calls == 2
