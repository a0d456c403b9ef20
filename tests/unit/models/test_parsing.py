"""The robust parser on ugly model output: it never raises and recovers what it can."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from purpose_agent.models.parsing import parse_structured, repair_truncated_json, strip_think

SCORE = {
    "type": "object",
    "properties": {
        "reason": {"type": "string"},
        "score": {"type": "integer", "enum": list(range(11))},
    },
    "required": ["reason", "score"],
}

ACTION = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string"},
                "action": {"const": "write"},
                "params": {
                    "type": "object",
                    "properties": {"code": {"type": "string"}},
                    "required": ["code"],
                },
            },
            "required": ["thought", "action", "params"],
        },
        {
            "type": "object",
            "properties": {
                "thought": {"type": "string"},
                "action": {"const": "DONE"},
                "params": {"type": "object", "properties": {"answer": {"type": "string"}}},
            },
            "required": ["thought", "action", "params"],
        },
    ]
}


def test_clean_json() -> None:
    out = parse_structured('{"reason": "ok", "score": 7}', SCORE)
    assert out.ok and out.data == {"reason": "ok", "score": 7} and out.method == "json"


def test_prose_around_json_and_code_fence() -> None:
    text = 'Sure! Here is my verdict:\n```json\n{"reason": "tests pass", "score": 9}\n```\nHope it helps.'
    out = parse_structured(text, SCORE)
    assert out.ok and out.data == {"reason": "tests pass", "score": 9}


def test_think_block_is_stripped() -> None:
    text = '<think>maybe {"score": 2} no wait</think>{"reason": "done", "score": 10}'
    assert strip_think(text) == '{"reason": "done", "score": 10}'
    out = parse_structured(text, SCORE)
    assert out.ok and out.data["score"] == 10


def test_unclosed_think_block_runs_to_end() -> None:
    out = parse_structured('{"reason": "a", "score": 3}<think>and then {"score": 9', SCORE)
    assert out.ok and out.data["score"] == 3


def test_truncated_json_is_repaired() -> None:
    out = parse_structured(
        '{"reason": "the function handles most cases but', {**SCORE, "required": ["reason"]}
    )
    assert out.ok and out.method == "repair"
    assert out.data["reason"].startswith("the function handles")


def test_truncated_json_missing_required_is_reported_not_raised() -> None:
    out = parse_structured('{"reason": "cut off here', SCORE)
    assert not out.ok
    assert "score" in (out.error or "")
    assert out.data == {"reason": "cut off here"}


def test_repair_closes_nested_structures() -> None:
    fixed = repair_truncated_json('{"a": [1, {"b": "x')
    assert fixed == '{"a": [1, {"b": "x"}]}'


def test_toml_reply() -> None:
    out = parse_structured('reason = "all tests pass"\nscore = 10\n', SCORE)
    assert out.ok and out.method == "toml" and out.data == {"reason": "all tests pass", "score": 10}


def test_wrong_types_are_coerced() -> None:
    out = parse_structured('{"reason": 42, "score": "8"}', SCORE)
    assert out.ok and out.data == {"reason": "42", "score": 8}


def test_out_of_enum_score_snaps_to_nearest() -> None:
    out = parse_structured('{"reason": "r", "score": 14}', SCORE)
    assert out.ok and out.data["score"] == 10


def test_field_extraction_from_prose() -> None:
    out = parse_structured("reason: the output matches\nscore: 6", SCORE)
    assert out.ok and out.data == {"reason": "the output matches", "score": 6}


def test_regex_fallback_for_lone_score() -> None:
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "enum": list(range(11))}},
        "required": ["score"],
    }
    out = parse_structured("I would give this a solid 7 out of 10 overall", schema)
    assert out.ok and out.data == {"score": 7}


def test_empty_text() -> None:
    out = parse_structured("", SCORE)
    assert not out.ok and out.data is None and out.error == "empty reply"
    assert not parse_structured(None, SCORE).ok


def test_python_literals_and_trailing_commas() -> None:
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}, "n": {"type": "null"}}}
    out = parse_structured("{'ok': True, 'n': None,}", schema)
    assert out.data == {"ok": True, "n": None}


def test_raw_newlines_inside_strings() -> None:
    text = '{"thought": "fix", "action": "write", "params": {"code": "def f():\n    return 1\n"}}'
    out = parse_structured(text, ACTION)
    assert out.ok and out.data["params"]["code"] == "def f():\n    return 1\n"


def test_oneof_picks_branch_by_const() -> None:
    out = parse_structured('{"thought": "t", "action": "DONE", "params": {"answer": "42"}}', ACTION)
    assert out.ok and out.data["action"] == "DONE"
    bad = parse_structured('{"thought": "t", "action": "fly", "params": {}}', ACTION)
    assert not bad.ok and "none of the 2 allowed shapes" in (bad.error or "")


def test_prefers_the_object_that_fits_the_schema() -> None:
    text = 'Example: {"x": 1}. Answer: {"reason": "good", "score": 5}'
    out = parse_structured(text, SCORE)
    assert out.ok and out.data == {"reason": "good", "score": 5}


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    out = parse_structured(text, SCORE)
    assert out.ok == (out.data is not None and out.error is None)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
)
def test_never_raises_on_json_like_values(value: object) -> None:
    import json

    parse_structured(json.dumps(value)[:-3], ACTION)
    parse_structured(json.dumps(value), SCORE)
