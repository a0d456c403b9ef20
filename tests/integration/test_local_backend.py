"""LocalBackend in-process with the real embedded model."""

from __future__ import annotations

import pytest

from purpose_agent.models.base import Message
from purpose_agent.models.local import LocalBackend, available_cores

pytestmark = pytest.mark.integration

GRADE = {
    "type": "object",
    "properties": {
        "reason": {"type": "string", "maxLength": 4000},  # sanitised away: would segfault llama.cpp
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "verdict": {"type": "string", "enum": ["pass", "fail"]},
    },
    "required": ["reason", "score", "verdict"],
}


def test_schema_output_is_valid_and_usage_reported(qwen15: LocalBackend) -> None:
    msgs = [Message("system", "You grade answers."), Message("user", "Q: 12*12? A: 144. Grade it.")]
    c = qwen15.complete(msgs, GRADE, max_tokens=120)
    assert c.ok, c.parse_error
    assert set(c.data or {}) == {"reason", "score", "verdict"}
    assert c.data["score"] in range(11) and c.data["verdict"] in ("pass", "fail")
    assert c.usage.prompt_tokens > 10 and c.usage.completion_tokens > 0
    assert (
        c.usage.processed_prompt_tokens is not None
        and c.usage.processed_prompt_tokens <= c.usage.prompt_tokens
    )


def test_kv_prefix_is_reused_across_calls(qwen15: LocalBackend) -> None:
    system = Message("system", "You are a terse assistant. " * 20)
    first = qwen15.complete([system, Message("user", "Say A.")], max_tokens=4)
    second = qwen15.complete(
        [system, Message("user", "Say A."), Message("assistant", first.text), Message("user", "Say B.")],
        max_tokens=4,
    )
    assert second.usage.prompt_tokens > first.usage.prompt_tokens
    assert second.usage.processed_prompt_tokens is not None
    assert second.usage.processed_prompt_tokens < second.usage.prompt_tokens / 2


def test_streaming_yields_several_chunks(qwen15: LocalBackend) -> None:
    chunks = list(qwen15.stream([Message("user", "Count from 1 to 5, separated by spaces.")], max_tokens=20))
    assert len(chunks) >= 3 and "3" in "".join(chunks)


def test_threads_follow_available_cores(qwen15: LocalBackend) -> None:
    assert qwen15.n_threads == available_cores()


def test_token_counting_uses_the_model_tokenizer_without_a_generation_context(qwen15: LocalBackend) -> None:
    slots = dict(qwen15._slots)
    assert qwen15.count_tokens("hello world") == 2
    assert qwen15.count_tokens("") == 0
    assert qwen15._slots == slots  # no context created or evicted by counting


def test_sampling_with_a_seed_repeats_from_call_to_call(qwen15: LocalBackend) -> None:
    """The seed is reset per call: at T=0.7 the same prompt gives the same text twice."""
    msgs = [Message("user", "Name three colours, one word each.")]
    first = qwen15.complete(msgs, max_tokens=16, temperature=0.7).text
    second = qwen15.complete(msgs, max_tokens=16, temperature=0.7).text
    assert first == second
