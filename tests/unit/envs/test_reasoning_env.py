"""The reasoning-gym environment: one answer scored by the family's own scorer, and, with
``python=True``, Python runs in the sandbox before the answer."""

from __future__ import annotations

import pytest

import purpose_agent as pa
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Action
from purpose_agent.envs.reasoning import RUN_PYTHON, ReasoningEnvironment
from purpose_agent.evals.ground_truth import GroundTruthPurposeFunction
from purpose_agent.evals.testbeds import Size, reasoning
from purpose_agent.loop.orchestrator import Orchestrator

pytest.importorskip("reasoning_gym")

FAMILY = "simple_equations"


def reply(action: str, **params: object) -> dict[str, object]:
    return {"thought": "compute it", "action": action, "params": dict(params)}


def test_the_family_scorer_is_the_ground_truth_and_a_wrong_answer_shows_the_expected_one() -> None:
    env = ReasoningEnvironment(FAMILY, 1000)
    expected = str(env.entry["answer"])
    start = env.reset()
    assert env.outcome(start) == 0.0 and not env.is_terminal(start)
    right = env.execute(Action("DONE", {"answer": expected}), start)
    assert env.is_terminal(right) and env.outcome(right) == 1.0
    wrong = env.execute(Action("DONE", {"answer": expected + "1"}), start)
    assert env.outcome(wrong) == 0.0
    assert f"The expected answer was {expected}" in wrong.summary
    assert wrong.data["expected"] == expected and "expected" not in right.data


def test_a_real_run_that_printed_the_answer_but_answered_in_another_form_teaches_the_form(tmp_path) -> None:
    from purpose_agent.memory import MemoryKind, MemoryStore
    from purpose_agent.memory.sources import case_of, harvest, instantiate

    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    expected = str(env.entry["answer"])
    actor = pa.ScriptedModel(
        [reply(RUN_PYTHON, code=f"print({expected})"), reply("DONE", answer=f"x = {expected}")]
    )
    orch = Orchestrator(
        actor, env, mode=RunMode.EVAL_TEST, purpose_function=GroundTruthPurposeFunction(env), trace=False
    )
    result = orch.run_task(f"Answer the question correctly: {env.question}", None, 3)
    assert not result.success
    store = MemoryStore(tmp_path / "m.sqlite", mode=RunMode.LEARNING_TRAIN)
    harvest(store, result)
    [m] = store.list(kind=MemoryKind.EPISODIC_CASE)
    case = case_of(m)
    assert case is not None
    shown = instantiate(case)  # with the run's own entities
    assert shown.actions[-1] == {"action": "DONE", "params": {"answer": expected}}
    assert shown.rejected == f"x = {expected}"
    assert env.outcome(env.execute(Action("DONE", {"answer": expected}), env.reset())) == 1.0


def test_python_is_offered_only_when_asked_for() -> None:
    assert list(ReasoningEnvironment(FAMILY, 1000).actions(ReasoningEnvironment(FAMILY, 1000).reset())) == []
    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    (spec,) = env.actions(env.reset())
    assert spec.name == RUN_PYTHON and spec.parameters["required"] == ["code"]
    # without python, run_python does nothing
    plain = ReasoningEnvironment(FAMILY, 1000)
    start = plain.reset()
    assert plain.execute(Action(RUN_PYTHON, {"code": "print(1)"}), start) == start


def test_a_python_run_shows_what_it_printed_and_the_question_stays_open() -> None:
    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    after = env.execute(Action(RUN_PYTHON, {"code": "print(6 * 7)"}), env.reset())
    assert "It printed:\n42" in after.summary and env.question in after.summary
    assert not env.is_terminal(after) and env.outcome(after) == 0.0
    assert after.data["runs"] == 1
    again = env.execute(Action(RUN_PYTHON, {"code": "pass"}), after)
    assert "printed nothing" in again.summary and again.data["runs"] == 2


@pytest.mark.parametrize(
    ("code", "shown"),
    [("def f(:\n", "Error:"), ("raise ValueError('boom')", "boom"), ("while True: pass", "Error:")],
)
def test_broken_or_endless_code_is_an_observation_not_a_crash(code: str, shown: str) -> None:
    env = ReasoningEnvironment(FAMILY, 1000, python=True, timeout=1.0)
    after = env.execute(Action(RUN_PYTHON, {"code": code}), env.reset())
    assert shown in after.summary and env.outcome(after) == 0.0


def test_a_long_output_is_cut() -> None:
    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    after = env.execute(Action(RUN_PYTHON, {"code": "print('x' * 5000)"}), env.reset())
    assert len(after.summary) < 2000 and after.summary.count("x") <= 400 + 5


def test_a_run_that_computes_with_python_then_answers_is_solved_by_ground_truth() -> None:
    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    expected = str(env.entry["answer"])
    actor = pa.ScriptedModel([reply(RUN_PYTHON, code=f"print({expected})"), reply("DONE", answer=expected)])
    orch = Orchestrator(
        actor, env, mode=RunMode.EVAL_TEST, purpose_function=GroundTruthPurposeFunction(env), trace=False
    )
    result = orch.run_task(f"Answer the question correctly: {env.question}", None, 3)
    assert result.success and [s.action.name for s in result.steps] == [RUN_PYTHON, "DONE"]
    assert f"It printed:\n{expected}" in result.steps[0].observation
    # the actor was offered run_python in its action schema
    assert RUN_PYTHON in str(actor.calls[0].schema)


def test_the_python_testbed_has_its_own_task_ids_and_disjoint_splits() -> None:
    tasks = reasoning(
        [FAMILY, "time_intervals"], Size(train=2, validation=1, test=2, max_steps=3), python=True
    )(0)
    assert len(tasks) == 2 * (2 + 1 + 2)
    assert all(t.id.endswith("-py") and t.meta["python"] for t in tasks)
    by_split = {s: {t.purpose for t in tasks if t.split == s} for s in ("train", "validation", "test")}
    assert not by_split["train"] & by_split["test"] and not by_split["validation"] & by_split["test"]
    env = tasks[0].make_env(0)  # type: ignore[misc]
    assert [a.name for a in env.actions(env.reset())] == [RUN_PYTHON]
    plain = reasoning([FAMILY], Size(1, 1, 1, 1))(0)
    assert not any(t.id.endswith("-py") for t in plain)


def test_a_critic_that_says_solved_before_the_answer_cannot_end_the_run_as_solved() -> None:
    """A Python run printed the result and an LLM critic scores it 10: without ground truth the
    run would stop 'solved' by Φ with no answer given. The unanswered question is unsolved."""
    env = ReasoningEnvironment(FAMILY, 1000, python=True)
    expected = str(env.entry["answer"])
    actor = pa.ScriptedModel([reply(RUN_PYTHON, code=f"print({expected})")] * 2)
    critic = pa.ScriptedModel(
        [{"evidence": "it printed the value", "reason": "computed", "score": 10, "confidence": "high"}] * 4
    )
    orch = Orchestrator(actor, env, mode=RunMode.EVAL_TEST, critic_llm=critic, trace=False)
    result = orch.run_task(f"Answer the question correctly: {env.question}", None, 2)
    assert not result.success and result.outcome == 0.0
    assert result.stop_reason == "max_steps"
