"""The one JSON-schema check of the library, on ``jsonschema``: parsed model replies
(``models.parsing``) and tool arguments (``tools.base``) are both validated here.

Each caller names its ``Dialect``, the part of JSON Schema it enforces:

- ``TOOL_ARGUMENTS``: type (a name or a list), enum, const, properties, required,
  additionalProperties, items, anyOf/oneOf, minimum/maximum, minItems/maxItems; an integral
  float is an integer and a tuple is an array (arguments built in Python).
- ``MODEL_REPLY``: type (a single name), enum, const, properties, required, items, anyOf/oneOf;
  the grammar-side limits (minimum, additionalProperties, ...) are left to the tool that
  receives the arguments, and ``3.0`` is not an integer.

In both, ``oneOf`` means "one of these shapes" (as ``anyOf``: the generated branches differ by
a ``const`` field, so at most one matches anyway), and when no branch matches, that is the
only error at that level. A wrong type is the only error at its level (in ``MODEL_REPLY`` a
wrong ``const`` or ``enum`` too, checked first). The errors, their order and the callers'
sentences are those of the two hand-written validators this module replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

_BRANCHES = ("anyOf", "oneOf")
_TYPE_NAMES = ("string", "integer", "number", "boolean", "array", "object", "null")


@dataclass(frozen=True)
class Dialect:
    """What a caller's schemas enforce (see the module docstring)."""

    #: the keywords enforced, in the order a level checks them (and lists their errors)
    order: tuple[str, ...]
    integral_floats: bool  # 3.0 is an integer
    tuples: bool  # a tuple is an array
    type_lists: bool  # "type": ["integer", "null"] is checked (else ignored)
    branch_alone: bool  # a matching oneOf/anyOf leaves the level's other keywords unchecked
    null_type: bool  # "type": "null" is checked (else ignored)
    #: the keywords whose failure is the level's only error (after a failed oneOf/anyOf)
    alone: tuple[str, ...]
    schema_order: bool  # properties are checked in the schema's order (else the value's)


TOOL_ARGUMENTS = Dialect(
    order=(
        *_BRANCHES,
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
        "items",
        "required",
        "properties",
        "additionalProperties",
    ),
    integral_floats=True,
    tuples=True,
    type_lists=True,
    branch_alone=False,
    null_type=True,
    alone=("type",),
    schema_order=False,
)
MODEL_REPLY = Dialect(
    order=(*_BRANCHES, "const", "enum", "type", "required", "properties", "items"),
    integral_floats=False,
    tuples=False,
    type_lists=False,
    branch_alone=True,
    null_type=False,
    alone=("const", "enum", "type"),
    schema_order=True,
)


def _strict_integer(checker: Any, value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


Check = Callable[[Any, Any, Any, Mapping[str, Any]], Iterator[ValidationError] | None]


@cache
def _validator_class(dialect: Dialect) -> Any:
    base = Draft202012Validator
    types = base.TYPE_CHECKER.redefine("object", lambda _c, v: isinstance(v, Mapping))
    if dialect.tuples:
        types = types.redefine("array", lambda _c, v: isinstance(v, list | tuple))
    if not dialect.integral_floats:
        types = types.redefine("integer", _strict_integer)

    known = frozenset(t for t in _TYPE_NAMES if dialect.null_type or t != "null")

    def type_ok(validator: Any, kind: Any, instance: Any) -> bool:
        if isinstance(kind, str):
            return kind not in known or validator.is_type(instance, kind)
        if not dialect.type_lists or not isinstance(kind, list):
            return True
        return any(validator.is_type(instance, k) for k in kind if k in known)

    def branch_state(validator: Any, instance: Any, schema: Mapping[str, Any]) -> bool | None:
        """None: no branches here; else whether one of them matches."""
        found: bool | None = None
        for key in _BRANCHES:
            options = schema.get(key)
            if isinstance(options, list):
                ok = any(validator.evolve(schema=o).is_valid(instance) for o in options)
                found = ok if found is None else found and ok
        return found

    def branches(
        validator: Any, options: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        context: list[ValidationError] = []
        for i, option in enumerate(options):
            found = list(validator.evolve(schema=option).iter_errors(instance))
            if not found:
                return
            for e in found:
                e.relative_schema_path.appendleft(i)  # which branch
            context += found
        yield ValidationError("no branch matches", validator="anyOf", context=context)

    def fails(keyword: str, validator: Any, instance: Any, schema: Mapping[str, Any]) -> bool:
        """Whether ``keyword`` of this level fails (for the keywords in ``alone``)."""
        want = schema[keyword]
        if keyword == "type":
            return not type_ok(validator, want, instance)
        if keyword == "enum":
            return instance not in want
        return bool(keyword == "const" and instance != want)

    def guarded(keyword: str, check: Any) -> Check:
        def run(
            validator: Any, value: Any, instance: Any, schema: Mapping[str, Any]
        ) -> Iterator[ValidationError]:
            if keyword not in _BRANCHES:
                matched = branch_state(validator, instance, schema)
                if matched is False or (matched and dialect.branch_alone):
                    return  # the branch error alone, or the matching branch decides
                earlier = (
                    dialect.alone[: dialect.alone.index(keyword)]
                    if keyword in dialect.alone
                    else dialect.alone
                )
                if any(k in schema and fails(k, validator, instance, schema) for k in earlier):
                    return  # that error alone
            if keyword in ("type", "enum", "const"):  # Python's equality: True is 1, as before
                if fails(keyword, validator, instance, schema):
                    yield ValidationError(keyword, validator=keyword, validator_value=value)
                return
            yield from check(validator, value, instance, schema) or ()

        return run

    def required(
        validator: Any, names: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if validator.is_type(instance, "object"):
            for name in names:
                if name not in instance:  # one error per name, the name as its value
                    yield ValidationError("missing", validator="required", validator_value=name)

    checks_extra = "additionalProperties" in dialect.order

    def properties(
        validator: Any, props: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        """``properties`` and ``additionalProperties`` together, in the value's key order (or the
        schema's, where the dialect says so)."""
        if not validator.is_type(instance, "object"):
            return
        props = props if isinstance(props, Mapping) else {}
        extra = schema.get("additionalProperties", True) if checks_extra else True
        if dialect.schema_order:
            for name, sub in props.items():
                if name in instance:
                    yield from validator.descend(instance[name], sub, path=name, schema_path=name)
            return
        for name, item in instance.items():
            if name in props:
                yield from validator.descend(item, props[name], path=name, schema_path=name)
            elif extra is False:
                yield ValidationError("unexpected", validator="additionalProperties", validator_value=name)
            elif isinstance(extra, Mapping):
                yield from validator.descend(item, extra, path=name)

    def additional(
        validator: Any, extra: Any, instance: Any, schema: Mapping[str, Any]
    ) -> Iterator[ValidationError]:
        if "properties" not in schema:  # else checked with the properties
            yield from properties(validator, {}, instance, schema)

    own = {
        "required": required,
        "properties": properties,
        "additionalProperties": additional,
        "anyOf": branches,
        "oneOf": branches,
    }
    rank = {k: i for i, k in enumerate(dialect.order)}

    def applicable(schema: Any) -> Any:
        if not isinstance(schema, Mapping):
            return []
        return sorted(((k, v) for k, v in schema.items() if k in rank), key=lambda kv: rank[kv[0]])

    checks = {k: guarded(k, own.get(k) or base.VALIDATORS.get(k)) for k in dialect.order}
    return validators.create(
        meta_schema=base.META_SCHEMA,
        validators=checks,
        type_checker=types,
        applicable_validators=applicable,
    )


def errors(value: Any, schema: Mapping[str, Any], dialect: Dialect) -> list[ValidationError]:
    """The problems of ``value`` against ``schema``: ``error.absolute_path`` is the location,
    ``error.validator`` the keyword; ``required`` and ``additionalProperties`` errors name the
    property in ``error.validator_value``; a branch error carries every branch's problems in
    ``error.context`` (in branch order, ``relative_schema_path[0]`` the branch, located from
    the branch's own value)."""
    return list(_validator_class(dialect)(schema).iter_errors(value))
