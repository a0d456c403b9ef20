"""Helpers of ``Flow`` (``agents/flow.py``): the graph's reachability and depths from
``BEGIN``, a router's ``Literal`` labels, awaiting async nodes from sync code, and value checks."""

from __future__ import annotations

import inspect
import json
import math
import typing
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from purpose_agent.agents._checkpoints import NodeRecord
from purpose_agent.errors import ConfigurationError
from purpose_agent.models.base import run_sync

#: the entry of every flow: ``flow.add_edge(BEGIN, "first")``
BEGIN = "__begin__"
Router = Callable[[dict[str, Any]], Any]


def check_max_steps(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"max_steps must be a positive integer, got {value!r}")
    return value


def resolve(value: Any) -> Any:
    """Await an awaitable result (async nodes and routers); other values pass through."""
    if inspect.isawaitable(value):
        awaitable: Awaitable[Any] = value

        async def wait() -> Any:
            return await awaitable

        return run_sync(wait)
    return value


def failed_record(record: NodeRecord, exc: BaseException) -> NodeRecord:
    return NodeRecord(record.node, record.input_keys, None, record.duration_s, f"{type(exc).__name__}: {exc}")


def hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def jsonable(key: Any, value: Any) -> bool:
    try:
        json.dumps({key: value}, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return isinstance(key, str)


def literal_labels(router: Router) -> list[Any]:
    """The labels of a ``-> Literal[...]`` return annotation, else []."""
    try:
        hints = typing.get_type_hints(router)
    except Exception:  # unresolvable annotations: nothing to check
        return []
    ret = hints.get("return")
    return list(typing.get_args(ret)) if typing.get_origin(ret) is typing.Literal else []


def reachable(graph: Mapping[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def depths(graph: Mapping[str, set[str]]) -> dict[str, float]:
    """Breadth-first distance from BEGIN (unreached nodes are infinitely far)."""
    depth: dict[str, float] = {BEGIN: 0}
    frontier = [BEGIN]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph.get(node, ())):
                if nxt not in depth:
                    depth[nxt] = depth[node] + 1
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    return {n: depth.get(n, math.inf) for n in {*graph, *(t for ts in graph.values() for t in ts)}}
