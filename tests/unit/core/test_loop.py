"""The loop driven by ScriptedModel / FunctionModel: actions, scores, stops, ground truth,
bad model output, traces."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import purpose_agent as pa
from _double_task import GOOD, HALF, TASK, submit
from purpose_agent.core import events as ev
from purpose_agent.core.events import read_trace
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.errors import RunFailedError, ScriptExhaustedError
from purpose_agent.models.base import Message


def critic_by_tests() -> pa.FunctionModel:
    """A critic that reads the test line of the state: k/n passing -> 10*k/n."""

    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        text = messages[-1].content.split("STATE TO SCORE:")[-1]
        for line in text.splitlines():
            if line.startswith("Tests:"):
                k, n = line.split()[1].split("/")
                return {
                    "evidence": line,
                    "reason": "tests",
                    "score": round(10 * int(k) / int(n)),
                    "confidence": "high",
                }
        return {"evidence": "nothing", "reason": "empty", "score": 0, "confidence": "high"}

    return pa.FunctionModel(fn, name="critic")


def test_solves_with_ground_truth_and_records_steps() -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    orch = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests())
    result = orch.run_task(TASK.purpose, max_steps=5)
    actor.assert_consumed()
    assert result.success and result.outcome == 1.0 and result.stop_reason == "solved"
    assert [s.phi_after for s in result.steps] == [5.0, 10.0]
    assert [s.reward for s in result.steps] == [5.0, 5.0]  # r = Φ(s') − Φ(s)
    assert result.steps[0].outcome == 0.5 and result.critic_agreement == 1.0
    assert "SUCCESS" in result.summary() and "Φ 5.0 → 10.0" in result.summary()


def test_the_actor_sees_history_and_the_critic_is_a_separate_call() -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    critic = critic_by_tests()
    pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic).run_task(TASK.purpose)
    second = actor.calls[1].messages
    assert second[0].role == "system" and "submit_code" in second[0].content
    assert second[-2].role == "assistant" and json.loads(second[-2].content)["params"]["code"] == HALF
    assert "Tests: 1/2 passed" in second[-1].content
    assert len(critic.calls) == 3  # Φ(s0), Φ(s1), Φ(s2): never inside the actor's call
    assert all("critic" in c.messages[0].content for c in critic.calls)


def test_action_schema_is_oneof_with_const_names_thought_first() -> None:
    actor = pa.ScriptedModel([submit(GOOD)])
    pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests()).run_task(TASK.purpose)
    schema = actor.calls[0].schema
    assert schema is not None
    names = [b["properties"]["action"]["const"] for b in schema["oneOf"]]
    assert names == ["submit_code", "DONE"]
    assert list(schema["oneOf"][0]["properties"]) == ["thought", "action", "params"]


def test_a_critic_that_always_says_10_cannot_make_a_failed_run_succeed() -> None:
    always10 = pa.FunctionModel(
        lambda m, s: {"evidence": "looks great", "reason": "perfect", "score": 10, "confidence": "high"}
    )
    actor = pa.ScriptedModel(
        [
            submit("def double(x):\n    return 0\n"),
            {"thought": "done", "action": "DONE", "params": {"answer": "ok"}},
        ]
    )
    result = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=always10).run_task(TASK.purpose)
    assert result.final_phi == 10.0
    assert result.outcome == 0.0 and not result.success
    assert "ground_truth_disagreement" in result.steps[0].anomalies
    assert result.critic_agreement == 0.0


def test_without_ground_truth_phi_threshold_decides() -> None:
    env = pa.SimpleEnvironment()
    actor = pa.ScriptedModel([{"thought": "answer", "action": "DONE", "params": {"answer": "Paris"}}])
    critic = pa.ScriptedModel(
        [
            {"evidence": "-", "reason": "-", "score": 0, "confidence": "high"},
            {"evidence": "answer Paris", "reason": "right", "score": 9, "confidence": "high"},
        ]
    )
    result = pa.Orchestrator(actor, env, critic_llm=critic).run_task("Name the capital of France")
    assert result.success and result.outcome is None and result.stop_reason == "done"
    assert result.final_state.data["answer"] == "Paris"


def test_a_high_phi_ends_a_run_early_unless_the_environment_ends_with_an_answer() -> None:
    """A trusted Φ ≥ threshold stops a run without ground truth ("phi_threshold"); an
    environment whose task ends with an answer keeps going to DONE."""
    note = {"thought": "look", "action": "note", "params": {}}
    answer = {"thought": "answer", "action": "DONE", "params": {"answer": "Paris"}}
    sure = {"evidence": "-", "reason": "-", "score": 10, "confidence": "high"}

    class Question(pa.SimpleEnvironment):
        answer_ends_run = True

    runs = {}
    for env in (pa.SimpleEnvironment(), Question()):
        actor, critic = pa.ScriptedModel([note, answer]), pa.ScriptedModel([{**sure, "score": 0}, sure, sure])
        orch = pa.Orchestrator(actor, env, ["note"], critic_llm=critic)
        runs[env.answer_ends_run] = orch.run_task("Name the capital of France")
    assert (runs[False].stop_reason, len(runs[False].steps)) == ("phi_threshold", 1)
    assert (runs[True].stop_reason, len(runs[True].steps)) == ("done", 2)
    assert runs[True].final_state.data["answer"] == "Paris" and runs[True].success


def test_malformed_model_output_never_crashes_the_loop() -> None:
    actor = pa.ScriptedModel(
        [
            "I refuse to answer in JSON",  # first try
            "still prose",  # repair retry
            '{"thought": "t", "action": "fly_to_moon", "params": {}}',  # unknown action
            '{"thought": "t", "action": "fly_to_moon", "params": {}}',  # and again on the repair retry
            submit(GOOD),
        ]
    )
    result = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests()).run_task(
        TASK.purpose
    )
    assert result.success
    first, second, third = result.steps
    assert first.action.name == "INVALID" and "not a usable action" in first.observation
    assert second.action.name == "INVALID" and "unknown action 'fly_to_moon'" in second.observation
    assert first.phi_after == first.phi_before == 0.0
    assert third.action.name == "submit_code"
    actor.assert_consumed()


def test_environment_exception_is_reported_not_raised() -> None:
    def boom(action: pa.Action, state: pa.State) -> pa.State:
        raise ValueError("disk on fire")

    env = pa.SimpleEnvironment(boom, actions={"poke": "poke it"})
    actor = pa.ScriptedModel(
        [
            {"thought": "t", "action": "poke", "params": {}},
            {"thought": "t", "action": "DONE", "params": {"answer": "x"}},
        ]
    )
    seen: list[ev.Event] = []
    critic = pa.FunctionModel(lambda m, s: {"evidence": "-", "reason": "-", "score": 1, "confidence": "low"})
    result = pa.Orchestrator(actor, env, critic_llm=critic, listeners=[seen.append]).run_task("poke")
    assert "disk on fire" in result.steps[0].observation
    assert any(isinstance(e, ev.ErrorRaised) and "disk on fire" in e.message for e in seen)


def test_max_steps_stops_the_run() -> None:
    actor = pa.FunctionModel(lambda m, s: submit(f"def double(x):\n    return {len(m)}\n"))
    result = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests()).run_task(
        TASK.purpose, max_steps=3
    )
    assert len(result.steps) == 3 and result.stop_reason == "max_steps" and not result.success


def test_repeated_noop_is_resampled_once_with_temperature() -> None:
    temps: list[float] = []

    class Recording(pa.ScriptedModel):
        async def acomplete(self, messages, schema=None, *, max_tokens=512, temperature=0.0):  # type: ignore[no-untyped-def]
            temps.append(temperature)
            return await super().acomplete(messages, schema, max_tokens=max_tokens, temperature=temperature)

    same = {"thought": "t", "action": "noop", "params": {}}
    env = pa.SimpleEnvironment(lambda a, s: s, actions={"noop": "does nothing"})
    actor = Recording([same, same, {"thought": "t", "action": "DONE", "params": {"answer": "x"}}])
    critic = pa.FunctionModel(lambda m, s: {"evidence": "-", "reason": "-", "score": 2, "confidence": "low"})
    result = pa.Orchestrator(actor, env, critic_llm=critic).run_task("p", max_steps=5)
    assert temps == [0.0, 0.0, 0.7]  # the repeat triggered one resample at 0.7
    assert result.steps[-1].action.name == "DONE"
    assert "changed nothing" in result.steps[0].observation


def test_trace_is_append_only_jsonl_with_typed_events(tmp_path: Path) -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    orch = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests(), trace_dir=tmp_path)
    result = orch.run_task(TASK.purpose)
    assert result.trace_path and Path(result.trace_path).parent == tmp_path
    kinds = [e["kind"] for e in read_trace(result.trace_path)]
    assert kinds[0] == "task_start" and kinds[-1] == "task_end"
    assert kinds.count("action") == 2 and kinds.count("score") == 2 and kinds.count("observation") == 2
    assert kinds.count("cost") == 5  # 2 actor + 3 critic calls
    assert all(e["run_id"] == result.run_id for e in read_trace(result.trace_path))


def test_step_by_step_driving() -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    orch = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests(), trace=False)
    import asyncio

    async def drive() -> pa.TaskResult:
        run = await orch.astart(TASK.purpose)
        step = await orch.astep(run)
        assert step.phi_after == 5.0 and not run.done
        await orch.astep(run)
        assert run.done and run.stop_reason == "solved"
        return orch.finish(run)

    assert asyncio.run(drive()).success


def test_backend_failure_keeps_the_partial_run() -> None:
    actor = pa.ScriptedModel([submit(HALF)])  # runs out on step 2
    orch = pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic_by_tests())
    with pytest.raises(RunFailedError) as info:
        orch.run_task(TASK.purpose)
    assert isinstance(info.value.__cause__, ScriptExhaustedError)
    partial = info.value.result
    assert len(partial.steps) == 1 and partial.stop_reason.startswith("error")


def test_tools_can_be_actions() -> None:
    from purpose_agent.tools import CalculatorTool

    calc = CalculatorTool()
    actor = pa.ScriptedModel(
        [
            {"thought": "compute", "action": "calculator", "params": {"expression": "17 * 23"}},
            {"thought": "answer", "action": "DONE", "params": {"answer": "391"}},
        ]
    )
    critic = pa.FunctionModel(
        lambda m, s: {
            "evidence": "-",
            "reason": "-",
            "score": 9 if "391" in m[-1].content else 1,
            "confidence": "high",
        }
    )
    result = pa.Orchestrator(actor, pa.SimpleEnvironment(), [calc], critic_llm=critic).run_task(
        "What is 17*23?"
    )
    assert "391" in result.steps[0].observation
    assert result.success
