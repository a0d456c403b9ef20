"""The critic's prompt, its consistency cache, anomalies and weights, ground truth, and the
critic as a separate model."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _critic_helpers import GOOD, HALF, STUB, TASK, counting_critic, done, reply, rubric_critic, submit

import purpose_agent as pa
from purpose_agent.core.events import read_trace
from purpose_agent.critic.agreement import benchmark_agreement
from purpose_agent.critic.anomalies import AnomalyPolicy, oscillates
from purpose_agent.critic.consistency import state_key
from purpose_agent.critic.purpose_function import SCORE_SCHEMA, PurposeFunction
from purpose_agent.critic.rubric import CRITIC_SYSTEM
from purpose_agent.envs.coding import CodingEnvironment

S1 = pa.State({"x": 1}, "one")
S2 = pa.State({"x": 2}, "two")


# ---------------------------------------------------------------- prompt
def test_the_seven_rules_reach_the_critic_in_a_stable_system_prompt() -> None:
    critic = rubric_critic()
    actor = pa.ScriptedModel([submit(STUB), submit(HALF), submit(GOOD)])
    pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic, trace=False).run_task(TASK.purpose)
    systems = {c.messages[0].content for c in critic.calls}
    assert systems == {CRITIC_SYSTEM}  # one KV slot for every critic call
    for n, words in enumerate(
        [
            "Evidence required",
            "No credit for intentions",
            "No sycophancy",
            "Monotonic scale",
            "Flag superficial manipulation",
            "Consistency",
            "Confidence",
        ],
        start=1,
    ):
        assert f"{n}. {words}" in CRITIC_SYSTEM
    schema = critic.calls[0].schema
    assert schema is not None and list(schema["properties"]) == ["evidence", "reason", "score", "confidence"]
    assert schema["properties"]["score"]["enum"] == list(range(11))


def test_the_critic_sees_what_changed_not_the_whole_previous_state() -> None:
    critic = rubric_critic()
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic, trace=False).run_task(TASK.purpose)
    prompt = critic.calls[2].messages[-1].content
    changes = prompt.split("<changes>")[1].split("</changes>")[0]
    assert "- return 4 if x == 2 else 0" in changes and "+ return 2 * x" in changes
    assert "- Tests: 1/2 passed." in changes and "+ Tests: 2/2 passed." in changes
    assert "PREVIOUS STATE" not in prompt and prompt.count("return 4 if x == 2") == 1  # only in the diff


def test_calibration_examples_are_quoted_data_in_the_user_message() -> None:
    critic = rubric_critic()
    pf = PurposeFunction(critic, calibration=["a state with 1/2 tests passing is a 5"])
    asyncio.run(pf.ascore("p", S1))
    system, user = critic.calls[0].messages
    assert "1/2 tests" not in system.content
    assert "<example>\na state with 1/2 tests passing is a 5\n</example>" in user.content


# ---------------------------------------------------------------- consistency
def test_canonical_state_key_ignores_whitespace_only() -> None:
    a = pa.State({"code": "x = 1\n"}, "s")
    assert state_key("p", a) == state_key("p", pa.State({"code": "x = 1   \n\n\n"}, "s  "))
    assert state_key("p", a) != state_key("p", pa.State({"code": "x = 2\n"}, "s"))
    assert state_key("p", a) != state_key("q", a)


def test_cache_saves_calls_and_a_drifting_rescore_is_an_anomaly_not_frozen() -> None:
    critic, calls = counting_critic()
    pf = PurposeFunction(critic, drift_tolerance=0.5)
    first = asyncio.run(pf.ascore("p", S1))
    again = asyncio.run(pf.ascore("p", S1))
    assert (first.score.phi, again.score.phi, again.score.source, calls()) == (1.0, 1.0, "cache", 1)
    re = asyncio.run(pf.ascore("p", S1, rescore=True))
    assert re.score.phi == 2.0 and "critic_drift" in re.score.anomalies
    entry = pf.consistency.get(state_key("p", S1))
    assert entry is not None and entry.score.phi == 2.0 and entry.history == (1.0, 2.0)
    assert asyncio.run(pf.ascore("p", S1)).score.phi == 2.0  # the latest, not the first
    st = pf.stats
    assert (st.calls, st.cache_hits, st.rescores, st.drifts, st.saved) == (2, 2, 1, 1, 2)


def test_consistency_probes_rescore_a_share_of_cache_hits() -> None:
    critic = pa.FunctionModel(lambda m, s: reply(4))
    pf = PurposeFunction(critic, probe_rate=1.0)
    for _ in range(3):
        call = asyncio.run(pf.ascore("p", S1))
        assert call.score.phi == 4.0 and not call.score.anomalies  # a stable critic: no drift
    assert pf.stats.probes == 2 and pf.stats.calls == 3
    with pytest.raises(ValueError, match="probe_rate"):
        PurposeFunction(critic, probe_rate=1.5)


# ---------------------------------------------------------------- anomalies
def test_oscillation_needs_a_revisit_and_repeated_reversals() -> None:
    policy = AnomalyPolicy()
    assert oscillates([("a", 0), ("b", 5), ("a", 0), ("b", 5)], policy)
    assert not oscillates([("a", 0), ("b", 5), ("a", 0)], policy)  # one reversal only
    assert not oscillates([("a", 0), ("b", 5), ("c", 0), ("d", 5)], policy)  # new states each time


def test_oscillating_run_is_flagged_and_down_weighted(tmp_path: Path) -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(STUB), submit(HALF), submit(STUB)])
    orch = pa.Orchestrator(
        actor, CodingEnvironment(TASK), critic_llm=rubric_critic(), trace_dir=tmp_path, retry_repeats=False
    )
    result = orch.run_task(TASK.purpose, max_steps=4)
    flags = [s.anomalies for s in result.steps]
    assert "oscillation" not in flags[1] and "oscillation" in flags[2] and "oscillation" in flags[3]
    assert result.steps[2].weight == 0.25 and result.steps[0].weight == 1.0
    scores = [e for e in read_trace(result.trace_path or "") if e["kind"] == "score"]
    assert [e["weight"] for e in scores] == [s.weight for s in result.steps]
    assert "oscillation" in scores[2]["anomalies"]


def test_phi_jump_without_a_state_change_is_flagged() -> None:
    critic, _ = counting_critic()
    pf = PurposeFunction(critic, cache=False, drift_tolerance=0.5)
    env = pa.SimpleEnvironment(lambda a, s: s, actions={"wait": "wait"})
    actor = pa.ScriptedModel([{"thought": "t", "action": "wait", "params": {}}])
    result = pa.Orchestrator(actor, env, purpose_function=pf, rescore_unchanged=True, trace=False).run_task(
        "p", max_steps=1
    )
    step = result.steps[0]
    assert step.phi_before == 1.0 and step.phi_after == 2.0
    assert {"phi_jump_no_change", "critic_drift"} <= set(step.anomalies) and step.weight < 0.1


def test_a_low_confidence_or_flagged_phi_cannot_decide_success() -> None:
    def run(confidence: str) -> pa.TaskResult:
        critic = pa.FunctionModel(
            lambda m, s: reply(10 if "Paris" in m[-1].content else 0, confidence=confidence)
        )
        return pa.Orchestrator(
            pa.ScriptedModel([done("Paris")]), pa.SimpleEnvironment(), critic_llm=critic, trace=False
        ).run_task("Capital of France?")

    assert run("high").success and run("medium").success
    low = run("low")
    assert not low.success and low.final_weight == pytest.approx(0.3)


# ---------------------------------------------------------------- ground truth
def test_ground_truth_phi_skips_the_critic_and_counts_the_saved_calls() -> None:
    critic = pa.ScriptedModel([])  # any call fails
    pf = PurposeFunction(critic)
    actor = pa.ScriptedModel([submit(HALF), submit(GOOD)])
    result = pa.Orchestrator(
        actor, CodingEnvironment(TASK), purpose_function=pf, ground_truth_phi=True, trace=False
    ).run_task(TASK.purpose)
    assert [s.phi_after for s in result.steps] == [5.0, 10.0] and result.success
    assert all(s.phi_source == "ground_truth" for s in result.steps)
    assert pf.stats.ground_truth == 3 and pf.stats.calls == 0  # s0 and two states
    assert result.critic_agreement is None  # nothing the critic judged


def test_agreement_per_benchmark_aggregates_runs() -> None:
    results = []
    for critic in (rubric_critic(), pa.FunctionModel(lambda m, s: reply(10))):
        actor = pa.ScriptedModel([submit(HALF), submit(STUB), submit(HALF), submit(GOOD)])
        results.append(
            pa.Orchestrator(actor, CodingEnvironment(TASK), critic_llm=critic, trace=False).run_task(
                TASK.purpose
            )
        )
    report = benchmark_agreement(results)
    assert results[0].critic_agreement == 1.0 and results[1].critic_agreement == 0.25
    assert (report.runs, report.judged, report.agreeing) == (2, 8, 5)
    assert report.rate == pytest.approx(5 / 8) and report.run_mean == pytest.approx(0.625)
    assert report.by_cache == 2  # HALF revisited in each run
    assert "62.5%" in report.summary()


# ---------------------------------------------------------------- separate critic model
def test_critic_calls_go_to_the_critic_model_never_to_the_actor() -> None:
    actor = pa.ScriptedModel([submit(STUB), submit(HALF), submit(GOOD)], name="actor")
    critic = rubric_critic(name="critic-model")
    seen: list[Any] = []
    orch = pa.Orchestrator(
        actor, CodingEnvironment(TASK), critic_llm=critic, listeners=[seen.append], trace=False
    )
    result = orch.run_task(TASK.purpose)
    assert len(actor.calls) == len(result.steps) == 3
    assert all(
        c.schema != SCORE_SCHEMA and "You are the critic" not in c.messages[0].content for c in actor.calls
    )
    assert len(critic.calls) == 4 and all(c.messages[0].content == CRITIC_SYSTEM for c in critic.calls)
    costs = [(e.role, e.model) for e in seen if getattr(e, "kind", "") == "cost"]
    assert {m for r, m in costs if r == "critic"} == {"critic-model"}
    assert {m for r, m in costs if r == "actor"} == {"actor"}
