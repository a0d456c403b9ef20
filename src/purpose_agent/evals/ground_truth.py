"""Critic-off: Φ from the environment's ground truth alone (Φ = 10 · outcome), no model call."""

from __future__ import annotations

from typing import Any

from purpose_agent.core.environment import Environment
from purpose_agent.core.types import Action, Score, State
from purpose_agent.critic.purpose_function import CriticCall, NoModel, PurposeFunction


class GroundTruthPurposeFunction(PurposeFunction):
    """A Purpose Function that never calls a model: Φ(s) = 10 · ``env.outcome(s)`` (0 when
    the environment does not know). Pass it as ``Orchestrator(..., purpose_function=...)``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(
            NoModel("ground-truth", "critic off: the ground-truth Purpose Function never calls a model"),
            cache=False,
        )
        self.environment = environment

    async def ascore(
        self,
        purpose: str,
        state: State,
        previous: State | None = None,
        action: Action | None = None,
        **_: Any,
    ) -> CriticCall:
        try:
            outcome = self.environment.outcome(state)
        except Exception:
            outcome = None
        if outcome is None:
            return CriticCall(
                Score(0.0, "no ground truth for this state", "", 0.3, False, "ground_truth"), None
            )
        phi = 10.0 * max(0.0, min(1.0, float(outcome)))
        self.count_ground_truth()
        return CriticCall(
            Score(phi, f"ground truth outcome {outcome:.2f}", "", 1.0, False, "ground_truth"), None
        )
