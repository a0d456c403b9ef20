"""Critic–ground-truth agreement over many runs (a benchmark), and the model calls saved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from purpose_agent.core.types import TaskResult
from purpose_agent.critic.anomalies import CRITIC_SOURCES


@dataclass(frozen=True)
class AgreementReport:
    """Agreement of the critic's verdicts (Φ ≥ threshold) with ground truth (outcome ≥ the
    success level) over the steps it judged; ``mae`` is the mean |Φ/10 − outcome|.
    ``by_cache`` / ``by_ground_truth`` count steps whose Φ needed no model call."""

    runs: int
    judged: int
    agreeing: int
    rate: float | None  # over judged steps (micro)
    run_mean: float | None  # mean of the per-run rates (macro)
    mae: float | None
    by_cache: int
    by_ground_truth: int
    by_human: int

    def summary(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        mae = "n/a" if self.mae is None else f"{self.mae:.3f}"
        return (
            f"critic agreement {pct(self.rate)} ({self.agreeing}/{self.judged} steps, {self.runs} runs; "
            f"per-run mean {pct(self.run_mean)}); MAE |Φ/10−gt| {mae}; calls saved: "
            f"{self.by_cache} by cache, {self.by_ground_truth} by ground truth"
        )


def benchmark_agreement(
    results: Sequence[TaskResult], phi_threshold: float = 9.0, success_outcome: float = 1.0
) -> AgreementReport:
    """Aggregate critic–ground-truth agreement over ``results`` (steps of the initial state
    are not steps, so Φ(s0) is not counted)."""
    judged = agree = 0
    errors: list[float] = []
    per_run: list[float] = []
    cache = gt = human = 0
    for r in results:
        votes = []
        for s in r.steps:
            cache += s.phi_source == "cache"
            gt += s.phi_source == "ground_truth"
            human += s.phi_source == "human"
            if s.outcome is None or s.phi_source not in CRITIC_SOURCES:
                continue
            ok = (s.phi_after >= phi_threshold) == (s.outcome >= success_outcome)
            votes.append(ok)
            errors.append(abs(s.phi_after / 10.0 - s.outcome))
        judged += len(votes)
        agree += sum(votes)
        if votes:
            per_run.append(sum(votes) / len(votes))
    return AgreementReport(
        runs=len(results),
        judged=judged,
        agreeing=agree,
        rate=agree / judged if judged else None,
        run_mean=fmean(per_run) if per_run else None,
        mae=fmean(errors) if errors else None,
        by_cache=cache,
        by_ground_truth=gt,
        by_human=human,
    )
