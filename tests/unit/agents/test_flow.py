"""Flow: nodes and edges, state passing, routers, graph checks, step limits, checkpoints, resume."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from _flow_kill import build as build_kill_flow

import purpose_agent as pa
from purpose_agent.agents import (
    BEGIN,
    DONE_SIGNAL,
    Flow,
    FlowBuildError,
    FlowError,
    FlowResult,
    FlowStepLimitError,
    NodeRecord,
)
from purpose_agent.errors import ConfigurationError
from purpose_agent.models.base import Backend, user
from purpose_agent.models.testing import ScriptedModel

State = dict[str, Any]


@dataclass(frozen=True)
class Answer:
    output: str


class ModelAgent:
    """A minimal agent with ``.run(task)`` (what a Spark offers): one model call per task."""

    def __init__(self, model: Backend) -> None:
        self.model = model
        self.tasks: list[Any] = []

    def run(self, task: Any) -> Answer:
        self.tasks.append(task)
        return Answer(self.model.complete([user(str(task))]).text)


class Counter:
    """Function nodes that count their calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def node(self, name: str, **updates: Any) -> Any:
        def fn(state: State) -> State:
            self.calls.append(name)
            return dict(updates)

        return fn


def linear(tmp_path: Path, counter: Counter, *names: str, **kwargs: Any) -> Flow:
    flow = Flow(checkpoint=tmp_path / "flows.sqlite", **kwargs)
    prev = BEGIN
    for name in names:
        flow.add_node(name, counter.node(name, **{name: True}))
        flow.add_edge(prev, name)
        prev = name
    flow.add_edge(prev, DONE_SIGNAL)
    return flow


# ---------------------------------------------------------------------- running
def test_state_passes_along_and_every_node_is_recorded(tmp_path: Path) -> None:
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("parse", lambda s: {"words": s["text"].split()})
    flow.add_node("count", lambda s: {"n": len(s["words"])})
    flow.add_edge(BEGIN, "parse").add_edge("parse", "count").add_edge("count", DONE_SIGNAL)
    result = flow.run({"text": "one two three"})
    assert isinstance(result, FlowResult)
    assert result.state == {"text": "one two three", "words": ["one", "two", "three"], "n": 3}
    assert len(result.run_id) == 12 and result.path == ["parse", "count"]
    first, second = result.records
    assert isinstance(first, NodeRecord) and first.node == "parse" and first.ok
    assert first.input_keys == ("text",) and first.output == {"words": ["one", "two", "three"]}
    assert second.input_keys == ("text", "words") and second.output == {"n": 3}
    assert all(r.duration_s >= 0 and r.error is None for r in result.records)
    assert "parse -> count" in str(result)


def test_a_node_may_change_its_state_and_return_none(tmp_path: Path) -> None:
    def append(state: State) -> None:
        state.setdefault("log", []).append("seen")

    flow = Flow(checkpoint=tmp_path / "f.sqlite").add_node("append", append)
    flow.add_edge(BEGIN, "append").add_edge("append", DONE_SIGNAL)
    result = flow.run({"x": 1})
    assert result.state == {"x": 1, "log": ["seen"]} and result.records[0].output == {"log": ["seen"]}


def test_nodes_get_a_copy_so_a_failed_node_changes_nothing(tmp_path: Path) -> None:
    def spoil(state: State) -> State:
        state["items"].append("junk")
        raise ValueError("half done")

    flow = Flow(checkpoint=None).add_node("spoil", spoil)
    flow.add_edge(BEGIN, "spoil").add_edge("spoil", DONE_SIGNAL)
    start = {"items": ["a"]}
    with pytest.raises(FlowError):
        flow.run(start)
    assert start == {"items": ["a"]}


def test_agent_nodes_get_a_task_and_their_output_goes_under_the_node_name(tmp_path: Path) -> None:
    researcher = ModelAgent(ScriptedModel(["Tides follow the moon."]))
    writer = ModelAgent(ScriptedModel(["A poem about the moon and tides."]))
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("researcher", researcher)
    flow.add_node("writer", writer, input=lambda s: f"Write a poem using: {s['researcher']}")
    flow.add_edge(BEGIN, "researcher").add_edge("researcher", "writer").add_edge("writer", DONE_SIGNAL)
    result = flow.run({"task": "explain tides"})
    assert researcher.tasks == ["explain tides"]  # state["task"] by default
    assert writer.tasks == ["Write a poem using: Tides follow the moon."]
    assert result.state["researcher"] == "Tides follow the moon."
    assert result.state["writer"] == "A poem about the moon and tides."
    assert result.records[1].output == {"writer": "A poem about the moon and tides."}
    for agent in (researcher, writer):
        assert isinstance(agent.model, ScriptedModel)
        agent.model.assert_consumed()


def test_agent_node_inputs_and_results_of_other_shapes(tmp_path: Path) -> None:
    class Echo:
        def __init__(self, reply: Any) -> None:
            self.reply, self.tasks = reply, []

        def run(self, task: Any) -> Any:
            self.tasks.append(task)
            return self.reply

    by_key, whole, merged = Echo("plain text"), Echo(None), Echo({"score": 7})
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("by_key", by_key, input="question").add_node("whole", whole).add_node("merged", merged)
    flow.add_edge(BEGIN, "by_key").add_edge("by_key", "whole").add_edge("whole", "merged")
    flow.add_edge("merged", DONE_SIGNAL)
    result = flow.run({"question": "why?"})
    assert by_key.tasks == ["why?"]
    assert whole.tasks == [{"question": "why?", "by_key": "plain text"}]  # no "task" key: the state
    assert result.state == {"question": "why?", "by_key": "plain text", "whole": None, "score": 7}
    missing = Flow(checkpoint=None).add_node("ask", Echo("x"), input="nope")
    missing.add_edge(BEGIN, "ask").add_edge("ask", DONE_SIGNAL)
    with pytest.raises(FlowError, match="input key 'nope' is not in the state"):
        missing.run({"a": 1})


async def test_async_nodes_and_routers_are_awaited(tmp_path: Path) -> None:
    async def fetch(state: State) -> State:
        return {"page": state["url"].upper()}

    async def route(state: State) -> str:
        return "done"

    flow = Flow(checkpoint=tmp_path / "f.sqlite").add_node("fetch", fetch)
    flow.add_edge(BEGIN, "fetch").add_conditional_edge("fetch", route, {"done": DONE_SIGNAL})
    result = flow.run({"url": "a.b"})  # inside a running event loop too
    assert result.state["page"] == "A.B"


def test_a_conditional_edge_makes_a_cycle_that_ends(tmp_path: Path) -> None:
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("inc", lambda s: {"n": s["n"] + 1})
    flow.add_node("check", lambda s: {"checked": s.get("checked", 0) + 1})
    flow.add_edge(BEGIN, "inc").add_edge("inc", "check")

    def router(state: State) -> Literal["again", "stop"]:
        return "again" if state["n"] < 3 else "stop"

    flow.add_conditional_edge("check", router, {"again": "inc", "stop": DONE_SIGNAL})
    assert flow.has_cycles and flow.order() == ["inc", "check"]
    result = flow.run({"n": 0})
    assert result.state == {"n": 3, "checked": 3}
    assert result.path == ["inc", "check"] * 3


def test_routers_from_begin_with_a_list_or_node_names(tmp_path: Path) -> None:
    c = Counter()
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("small", c.node("small")).add_node("big", c.node("big"))
    flow.add_conditional_edge(BEGIN, lambda s: "big" if s["x"] > 10 else "small", ["small", "big"])
    flow.add_conditional_edge("small", lambda s: DONE_SIGNAL)  # no mapping: node names
    flow.add_edge("big", DONE_SIGNAL)
    assert flow.run({"x": 50}).path == ["big"] and flow.run({"x": 1}).path == ["small"]
    assert c.calls == ["big", "small"]


# ---------------------------------------------------------------------- build-time checks
def test_bad_edges_are_rejected_when_added() -> None:
    flow = Flow(checkpoint=None).add_node("a", lambda s: {}).add_node("b", lambda s: {})
    with pytest.raises(FlowBuildError, match=r"unknown node 'ghost'; add_node\('ghost'"):
        flow.add_edge("a", "ghost")
    with pytest.raises(FlowBuildError, match="edge from unknown node 'ghost'"):
        flow.add_edge("ghost", "a")
    with pytest.raises(FlowBuildError, match="no edge can leave it"):
        flow.add_edge(DONE_SIGNAL, "a")
    with pytest.raises(FlowBuildError, match="back to BEGIN"):
        flow.add_edge("a", BEGIN)
    flow.add_edge("a", "b")
    with pytest.raises(FlowBuildError, match="'a' already has an outgoing edge"):
        flow.add_edge("a", DONE_SIGNAL)
    with pytest.raises(FlowBuildError, match="'a' already has an outgoing edge"):
        flow.add_conditional_edge("a", lambda s: "x", {"x": "b"})
    with pytest.raises(FlowBuildError, match=r"label 'later'\): unknown node 'c'"):
        flow.add_conditional_edge("b", lambda s: "now", {"now": DONE_SIGNAL, "later": "c"})
    with pytest.raises(FlowBuildError, match=r"mapping .* is empty"):
        flow.add_conditional_edge("b", lambda s: "x", {})
    with pytest.raises(FlowBuildError, match="router of 'b' must be a function"):
        flow.add_conditional_edge("b", "not callable", {"x": "a"})  # type: ignore[arg-type]


def test_a_router_typed_with_literal_must_have_every_label_mapped() -> None:
    def router(state: State) -> Literal["yes", "no", "maybe"]:
        return "yes"

    flow = Flow(checkpoint=None).add_node("a", lambda s: {})
    with pytest.raises(FlowBuildError, match=r"can return \['maybe'\], which the mapping does not have"):
        flow.add_conditional_edge("a", router, {"yes": DONE_SIGNAL, "no": "a"})


def test_bad_nodes_are_rejected_when_added() -> None:
    flow = Flow(checkpoint=None).add_node("a", lambda s: {})
    with pytest.raises(FlowBuildError, match="node 'a' already exists"):
        flow.add_node("a", lambda s: {})
    for reserved in (BEGIN, DONE_SIGNAL):
        with pytest.raises(FlowBuildError, match="reserved"):
            flow.add_node(reserved, lambda s: {})
    with pytest.raises(FlowBuildError, match=r"must be a function state -> dict or an object with \.run"):
        flow.add_node("b", 42)
    with pytest.raises(FlowBuildError, match="non-empty string"):
        flow.add_node("", lambda s: {})
    with pytest.raises(FlowBuildError, match="input= applies only to objects"):
        flow.add_node("c", lambda s: {}, input="x")
    with pytest.raises(ConfigurationError, match="max_steps must be a positive integer"):
        Flow(checkpoint=None, max_steps=0)


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (lambda f: None, "no nodes"),
        (lambda f: f.add_node("a", f.spy).add_edge("a", DONE_SIGNAL), "no edge from BEGIN"),
        (lambda f: f.add_node("a", f.spy).add_edge(BEGIN, "a"), "'a' have no outgoing edge"),
        (
            lambda f: f.add_node("a", f.spy).add_node("b", f.spy).add_edge(BEGIN, "a").add_edge("a", DONE_SIGNAL)
            .add_edge("b", DONE_SIGNAL),
            "'b' cannot be reached from BEGIN",
        ),
        (
            lambda f: f.add_node("a", f.spy).add_node("b", f.spy).add_edge(BEGIN, "a").add_edge("a", "b")
            .add_edge("b", "a"),
            "no path from BEGIN to DONE_SIGNAL",
        ),
        (
            lambda f: f.add_node("a", f.spy).add_node("b", f.spy).add_node("c", f.spy).add_edge(BEGIN, "a")
            .add_conditional_edge("a", lambda s: "x", {"x": "b", "y": DONE_SIGNAL}).add_edge("b", "c")
            .add_edge("c", "b"),
            "'b', 'c' can never reach DONE_SIGNAL",
        ),
    ],
)  # fmt: skip
def test_bad_graphs_are_rejected_before_any_node_runs(tmp_path: Path, wire: Any, message: str) -> None:
    calls: list[State] = []

    class SpyFlow(Flow):
        def spy(self, state: State) -> State:
            calls.append(state)
            return {}

    flow = SpyFlow(checkpoint=tmp_path / "f.sqlite")
    wire(flow)
    with pytest.raises(FlowBuildError, match=message):
        flow.compile()
    with pytest.raises(FlowBuildError, match=message):
        flow.run({"x": 1})
    assert calls == [] and flow.runs() == []


# ---------------------------------------------------------------------- failures
def test_a_failing_node_raises_flow_error_with_the_run_id_and_resumes_after_the_fix(tmp_path: Path) -> None:
    c = Counter()
    broken = {"yes": True}

    def flaky(state: State) -> State:
        c.calls.append("flaky")
        if broken["yes"]:
            raise RuntimeError("the disk is full")
        return {"flaky": True}

    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("first", c.node("first", first=1)).add_node("flaky", flaky)
    flow.add_node("last", c.node("last", last=1))
    flow.add_edge(BEGIN, "first").add_edge("first", "flaky").add_edge("flaky", "last").add_edge(
        "last", DONE_SIGNAL
    )
    with pytest.raises(FlowError) as info:
        flow.run({"x": 0})
    err = info.value
    assert err.run_id and err.node == "flaky" and isinstance(err.__cause__, RuntimeError)
    assert f"resume={err.run_id!r}" in str(err) and "RuntimeError: the disk is full" in str(err)
    assert err.record is not None and err.record.error == "RuntimeError: the disk is full"
    assert err.record.input_keys == ("first", "x") and err.record.output is None
    [info_row] = flow.runs()
    assert (info_row.run_id, info_row.status, info_row.next_node, info_row.steps) == (
        err.run_id,
        "failed",
        "flaky",
        1,
    )
    broken["yes"] = False
    result = flow.run(resume=err.run_id)
    assert c.calls == ["first", "flaky", "flaky", "last"]  # first was not run again
    assert result.run_id == err.run_id and result.state == {"x": 0, "first": 1, "flaky": True, "last": 1}
    assert [(r.node, r.ok) for r in result.records] == [
        ("first", True),
        ("flaky", False),
        ("flaky", True),
        ("last", True),
    ]
    assert flow.runs(status="done")[0].run_id == err.run_id


def test_a_non_dict_return_is_a_clear_error(tmp_path: Path) -> None:
    flow = Flow(checkpoint=tmp_path / "f.sqlite").add_node("bad", lambda s: 42)
    flow.add_edge(BEGIN, "bad").add_edge("bad", DONE_SIGNAL)
    with pytest.raises(FlowError, match="node 'bad' returned int; a function node returns a dict"):
        flow.run({})


def test_an_unknown_router_label_is_a_clear_error_and_resume_reroutes(tmp_path: Path) -> None:
    c = Counter()
    answer = {"label": "sideways"}
    flow = Flow(checkpoint=tmp_path / "f.sqlite")
    flow.add_node("a", c.node("a", a=1)).add_node("b", c.node("b", b=1))
    flow.add_edge(BEGIN, "a").add_conditional_edge(
        "a", lambda s: answer["label"], {"next": "b", "end": DONE_SIGNAL}
    )
    flow.add_edge("b", DONE_SIGNAL)
    with pytest.raises(
        FlowError, match=r"router after node 'a' returned 'sideways', which is not one of \['next'"
    ) as info:
        flow.run({})
    assert info.value.run_id in str(info.value)
    [failed] = flow.runs()
    assert failed.status == "failed" and "'sideways'" in (failed.error or "") and failed.next_node is None
    answer["label"] = "next"
    result = flow.run(resume=info.value.run_id)
    assert c.calls == ["a", "b"] and result.state == {"a": 1, "b": 1}


def test_a_raising_router_after_begin_resumes(tmp_path: Path) -> None:
    c = Counter()
    fail = {"now": True}

    def router(state: State) -> str:
        if fail["now"]:
            raise KeyError("route")
        return "go"

    flow = Flow(checkpoint=tmp_path / "f.sqlite").add_node("a", c.node("a", a=1))
    flow.add_conditional_edge(BEGIN, router, {"go": "a"}).add_edge("a", DONE_SIGNAL)
    with pytest.raises(FlowError, match="the router after BEGIN failed") as info:
        flow.run({})
    fail["now"] = False
    assert flow.run(resume=info.value.run_id).state == {"a": 1} and c.calls == ["a"]


def test_going_past_max_steps_names_the_cycle_and_can_resume_with_more(tmp_path: Path) -> None:
    c = Counter()
    flow = Flow(checkpoint=tmp_path / "f.sqlite", max_steps=5)
    flow.add_node("plan", lambda s: {"n": s["n"] + 1}).add_node("act", c.node("act"))
    flow.add_node("judge", c.node("judge"))
    flow.add_edge(BEGIN, "plan").add_edge("plan", "act").add_edge("act", "judge")
    flow.add_conditional_edge(
        "judge", lambda s: "retry" if s["n"] < 4 else "ok", {"retry": "plan", "ok": DONE_SIGNAL}
    )
    with pytest.raises(FlowStepLimitError) as info:
        flow.run({"n": 0})
    err = info.value
    assert err.cycle == ("plan", "act", "judge", "plan") and err.node == "judge"
    assert "max_steps=5" in str(err) and "cycle plan -> act -> judge -> plan" in str(err)
    assert err.run_id in str(err) and isinstance(err, FlowError)
    result = flow.run(resume=err.run_id, max_steps=20)
    assert result.state["n"] == 4 and len(result.records) == 12
    assert c.calls.count("act") == 4  # the 5 steps before were not run again


def test_a_long_acyclic_path_past_max_steps_says_so(tmp_path: Path) -> None:
    flow = linear(tmp_path, Counter(), "a", "b", "c", max_steps=2)
    assert not flow.has_cycles and flow.order() == ["a", "b", "c"]
    with pytest.raises(FlowStepLimitError, match="the path a -> b -> c is longer") as info:
        flow.run({})
    assert info.value.cycle == ()
    assert flow.run({}, max_steps=3).path == ["a", "b", "c"]


# ---------------------------------------------------------------------- checkpoints
def test_the_checkpoint_is_written_after_every_node(tmp_path: Path) -> None:
    db = tmp_path / "f.sqlite"
    seen: list[tuple[Any, ...]] = []

    def second(state: State) -> State:
        with sqlite3.connect(db) as conn:
            row = conn.execute("SELECT status, state, last_node, next_node, steps FROM flow_runs").fetchone()
            nodes = [n for (n,) in conn.execute("SELECT node FROM flow_steps ORDER BY seq")]
        seen.append((*row, nodes))
        return {"second": True}

    flow = Flow(checkpoint=db).add_node("first", lambda s: {"first": True}).add_node("second", second)
    flow.add_edge(BEGIN, "first").add_edge("first", "second").add_edge("second", DONE_SIGNAL)
    flow.run({"x": 1})
    status, state, last, nxt, steps, nodes = seen[0]
    assert (status, json.loads(state), last, nxt, steps, nodes) == (
        "running",
        {"x": 1, "first": True},
        "first",
        "second",
        1,
        ["first"],
    )


def test_default_checkpoint_path_and_a_finished_run_is_not_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    c = Counter()
    default = Flow().add_node("a", c.node("a", a=1))
    default.add_edge(BEGIN, "a").add_edge("a", DONE_SIGNAL)
    first = default.run({"x": 1})
    assert (tmp_path / ".purpose_agent" / "flows.sqlite").is_file()
    again = default.run({"x": 1}, resume=first.run_id)  # the same initial state is accepted
    assert c.calls == ["a"] and again.state == first.state and again.records == first.records


def test_resume_errors_are_clear(tmp_path: Path) -> None:
    flow = linear(tmp_path, Counter(), "a")
    run = flow.run({"x": 1})
    with pytest.raises(ConfigurationError, match="no run 'nope' in the flow checkpoint file"):
        flow.run(resume="nope")
    with pytest.raises(ConfigurationError, match="started from another state"):
        flow.run({"x": 2}, resume=run.run_id)
    other = Flow("other", checkpoint=tmp_path / "flows.sqlite").add_node("a", lambda s: {})
    other.add_edge(BEGIN, "a").add_edge("a", DONE_SIGNAL)
    with pytest.raises(ConfigurationError, match="belongs to flow 'flow', not to flow 'other'"):
        other.run(resume=run.run_id)
    off = Flow(checkpoint=None).add_node("a", lambda s: {})
    off.add_edge(BEGIN, "a").add_edge("a", DONE_SIGNAL)
    with pytest.raises(ConfigurationError, match="checkpoint=None"):
        off.run(resume=run.run_id)
    with pytest.raises(ConfigurationError, match="a flow state must be a dict"):
        flow.run(["not", "a", "dict"])  # type: ignore[arg-type]


def test_bad_checkpoint_paths_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 200)
    for path, message in ((junk, "not a checkpoint database"), (tmp_path, "is a directory")):
        flow = Flow(checkpoint=path).add_node("a", lambda s: {})
        flow.add_edge(BEGIN, "a").add_edge("a", DONE_SIGNAL)
        with pytest.raises(ConfigurationError, match=message):
            flow.run({})


def test_checkpointed_state_must_be_json_and_is_normalised(tmp_path: Path) -> None:
    flow = Flow(checkpoint=tmp_path / "f.sqlite").add_node("bad", lambda s: {"tags": {"a", "b"}})
    flow.add_edge(BEGIN, "bad").add_edge("bad", DONE_SIGNAL)
    with pytest.raises(FlowError, match=r"cannot be checkpointed as JSON \(key 'tags': set\)") as info:
        flow.run({})
    assert info.value.record is not None and "cannot be checkpointed" in (info.value.record.error or "")
    with pytest.raises(FlowError, match="initial state cannot be checkpointed"):
        flow.run({"when": object()})
    pairs = Flow(checkpoint=tmp_path / "f.sqlite").add_node("t", lambda s: {"pair": (1, 2)})
    pairs.add_edge(BEGIN, "t").add_edge("t", DONE_SIGNAL)
    result = pairs.run({})
    assert result.state == {"pair": [1, 2]} and result.records[0].output == {"pair": [1, 2]}
    free = Flow(checkpoint=None).add_node("bad", lambda s: {"tags": {"a"}})
    free.add_edge(BEGIN, "bad").add_edge("bad", DONE_SIGNAL)
    assert free.run({}).state == {"tags": {"a"}}  # without checkpoints anything goes


def test_resume_after_the_process_was_killed(tmp_path: Path) -> None:
    log, db = tmp_path / "log.txt", tmp_path / "flows.sqlite"
    helper = Path(__file__).with_name("_flow_kill.py")
    proc = subprocess.Popen(
        [sys.executable, str(helper), str(log), str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # READY: node "first" is done and checkpointed
        assert line == "READY\n", proc.stderr.read() if proc.stderr else line
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert log.read_text().split() == ["first", "slow"]
    flow = build_kill_flow(log, db, block=False)
    [crashed] = flow.runs()
    assert (crashed.status, crashed.next_node, crashed.steps) == ("running", "slow", 1)
    result = flow.run(resume=crashed.run_id)
    assert log.read_text().split() == ["first", "slow", "slow", "last"]  # first ran once
    assert result.state == {"start": 1, "a": 2, "b": 20, "c": 21}
    assert [r.node for r in result.records] == ["first", "slow", "last"]
    assert flow.runs()[0].status == "done"


def test_public_names() -> None:
    assert pa.Flow is Flow and pa.BEGIN == BEGIN and pa.DONE_SIGNAL == DONE_SIGNAL and BEGIN != DONE_SIGNAL
