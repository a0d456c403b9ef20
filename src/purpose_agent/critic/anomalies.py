"""Anomalies in the critic's judgments, and the weight a flagged judgment keeps.

- ``phi_jump_no_change``: Φ moved although the state did not change.
- ``oscillation``: Φ goes up and down repeatedly while the run revisits the same states.
- ``ground_truth_disagreement``: |Φ/10 − outcome| above the tolerance.
- ``critic_drift``: a re-score of a known state moved beyond the cache's tolerance.
- ``manipulation_claim``: the actor wrote claims aimed at the critic into the state.

A step's weight is its confidence times ``penalty`` per anomaly; Φ may decide success (when
there is no ground truth) only with a weight of at least ``min_phi_weight``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

NO_CHANGE_JUMP = "phi_jump_no_change"
OSCILLATION = "oscillation"
GT_DISAGREEMENT = "ground_truth_disagreement"
CRITIC_DRIFT = "critic_drift"
MANIPULATION = "manipulation_claim"

#: Φ sources that are the critic's own judgment (measured against ground truth).
CRITIC_SOURCES = ("critic", "cache", "unchanged", "fallback")


@dataclass(frozen=True)
class AnomalyPolicy:
    """Thresholds of the anomaly checks and the down-weighting of flagged steps."""

    disagreement: float = 0.5  # |Φ/10 − outcome| above this disagrees with ground truth
    jump_tolerance: float = 0.0  # Φ change allowed on an unchanged state
    oscillation_window: int = 6  # recent transitions looked at
    oscillation_reversals: int = 2  # direction changes of Φ within the window
    penalty: float = 0.25  # weight multiplier per anomaly
    min_phi_weight: float = 0.5  # least weight for Φ to decide success without ground truth

    def weight(self, confidence: float, anomalies: Sequence[str]) -> float:
        return max(0.0, min(1.0, confidence)) * self.penalty ** len(set(anomalies))


def oscillates(history: Sequence[tuple[str, float]], policy: AnomalyPolicy) -> bool:
    """``history`` is (state hash, Φ) from s0 to the newest state. True when the newest state
    was visited before and Φ changed direction at least ``oscillation_reversals`` times over
    the last ``oscillation_window`` transitions."""
    if len(history) < 3:
        return False
    newest = history[-1][0]
    if all(h != newest for h, _ in history[:-1]):
        return False
    recent = history[-(policy.oscillation_window + 1) :]
    deltas = [b[1] - a[1] for a, b in itertools.pairwise(recent)]
    signs = [1 if d > 0 else -1 for d in deltas if d != 0]
    reversals = sum(1 for a, b in itertools.pairwise(signs) if a != b)
    return reversals >= policy.oscillation_reversals


def detect(
    policy: AnomalyPolicy,
    *,
    history: Sequence[tuple[str, float]],
    unchanged: bool,
    phi_before: float,
    phi_after: float,
    outcome: float | None,
    source: str,
    found: Sequence[str] = (),
) -> tuple[str, ...]:
    """The anomalies of one transition; ``history`` ends with the new (hash, Φ); ``found``
    are the ones the critic reported while scoring."""
    out = list(found)
    if unchanged and abs(phi_after - phi_before) > policy.jump_tolerance:
        out.append(NO_CHANGE_JUMP)
    if oscillates(history, policy):
        out.append(OSCILLATION)
    if (
        outcome is not None
        and source in CRITIC_SOURCES
        and abs(phi_after / 10.0 - outcome) > policy.disagreement
    ):
        out.append(GT_DISAGREEMENT)
    return tuple(dict.fromkeys(out))
