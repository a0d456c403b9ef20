"""``Conversation``: agents take turns exchanging messages until a stop condition.

    chat = pa.Conversation([customer, support])
    result = chat.run("My order has not arrived.", max_turns=6, stop="RESOLVED")
    for message in result.messages:
        print(message)

The opening is the first message (speaker ``"user"``). The agents then speak in turn, in the
order given, each seeing the conversation so far. It stops after ``max_turns`` agent messages,
or as soon as ``stop`` holds for the newest message: a callable ``stop(message) -> bool``, or a
phrase found in the message (case-insensitive). ``result.stop_reason`` says which.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.agents.council import Message, named, say
from purpose_agent.errors import ConfigurationError
from purpose_agent.models.base import run_sync

__all__ = ["Conversation", "ConversationResult"]

Stop = Callable[[Message], bool] | str


@dataclass(frozen=True)
class ConversationResult:
    """The messages (the opening first) and why it stopped: "stop" or "max_turns"."""

    messages: tuple[Message, ...]
    stop_reason: str

    def __iter__(self) -> Any:
        return iter(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __getitem__(self, i: int) -> Message:
        return self.messages[i]

    def __str__(self) -> str:
        return "\n".join(str(m) for m in self.messages) + f"\n(stopped: {self.stop_reason})"


def _stopper(stop: Stop | None) -> Callable[[Message], bool]:
    if stop is None:
        return lambda m: False
    if isinstance(stop, str):
        if not stop.strip():
            raise ConfigurationError("a stop phrase must not be empty")
        phrase = stop.strip().lower()
        return lambda m: phrase in m.text.lower()
    if callable(stop):
        return lambda m: bool(stop(m))
    raise ConfigurationError(f"stop must be a callable or a phrase, got {stop!r}")


class Conversation:
    """Agents exchanging messages; see the module docstring."""

    def __init__(self, agents: Sequence[Any]) -> None:
        self.agents = named(agents)

    async def arun(self, opening: str, max_turns: int = 6, stop: Stop | None = None) -> ConversationResult:
        if not isinstance(opening, str) or not opening.strip():
            raise ConfigurationError("a conversation needs a non-empty opening message")
        if isinstance(max_turns, bool) or not isinstance(max_turns, int) or max_turns < 1:
            raise ConfigurationError(f"max_turns must be an integer ≥ 1, got {max_turns!r}")
        should_stop = _stopper(stop)
        messages = [Message("user", opening.strip(), 0)]
        for turn in range(1, max_turns + 1):
            name, agent = self.agents[(turn - 1) % len(self.agents)]
            so_far = "\n".join(str(m) for m in messages)
            text, result = await say(
                agent,
                f"You are {name} in a conversation.\nCONVERSATION SO FAR:\n{so_far}\n"
                f"Write {name}'s next message (only the message).",
            )
            message = Message(name, text, turn, result)
            messages.append(message)
            if should_stop(message):
                return ConversationResult(tuple(messages), "stop")
        return ConversationResult(tuple(messages), "max_turns")

    def run(self, opening: str, max_turns: int = 6, stop: Stop | None = None) -> ConversationResult:
        return run_sync(lambda: self.arun(opening, max_turns, stop))
