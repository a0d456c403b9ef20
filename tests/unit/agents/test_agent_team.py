"""``AgentSpec`` / ``AgentTeam``: delegation by expertise keywords then constrained routing,
pipelines with state flowing, shared memory, a learning report naming each lesson's contributor."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from _agent_models import Fake, done

import purpose_agent as pa
from purpose_agent.errors import ConfigurationError

SPECS = [
    pa.AgentSpec("coder", role="programmer", expertise=("python", "bug", "function")),
    pa.AgentSpec("writer", role="technical writer", expertise=("docs", "essay", "email")),
]


def by_agent(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
    [name] = re.findall(r"You are (\w+)[,.]\s", prompt)
    return done(f"{name} answer")


def _team(tmp_path: Path, fake: Fake) -> pa.AgentTeam:
    return pa.AgentTeam(SPECS, model=fake.model, memory=pa.MemoryStore(tmp_path / "t.sqlite", embedder=None))


def test_delegation_by_expertise_keywords_needs_no_model_choice(tmp_path: Path) -> None:
    fake = Fake(by_agent)  # a routing call would raise
    team = _team(tmp_path, fake)
    result = team.run_task("Fix the bug in this Python function")
    assert result.agent == "coder" and result.output == "coder answer" and result.success
    assert team.run_task("Write the docs").agent == "writer"
    assert fake.routed == []


def test_ties_and_no_match_go_to_constrained_llm_routing(tmp_path: Path) -> None:
    fake = Fake(by_agent, route=lambda prompt, options: options[-1])
    team = _team(tmp_path, fake)
    tie = team.run_task("python docs")  # one keyword each
    assert fake.routed == [["coder", "writer"]] and tie.agent == "writer"
    none = team.run_task("Plan a party")
    assert fake.routed[-1] == ["coder", "writer"] and none.agent == "writer"
    choice = team.delegate("Plan a party")
    assert choice.how == "model" and choice.value == "writer"
    assert "coder: programmer; expertise: python, bug, function" in str(
        fake.model.calls[-1].messages[-1].content
    )


def test_a_pipeline_passes_each_output_to_the_next_task(tmp_path: Path) -> None:
    fake = Fake(by_agent)
    team = _team(tmp_path, fake)
    results = team.run_pipeline(["Write a Python function", ("writer", "Document it")])
    assert [r.agent for r in results] == ["coder", "writer"]
    assert "RESULT OF THE PREVIOUS STEP:\ncoder answer" in fake.prompts[-1]
    assert "RESULT OF THE PREVIOUS STEP" not in fake.prompts[0]
    with pytest.raises(ConfigurationError, match="non-empty list"):
        team.run_pipeline([])
    with pytest.raises(ConfigurationError, match="unknown agent 'poet'"):
        team.run_pipeline([("poet", "Write")])


def test_memory_is_shared_and_the_report_names_who_contributed_what(tmp_path: Path) -> None:
    lesson = {"kind": "skill_card", "trigger": "python bugs", "text": "Reproduce the bug with a test first."}
    fake = Fake(by_agent, lessons=[lesson])
    team = _team(tmp_path, fake)
    assert all(spark.store is team.store for spark in team.agents.values())
    taught = team.teach("Keep answers short")
    team.run_task("Fix the bug in this Python function")  # each run distils the same lesson
    team.run_task("Write the docs")
    assert "Keep answers short" in fake.prompts[0] and "Keep answers short" in fake.prompts[1]
    report = team.get_learning_report()
    mine = {m.memory_id: m for m in report.lessons}
    assert mine[taught.memory_id].agent == "human" and mine[taught.memory_id].status == "promoted"
    [distilled] = [m for m in report.lessons if "Reproduce the bug" in m.text]
    assert distilled.agent == "coder, writer"  # merged: both runs wrote it
    assert distilled.status == "candidate" and distilled.utility == pytest.approx(0.5)
    assert report.runs_by_agent == {"coder": 1, "writer": 1}
    assert set(report.by_agent()) >= {"human", "coder, writer"}
    text = str(report)
    assert "coder 1 runs" in text and "human: [user_preference, promoted]" in text


def test_agents_can_have_their_own_model(tmp_path: Path) -> None:
    own = Fake(lambda p, a, t: done("own model"))
    specs = [pa.AgentSpec("a", expertise="alpha", model=own.model), pa.AgentSpec("b", expertise=["beta"])]
    team = pa.AgentTeam(specs, model=Fake(by_agent).model, memory=tmp_path / "t.sqlite")
    assert team.run_task("alpha").output == "own model" and team.run_task("beta").output == "b answer"
    assert specs[0].expertise == ("alpha",)


def test_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    model = pa.ScriptedModel([])
    with pytest.raises(ConfigurationError, match="non-empty list of AgentSpec"):
        pa.AgentTeam([], model=model, memory=tmp_path / "t.sqlite")
    with pytest.raises(ConfigurationError, match="unique"):
        pa.AgentTeam([pa.AgentSpec("a"), pa.AgentSpec("a")], model=model, memory=tmp_path / "t.sqlite")
    with pytest.raises(ConfigurationError, match="non-empty name"):
        pa.AgentSpec("")
    team = pa.AgentTeam([pa.AgentSpec("solo")], model=model, memory=tmp_path / "t.sqlite")
    assert team.delegate("anything").value == "solo"  # one agent: no routing call
    with pytest.raises(ConfigurationError, match="non-empty task"):
        team.run_task(" ")
