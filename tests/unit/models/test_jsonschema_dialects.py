"""One JSON-schema check (``models._jsonschema``) serves model replies and tool arguments; the
two dialects keep what each caller enforced before."""

from __future__ import annotations

from purpose_agent.models.parsing import validate as reply_problems
from purpose_agent.tools._validate import validate as argument_problems

SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer", "minimum": 0}, "tags": {"type": ["array", "null"]}},
    "required": ["n"],
    "additionalProperties": False,
}


def test_tool_arguments_enforce_limits_and_accept_an_integral_float() -> None:
    assert argument_problems({"n": 3.0}, SCHEMA) == []
    assert argument_problems({"n": -1, "x": 1}, SCHEMA) == [
        "argument 'n' must be >= 0, got -1",
        "unexpected argument 'x' (known: n, tags)",
    ]
    assert argument_problems({"n": 1, "tags": "a"}, SCHEMA) == [
        "argument 'tags' must be a list or null, got \"a\""
    ]


def test_model_replies_check_the_shape_only() -> None:
    # the limits are the receiving tool's to enforce; a type list is not checked here
    assert reply_problems({"n": -1, "x": 1, "tags": "a"}, SCHEMA) == []
    assert reply_problems({"n": 3.0}, SCHEMA) == ["$.n: expected integer, got float"]
    assert reply_problems({}, SCHEMA) == ["$: missing required field 'n'"]


def test_no_matching_branch_is_the_only_error_of_its_level() -> None:
    schema = {"oneOf": [{"const": "a"}, {"type": "integer"}]}
    assert argument_problems("b", schema) == [
        'arguments: "b" matches none of the allowed forms (arguments must be "a", got "b")'
    ]
    assert reply_problems("b", schema) == [
        "$: matches none of the 2 allowed shapes ($: expected 'a', got 'b')"
    ]
