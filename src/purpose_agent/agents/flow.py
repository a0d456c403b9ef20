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

The graph is built and checked by ``FlowGraph`` (``agents/_flow_build.py``); this module runs it.
"""

from __future__ import annotations

import copy
import json
import math
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from purpose_agent.agents._checkpoints import DONE_SIGNAL, Checkpoints, NodeRecord, RunInfo
from purpose_agent.agents._flow_build import FlowBuildError, FlowGraph, Node
from purpose_agent.agents._flow_graph import (
    BEGIN,
    check_max_steps,
    depths,
    failed_record,
    hashable,
    jsonable,
    resolve,
)
from purpose_agent.agents._flow_graph import Router as Router
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


class Flow(FlowGraph):
    """A graph of nodes run one at a time from ``BEGIN`` to ``DONE_SIGNAL``, checkpointed after each.

    Args:
        name: the flow's name; a checkpointed run resumes only in a flow of the same name.
        checkpoint: the SQLite file for checkpoints, or ``None`` for none (no resume).
        max_steps: most node executions per run (cycles included).
    """

    def __init__(
        self, name: str = "flow", *, checkpoint: str | Path | None = DEFAULT_CHECKPOINT, max_steps: int = 25
    ) -> None:
        super().__init__(name)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self.max_steps = check_max_steps(max_steps)

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
    def _task(node: Node, state: dict[str, Any]) -> Any:
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
