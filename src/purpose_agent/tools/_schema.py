"""Python type hints to JSON schema, and JSON values back to the annotated types.

Schemas are inlined (no ``$ref``) so they work inside a llama.cpp grammar. Supported: str, int,
float, bool, None, Any, Optional/Union, Literal, Enum, list/set/tuple/Sequence, dict/Mapping,
dataclasses, pydantic models (when pydantic is importable) and ``Annotated[T, "description"]``.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import inspect
import types
import typing
from typing import Any

from purpose_agent.errors import ToolError

_EMPTY = inspect.Parameter.empty
_SIMPLE: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _pydantic_base() -> type | None:
    try:
        from pydantic import BaseModel
    except ImportError:  # pydantic is optional
        return None
    return BaseModel


def _is_pydantic(tp: Any) -> bool:
    base = _pydantic_base()
    return base is not None and isinstance(tp, type) and issubclass(tp, base)


def _is_union(origin: Any) -> bool:
    return origin is typing.Union or origin is types.UnionType


def _literal_schema(values: tuple[Any, ...]) -> dict[str, Any]:
    vals = [v.value if isinstance(v, enum.Enum) else v for v in values]
    kinds = {_SIMPLE.get(type(v)) for v in vals}
    schema: dict[str, Any] = {"enum": vals}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def type_to_schema(tp: Any, _seen: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Return the JSON schema for annotation ``tp``; raise ToolError when unsupported."""
    if tp is Any or tp is _EMPTY or tp is object:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if tp in _SIMPLE:
        return {"type": _SIMPLE[tp]}
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        schema = type_to_schema(args[0], _seen)
        notes = [a for a in args[1:] if isinstance(a, str)]
        if notes:
            schema["description"] = " ".join(notes)
        return schema
    if _is_union(origin):
        return _union_schema(args, _seen)
    if origin is typing.Literal:
        return _literal_schema(args)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _literal_schema(tuple(m.value for m in tp))
    if origin in (list, set, frozenset, cabc.Sequence, cabc.Set, cabc.Iterable, cabc.Collection):
        return {"type": "array", "items": type_to_schema(args[0], _seen) if args else {}}
    if origin is tuple:
        item = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item is not None or not args:
            return {"type": "array", "items": type_to_schema(item, _seen) if item else {}}
        return {"type": "array", "items": {"anyOf": [type_to_schema(a, _seen) for a in args]},
                "minItems": len(args), "maxItems": len(args)}  # fmt: skip
    if tp in (list, set, tuple, frozenset):
        return {"type": "array", "items": {}}
    if origin in (dict, cabc.Mapping) or tp in (dict, cabc.Mapping):
        value = type_to_schema(args[1], _seen) if len(args) == 2 else {}
        return {"type": "object", "additionalProperties": value or True}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _dataclass_schema(tp, _seen)
    if _is_pydantic(tp):
        return _pydantic_schema(tp, _seen)
    raise ToolError(f"unsupported parameter type {tp!r} for a tool schema")


def _union_schema(args: tuple[Any, ...], seen: tuple[Any, ...]) -> dict[str, Any]:
    non_null = [a for a in args if a is not type(None)]
    nullable = len(non_null) < len(args)
    parts = [type_to_schema(a, seen) for a in non_null]
    if len(parts) == 1 and nullable:
        inner = parts[0]
        if set(inner) == {"type"} and isinstance(inner["type"], str):
            return {"type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if nullable:
        parts.append({"type": "null"})
    return {"anyOf": parts}


def _object_schema(props: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _dataclass_schema(tp: type, seen: tuple[Any, ...]) -> dict[str, Any]:
    if tp in seen:
        raise ToolError(f"recursive dataclass {tp.__name__} cannot be a tool parameter")
    hints = typing.get_type_hints(tp, include_extras=True)
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for f in dataclasses.fields(tp):
        if not f.init:
            continue
        props[f.name] = type_to_schema(hints.get(f.name, Any), (*seen, tp))
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            required.append(f.name)
    return _object_schema(props, required)


def _pydantic_schema(tp: Any, seen: tuple[Any, ...]) -> dict[str, Any]:
    if tp in seen:
        raise ToolError(f"recursive model {tp.__name__} cannot be a tool parameter")
    props: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for name, info in tp.model_fields.items():
        key = info.alias or name
        schema = type_to_schema(info.annotation, (*seen, tp))
        if info.description:
            schema["description"] = info.description
        props[key] = schema
        if info.is_required():
            required.append(key)
    return _object_schema(props, required)


def to_annotation(value: Any, tp: Any) -> Any:
    """Convert a validated JSON value into annotation ``tp`` (dicts to dataclasses, etc.). Not
    ``models.parsing.coerce``, which nudges parsed model output toward a JSON schema."""
    if value is None or tp is Any or tp is _EMPTY:
        return value
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return to_annotation(value, args[0])
    if _is_union(origin):
        for arg in (a for a in args if a is not type(None)):
            try:
                return _to_annotation_strict(value, arg)
            except (TypeError, ValueError, ToolError):
                continue
        return value
    return _to_annotation_strict(value, tp)


def _to_annotation_strict(value: Any, tp: Any) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if tp in _SIMPLE:
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise TypeError(f"expected {tp.__name__}")
        return value
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return tp(value)
    if origin is typing.Literal:
        if value not in args:
            raise ValueError("not an allowed literal")
        return value
    if origin in (list, set, frozenset, cabc.Sequence, cabc.Set, cabc.Iterable, cabc.Collection):
        items = [to_annotation(v, args[0]) if args else v for v in value]
        return origin(items) if origin in (set, frozenset) else items
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(to_annotation(v, args[0]) for v in value)
        return tuple(to_annotation(v, a) for v, a in zip(value, args, strict=False))
    if origin in (dict, cabc.Mapping) and len(args) == 2:
        return {k: to_annotation(v, args[1]) for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise TypeError(f"expected an object for {tp.__name__}")
        hints = typing.get_type_hints(tp, include_extras=True)
        return tp(**{k: to_annotation(v, hints.get(k, Any)) for k, v in value.items()})
    if _is_pydantic(tp):
        return tp.model_validate(value)
    return value
