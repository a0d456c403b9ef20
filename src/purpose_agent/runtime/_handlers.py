"""Input handlers of the human-in-the-loop runtime: what a person is asked, and how.

A handler has two methods: ``review_action(request) -> Verdict`` (approve, edit or reject an
action before it runs) and ``review_score(step) -> None | score | (score, note)`` (keep or
override Φ of a step). Either may return an awaitable, for front ends that ask asynchronously.
"""

from __future__ import annotations

import io
import json
import select
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TextIO

from purpose_agent.core.types import Action, State, Step
from purpose_agent.errors import ScriptExhaustedError
from purpose_agent.loop.actor import describe_action

#: what a score review returns: None (keep Φ), a score, or (score, note)
Review = float | int | tuple[float, str] | None


@dataclass(frozen=True)
class ActionRequest:
    """An action the agent proposes, before it runs: its step, the state it would run in."""

    purpose: str
    step: int
    action: Action
    state: State
    valid_actions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verdict:
    """A person's decision on an action: approve it, run ``action`` instead (edit), or reject it."""

    decision: Literal["approve", "edit", "reject"]
    action: Action | None = None
    reason: str = ""

    @classmethod
    def approve(cls) -> Verdict:
        return cls("approve")

    @classmethod
    def edit(cls, action: Action, reason: str = "") -> Verdict:
        return cls("edit", action, reason)

    @classmethod
    def reject(cls, reason: str = "") -> Verdict:
        return cls("reject", None, reason or "rejected by a person")


VerdictLike = Verdict | Action | Literal["approve", "reject"]


def as_verdict(value: Any) -> Verdict:
    """A Verdict from a handler's reply: a Verdict, an Action (an edit), "approve" or "reject"."""
    if isinstance(value, Verdict):
        if value.decision == "edit" and not isinstance(value.action, Action):
            raise TypeError("Verdict.edit needs the Action to run instead")
        return value
    if isinstance(value, Action):
        return Verdict.edit(value)
    if value in ("approve", "reject"):
        return Verdict.approve() if value == "approve" else Verdict.reject()
    raise TypeError(
        f"an action review must return a Verdict, an Action, 'approve' or 'reject'; got {value!r}"
    )


class InputHandler(Protocol):
    """Asks a person about actions and scores (see ``CLIInputHandler``, ``ProgrammaticInputHandler``)."""

    def review_action(self, request: ActionRequest) -> Verdict | Awaitable[Verdict]: ...

    def review_score(self, step: Step) -> Review | Awaitable[Review]: ...


NO_INPUT = (
    "no input (end of input: no terminal, as in CI), so the action is rejected; run in a terminal, "
    "or pass input_handler=ProgrammaticInputHandler(...)"
)


class CLIInputHandler:
    """Asks on a terminal (``stdin`` / ``stdout``, default the process's own).

    At end of input (stdin closed, ``/dev/null``, a finished pipe) it never waits: every action is
    rejected with a clear message and every score is kept. ``timeout`` (seconds, None: wait for
    ever) bounds the wait for each answer on a stream that can be polled; no answer in time
    counts as no input.
    """

    def __init__(
        self, stdin: TextIO | None = None, stdout: TextIO | None = None, *, timeout: float | None = None
    ) -> None:
        self._stdin = stdin
        self._stdout = stdout
        self.timeout = timeout
        self.closed = False  # end of input was reached; nothing more is read

    @property
    def out(self) -> TextIO:
        return self._stdout if self._stdout is not None else sys.stdout

    def _say(self, text: str) -> None:
        try:
            self.out.write(text + "\n")
            self.out.flush()
        except (OSError, ValueError):
            pass

    def ask(self, prompt: str) -> str | None:
        """One line of input without its newline; None at end of input (or after ``timeout``)."""
        if self.closed:
            return None
        stream = self._stdin if self._stdin is not None else sys.stdin
        try:
            self.out.write(prompt)
            self.out.flush()
        except (OSError, ValueError):
            pass
        if stream is None:
            self.closed = True
            return None
        if self.timeout is not None:
            try:
                ready = select.select([stream.fileno()], [], [], self.timeout)[0]
            except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
                ready = [stream]  # cannot poll it (e.g. a StringIO): read it
            if not ready:
                self._say("")
                self.closed = True
                return None
        try:
            line = stream.readline()
        except (OSError, ValueError):  # closed or unreadable
            line = ""
        if not line:
            self._say("")
            self.closed = True
            return None
        return line.rstrip("\r\n")

    def review_action(self, request: ActionRequest) -> Verdict:
        a = request.action
        self._say(f"\nstep {request.step}: the agent proposes {describe_action(a)}")
        if a.thought:
            self._say(f"  thought: {a.thought[:300]}")
        for _ in range(5):
            answer = self.ask("approve [a], edit [e] or reject [r]? [a] ")
            if answer is None:
                self._say(NO_INPUT)
                return Verdict.reject(NO_INPUT)
            choice = answer.strip().lower()
            if choice in ("", "a", "approve", "y", "yes"):
                return Verdict.approve()
            if choice in ("r", "reject", "n", "no"):
                reason = self.ask("reason (optional): ")
                return Verdict.reject((reason or "").strip() or "rejected by a person")
            if choice in ("e", "edit"):
                text = self.ask('the action to run: NAME, or JSON {"action": NAME, "params": {...}}: ')
                if text is None:
                    self._say(NO_INPUT)
                    return Verdict.reject(NO_INPUT)
                edited, problem = parse_action(text, a)
                if edited is not None:
                    return Verdict.edit(edited, "edited by a person")
                self._say(f"  {problem}")
                continue
            self._say("  answer a (approve), e (edit) or r (reject)")
        return Verdict.reject("no usable answer after 5 tries")

    def review_score(self, step: Step) -> Review:
        self._say(
            f"step {step.index}: {describe_action(step.action)} Φ {step.phi_before:.1f} → {step.phi_after:.1f}"
            f" ({step.phi_source}); evidence: {step.evidence[:200]}"
        )
        for _ in range(3):
            answer = self.ask("new score 0-10 (Enter keeps it): ")
            if answer is None:
                self._say("no input (end of input), so the score is kept")
                return None
            if not answer.strip():
                return None
            try:
                phi = float(answer)
            except ValueError:
                phi = -1.0
            if 0.0 <= phi <= 10.0:
                note = self.ask("note (optional): ")
                return phi, (note or "").strip()
            self._say("  a score is a number from 0 to 10")
        return None


def parse_action(text: str, proposed: Action) -> tuple[Action | None, str]:
    """An action typed by a person: a bare name (the proposed params kept when the name is the
    same) or JSON ``{"action": NAME, "params": {...}}``; else (None, the problem)."""
    text = text.strip()
    if not text:
        return None, "an empty action; type a name or JSON"
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            return None, f"not JSON ({exc}); try again"
        name = data.get("action", data.get("name")) if isinstance(data, dict) else None
        params = data.get("params", {}) if isinstance(data, dict) else None
        if not isinstance(name, str) or not isinstance(params, dict):
            return None, 'the JSON needs "action" (a name) and optionally "params" (an object)'
        return Action(name, params, proposed.thought), ""
    if any(c.isspace() for c in text):
        return None, "an action name has no spaces; use JSON for parameters"
    return Action(text, dict(proposed.params) if text == proposed.name else {}, proposed.thought), ""


@dataclass
class ProgrammaticInputHandler:
    """Answers from code, for tests and other front ends.

    ``actions`` and ``scores`` are each a callable (which may return an awaitable) or a list of
    replies served in order; a list that runs out raises ``ScriptExhaustedError`` (like
    ``ScriptedModel``). Action replies: a ``Verdict``, an ``Action`` (run it instead), "approve" or
    "reject". Score replies: None (keep), a score, or (score, note). None for either: approve every
    action, keep every score. The requests are recorded in ``action_requests`` / ``score_requests``.
    """

    actions: Callable[[ActionRequest], Any] | Sequence[Any] | None = None
    scores: Callable[[Step], Any] | Sequence[Any] | None = None
    action_requests: list[ActionRequest] = field(default_factory=list)
    score_requests: list[Step] = field(default_factory=list)
    _next_action: int = 0
    _next_score: int = 0

    def review_action(self, request: ActionRequest) -> Any:
        self.action_requests.append(request)
        if self.actions is None:
            return Verdict.approve()
        if callable(self.actions):
            return self.actions(request)
        if self._next_action >= len(self.actions):
            raise ScriptExhaustedError(
                f"ProgrammaticInputHandler has {len(self.actions)} action replies but was asked about "
                f"action #{self._next_action + 1} ({describe_action(request.action)} at step {request.step})"
            )
        self._next_action += 1
        return self.actions[self._next_action - 1]

    def review_score(self, step: Step) -> Any:
        self.score_requests.append(step)
        if self.scores is None:
            return None
        if callable(self.scores):
            return self.scores(step)
        if self._next_score >= len(self.scores):
            raise ScriptExhaustedError(
                f"ProgrammaticInputHandler has {len(self.scores)} score replies but was asked about "
                f"score #{self._next_score + 1} (step {step.index})"
            )
        self._next_score += 1
        return self.scores[self._next_score - 1]

    def assert_consumed(self) -> None:
        """Raise when scripted replies were left unused."""
        left = []
        if isinstance(self.actions, Sequence) and self._next_action < len(self.actions):
            left.append(f"{len(self.actions) - self._next_action} action replies")
        if isinstance(self.scores, Sequence) and self._next_score < len(self.scores):
            left.append(f"{len(self.scores) - self._next_score} score replies")
        if left:
            raise ScriptExhaustedError(f"ProgrammaticInputHandler left {' and '.join(left)} unconsumed")
