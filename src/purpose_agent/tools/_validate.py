"""Tool arguments checked against the tool's JSON schema (``models._jsonschema``, the
``TOOL_ARGUMENTS`` dialect), each problem as a short, path-prefixed sentence meant to be shown
to a model so it can retry."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jsonschema import ValidationError

from purpose_agent.models._jsonschema import TOOL_ARGUMENTS, errors

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: str) -> str:
    return f"argument {path!r}" if path else "arguments"


def _join(path: str, steps: Iterable[Any]) -> str:
    for step in steps:
        path = f"{path}[{step}]" if isinstance(step, int) else f"{path}.{step}" if path else str(step)
    return path


def _types(want: Any) -> str:
    kinds = [want] if isinstance(want, str) else list(want)
    return " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)


#: keyword -> (where, value, what the schema wants) -> the sentence a model is shown
_SAY: dict[str, Callable[[str, Any, Any], str]] = {
    "type": lambda at, value, want: f"{at} must be {_types(want)}, got {_show(value)}",
    "enum": lambda at, value, want: (
        f"{at} must be one of [{', '.join(_show(v) for v in want[:20])}], got {_show(value)}"
    ),
    "const": lambda at, value, want: f"{at} must be {_show(want)}, got {_show(value)}",
    "minimum": lambda at, value, want: f"{at} must be >= {want}, got {value}",
    "maximum": lambda at, value, want: f"{at} must be <= {want}, got {value}",
    "minItems": lambda at, value, want: f"{at} needs at least {want} items",
    "maxItems": lambda at, value, want: f"{at} allows at most {want} items",
}


def _sentence(e: ValidationError, base: str) -> str:
    path, value, kw, want = _join(base, e.absolute_path), e.instance, str(e.validator), e.validator_value
    prefix = f"{path}." if path else ""
    if kw == "anyOf":
        first = f" ({_sentence(e.context[0], base)})" if e.context else ""
        return f"{_where(path)}: {_show(value)} matches none of the allowed forms{first}"
    if kw == "required":
        return f"missing required argument {prefix + want!r}"
    if kw == "additionalProperties":
        known = ", ".join(e.schema.get("properties", {})) or "none"
        return f"unexpected argument {prefix + str(want)!r} (known: {known})"
    say = _SAY.get(kw)
    return say(_where(path), value, want) if say is not None else f"{_where(path)}: {e.message}"


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Return a list of error sentences (empty when ``value`` satisfies ``schema``)."""
    return [_sentence(e, path) for e in errors(value, schema, TOOL_ARGUMENTS)]
