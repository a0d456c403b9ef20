"""Evaluation: benchmark tasks with splits, a runner that compares the no-memory floor, the
ungated and reflection baselines, the full default learning path and its ablations, bootstrap
confidence intervals, resume from a ledger, JSON / Markdown / PNG reports."""

from __future__ import annotations

from purpose_agent.evals.conditions import (
    ABLATIONS,
    BASELINES,
    CRITIC_OFF,
    EXAMPLES_ONLY,
    FAILURES_ONLY,
    FULL,
    NO_MEMORY,
    PROCEDURES_ONLY,
    REFLECTION,
    STANDARD,
    UNGATED,
    Condition,
    OrchestratorSettings,
)
from purpose_agent.evals.ground_truth import GroundTruthPurposeFunction
from purpose_agent.evals.ledger import Ledger, UnitKey
from purpose_agent.evals.report import BenchmarkResult
from purpose_agent.evals.runner import BenchmarkConfig, BenchmarkRunner
from purpose_agent.evals.stats import Estimate, bootstrap, paired
from purpose_agent.evals.tasks import BenchmarkTask

__all__ = [
    "ABLATIONS",
    "BASELINES",
    "CRITIC_OFF",
    "EXAMPLES_ONLY",
    "FAILURES_ONLY",
    "FULL",
    "NO_MEMORY",
    "PROCEDURES_ONLY",
    "REFLECTION",
    "STANDARD",
    "UNGATED",
    "BenchmarkConfig",
    "BenchmarkResult",
    "BenchmarkRunner",
    "BenchmarkTask",
    "Condition",
    "Estimate",
    "GroundTruthPurposeFunction",
    "Ledger",
    "OrchestratorSettings",
    "UnitKey",
    "bootstrap",
    "paired",
]
