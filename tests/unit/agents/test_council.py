"""``Council`` (rounds in which every agent sees the others' positions, then a synthesis) and
``Conversation`` (turns until a stop condition)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _agent_models import Fake, done

import purpose_agent as pa
from purpose_agent.errors import ConfigurationError


class Voice:
    """An agent that records what it was asked and answers from a list (or a fixed text)."""

    def __init__(self, name: str, *answers: str) -> None:
        self.name = name
        self.answers = list(answers)
        self.prompts: list[str] = []

    def run(self, task: str) -> str:
        self.prompts.append(task)
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def test_each_round_every_agent_sees_the_others_positions_then_a_synthesis() -> None:
    a = Voice("optimist", "A1", "A2", "SYNTHESIS")
    b = Voice("skeptic", "B1", "B2")
    result = pa.Council([a, b]).run("Rewrite the parser?", rounds=2)
    assert [(m.round, m.speaker, m.text) for m in result.transcript] == [
        (1, "optimist", "A1"),
        (1, "skeptic", "B1"),
        (2, "optimist", "A2"),
        (2, "skeptic", "B2"),
    ]
    assert "Rewrite the parser?" in a.prompts[0] and "other members" not in a.prompts[0]
    # round 2: each sees the others' round-1 positions (the optimist sees B1 even though it spoke first)
    assert "- skeptic: B1" in a.prompts[1] and "Your position last round: A1" in a.prompts[1]
    assert "- optimist: A1" in b.prompts[1] and "- skeptic" not in b.prompts[1]
    # the synthesis reads the final positions; by default the first agent writes it
    assert result.synthesis == "SYNTHESIS" and "- optimist: A2\n- skeptic: B2" in a.prompts[2]
    assert result.positions(2) == {"optimist": "A2", "skeptic": "B2"}
    assert "SYNTHESIS: SYNTHESIS" in str(result) and result.rounds == 2


def test_a_chosen_synthesizer_and_default_three_rounds() -> None:
    judge = Voice("judge", "the verdict")
    result = pa.Council([Voice("x", "pos"), Voice("x", "pos")], synthesizer=judge).run("topic")
    assert result.rounds == 3 and len(result.transcript) == 6 and result.synthesis == "the verdict"
    assert {m.speaker for m in result.transcript} == {"x", "x#2"}  # same names told apart


def test_a_council_of_sparks_runs_through_the_kernel(tmp_path: Path) -> None:
    store = pa.MemoryStore(tmp_path / "c.sqlite", embedder=None)
    fake = Fake(lambda p, a, t: done("yes" if "Round" in p else "we agree: yes"))
    sparks = [pa.Spark(n, model=fake.model, memory=store) for n in ("ann", "ben")]
    result = pa.Council(sparks).run("Ship it?", rounds=1)
    assert [m.text for m in result.transcript] == ["yes", "yes"] and result.synthesis == "we agree: yes"
    assert all(m.result is not None and m.result.success for m in result.transcript)


@pytest.mark.parametrize(
    ("topic", "rounds", "message"), [("", 3, "topic"), ("t", 0, "rounds"), ("t", 1.5, "rounds")]
)
def test_council_bad_inputs(topic: str, rounds: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pa.Council([Voice("a", "x")]).run(topic, rounds=rounds)
    with pytest.raises(ConfigurationError, match="non-empty list of agents"):
        pa.Council([])


def test_a_conversation_alternates_and_stops_on_a_phrase() -> None:
    customer = Voice("customer", "Where is it?", "Thanks!")
    support = Voice("support", "Let me check.", "It arrives today. RESOLVED")
    result = pa.Conversation([customer, support]).run("My order is late.", max_turns=10, stop="resolved")
    assert [(m.speaker, m.text) for m in result] == [
        ("user", "My order is late."),
        ("customer", "Where is it?"),
        ("support", "Let me check."),
        ("customer", "Thanks!"),
        ("support", "It arrives today. RESOLVED"),
    ]
    assert result.stop_reason == "stop" and len(result) == 5 and result[0].speaker == "user"
    # each speaker sees the conversation so far
    assert "user: My order is late.\ncustomer: Where is it?" in support.prompts[0]
    assert "(stopped: stop)" in str(result)


def test_a_conversation_stops_on_a_callable_or_after_max_turns() -> None:
    result = pa.Conversation([Voice("a", "x"), Voice("b", "y")]).run("hi", max_turns=3)
    assert [m.text for m in result.messages] == ["hi", "x", "y", "x"] and result.stop_reason == "max_turns"
    stopped = pa.Conversation([Voice("a", "x"), Voice("b", "y")]).run(
        "hi", max_turns=9, stop=lambda m: m.speaker == "b"
    )
    assert [m.speaker for m in stopped.messages] == ["user", "a", "b"] and stopped.stop_reason == "stop"


@pytest.mark.parametrize(
    ("opening", "turns", "stop", "message"),
    [
        ("", 3, None, "opening"),
        ("hi", 0, None, "max_turns"),
        ("hi", 2, "  ", "stop phrase"),
        ("hi", 2, 5, "stop must"),
    ],
)
def test_conversation_bad_inputs(opening: str, turns: int, stop: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pa.Conversation([Voice("a", "x")]).run(opening, max_turns=turns, stop=stop)
