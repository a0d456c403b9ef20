"""A small JSON-schema validator for tool arguments (the subset tool schemas use).

Supported keywords: type (string or list), enum, const, properties, required,
additionalProperties (bool or schema), items, anyOf/oneOf, minimum/maximum, minItems/maxItems.
Errors are short, path-prefixed sentences meant to be shown to a model so it can retry.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _is_type(value: Any, kind: str) -> bool:
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list | tuple)
    if kind == "object":
        return isinstance(value, Mapping)
    if kind == "null":
        return value is None
    return True


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _where(path: str) -> str:
    return f"argument {path!r}" if path else "arguments"


def validate(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Return a list of error sentences (empty when ``value`` satisfies ``schema``)."""
    errors: list[str] = []
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = schema[key]
            if not any(not validate(value, opt, path) for opt in options):
                first = validate(value, options[0], path) if options else []
                detail = f" ({first[0]})" if first else ""
                errors.append(f"{_where(path)}: {_show(value)} matches none of the allowed forms{detail}")
                return errors
    kind = schema.get("type")
    if kind is not None:
        kinds = [kind] if isinstance(kind, str) else list(kind)
        if not any(_is_type(value, k) for k in kinds):
            want = " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)
            return [f"{_where(path)} must be {want}, got {_show(value)}"]
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(_show(v) for v in schema["enum"][:20])
        errors.append(f"{_where(path)} must be one of [{allowed}], got {_show(value)}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{_where(path)} must be {_show(schema['const'])}, got {_show(value)}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{_where(path)} must be >= {schema['minimum']}, got {value}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{_where(path)} must be <= {schema['maximum']}, got {value}")
    if isinstance(value, list | tuple):
        errors.extend(_validate_array(value, schema, path))
    if isinstance(value, Mapping):
        errors.extend(_validate_object(value, schema, path))
    return errors


def _validate_array(value: list[Any] | tuple[Any, ...], schema: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errors.append(f"{_where(path)} needs at least {schema['minItems']} items")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errors.append(f"{_where(path)} allows at most {schema['maxItems']} items")
    items = schema.get("items")
    if isinstance(items, Mapping):
        for i, item in enumerate(value):
            errors.extend(validate(item, items, f"{path}[{i}]"))
    return errors


def _validate_object(value: Mapping[str, Any], schema: Mapping[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    props: Mapping[str, Any] = schema.get("properties", {})
    prefix = f"{path}." if path else ""
    for name in schema.get("required", []):
        if name not in value:
            errors.append(f"missing required argument {prefix + name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            errors.extend(validate(item, props[name], prefix + str(name)))
        elif extra is False:
            known = ", ".join(props) or "none"
            errors.append(f"unexpected argument {prefix + str(name)!r} (known: {known})")
        elif isinstance(extra, Mapping):
            errors.extend(validate(item, extra, prefix + str(name)))
    return errors
