"""The old import path of ``GroundTruthPurposeFunction`` (``purpose_agent.evals.ground_truth``)."""

from purpose_agent.evals.ground_truth import GroundTruthPurposeFunction

__all__ = ["GroundTruthPurposeFunction"]
