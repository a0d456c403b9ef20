"""Events of the critic: a person's override of a score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from purpose_agent.core.events import Event


@dataclass(frozen=True, kw_only=True)
class ScoreOverridden(Event):
    """A person replaced Φ of a state; ``memory_id`` is the calibration memory it became."""

    kind: Literal["score_override"] = "score_override"
    step: int = 0
    old_phi: float = 0.0
    phi: float = 0.0
    note: str = ""
    steps_changed: tuple[int, ...] = ()
    memory_id: str | None = None
    memory_status: str = ""  # promoted | rejected | not stored: <why>
