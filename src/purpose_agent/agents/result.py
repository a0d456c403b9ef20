"""What the user layer returns: ``RunResult`` (one task, by one agent or a team), ``Turn``
(one agent's contribution) and ``Cost`` (model calls and tokens)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core.types import TaskResult
from purpose_agent.models.base import Usage

__all__ = ["Cost", "RunResult", "Turn"]

_FREE_PREFIXES = ("local", "ollama", "scripted", "function")  # models on this machine cost no money


@dataclass(frozen=True)
class Cost:
    """Model calls and tokens of a run. ``usd`` is 0.0 for local models (embedded, Ollama) and
    the test models; None when a cloud model was used (no price table is applied here)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float | None = 0.0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def of(cls, usage: Usage, model: str = "local") -> Cost:
        free = model.startswith(_FREE_PREFIXES)
        return cls(usage.calls, usage.prompt_tokens, usage.completion_tokens, 0.0 if free else None)

    def __add__(self, other: Cost) -> Cost:
        usd = None if self.usd is None or other.usd is None else self.usd + other.usd
        return Cost(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            usd,
        )

    def __str__(self) -> str:
        money = "" if self.usd is None else f", ${self.usd:.4f}"
        calls = f"{self.calls} model call" + ("" if self.calls == 1 else "s")
        return f"{calls}, {self.tokens} tokens{money}"


@dataclass(frozen=True)
class Turn:
    """One agent's part of a run: what it was asked, what it answered, how it was judged."""

    agent: str
    role: str
    task: str
    output: str
    success: bool
    phi: float
    steps: int = 0
    cost: Cost = field(default_factory=Cost)
    run_id: str = ""
    trace_path: str | None = None
    memory_ids: tuple[str, ...] = ()
    outcome: float | None = None  # ground truth of the run, when the environment had one
    sources: tuple[str, ...] = ()  # the passages the output cites ("source#chunk")

    @classmethod
    def of(cls, agent: str, role: str, task: str, output: str, result: TaskResult, model: str) -> Turn:
        return cls(
            agent,
            role,
            task,
            output,
            result.success,
            result.final_phi,
            len(result.steps),
            Cost.of(result.usage, model),
            result.run_id,
            result.trace_path,
            tuple(result.memory_ids),
            result.outcome,
        )


@dataclass(frozen=True)
class RunResult:
    """The result of ``Spark.run``, ``Team.run`` and ``AgentTeam.run_task``.

    ``success`` comes from ground truth when the run had one (for code: the tester's tests,
    run in the sandbox), else from the critic's Φ; ``decided_by`` says which ("tests",
    "ground_truth", "critic", or "error" when the run failed, with ``error`` set). ``phi`` is the
    deciding run's final Φ (0–10); ``steps`` counts every action taken; ``trace_path`` is the
    JSONL trace of the deciding run (``turns`` keeps each agent's own). ``sources`` names the
    passages (``source#chunk``) the output cites, when a tool such as a Vault's returned them."""

    task: str
    output: str
    success: bool
    phi: float
    steps: int
    cost: Cost
    trace_path: str | None
    turns: tuple[Turn, ...] = ()
    decided_by: str = "critic"
    agent: str = ""
    error: str | None = None
    tests: tuple[str, ...] = ()
    tests_passed: int | None = None
    sources: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """The run finished without an error (it may still have failed its purpose)."""
        return self.error is None

    @property
    def memory_ids(self) -> tuple[str, ...]:
        """The lessons that were in some agent's prompt during this run."""
        return tuple(dict.fromkeys(mid for t in self.turns for mid in t.memory_ids))

    @property
    def run_ids(self) -> tuple[str, ...]:
        return tuple(t.run_id for t in self.turns if t.run_id)

    @classmethod
    def from_turns(
        cls,
        task: str,
        turns: Sequence[Turn],
        *,
        deciding: Turn,
        decided_by: str,
        success: bool | None = None,
        output: str | None = None,
        agent: str = "",
        tests: Sequence[str] = (),
        tests_passed: int | None = None,
    ) -> RunResult:
        cost = Cost()
        for t in turns:
            cost = cost + t.cost
        return cls(
            task,
            deciding.output if output is None else output,
            deciding.success if success is None else success,
            deciding.phi,
            sum(t.steps for t in turns),
            cost,
            deciding.trace_path,
            tuple(turns),
            decided_by,
            agent or deciding.agent,
            tests=tuple(tests),
            tests_passed=tests_passed,
            sources=deciding.sources,
        )

    @classmethod
    def failed(
        cls, task: str, error: BaseException | str, *, agent: str = "", turns: Sequence[Turn] = ()
    ) -> RunResult:
        """An error result: the run raised; ``error`` names the exception."""
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        cost = Cost()
        for t in turns:
            cost = cost + t.cost
        trace = turns[-1].trace_path if turns else None
        return cls(
            task, "", False, 0.0, sum(t.steps for t in turns), cost, trace, tuple(turns), "error", agent, text
        )

    def __str__(self) -> str:
        if self.error is not None:
            head = f"ERROR ({self.agent or 'agent'}): {self.error}"
        else:
            verdict = "SUCCESS" if self.success else "FAILED"
            if self.decided_by == "tests" and self.tests_passed is not None:
                why = f"tests {self.tests_passed}/{len(self.tests)} passed"
            else:
                why = f"decided by {self.decided_by}"
            steps = f"{self.steps} step" + ("" if self.steps == 1 else "s")
            head = f"{verdict} ({why}), Φ={self.phi:.1f}, {steps}, {self.cost}"
        lines = [head]
        if self.output:
            lines.append(self.output)
        if len(self.turns) > 1:
            lines.append(
                "turns: " + " → ".join(f"{t.agent}{'' if t.success else ' (✗)'}" for t in self.turns)
            )
        if self.trace_path:
            lines.append(f"trace: {self.trace_path}")
        return "\n".join(lines)


def output_of(result: TaskResult) -> str:
    """The answer of a run: DONE's answer, else the last submitted code, else the final state."""
    data = result.final_state.data
    for step in reversed(result.steps):
        if step.action.is_done and str(step.action.params.get("answer", "")).strip():
            return str(step.action.params["answer"])
    if isinstance(data.get("code"), str) and data["code"].strip():
        return str(data["code"])
    if isinstance(data.get("answer"), str):
        return str(data["answer"])
    return result.final_state.describe(2000)


def as_text(value: Any) -> str:
    """The text of whatever an agent returned (a RunResult, a TaskResult, a str...)."""
    if isinstance(value, str):
        return value
    if isinstance(value, TaskResult):
        return output_of(value)
    out = getattr(value, "output", None)
    if isinstance(out, str):
        return out
    return str(value)
