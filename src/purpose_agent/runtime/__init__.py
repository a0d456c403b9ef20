"""Runtime services around the loop: human in the loop with checkpoints (``hitl``), streaming
runs (``streaming``: ``AsyncOrchestrator``), cost totals (``cost``) and OpenTelemetry spans
(``otel``, extra ``otel``)."""

from purpose_agent.runtime.cost import CostSummary as CostSummary
from purpose_agent.runtime.cost import CostTracker as CostTracker
from purpose_agent.runtime.hitl import ActionRequest as ActionRequest
from purpose_agent.runtime.hitl import ActionReviewed as ActionReviewed
from purpose_agent.runtime.hitl import CheckpointError as CheckpointError
from purpose_agent.runtime.hitl import CLIInputHandler as CLIInputHandler
from purpose_agent.runtime.hitl import HITLOrchestrator as HITLOrchestrator
from purpose_agent.runtime.hitl import InputHandler as InputHandler
from purpose_agent.runtime.hitl import ProgrammaticInputHandler as ProgrammaticInputHandler
from purpose_agent.runtime.hitl import RunResumed as RunResumed
from purpose_agent.runtime.hitl import Verdict as Verdict
from purpose_agent.runtime.streaming import AsyncOrchestrator as AsyncOrchestrator
from purpose_agent.runtime.streaming import EventStream as EventStream
