"""``Council``: agents deliberate on a topic for some rounds, then one synthesises.

    council = pa.Council([optimist, skeptic, engineer])
    result = council.run("Should we rewrite the parser?", rounds=3)
    result.transcript          # every position, round by round
    result.synthesis           # the synthesis of the final positions

Round 1: each agent gives its position on the topic. Every later round: each agent sees the
other agents' positions from the round before (and its own) and gives its position again,
changed or not. Then the synthesiser (``synthesizer=``, default the first agent) reads the final
positions and writes the synthesis. Agents are Sparks or anything with ``run(task)`` /
``arun(task)``; a Spark learns from every turn through the kernel like any other run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.agents.result import RunResult, as_text
from purpose_agent.agents.swarm import agent_name, ask
from purpose_agent.errors import ConfigurationError
from purpose_agent.models.base import run_sync

__all__ = ["Council", "CouncilResult", "Message"]


@dataclass(frozen=True)
class Message:
    """One message of a council or a conversation: who said it, what, and when."""

    speaker: str
    text: str
    round: int = 0
    result: RunResult | None = None

    def __str__(self) -> str:
        return f"{self.speaker}: {self.text}"


@dataclass(frozen=True)
class CouncilResult:
    topic: str
    transcript: tuple[Message, ...]
    synthesis: str
    rounds: int

    def positions(self, round: int) -> dict[str, str]:
        """Each agent's position in ``round`` (1-based)."""
        return {m.speaker: m.text for m in self.transcript if m.round == round}

    def __str__(self) -> str:
        lines = [f"COUNCIL on {self.topic!r}, {self.rounds} rounds"]
        lines += [f"  [round {m.round}] {m.speaker}: {m.text}" for m in self.transcript]
        lines.append(f"SYNTHESIS: {self.synthesis}")
        return "\n".join(lines)


def named(agents: Sequence[Any]) -> list[tuple[str, Any]]:
    """(unique name, agent) pairs; a repeated name gets a number."""
    if isinstance(agents, (str, bytes)) or not isinstance(agents, Sequence) or not agents:
        raise ConfigurationError("give a non-empty list of agents")
    out: list[tuple[str, Any]] = []
    seen: dict[str, int] = {}
    for i, agent in enumerate(agents):
        name = agent_name(agent, i)
        seen[name] = seen.get(name, 0) + 1
        out.append((name if seen[name] == 1 else f"{name}#{seen[name]}", agent))
    return out


async def say(agent: Any, prompt: str) -> tuple[str, RunResult | None]:
    value = await ask(agent, prompt)
    return as_text(value).strip(), value if isinstance(value, RunResult) else None


class Council:
    """Deliberation rounds then a synthesis; see the module docstring."""

    def __init__(self, agents: Sequence[Any], *, synthesizer: Any | None = None) -> None:
        self.agents = named(agents)
        self.synthesizer = synthesizer if synthesizer is not None else self.agents[0][1]

    async def arun(self, topic: str, rounds: int = 3) -> CouncilResult:
        if not isinstance(topic, str) or not topic.strip():
            raise ConfigurationError("a council needs a non-empty topic")
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
            raise ConfigurationError(f"rounds must be an integer ≥ 1, got {rounds!r}")
        transcript: list[Message] = []
        latest: dict[str, str] = {}
        for r in range(1, rounds + 1):
            previous = dict(latest)
            for name, agent in self.agents:
                prompt = self._prompt(topic, r, rounds, name, previous)
                text, result = await say(agent, prompt)
                transcript.append(Message(name, text, r, result))
                latest[name] = text
        final = "\n".join(f"- {name}: {text}" for name, text in latest.items())
        synthesis, _ = await say(
            self.synthesizer,
            f"Council topic: {topic}\nThe members' final positions:\n{final}\n"
            "Write the synthesis: the conclusion the council reaches, where they agree, and the "
            "disagreements that remain.",
        )
        return CouncilResult(topic, tuple(transcript), synthesis, rounds)

    def run(self, topic: str, rounds: int = 3) -> CouncilResult:
        return run_sync(lambda: self.arun(topic, rounds))

    @staticmethod
    def _prompt(topic: str, r: int, rounds: int, name: str, previous: dict[str, str]) -> str:
        text = f"Council topic: {topic}\nYou are {name}. Round {r} of {rounds}."
        if not previous:
            return text + "\nGive your position in a few sentences."
        own = previous.get(name, "")
        others = "\n".join(f"- {n}: {p}" for n, p in previous.items() if n != name)
        if own:
            text += f"\nYour position last round: {own}"
        return (
            text + f"\nThe other members' positions:\n{others}\n"
            "Consider them, then give your position again in a few sentences (change it if they convinced you)."
        )
