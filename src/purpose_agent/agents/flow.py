"""``Flow``: nodes (functions or agents) joined by edges; a state dict passes along them.

    flow = Flow(checkpoint="runs/flows.sqlite")
    flow.add_node("draft", draft)                  # draft(state) -> {"text": ...}
    flow.add_node("review", review)
    flow.add_edge(BEGIN, "draft")
    flow.add_edge("draft", "review")
    flow.add_conditional_edge("review", lambda s: "ok" if s["approved"] else "again",
                              {"ok": DONE_SIGNAL, "again": "draft"})
    result = flow.run({"topic": "tides"})          # result.state, result.run_id, result.records

The node contract:

- A **function** node is called with a copy of the state and returns a dict of updates, which
  is merged into the state (or ``None``: then the copy it was given, changes and all, becomes
  the state). Any other return value is an error. Async functions are awaited.
- An **object with** ``.run(task)`` (a Spark, an Orchestrator-like agent) is called with a task:
  ``input(state)`` when ``add_node(..., input=fn)`` was given, ``state[input]`` when ``input``
  is a key, else ``state["task"]`` when the state has a ``"task"`` key, else a copy of the
  state. When the result has an ``.output``, that output is stored under the node's name
  (``state["writer"] = result.output``); a dict result is merged like a function's; anything
  else is stored under the node's name.

Edges: every node has exactly one way out, a plain edge or a conditional edge whose router
``router(state)`` returns a label looked up in ``{label: node}`` (without a mapping the label is
the node name). ``DONE_SIGNAL`` ends the run. Cycles are allowed; a run that executes more than
``max_steps`` nodes stops with :class:`FlowStepLimitError` naming the cycle. The graph is
checked before anything runs (``compile()``): unknown nodes, dangling edges, nodes without a way
out, unreachable nodes and a graph with no path from ``BEGIN`` to ``DONE_SIGNAL`` are rejected.

Checkpoints: after every node, the state, the node's record and the next node are written to
SQLite in one transaction (``checkpoint=`` a file path, default ``.purpose_agent/flows.sqlite``;
``None`` turns checkpointing off). ``flow.run(resume=run_id)`` continues a run that failed or
whose process was killed: completed nodes are not run again; the node that was running when
the process died runs again (at-least-once). Checkpointed states must be JSON values (str,
numbers, bools, None, lists, dicts with string keys); after every node the state is passed
through JSON, so a run and a resumed run see the same values (tuples become lists).
"""

from __future__ import annotations

import copy
import graphlib
import inspect
import json
import math
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from purpose_agent.agents._checkpoints import DONE_SIGNAL, Checkpoints, NodeRecord, RunInfo
from purpose_agent.agents._flow_graph import (
    BEGIN,
    check_max_steps,
    depths,
    failed_record,
    hashable,
    jsonable,
    literal_labels,
    reachable,
    resolve,
)
from purpose_agent.errors import ConfigurationError, PurposeAgentError

__all__ = [
    "BEGIN",
    "DEFAULT_CHECKPOINT",
    "DONE_SIGNAL",
    "Flow",
    "FlowBuildError",
    "FlowError",
    "FlowResult",
    "FlowStepLimitError",
    "NodeRecord",
    "RunInfo",
]

DEFAULT_CHECKPOINT = ".purpose_agent/flows.sqlite"
_RESERVED = (BEGIN, DONE_SIGNAL)

Router = Callable[[dict[str, Any]], Any]


class FlowBuildError(ConfigurationError):
    """The graph is wrong: an unknown node, a dangling edge, no path from BEGIN to DONE_SIGNAL."""


class FlowError(PurposeAgentError):
    """A run failed; ``run_id`` resumes it with ``flow.run(resume=run_id)`` after the fix."""

    def __init__(
        self,
        message: str,
        *,
        run_id: str | None = None,
        node: str | None = None,
        record: NodeRecord | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.node = node
        self.record = record


class FlowStepLimitError(FlowError):
    """A run executed ``max_steps`` nodes without reaching DONE_SIGNAL; ``cycle`` names the loop."""

    def __init__(self, message: str, *, run_id: str, node: str, cycle: tuple[str, ...]) -> None:
        super().__init__(message, run_id=run_id, node=node)
        self.cycle = cycle


@dataclass(frozen=True, slots=True)
class FlowResult:
    """A finished run: the final state, its run id and a record per node execution, in order."""

    state: dict[str, Any]
    run_id: str
    records: tuple[NodeRecord, ...]

    @property
    def path(self) -> list[str]:
        """The nodes that completed, in order."""
        return [r.node for r in self.records if r.ok]

    def __str__(self) -> str:
        return f"Flow run {self.run_id}: {' -> '.join(self.path) or '(no node)'}; state keys {sorted(self.state)}"


@dataclass(frozen=True, slots=True)
class _Node:
    name: str
    target: Any
    runnable: bool
    input: Callable[[dict[str, Any]], Any] | str | None


@dataclass(frozen=True, slots=True)
class _Edge:
    target: str | None  # a plain edge
    router: Router | None = None
    mapping: dict[Any, str] | None = None


class Flow:
    """A graph of nodes run one at a time from ``BEGIN`` to ``DONE_SIGNAL``, checkpointed after each.

    Args:
        name: the flow's name; a checkpointed run resumes only in a flow of the same name.
        checkpoint: the SQLite file for checkpoints, or ``None`` for none (no resume).
        max_steps: most node executions per run (cycles included).
    """

    def __init__(
        self, name: str = "flow", *, checkpoint: str | Path | None = DEFAULT_CHECKPOINT, max_steps: int = 25
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError(f"a flow name must be a non-empty string, got {name!r}")
        self.name = name
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.max_steps = check_max_steps(max_steps)
        self._nodes: dict[str, _Node] = {}
        self._edges: dict[str, _Edge] = {}
        self._compiled = False

    # ------------------------------------------------------------------ building
    def add_node(
        self, name: str, node: Any, *, input: Callable[[dict[str, Any]], Any] | str | None = None
    ) -> Flow:
        """Add a node: a function ``state -> dict`` or an object with ``.run(task)`` (see module doc)."""
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
        self._nodes[name] = _Node(name, node, runnable, input)
        self._compiled = False
        return self

    def add_edge(self, a: str, b: str) -> Flow:
        """After ``a`` (a node or BEGIN) go to ``b`` (a node or DONE_SIGNAL)."""
        self._check_source(a)
        self._check_target(a, b)
        self._edges[a] = _Edge(b)
        self._compiled = False
        return self

    def add_conditional_edge(
        self, a: str, router: Router, mapping: Mapping[Any, str] | Sequence[str] | None = None
    ) -> Flow:
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
        self._edges[a] = _Edge(None, router, table)
        self._compiled = False
        return self

    def compile(self) -> Flow:
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

    # ------------------------------------------------------------------ running
    def run(
        self,
        state: Mapping[str, Any] | None = None,
        *,
        resume: str | None = None,
        max_steps: int | None = None,
    ) -> FlowResult:
        """Run from BEGIN with ``state`` (or continue run ``resume`` from its checkpoint).

        With ``resume``, the checkpointed state is used; ``state`` may be omitted, and when given
        it must equal the run's initial state. A finished run is returned as it was, unrun.
        Raises FlowError (with ``.run_id``) when a node or router fails, FlowStepLimitError
        past ``max_steps``.
        """
        if not self._compiled:
            self.compile()
        limit = self.max_steps if max_steps is None else check_max_steps(max_steps)
        if state is not None and not isinstance(state, Mapping):
            raise ConfigurationError(f"a flow state must be a dict, got {type(state).__name__}")
        with Checkpoints(self.checkpoint) as ckpt:
            if resume is not None:
                run = ckpt.load(resume, self.name)
                if state is not None and self._normal(dict(state), "the initial state") != run.initial:
                    raise ConfigurationError(
                        f"run {resume!r} started from another state; resume with state=None to continue "
                        "from its checkpoint"
                    )
                if run.status == "done":
                    return FlowResult(run.state, resume, tuple(run.records))
                run_id, current, steps = resume, run.next_node, run.steps
                records, cur_state = list(run.records), run.state
                if current is None:  # a router failed: route again from where the run stopped
                    current = self._route(run.last_node or BEGIN, cur_state, run_id, ckpt)
                elif current != DONE_SIGNAL and current not in self._nodes:
                    raise FlowBuildError(
                        f"run {resume!r} continues at node {current!r}, which flow {self.name!r} does not have"
                    )
            else:
                run_id = uuid.uuid4().hex[:12]
                cur_state = self._normal(dict(state or {}), "the initial state")
                ckpt.start(run_id, self.name, cur_state)
                records, steps = [], 0
                current = self._route(BEGIN, cur_state, run_id, ckpt)
                ckpt.set_next(run_id, current)
            while current != DONE_SIGNAL:
                if steps >= limit:
                    raise self._step_limit(run_id, current, records, limit, ckpt)
                record, new_state, exc = self._execute(current, cur_state)
                if exc is None:
                    try:
                        new_state = self._normal(new_state, f"the state after node {current!r}")
                    except FlowError as bad:
                        record, exc = failed_record(record, bad), bad
                    else:
                        record = self._normal_record(record)
                if exc is not None:
                    records.append(record)
                    ckpt.step(run_id, record, None, current, current, steps, failed=record.error)
                    raise FlowError(
                        f"node {current!r} failed in run {run_id!r} of flow {self.name!r}: {record.error}. "
                        f"Fix the cause, then resume with flow.run(resume={run_id!r})",
                        run_id=run_id,
                        node=current,
                        record=record,
                    ) from exc
                records.append(record)
                cur_state, steps = new_state, steps + 1
                try:
                    nxt = self._route(current, cur_state, run_id, ckpt, save=False)
                except FlowError as err:  # the node's work is kept; resume routes again
                    ckpt.step(run_id, record, cur_state, current, None, steps, failed=str(err))
                    raise
                ckpt.step(run_id, record, cur_state, current, nxt, steps)
                current = nxt
            ckpt.finish(run_id)
        return FlowResult(cur_state, run_id, tuple(records))

    def runs(self, status: str | None = None) -> list[RunInfo]:
        """This flow's checkpointed runs, newest first (``status``: running, failed or done).

        A run whose process was killed stays ``running``: resume it with ``run(resume=run_id)``.
        """
        if self.checkpoint is None or not self.checkpoint.exists():
            return []
        with Checkpoints(self.checkpoint) as ckpt:
            found = ckpt.runs(self.name)
        return [r for r in found if status is None or r.status == status]

    # ------------------------------------------------------------------ internals
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

    def _targets(self, edge: _Edge) -> list[str]:
        if edge.target is not None:
            return [edge.target]
        if edge.mapping is not None:
            return list(edge.mapping.values())
        return [*self._nodes, DONE_SIGNAL]  # a router without a mapping may go anywhere

    def _normal(self, state: dict[str, Any], what: str) -> dict[str, Any]:
        """The state as JSON gives it back (checkpointing on), or the state itself (off)."""
        if self.checkpoint is None:
            return state
        try:
            return dict(json.loads(json.dumps(state, allow_nan=False)))
        except (TypeError, ValueError) as exc:
            bad = next((k for k, v in state.items() if not jsonable(k, v)), None)
            detail = f" (key {bad!r}: {type(state[bad]).__name__})" if bad is not None else ""
            raise FlowError(
                f"{what} cannot be checkpointed as JSON{detail}: {exc}. Keep state values to str, "
                "numbers, bools, None, lists and dicts, or use Flow(checkpoint=None)"
            ) from exc

    def _normal_record(self, record: NodeRecord) -> NodeRecord:
        """The record as the checkpoint gives it back (so a resumed run's records look the same)."""
        if self.checkpoint is None or record.output is None:
            return record
        return replace(record, output=json.loads(json.dumps(record.output, default=repr)))

    def _execute(
        self, name: str, state: dict[str, Any]
    ) -> tuple[NodeRecord, dict[str, Any], BaseException | None]:
        node = self._nodes[name]
        keys = tuple(sorted(str(k) for k in state))
        start = time.perf_counter()
        try:
            given = copy.deepcopy(state)
            if node.runnable:
                result = resolve(node.target.run(self._task(node, given)))
                if hasattr(result, "output"):
                    update: dict[str, Any] = {name: result.output}
                elif isinstance(result, Mapping):
                    update = dict(result)
                else:
                    update = {name: result}
                new_state = {**given, **update}
            else:
                result = resolve(node.target(given))
                if result is None:
                    update = {k: v for k, v in given.items() if k not in state or state[k] != v}
                    new_state = given
                elif isinstance(result, Mapping):
                    update = dict(result)
                    new_state = {**given, **update}
                else:
                    raise TypeError(
                        f"node {name!r} returned {type(result).__name__}; a function node returns a dict "
                        "of state updates (or None after changing the state it was given)"
                    )
        except Exception as exc:
            took = time.perf_counter() - start
            return NodeRecord(name, keys, None, took, f"{type(exc).__name__}: {exc}"), state, exc
        return NodeRecord(name, keys, update, time.perf_counter() - start), new_state, None

    @staticmethod
    def _task(node: _Node, state: dict[str, Any]) -> Any:
        if callable(node.input):
            return node.input(state)
        if isinstance(node.input, str):
            if node.input not in state:
                raise KeyError(f"input key {node.input!r} is not in the state (keys: {sorted(state)})")
            return state[node.input]
        return state.get("task", state)

    def _route(
        self, src: str, state: dict[str, Any], run_id: str, ckpt: Checkpoints, *, save: bool = True
    ) -> str:
        edge = self._edges[src]
        if edge.target is not None:
            return edge.target
        assert edge.router is not None
        where = "BEGIN" if src == BEGIN else f"node {src!r}"
        try:
            label = resolve(edge.router(copy.deepcopy(state)))
        except Exception as exc:
            if save:
                ckpt.fail(run_id, f"router of {where} failed: {type(exc).__name__}: {exc}")
            raise FlowError(
                f"the router after {where} failed in run {run_id!r}: {type(exc).__name__}: {exc}. "
                f"Fix it, then resume with flow.run(resume={run_id!r})",
                run_id=run_id,
                node=src,
            ) from exc
        if edge.mapping is not None:
            target = edge.mapping.get(label) if hashable(label) else None
            options = list(edge.mapping)
        else:
            target = (
                label if isinstance(label, str) and (label in self._nodes or label == DONE_SIGNAL) else None
            )
            options = [*self._nodes, DONE_SIGNAL]
        if target is None:
            msg = f"the router after {where} returned {label!r}, which is not one of {options!r}"
            if save:
                ckpt.fail(run_id, msg)
            raise FlowError(
                f"{msg} (run {run_id!r}); fix the router, then resume with flow.run(resume={run_id!r})",
                run_id=run_id,
                node=src,
            )
        return target

    def _step_limit(
        self, run_id: str, current: str, records: list[NodeRecord], limit: int, ckpt: Checkpoints
    ) -> FlowStepLimitError:
        path = [r.node for r in records if r.ok]
        if current in path:
            j = len(path) - 1 - path[::-1].index(current)
            loop = path[j:]  # ends just before ``current`` comes round again
            depth = depths({src: set(self._targets(e)) for src, e in self._edges.items()})
            first = min(range(len(loop)), key=lambda i: (depth.get(loop[i], math.inf), i))
            loop = loop[first:] + loop[:first]  # start where the flow enters the cycle
            cycle = (*loop, loop[0])
            why = f"it kept going round the cycle {' -> '.join(cycle)}"
        else:
            cycle = ()
            why = f"the path {' -> '.join([*path[-6:], current])} is longer than that"
        msg = (
            f"flow {self.name!r} run {run_id!r} reached max_steps={limit} without reaching DONE_SIGNAL: {why}. "
            f"Fix the router or raise max_steps, then resume with flow.run(resume={run_id!r}, max_steps=...)"
        )
        ckpt.fail(run_id, msg)
        return FlowStepLimitError(msg, run_id=run_id, node=current, cycle=cycle)

    def __repr__(self) -> str:
        return f"Flow({self.name!r}, nodes={list(self._nodes)!r})"
