"""The records of the loop: State, Action, Score, Step, TaskResult."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one call. ``processed_prompt_tokens`` is what the backend actually
    evaluated after KV-prefix reuse (None when the backend cannot tell)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    processed_prompt_tokens: int | None = None
    calls: int = 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        if self.processed_prompt_tokens is None and other.processed_prompt_tokens is None:
            processed = None
        else:
            processed = (self.processed_prompt_tokens or 0) + (other.processed_prompt_tokens or 0)
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            processed,
            self.calls + other.calls,
        )


DONE = "DONE"


def canonical_json(value: Any) -> str:
    """A stable text form (sorted keys, no whitespace variance) for hashing."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class State:
    """What the agent sees. ``data`` is the environment's state; ``summary`` is its text form."""

    data: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""

    def describe(self, limit: int = 4000) -> str:
        text = self.summary or canonical_json(dict(self.data))
        return text if len(text) <= limit else text[: limit - 20] + "\n…[truncated]"

    def fingerprint(self) -> str:
        """A canonical hash of the state (used by the critic cache and anomaly checks)."""
        return hashlib.sha256(canonical_json([dict(self.data), self.summary]).encode()).hexdigest()


@dataclass(frozen=True)
class Action:
    """One action chosen by the actor: a name, its parameters, and the thought behind it."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    thought: str = ""

    @property
    def is_done(self) -> bool:
        return self.name == DONE

    def to_dict(self) -> dict[str, Any]:
        return {"thought": self.thought, "action": self.name, "params": dict(self.params)}


@dataclass(frozen=True)
class Score:
    """The critic's judgment of one state."""

    phi: float
    reason: str = ""
    evidence: str = ""
    confidence: float = 1.0
    cached: bool = False
    source: str = "critic"  # critic | cache | ground_truth | human | fallback
    anomalies: tuple[str, ...] = ()  # found while scoring, e.g. critic_drift, manipulation_claim


@dataclass(frozen=True)
class Step:
    """One transition s -> a -> s' with its scores and shaped reward r = Φ(s') − Φ(s)."""

    index: int
    action: Action
    state_before: State
    state_after: State
    phi_before: float
    phi_after: float
    observation: str = ""
    evidence: str = ""
    confidence: float = 1.0
    anomalies: tuple[str, ...] = ()
    usage: Usage = field(default_factory=lambda: Usage(calls=0))
    model_time_s: float = 0.0
    step_time_s: float = 0.0
    outcome: float | None = None  # ground truth of state_after, when known
    env_time_s: float = 0.0  # time inside the environment (or tool) executing the action
    weight: float = 1.0  # trust in phi_after: confidence, down-weighted for each anomaly
    phi_source: str = "critic"  # critic | cache | unchanged | ground_truth | human | fallback

    @property
    def delta(self) -> float:
        return self.phi_after - self.phi_before

    @property
    def overhead_s(self) -> float:
        """Framework time of the step: wall time minus model and environment time."""
        return max(0.0, self.step_time_s - self.model_time_s - self.env_time_s)

    @property
    def reward(self) -> float:
        """Potential-based shaped reward (Ng et al., 1999)."""
        return self.delta

    @property
    def weighted_reward(self) -> float:
        """The shaped reward scaled by the trust in the judgment behind it."""
        return self.weight * self.delta


@dataclass
class TaskResult:
    """The outcome of ``Orchestrator.run_task``."""

    purpose: str
    success: bool
    final_phi: float
    steps: list[Step]
    final_state: State
    outcome: float | None = None  # ground truth when the environment has it
    # done | terminal | solved | phi_threshold | loop (nothing new, see Orchestrator) | max_steps
    # | "error: <type>" (the run failed; it is never a success)
    stop_reason: str = ""
    usage: Usage = field(default_factory=lambda: Usage(calls=0))
    wall_time_s: float = 0.0
    run_id: str = ""
    trace_path: str | None = None
    memory_ids: tuple[str, ...] = ()
    critic_agreement: float | None = None
    final_weight: float = 1.0  # trust in final_phi (see Step.weight)

    @property
    def total_reward(self) -> float:
        return sum(s.reward for s in self.steps)

    @property
    def credit_outcome(self) -> float:
        """The outcome to credit memories with: ground truth when known, else Φ/10 pulled
        toward the neutral 0.5 as far as the final judgment is distrusted."""
        if self.outcome is not None:
            return self.outcome
        return 0.5 + self.final_weight * (self.final_phi / 10.0 - 0.5)

    def summary(self) -> str:
        verdict = "SUCCESS" if self.success else "FAILED"
        gt = f", ground truth {self.outcome:.2f}" if self.outcome is not None else ""
        lines = [
            f"{verdict}: {self.purpose[:80]!r} in {len(self.steps)} steps, Φ={self.final_phi:.1f}{gt} "
            f"(stop: {self.stop_reason}; {self.usage.calls} model calls, {self.usage.total_tokens} tokens, "
            f"{self.wall_time_s:.1f}s)"
        ]
        for s in self.steps:
            params = canonical_json(dict(s.action.params))
            lines.append(
                f"  {s.index:>2}. {s.action.name}({params[:60]}) Φ {s.phi_before:.1f} → {s.phi_after:.1f}"
                + (f" [{', '.join(s.anomalies)}]" if s.anomalies else "")
            )
        return "\n".join(lines)

    def trajectory_text(self, limit: int = 6000) -> str:
        """A compact text form of the run for the distiller."""
        parts = [f"PURPOSE: {self.purpose}", f"RESULT: {'success' if self.success else 'failure'}"]
        for s in self.steps:
            parts.append(
                f"STEP {s.index}: thought={s.action.thought[:200]!r} action={s.action.name} "
                f"params={canonical_json(dict(s.action.params))[:400]} Φ {s.phi_before:.1f}->{s.phi_after:.1f} "
                f"observation={s.observation[:300]!r}"
            )
        text = "\n".join(parts)
        return text if len(text) <= limit else text[:limit] + "\n…"
