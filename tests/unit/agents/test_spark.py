"""``Spark``: one agent through the kernel, with its own memory, that learns across runs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _agent_models import Fake, done

import purpose_agent as pa
from purpose_agent.errors import ConfigurationError, UnknownProviderError
from purpose_agent.memory import MemoryKind, MemoryStatus
from purpose_agent.models.base import Message

SECRET = "THE SECRET NUMBER IS 42"
LESSON = {"kind": "skill_card", "trigger": "a secret number question", "text": f"Answer 42: {SECRET}."}


def secret_actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
    return done("42" if SECRET in prompt else "7")


def test_a_second_run_gets_what_the_first_promoted(tmp_path: Path) -> None:
    fake = Fake(secret_actor, lessons=[LESSON])
    is_42 = lambda answer: answer.strip() == "42"  # noqa: E731
    spark = pa.Spark(
        "solver",
        model=fake.model,
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
        validation=[(f"Say the secret number (v{i}).", is_42) for i in range(4)],
        learning=pa.Learning(units_per_gate=4),
    )
    first = spark.run("Say the secret number.", check=is_42)
    assert not first.success and first.decided_by == "ground_truth" and first.output == "7"
    # the gate replayed the distilled lesson on 4 validation tasks with and without it: 4 wins
    [lesson] = [m for m in spark.store.list() if SECRET in m.text]
    assert lesson.status is MemoryStatus.PROMOTED
    second = spark.run("Say the secret number again.", check=is_42)
    assert second.success and second.output == "42" and lesson.id in second.memory_ids
    status = spark.status()
    assert status["runs"] == 2 and status["successes"] == 1 and status["success_rate"] == 0.5
    assert any(m["id"] == lesson.id for m in status["memory"]["top_promoted"])


def test_each_spark_has_its_own_memory_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fa, fb = Fake(lambda p, a, t: done("a")), Fake(lambda p, a, t: done("b"))
    a, b = pa.Spark("alice", model=fa.model), pa.Spark("bob the builder", model=fb.model)
    assert a.store.path == Path(".purpose_agent/sparks/alice.sqlite")
    assert b.store.path == Path(".purpose_agent/sparks/bob-the-builder.sqlite")
    assert a.teach("Prefer short answers").promoted
    a.run("Say something")
    b.run("Say something")
    assert "Prefer short answers" in fa.prompts[-1] and "Prefer short answers" not in fb.prompts[-1]
    # a shared store is shared
    shared = pa.MemoryStore(tmp_path / "shared.sqlite", embedder=None)
    c = pa.Spark("carol", model=fb.model, memory=shared)
    assert c.store is shared and [m.kind for m in shared.list()] == []
    c.teach("Always cite sources")
    assert shared.list(kind=MemoryKind.USER_PREFERENCE)[0].text == "Always cite sources"


def test_role_and_context_are_in_the_purpose(tmp_path: Path) -> None:
    fake = Fake(lambda p, a, t: done("ok"))
    store = pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    known = pa.Spark("rita", model=fake.model, role="editor", memory=store)
    known.run("Fix this text", context="DRAFT: teh cat")
    assert "You are rita, the editor. Edit the draft" in fake.prompts[-1]
    assert "TASK: Fix this text" in fake.prompts[-1] and "DRAFT: teh cat" in fake.prompts[-1]
    free = pa.Spark("sam", model=fake.model, role="pirate", memory=store)
    free.run("Greet me")
    assert "You are sam, the pirate.\nTASK: Greet me" in fake.prompts[-1]
    assert "Spark('sam'" in repr(free) and "role='pirate'" in repr(free)


def test_without_a_check_the_critic_decides(tmp_path: Path) -> None:
    store = pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    good = pa.Spark("g", model=Fake(lambda p, a, t: done("x"), score=9).model, memory=store).run("Do it")
    bad = pa.Spark("b", model=Fake(lambda p, a, t: done("x"), score=2).model, memory=store).run("Do it")
    assert good.success and good.decided_by == "critic" and good.phi == 9.0
    assert not bad.success and bad.phi == 2.0
    assert "decided by critic" in str(good) and good.trace_path and Path(good.trace_path).exists()


def test_ground_truth_scores_phi_where_there_is_one(tmp_path: Path) -> None:
    """With a check, Φ is 10·outcome (the critic, which would say 2 here, is not asked about a
    state with ground truth), so a success never prints beside a critic's Φ of 0."""
    store = pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    fake = Fake(lambda p, a, t: done("x"), score=2)
    right = pa.Spark("r", model=fake.model, memory=store).run("Say x", check=lambda a: a == "x")
    wrong = pa.Spark("w", model=fake.model, memory=store).run("Say y", check=lambda a: a == "y")
    assert right.success and right.decided_by == "ground_truth" and right.phi == 10.0
    assert not wrong.success and wrong.phi == 0.0
    assert "Φ=10.0" in str(right)


def test_tools_are_offered_and_run_by_the_kernel(tmp_path: Path) -> None:
    def word_count(text: str) -> int:
        """Count the words in a text."""
        return len(text.split())

    def actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
        if turn == 0:
            assert "word_count" in actions
            return {"thought": "count", "action": "word_count", "params": {"text": "one two three"}}
        return done("3 words" if "[word_count] 3" in prompt else "?")

    spark = pa.Spark(
        "counter",
        model=Fake(actor, score=5).model,  # Φ below the threshold: the run goes on to DONE
        tools=[pa.FunctionTool.from_function(word_count)],
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
    )
    result = spark.run("How many words in 'one two three'?", check=lambda a: a.startswith("3"))
    assert result.success and result.output == "3 words" and result.steps == 2


def test_tool_results_replace_the_empty_state_and_repeats_are_marked(tmp_path: Path) -> None:
    """The run ends with the answer, not at the critic's Φ = 10 after the first search. After a
    tool returns, the state shows its results under a line that says to finish with DONE once
    they answer the task ("Nothing done yet." is gone); the same result again is
    shown as such, not pasted twice."""

    def lookup(query: str) -> str:
        """Look a fact up."""
        return "Refunds are paid within 14 days."

    def actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
        if turn < 2:
            return {"thought": "look", "action": "lookup", "params": {"query": f"refunds {turn}"}}
        return done("14 days")

    fake = Fake(actor, score=10)  # a sure critic does not end the run before the answer
    spark = pa.Spark(
        "l",
        model=fake.model,
        tools=[pa.FunctionTool.from_function(lookup)],
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
    )
    result = spark.run("Within how many days are refunds paid?", check=lambda a: "14" in a)
    assert result.success and result.steps == 3
    last = fake.prompts[-1].split("OBSERVATION")[-1]  # the latest observation: the current state
    assert "Nothing done yet." not in last
    assert "finish now: DONE with the answer" in last
    assert last.count("Refunds are paid within 14 days.") == 1 and "(the same result as before)" in last


def test_a_spark_runs_in_an_environment_of_your_own(tmp_path: Path) -> None:
    env = pa.SimpleEnvironment(outcome_fn=lambda s: 1.0 if s.data.get("answer") == "yes" else None)
    spark = pa.Spark(
        "e",
        model=Fake(lambda p, a, t: done("yes")).model,
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
    )
    result = spark.run("Agree", environment=env)
    assert result.success and result.decided_by == "ground_truth"


def test_a_spark_is_a_flow_node(tmp_path: Path) -> None:
    spark = pa.Spark(
        "writer",
        model=Fake(lambda p, a, t: done("a poem")).model,
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
    )
    flow = pa.Flow(checkpoint=None)
    flow.add_node("writer", spark)
    flow.add_edge(pa.BEGIN, "writer")
    flow.add_edge("writer", pa.DONE_SIGNAL)
    assert flow.run({"task": "Write a poem"}).state["writer"] == "a poem"


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    store = pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    model = pa.ScriptedModel([])
    with pytest.raises(ConfigurationError, match="non-empty name"):
        pa.Spark("  ", model=model, memory=store)
    with pytest.raises(UnknownProviderError, match="Valid providers"):
        pa.Spark("x", model="opneai:gpt-4o", memory=store)
    with pytest.raises(ConfigurationError, match="tools must be Tools"):
        pa.Spark("x", model=model, tools=["calculator"], memory=store)
    with pytest.raises(ConfigurationError, match="validation items"):
        pa.Spark("x", model=model, memory=store, validation=["just a task"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="max_steps"):
        pa.Spark("x", model=model, memory=store, max_steps=0)
    spark = pa.Spark("x", model=model, memory=store)
    with pytest.raises(ConfigurationError, match="non-empty string"):
        spark.run("")
    with pytest.raises(ConfigurationError, match="not both"):
        spark.run("t", check=lambda a: True, environment=pa.SimpleEnvironment())
    assert model.calls == []


def test_a_failing_model_raises_with_the_partial_run(tmp_path: Path) -> None:
    def broken(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        raise RuntimeError("backend down")

    spark = pa.Spark(
        "x", model=pa.FunctionModel(broken), memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    )
    with pytest.raises(pa.PurposeAgentError, match="backend down"):
        spark.run("Do it")
