"""Agents and how they work together: ``Flow`` (a graph of nodes with checkpoints) and ``Vault``
(documents an agent can search and cite)."""

from __future__ import annotations

from purpose_agent.agents.flow import (
    BEGIN,
    DONE_SIGNAL,
    Flow,
    FlowBuildError,
    FlowError,
    FlowResult,
    FlowStepLimitError,
    NodeRecord,
    RunInfo,
)
from purpose_agent.agents.vault import Hit, UnreadableDocumentError, Vault, VaultError, VaultWarning

__all__ = [
    "BEGIN",
    "DONE_SIGNAL",
    "Flow",
    "FlowBuildError",
    "FlowError",
    "FlowResult",
    "FlowStepLimitError",
    "Hit",
    "NodeRecord",
    "RunInfo",
    "UnreadableDocumentError",
    "Vault",
    "VaultError",
    "VaultWarning",
]
