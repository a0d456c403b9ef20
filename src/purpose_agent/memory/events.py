"""Events of the learning path: one per gated candidate (with its numbers and cost), one per
training attempt. Promotions and rejections are also reported as ``MemoryDecided``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from purpose_agent.core.events import Event


@dataclass(frozen=True, kw_only=True)
class MemoryGated(Event):
    """The gate's decision on one candidate: promoted, rejected or deferred (kept quarantined)."""

    kind: Literal["gate"] = "gate"
    memory_id: str = ""
    action: str = ""
    reason: str = ""
    pairs: int = 0
    new_pairs: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    gain: float | None = None
    p_value: float | None = None
    no_ground_truth: int = 0
    runs: int = 0
    calls: int | None = 0
    seconds: float = 0.0
    baseline_reused: int = 0


@dataclass(frozen=True, kw_only=True)
class TrainingAttempt(Event):
    """One attempt of a training task under ``Learning(train_attempts=k)``."""

    kind: Literal["training_attempt"] = "training_attempt"
    attempt: int = 1
    total: int = 1
    success: bool = False
    outcome: float | None = None
    retry: bool = False  # another attempt follows
    learned: bool = False  # candidates were learned from this attempt
