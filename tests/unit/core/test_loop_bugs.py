"""Hardening of the loop (issue 15): listener leaks, concurrent traces, failures at the start,
broken ground truth, TOML datetimes, words-only actions, loops, bounded bus errors."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import purpose_agent as pa
from purpose_agent.core import events as ev
from purpose_agent.core.environment import ActionSpec, to_action_specs
from purpose_agent.core.events import read_trace
from purpose_agent.errors import RunFailedError
from purpose_agent.loop.actor import action_schema
from purpose_agent.models.base import Message

DONE = {"thought": "finished", "action": "DONE", "params": {"answer": "ok"}}


def critic(score: int = 3) -> pa.FunctionModel:
    return pa.FunctionModel(
        lambda m, s: {"evidence": "-", "reason": "-", "score": score, "confidence": "high"}, name="critic"
    )


def act(name: str, **params: Any) -> dict[str, Any]:
    return {"thought": "t", "action": name, "params": params}


def counter_env() -> pa.SimpleEnvironment:
    def execute(action: pa.Action, state: pa.State) -> pa.State:
        n = int(state.data.get("n", 0)) + (action.name == "increment")
        return pa.State({"n": n}, f"n = {n}")

    return pa.SimpleEnvironment(execute, initial_state=pa.State({"n": 0}, "n = 0"))


# ---------------------------------------------------------------- 1. one listener per run, never removed
def test_runs_do_not_leave_their_trace_subscribed_to_the_bus(tmp_path: Path) -> None:
    actor = pa.FunctionModel(lambda m, s: DONE)
    orch = pa.Orchestrator(
        actor, counter_env(), {"increment": "add one"}, critic_llm=critic(), trace_dir=tmp_path
    )
    before = len(orch.bus._listeners)
    for _ in range(3):
        orch.run_task("finish")
    assert len(orch.bus._listeners) == before


# ---------------------------------------------------------------- 2. concurrent runs, separate traces
def test_concurrent_runs_write_only_their_own_events_to_their_trace(tmp_path: Path) -> None:
    async def reply(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        await asyncio.sleep(0)  # let the other run interleave
        steps = sum(1 for m in messages if m.role == "assistant")
        return act("increment") if steps < 3 else DONE

    orch = pa.Orchestrator(
        pa.FunctionModel(reply),
        counter_env(),
        {"increment": "add one"},
        critic_llm=critic(),
        trace_dir=tmp_path,
    )

    async def both() -> list[pa.TaskResult]:
        return list(await asyncio.gather(orch.arun_task("count A"), orch.arun_task("count B")))

    results = asyncio.run(both())
    assert results[0].run_id != results[1].run_id
    for result in results:
        events = read_trace(result.trace_path or "")
        assert {e["run_id"] for e in events} == {result.run_id}
        kinds = [e["kind"] for e in events]
        assert kinds.count("task_start") == 1 and kinds.count("task_end") == 1
        assert kinds.count("action") == len(result.steps) == 4


# ---------------------------------------------------------------- 3. the first score fails
def test_a_failing_first_score_ends_the_run_like_a_step_failure(tmp_path: Path) -> None:
    def down(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        raise ConnectionError("critic down")

    seen: list[ev.Event] = []
    orch = pa.Orchestrator(
        pa.ScriptedModel([]),
        counter_env(),
        {"increment": "add one"},
        critic_llm=pa.FunctionModel(down),
        trace_dir=tmp_path,
        listeners=[seen.append],
    )
    listeners = len(orch.bus._listeners)
    with pytest.raises(RunFailedError) as info:
        orch.run_task("count")
    assert isinstance(info.value.__cause__, ConnectionError)
    result = info.value.result
    assert isinstance(result, pa.TaskResult)
    assert result.stop_reason.startswith("error") and not result.success and result.steps == []
    kinds = [e["kind"] for e in read_trace(result.trace_path or "")]
    assert kinds[0] == "task_start" and kinds[-1] == "task_end" and "error" in kinds  # closed properly
    assert any(isinstance(e, ev.ErrorRaised) and "critic down" in e.message for e in seen)
    assert len(orch.bus._listeners) == listeners


# ---------------------------------------------------------------- 4. the ground truth itself fails
def test_an_outcome_that_raises_is_an_error_and_never_a_phi_success(tmp_path: Path) -> None:
    def broken(state: pa.State) -> float | None:
        raise KeyError("tests")

    env = pa.SimpleEnvironment(outcome_fn=broken)
    seen: list[ev.Event] = []
    orch = pa.Orchestrator(
        pa.ScriptedModel([DONE]),
        env,
        critic_llm=critic(10),  # a critic that would call any state a success
        trace_dir=tmp_path,
        listeners=[seen.append],
    )
    with pytest.raises(RunFailedError) as info:
        orch.run_task("answer")
    result = info.value.result
    assert isinstance(result, pa.TaskResult) and not result.success
    assert result.stop_reason.startswith("error") and result.outcome is None
    assert "KeyError" in repr(info.value.__cause__) and "outcome" in str(info.value.__cause__)
    errors = [e for e in seen if isinstance(e, ev.ErrorRaised)]
    assert errors and errors[0].where == "environment.outcome" and "tests" in errors[0].message
    assert "error" in [e["kind"] for e in read_trace(result.trace_path or "")]


def test_an_outcome_that_is_not_a_number_is_an_error() -> None:
    env = pa.SimpleEnvironment(outcome_fn=lambda s: "solved")  # type: ignore[arg-type,return-value]
    orch = pa.Orchestrator(pa.ScriptedModel([DONE]), env, critic_llm=critic(10), trace=False)
    with pytest.raises(RunFailedError) as info:
        orch.run_task("answer")
    assert not info.value.result.success and "'solved'" in str(info.value.__cause__)


# ---------------------------------------------------------------- 5. TOML datetimes
def test_a_toml_reply_with_a_datetime_does_not_crash_the_actor() -> None:
    toml_reply = (
        'thought = "book it"\naction = "book"\n\n[params]\nwhen = 1979-05-27T07:32:00Z\nday = 1979-05-27\n'
    )
    seen: list[dict[str, Any]] = []

    def execute(action: pa.Action, state: pa.State) -> pa.State:
        if action.name == "book":
            seen.append(dict(action.params))
        return pa.State({"booked": dict(action.params)}, f"booked {dict(action.params)}")

    env = pa.SimpleEnvironment(execute)
    actor = pa.ScriptedModel([toml_reply, DONE])
    result = pa.Orchestrator(actor, env, {"book": "book a slot"}, critic_llm=critic(), trace=False).run_task(
        "book a slot", max_steps=3
    )
    actor.assert_consumed()
    assert seen == [{"when": "1979-05-27T07:32:00+00:00", "day": "1979-05-27"}]
    assert result.stop_reason == "done"
    json.dumps(result.steps[0].action.to_dict())  # plain JSON from here on


# ---------------------------------------------------------------- 6. actions described only in words
def test_an_action_described_in_words_accepts_free_form_params() -> None:
    words = 'type one of the admissible commands as params {"text": ...}'
    (spec,) = to_action_specs({"command": words})
    params = spec.parameters
    # llama.cpp's grammar closes an object that lists properties unless additionalProperties says
    # otherwise: the params of a words-only action must be open, or the model can only send {}
    assert params.get("type") == "object" and params.get("additionalProperties") not in (None, False)
    branch = action_schema([spec])["oneOf"][0]["properties"]["params"]
    assert branch.get("additionalProperties") not in (None, False)

    got: list[dict[str, Any]] = []

    def execute(action: pa.Action, state: pa.State) -> pa.State:
        if action.name == "command":
            got.append(dict(action.params))
        return pa.State({"said": action.params.get("text")}, f"you typed {action.params.get('text')}")

    actor = pa.ScriptedModel([act("command", text="go north"), DONE])
    pa.Orchestrator(actor, pa.SimpleEnvironment(execute), {"command": words}, critic_llm=critic()).run_task(
        "explore", max_steps=3
    )
    assert got == [{"text": "go north"}]
    system = actor.calls[0].messages[0].content
    assert words in system  # the model is told how to fill the params


def test_the_grammar_of_a_words_only_action_lets_the_model_fill_its_params() -> None:
    grammar_mod = pytest.importorskip("llama_cpp.llama_grammar")  # the grammar converter only, no model
    from purpose_agent.models.base import sanitize_schema

    schema = sanitize_schema(action_schema(to_action_specs({"command": "type a command as params {text}"})))
    rules = dict(
        line.split(" ::= ", 1) for line in grammar_mod.json_schema_to_gbnf(json.dumps(schema)).splitlines()
    )
    assert rules["alternative-0-params"] != '"{" space  "}" space'  # not only {}
    assert rules["alternative-0-params-additional-value"].startswith("string")  # {"text": "go north"}


def test_a_typed_action_keeps_its_closed_schema() -> None:
    schema = {"type": "object", "properties": {"k": {"type": "integer"}}, "required": ["k"]}
    (spec,) = to_action_specs([ActionSpec("set", "set k", schema)])
    assert dict(spec.parameters) == schema


# ---------------------------------------------------------------- 7. loops
def look_env() -> pa.SimpleEnvironment:
    """A room: looking changes nothing; examining shows a thing; the state is what was seen last."""

    def execute(action: pa.Action, state: pa.State) -> pa.State:
        if action.name == "look":
            return state
        thing = str(action.params.get("thing", ""))
        return pa.State({"seen": thing}, f"You see the {thing}. It is ordinary.")

    return pa.SimpleEnvironment(
        execute, initial_state=pa.State({"seen": ""}, "A room with a box and a lamp.")
    )


LOOK_ACTIONS = {"look": "look around", "examine": 'examine a thing: params {"thing": ...}'}


def test_repeating_look_is_resampled_then_stopped_as_a_loop() -> None:
    temps: list[float] = []

    def always_look(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        return act("look")

    class Recording(pa.FunctionModel):
        async def acomplete(self, messages, schema=None, *, max_tokens=512, temperature=0.0):  # type: ignore[no-untyped-def]
            temps.append(temperature)
            return await super().acomplete(messages, schema, max_tokens=max_tokens, temperature=temperature)

    result = pa.Orchestrator(
        Recording(always_look), look_env(), LOOK_ACTIONS, critic_llm=critic(), trace=False
    ).run_task("find the key", max_steps=15)
    assert result.stop_reason == "loop" and not result.success
    assert len(result.steps) < 6
    assert 0.7 in temps  # the repeat was resampled before the run gave up


def test_a_two_cycle_with_nothing_new_is_a_loop() -> None:
    n = {"calls": 0}

    def alternate(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        n["calls"] += 1
        steps = sum(1 for m in messages if m.role == "assistant")
        return act("examine", thing="box" if steps % 2 == 0 else "lamp")

    result = pa.Orchestrator(
        pa.FunctionModel(alternate), look_env(), LOOK_ACTIONS, critic_llm=critic(), trace=False
    ).run_task("find the key", max_steps=14)
    assert result.stop_reason == "loop"
    assert 4 <= len(result.steps) < 8
    names = [s.action.params["thing"] for s in result.steps]
    assert names[:4] == ["box", "lamp", "box", "lamp"]
    assert n["calls"] > len(result.steps)  # repeats were resampled first
    assert "nothing new" in result.steps[2].observation


class TemperatureModel(pa.FunctionModel):
    """A FunctionModel whose reply function can see the sampling temperature of the call."""

    temperature = 0.0

    async def acomplete(self, messages, schema=None, *, max_tokens=512, temperature=0.0):  # type: ignore[no-untyped-def]
        self.temperature = temperature
        return await super().acomplete(messages, schema, max_tokens=max_tokens, temperature=temperature)


def test_a_resample_that_finds_something_new_keeps_the_run_going() -> None:
    def reply(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        if "You see the box" in messages[-1].content:
            return DONE
        return act("examine", thing="box") if model.temperature > 0 else act("look")  # greedy: look

    model = TemperatureModel(reply)
    result = pa.Orchestrator(model, look_env(), LOOK_ACTIONS, critic_llm=critic(), trace=False).run_task(
        "find the key", max_steps=10
    )
    assert [s.action.name for s in result.steps] == ["look", "examine", "DONE"]
    assert result.stop_reason == "done"


def test_progress_is_not_a_loop() -> None:
    def reply(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        steps = sum(1 for m in messages if m.role == "assistant")
        return act("increment") if steps < 8 else DONE

    result = pa.Orchestrator(
        pa.FunctionModel(reply), counter_env(), {"increment": "add one"}, critic_llm=critic(), trace=False
    ).run_task("count to 8", max_steps=12)
    assert result.stop_reason == "done" and len(result.steps) == 9


def test_loop_patience_none_disables_the_stop() -> None:
    orch = pa.Orchestrator(
        pa.FunctionModel(lambda m, s: act("look")),
        look_env(),
        LOOK_ACTIONS,
        critic_llm=critic(),
        trace=False,
        loop_patience=None,
        retry_repeats=False,
    )
    result = orch.run_task("find the key", max_steps=6)
    assert result.stop_reason == "max_steps" and len(result.steps) == 6


def test_loop_patience_must_be_positive() -> None:
    with pytest.raises(pa.PurposeAgentError, match="loop_patience"):
        pa.Orchestrator(pa.ScriptedModel([]), look_env(), LOOK_ACTIONS, loop_patience=0)


def test_a_repeated_tool_call_with_the_same_result_is_a_loop() -> None:
    from purpose_agent.tools import CalculatorTool

    actor = pa.FunctionModel(lambda m, s: act("calculator", expression="17 * 23"))
    result = pa.Orchestrator(
        actor, pa.SimpleEnvironment(), [CalculatorTool()], critic_llm=critic(), trace=False
    ).run_task("What is 17*23?", max_steps=12)
    assert result.stop_reason == "loop" and len(result.steps) == 4
    assert "391" in result.steps[0].observation


# ---------------------------------------------------------------- 8. bounded bus errors
def test_bus_errors_are_bounded_and_counted() -> None:
    bus = ev.EventBus()

    def broken(event: ev.Event) -> None:
        raise RuntimeError("listener bug")

    bus.subscribe(broken)
    for _ in range(1000):
        bus.emit(ev.TokenStreamed(text="x"))
    assert len(bus.errors) <= 100 and bus.error_count == 1000
    assert "listener bug" in bus.errors[-1]


class GameEnv(pa.SimpleEnvironment):
    """A text game: every action is a parameterless name; only "open box" changes the state."""

    def __init__(self) -> None:
        def execute(action: pa.Action, state: pa.State) -> pa.State:
            if action.name == "open box":
                return pa.State({"open": True}, "The box is open. You win.")
            return state

        super().__init__(
            execute, initial_state=pa.State({"open": False}, "A room with a box and a cupboard.")
        )

    def actions(self, state: pa.State) -> list[ActionSpec]:
        return [ActionSpec(n, n) for n in ("examine cupboard", "look around", "open box")]


def offered(schema: Mapping[str, Any] | None) -> list[str]:
    return [b["properties"]["action"]["const"] for b in (schema or {}).get("oneOf", [])]


def test_a_resample_is_not_offered_the_parameterless_actions_known_to_bring_nothing_new() -> None:
    seen: list[list[str]] = []

    def greedy(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        names = offered(schema)
        seen.append(names)
        if "You win" in messages[-1].content:
            return DONE
        return act(names[0])  # a small model's favourite: the first thing on the list

    result = pa.Orchestrator(pa.FunctionModel(greedy), GameEnv(), critic_llm=critic(), trace=False).run_task(
        "open the box", max_steps=8
    )
    chosen = [s.action.name for s in result.steps]
    assert chosen[:3] == ["examine cupboard", "look around", "open box"]
    resamples = [names for names in seen if "examine cupboard" not in names]
    assert resamples and all("DONE" in names for names in resamples)
    assert ["look around", "open box", "DONE"] in resamples  # the repeat was masked, the rest kept


def test_when_every_action_would_repeat_the_resample_is_offered_them_all() -> None:
    class OneAction(GameEnv):
        def actions(self, state: pa.State) -> list[ActionSpec]:
            return [ActionSpec("look around", "look")]

    seen: list[list[str]] = []

    def look(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        seen.append(offered(schema))
        return act("look around")

    result = pa.Orchestrator(pa.FunctionModel(look), OneAction(), critic_llm=critic(), trace=False).run_task(
        "open the box", max_steps=6
    )
    assert result.stop_reason == "loop"
    assert len(seen) > len(result.steps)  # resampled
    assert all(names == ["look around", "DONE"] for names in seen)  # never an offer of DONE alone


# ------------------------------------------------------- the prompt prefix with changing actions
class RoomsEnv(pa.SimpleEnvironment):
    """Two rooms; the actions offered depend on the room (as a text game lists them)."""

    def __init__(self) -> None:
        def execute(action: pa.Action, state: pa.State) -> pa.State:
            room = (
                "hall"
                if action.name == "go hall"
                else "kitchen"
                if action.name == "go kitchen"
                else state.data["room"]
            )
            return pa.State({"room": room}, f"You are in the {room}.")

        super().__init__(execute, initial_state=pa.State({"room": "kitchen"}, "You are in the kitchen."))

    def actions(self, state: pa.State) -> list[ActionSpec]:
        other = "hall" if state.data["room"] == "kitchen" else "kitchen"
        return [ActionSpec(f"go {other}", "walk"), ActionSpec(f"look at {state.data['room']}", "look")]


def test_actions_that_change_with_the_state_are_listed_after_the_observation_and_the_prefix_stays_put() -> (
    None
):
    prompts: list[list[Message]] = []

    def walk(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        prompts.append(list(messages))
        names = offered(schema)
        return DONE if len(prompts) == 4 else act(names[0])

    pa.Orchestrator(pa.FunctionModel(walk), RoomsEnv(), critic_llm=critic(), trace=False).run_task(
        "walk", max_steps=6
    )
    actor_prompts = [p for p in prompts if p[0].role == "system" and "agent that acts" in p[0].content]
    assert len(actor_prompts) == 4
    first, *later = actor_prompts
    assert "- go hall" in first[0].content  # step 1: one action set so far, in the system prompt
    for p in later:  # once the actions changed: never in the system prompt, always at the end
        assert "- go hall" not in p[0].content and "- go kitchen" not in p[0].content
        assert "each turn ends with the list" in p[0].content
        tail = p[-1].content.split("Available actions:\n")[-1]
        assert tail.startswith(("- go ", "- look at ")) and "- DONE(answer: string)" in tail
        assert "Available actions:" in p[-1].content
        assert all("Available actions:" not in m.content for m in p[1:-1])
    for prev, cur in itertools.pairwise(later):  # each step only appends: the earlier turns are unchanged
        assert [m.content for m in cur[: len(prev) - 1]] == [m.content for m in prev[:-1]]
        assert cur[len(prev) - 1].content.startswith(prev[-1].content.split("\n\nAvailable actions:")[0])


def test_a_fixed_action_set_stays_in_the_system_prompt() -> None:
    prompts: list[list[Message]] = []

    def look(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        prompts.append(list(messages))
        return DONE if len(prompts) >= 3 else act("examine", thing=f"t{len(prompts)}")

    pa.Orchestrator(
        pa.FunctionModel(look), look_env(), LOOK_ACTIONS, critic_llm=critic(), trace=False
    ).run_task("find the key", max_steps=5)
    actor_prompts = [p for p in prompts if "agent that acts" in p[0].content]
    assert len(actor_prompts) >= 2
    assert all(
        "- examine" in p[0].content and "Available actions:" not in p[-1].content for p in actor_prompts
    )
