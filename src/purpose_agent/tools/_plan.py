"""The LLMCompiler plan: its JSON schema, parsing, strict validation and ``$id`` placeholders.

Placeholders inside a call's args stand for the result of another call. So that prices and
code are not mistaken for references, the forms are:

- ``${N}``: always a reference to call N (digits); an id not in the plan is a PlanError.
  ``${name}`` is a reference only when ``name`` is a call id, so ``${HOME}`` stays literal.
- ``$N`` (bare): a reference only when N is the id of a call listed *earlier* in the plan and
  the token stands alone: not after a letter, digit, ``$`` or backslash (``US$1``, ``\\$1``),
  not followed by a letter, digit or a decimal / thousands part (``$100``, ``$5.00``,
  ``$1,000``, ``$1x``). Anything else is literal text.
- ``$$`` before a digit or ``{`` is an escaped ``$``: ``$$1`` gives a literal ``$1`` and
  ``$${1}`` a literal ``${1}``, even when call 1 exists.

A whole argument that is one reference keeps the result's data type.
"""

from __future__ import annotations

import contextlib
import graphlib
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.errors import PlanError
from purpose_agent.tools.base import ToolResult

_TOKEN = re.compile(r"\$\$(?=\{|\d)|\$\{(\w+)\}|(?<![\w$\\])\$(\d+)(?!\w|[.,]\d)")


def _ref_of(m: re.Match[str], earlier: Collection[str], named: Collection[str]) -> str | None:
    """The call id a token refers to, or None when it is literal (see the module docstring)."""
    explicit, bare = m.group(1), m.group(2)
    if explicit is not None:
        return explicit if explicit.isdigit() or explicit in named else None
    if bare is not None:
        return bare if bare in earlier else None
    return None  # "$$": an escaped "$"


def _literal(m: re.Match[str]) -> str:
    return "$" if m.group(1) is None and m.group(2) is None else m.group(0)


@dataclass(frozen=True, slots=True)
class PlannedCall:
    """One node of the plan: call ``tool`` with ``args`` after ``depends_on`` have finished."""

    id: str
    tool: str
    args: dict[str, Any]
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Plan:
    calls: tuple[PlannedCall, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    def ids(self) -> list[str]:
        return [c.id for c in self.calls]


def plan_schema(tool_names: Sequence[str]) -> dict[str, Any]:
    """The constrained-decoding schema of a plan: ``{"calls": [{id, tool, args, depends_on}]}``."""
    return {
        "type": "object",
        "properties": {
            "calls": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "integer"},
                        "tool": {"type": "string", "enum": list(tool_names)},
                        "args": {"type": "object"},
                        "depends_on": {"type": "array", "items": {"type": "integer"}},
                    },
                    "required": ["id", "tool", "args", "depends_on"],
                },
            }
        },
        "required": ["calls"],
    }


def references(value: Any, earlier: Collection[str] = (), ids: Collection[str] = ()) -> set[str]:
    """Every call id referenced inside ``value`` (strings, lists, dicts): ``earlier`` are the
    ids of the calls listed before this one, ``ids`` every id of the plan."""
    if isinstance(value, str):
        found = (_ref_of(m, earlier, ids) for m in _TOKEN.finditer(value))
        return {ref for ref in found if ref is not None}
    if isinstance(value, Mapping):
        return set().union(*(references(v, earlier, ids) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(references(v, earlier, ids) for v in value)) if value else set()
    return set()


def substitute(value: Any, results: Mapping[str, ToolResult], earlier: Collection[str] = ()) -> Any:
    """Replace references with results (``results`` holds every call this one depends on,
    ``earlier`` the ids listed before it); a whole-string reference keeps the result's data
    type; escaped ``$$`` become ``$``."""
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value.strip())
        ref = _ref_of(whole, earlier, results) if whole else None
        if ref is not None:
            res = results[ref]
            data = res.data
            return data if isinstance(data, int | float | bool | list | dict) else res.output

        def one(m: re.Match[str]) -> str:
            ref = _ref_of(m, earlier, results)
            return _literal(m) if ref is None else results[ref].output

        return _TOKEN.sub(one, value)
    if isinstance(value, Mapping):
        return {k: substitute(v, results, earlier) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, results, earlier) for v in value]
    return value


def parse_plan(data: Any, known_tools: Sequence[str]) -> Plan:
    """Turn planner output into a validated Plan; raise PlanError with a clear message."""
    if isinstance(data, Mapping):
        raw_calls = data.get("calls")
    elif isinstance(data, list):
        raw_calls, data = data, {"calls": data}
    else:
        raise PlanError(f"the plan must be an object with a 'calls' list, got {type(data).__name__}")
    if not isinstance(raw_calls, list):
        raise PlanError("the plan has no 'calls' list")
    calls: list[PlannedCall] = []
    seen: list[str] = []
    all_ids = {_call_id(c, n) for n, c in enumerate(raw_calls) if isinstance(c, Mapping)}
    for i, item in enumerate(raw_calls):
        if not isinstance(item, Mapping):
            raise PlanError(f"plan call #{i + 1} is not an object")
        cid = _call_id(item, i)
        if cid in seen:
            raise PlanError(f"plan call id {cid!r} is used twice")
        earlier = tuple(seen)
        seen.append(cid)
        tool = item.get("tool")
        if tool not in known_tools:
            known = ", ".join(known_tools) or "none"
            raise PlanError(f"plan call {cid!r} uses unknown tool {tool!r} (known tools: {known})")
        args = item.get("args", {})
        if not isinstance(args, Mapping):
            raise PlanError(f"plan call {cid!r}: 'args' must be an object")
        deps_raw = item.get("depends_on", [])
        if not isinstance(deps_raw, list):
            raise PlanError(f"plan call {cid!r}: 'depends_on' must be a list of ids")
        deps = [str(d).lstrip("$") for d in deps_raw]
        deps += sorted(references(args, earlier, all_ids) - set(deps))  # references imply dependencies
        calls.append(PlannedCall(cid, str(tool), dict(args), tuple(dict.fromkeys(deps))))
    plan = Plan(tuple(calls), dict(data))
    _check_graph(plan)
    return plan


def _call_id(item: Mapping[str, Any], index: int) -> str:
    return str(item.get("id", index + 1)).lstrip("$")


def _check_graph(plan: Plan) -> None:
    ids = set(plan.ids())
    for call in plan.calls:
        for dep in call.depends_on:
            if dep not in ids:
                raise PlanError(f"plan call {call.id!r} depends on {dep!r}, which is not in the plan")
            if dep == call.id:
                raise PlanError(f"plan call {call.id!r} depends on itself (a cycle)")
    order = topological_order(plan)
    if len(order) < len(plan.calls):
        stuck = [c.id for c in plan.calls if c.id not in set(order)]
        raise PlanError(f"the plan has a dependency cycle among calls {', '.join(stuck)}")


def topological_order(plan: Plan) -> list[str]:
    """The calls in an order that runs each after its dependencies (``graphlib``); calls on a
    cycle, or waiting on one, are left out."""
    sorter = graphlib.TopologicalSorter({c.id: c.depends_on for c in plan.calls})
    with contextlib.suppress(graphlib.CycleError):
        sorter.prepare()  # on a cycle, get_ready still yields every call it does not block
    order: list[str] = []
    while ready := sorter.get_ready():
        order.extend(ready)
        sorter.done(*ready)
    return order
