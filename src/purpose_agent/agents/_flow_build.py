"""Building a ``Flow``'s graph (``agents/flow.py``): its nodes, plain and conditional edges, and
the checks ``compile()`` makes before anything runs (unknown nodes, dangling edges, nodes
without a way out, unreachable nodes, no path from ``BEGIN`` to ``DONE_SIGNAL``)."""

from __future__ import annotations

import graphlib
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from purpose_agent.agents._checkpoints import DONE_SIGNAL
from purpose_agent.agents._flow_graph import BEGIN, Router, depths, literal_labels, reachable
from purpose_agent.errors import ConfigurationError

_RESERVED = (BEGIN, DONE_SIGNAL)


class FlowBuildError(ConfigurationError):
    """The graph is wrong: an unknown node, a dangling edge, no path from BEGIN to DONE_SIGNAL."""


@dataclass(frozen=True, slots=True)
class Node:
    """A node as added: a function, or an object run with a task (``runnable``)."""

    name: str
    target: Any
    runnable: bool
    input: Callable[[dict[str, Any]], Any] | str | None


@dataclass(frozen=True, slots=True)
class Edge:
    """The one way out of a node: a plain edge (``target``) or a router with its mapping."""

    target: str | None  # a plain edge
    router: Router | None = None
    mapping: dict[Any, str] | None = None


class FlowGraph:
    """The nodes and edges of a flow, checked as they are added and by ``compile()``."""

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"a flow name must be a non-empty string, got {name!r}")
        self.name = name
        self._nodes: dict[str, Node] = {}
        self._edges: dict[str, Edge] = {}
        self._compiled = False

    def add_node(
        self, name: str, node: Any, *, input: Callable[[dict[str, Any]], Any] | str | None = None
    ) -> Self:
        """Add a node: a function ``state -> dict`` or an object with ``.run(task)`` (see the node
        contract in ``agents/flow.py``)."""
        if not isinstance(name, str) or not name.strip():
            raise FlowBuildError(f"a node name must be a non-empty string, got {name!r}")
        if name in _RESERVED:
            raise FlowBuildError(f"{name!r} is reserved (BEGIN / DONE_SIGNAL); choose another node name")
        if name in self._nodes:
            raise FlowBuildError(f"node {name!r} already exists in flow {self.name!r}")
        run = getattr(node, "run", None)
        runnable = callable(run) and not inspect.isfunction(node)
        if not runnable and not callable(node):
            raise FlowBuildError(
                f"node {name!r} must be a function state -> dict or an object with .run(task), "
                f"got {type(node).__name__}"
            )
        if input is not None and not runnable:
            raise FlowBuildError(f"node {name!r}: input= applies only to objects with .run(task)")
        if input is not None and not (callable(input) or isinstance(input, str)):
            raise FlowBuildError(f"node {name!r}: input= must be a state key or a function state -> task")
        self._nodes[name] = Node(name, node, runnable, input)
        self._compiled = False
        return self

    def add_edge(self, a: str, b: str) -> Self:
        """After ``a`` (a node or BEGIN) go to ``b`` (a node or DONE_SIGNAL)."""
        self._check_source(a)
        self._check_target(a, b)
        self._edges[a] = Edge(b)
        self._compiled = False
        return self

    def add_conditional_edge(
        self, a: str, router: Router, mapping: Mapping[Any, str] | Sequence[str] | None = None
    ) -> Self:
        """After ``a``, go where ``mapping[router(state)]`` says (``router(state)`` itself without a
        mapping; a list maps each name to itself). A router annotated ``-> Literal[...]`` must
        have every label in the mapping."""
        self._check_source(a)
        if not callable(router):
            raise FlowBuildError(f"the router of {a!r} must be a function state -> label")
        table: dict[Any, str] | None
        if mapping is None:
            table = None
        elif isinstance(mapping, Mapping):
            table = dict(mapping)
        elif isinstance(mapping, Sequence) and not isinstance(mapping, str):
            table = {n: n for n in mapping}
        else:
            raise FlowBuildError(f"the mapping of {a!r} must be a dict {{label: node}} or a list of nodes")
        if table is not None:
            if not table:
                raise FlowBuildError(f"the mapping of the conditional edge from {a!r} is empty")
            for label, target in table.items():
                self._check_target(a, target, label=label)
            missing = [lab for lab in literal_labels(router) if lab not in table]
            if missing:
                raise FlowBuildError(
                    f"the router of {a!r} can return {missing!r}, which the mapping does not have "
                    f"(labels: {list(table)!r})"
                )
        self._edges[a] = Edge(None, router, table)
        self._compiled = False
        return self

    def compile(self) -> Self:
        """Check the graph (run() does it too); raises FlowBuildError naming what is wrong."""
        if not self._nodes:
            raise FlowBuildError(f"flow {self.name!r} has no nodes; add_node(name, fn) first")
        if BEGIN not in self._edges:
            raise FlowBuildError(f"flow {self.name!r} has no edge from BEGIN; add_edge(BEGIN, <first node>)")
        for src, edge in self._edges.items():  # nodes may have been renamed or edges added oddly
            for target in self._targets(edge):
                if target != DONE_SIGNAL and target not in self._nodes:
                    raise FlowBuildError(f"edge {src!r} -> {target!r} points to a node that does not exist")
        no_exit = [n for n in self._nodes if n not in self._edges]
        if no_exit:
            raise FlowBuildError(
                f"node(s) {', '.join(map(repr, no_exit))} have no outgoing edge; "
                f"add_edge(<node>, DONE_SIGNAL) to end the flow there"
            )
        graph = {src: set(self._targets(edge)) for src, edge in self._edges.items()}
        reach = reachable(graph, BEGIN)
        unreachable = [n for n in self._nodes if n not in reach]
        if DONE_SIGNAL not in reach:
            raise FlowBuildError(
                f"flow {self.name!r} has no path from BEGIN to DONE_SIGNAL; add an edge to DONE_SIGNAL"
            )
        if unreachable:
            raise FlowBuildError(
                f"node(s) {', '.join(map(repr, unreachable))} cannot be reached from BEGIN; add an edge to them"
            )
        stuck = [n for n in self._nodes if DONE_SIGNAL not in reachable(graph, n)]
        if stuck:
            raise FlowBuildError(
                f"node(s) {', '.join(map(repr, stuck))} can never reach DONE_SIGNAL (a cycle without an exit); "
                "add a conditional edge out of it"
            )
        self._compiled = True
        return self

    def order(self) -> list[str]:
        """The nodes in topological order (edges of cycles back to an earlier node are ignored)."""
        self.compile()
        graph = {src: set(self._targets(e)) for src, e in self._edges.items()}
        depth = depths(graph)
        deps: dict[str, set[str]] = {n: set() for n in self._nodes}
        for src, targets in graph.items():
            for t in targets:
                if src in self._nodes and t in self._nodes and depth[src] < depth[t]:
                    deps[t].add(src)
        return list(graphlib.TopologicalSorter(deps).static_order())

    @property
    def has_cycles(self) -> bool:
        graph = {src: {t for t in self._targets(e) if t in self._nodes} for src, e in self._edges.items()}
        try:
            tuple(graphlib.TopologicalSorter(graph).static_order())
        except graphlib.CycleError:
            return True
        return False

    def _check_source(self, a: str) -> None:
        if a == DONE_SIGNAL:
            raise FlowBuildError("DONE_SIGNAL ends a flow; no edge can leave it")
        if a != BEGIN and a not in self._nodes:
            raise FlowBuildError(f"edge from unknown node {a!r}; add_node({a!r}, ...) first")
        if a in self._edges:
            raise FlowBuildError(
                f"{a!r} already has an outgoing edge; one node has one way out "
                "(use add_conditional_edge to branch)"
            )

    def _check_target(self, a: str, b: Any, label: Any = None) -> None:
        where = f"edge {a!r} -> {b!r}" + (f" (label {label!r})" if label is not None else "")
        if b == BEGIN:
            raise FlowBuildError(f"{where}: no edge can go back to BEGIN; point it at the first node")
        if not isinstance(b, str) or (b != DONE_SIGNAL and b not in self._nodes):
            raise FlowBuildError(
                f"{where}: unknown node {b!r}; add_node({b!r}, ...) first or use DONE_SIGNAL"
            )

    def _targets(self, edge: Edge) -> list[str]:
        if edge.target is not None:
            return [edge.target]
        if edge.mapping is not None:
            return list(edge.mapping.values())
        return [*self._nodes, DONE_SIGNAL]  # a router without a mapping may go anywhere
