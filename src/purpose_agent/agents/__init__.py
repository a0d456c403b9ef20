"""Agents and how they work together: ``purpose`` / ``Team`` (a team from a description),
``Spark`` (one learning agent), ``Flow`` (a graph of nodes with checkpoints), ``swarm``
(concurrent runs), ``Council`` and ``Conversation`` (deliberation, dialogue), ``Vault``
(documents an agent can search and cite), ``AgentSpec`` / ``AgentTeam`` (specialists)."""

from __future__ import annotations

from purpose_agent.agents.agent_team import AgentSpec, AgentTeam, LearningReport, LessonCredit
from purpose_agent.agents.conversation import Conversation, ConversationResult
from purpose_agent.agents.council import Council, CouncilResult, Message
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
from purpose_agent.agents.result import Cost, RunResult, Turn
from purpose_agent.agents.spark import Spark
from purpose_agent.agents.swarm import aswarm, swarm
from purpose_agent.agents.team import Team, TeamStatus, purpose
from purpose_agent.agents.vault import Hit, UnreadableDocumentError, Vault, VaultError, VaultWarning

__all__ = [
    "BEGIN",
    "DONE_SIGNAL",
    "AgentSpec",
    "AgentTeam",
    "Conversation",
    "ConversationResult",
    "Cost",
    "Council",
    "CouncilResult",
    "Flow",
    "FlowBuildError",
    "FlowError",
    "FlowResult",
    "FlowStepLimitError",
    "Hit",
    "LearningReport",
    "LessonCredit",
    "Message",
    "NodeRecord",
    "RunInfo",
    "RunResult",
    "Spark",
    "Team",
    "TeamStatus",
    "Turn",
    "UnreadableDocumentError",
    "Vault",
    "VaultError",
    "VaultWarning",
    "aswarm",
    "purpose",
    "swarm",
]
