"""The LLMCompiler plan: its JSON schema, parsing, strict validation and ``$id`` placeholders."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.errors import PlanError
from purpose_agent.tools.base import ToolResult

_REF = re.compile(r"\$\{(\w+)\}|\$(\d+)")


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


def references(value: Any) -> set[str]:
    """Every ``$id`` / ``${id}`` referenced inside ``value`` (strings, lists, dicts)."""
    if isinstance(value, str):
        return {a or b for a, b in _REF.findall(value)}
    if isinstance(value, Mapping):
        return set().union(*(references(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(references(v) for v in value)) if value else set()
    return set()


def substitute(value: Any, results: Mapping[str, ToolResult]) -> Any:
    """Replace placeholders with results: a whole-string ``$1`` keeps the result's data type."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value.strip())
        if whole:
            res = results[whole.group(1) or whole.group(2)]
            data = res.data
            return data if isinstance(data, int | float | bool | list | dict) else res.output
        return _REF.sub(lambda m: results[m.group(1) or m.group(2)].output, value)
    if isinstance(value, Mapping):
        return {k: substitute(v, results) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(v, results) for v in value]
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
    seen: set[str] = set()
    for i, item in enumerate(raw_calls):
        if not isinstance(item, Mapping):
            raise PlanError(f"plan call #{i + 1} is not an object")
        cid = str(item.get("id", i + 1)).lstrip("$")
        if cid in seen:
            raise PlanError(f"plan call id {cid!r} is used twice")
        seen.add(cid)
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
        deps += sorted(references(args) - set(deps))  # placeholders imply dependencies
        calls.append(PlannedCall(cid, str(tool), dict(args), tuple(dict.fromkeys(deps))))
    plan = Plan(tuple(calls), dict(data))
    _check_graph(plan)
    return plan


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
    """Kahn's algorithm; calls on a cycle are left out."""
    pending = {c.id: set(c.depends_on) for c in plan.calls}
    order: list[str] = []
    ready = [cid for cid, deps in pending.items() if not deps]
    while ready:
        cid = ready.pop(0)
        order.append(cid)
        for other, deps in pending.items():
            if cid in deps:
                deps.discard(cid)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
    return order
