"""Purpose Agent: agents that get better with experience, safely and measurably.

The top-level namespace holds the public nouns (``__all__``, checked by
tests/unit/test_public_api.py); everything else lives in subpackages, one a layer or a
concern (docs/ARCHITECTURE.md): ``core`` (types, events), ``models``, ``tools``, ``critic``,
``memory``, ``envs``, ``loop`` (the Orchestrator), ``agents``, ``runtime``, ``evals``.
"""

from purpose_agent.agents import (
    BEGIN,
    DONE_SIGNAL,
    AgentSpec,
    AgentTeam,
    Conversation,
    Council,
    Flow,
    RunResult,
    Spark,
    Team,
    Vault,
    purpose,
    swarm,
)
from purpose_agent.core.environment import ActionSpec, Environment, SimpleEnvironment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Action, State, TaskResult
from purpose_agent.critic.purpose_function import PurposeFunction
from purpose_agent.errors import PurposeAgentError
from purpose_agent.evals import BenchmarkRunner, BenchmarkTask
from purpose_agent.loop.learning import Learning
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.memory.immune import ImmuneSystem
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, MemoryStatus
from purpose_agent.models.base import Backend, Message
from purpose_agent.models.local import LocalBackend
from purpose_agent.models.ollama import OllamaBackend
from purpose_agent.models.openai_compat import OpenAICompatibleBackend
from purpose_agent.models.registry import backend_registry, create_slm_backend, resolve_backend
from purpose_agent.models.testing import FunctionModel, ScriptedModel
from purpose_agent.runtime.cost import CostTracker
from purpose_agent.runtime.hitl import CLIInputHandler, HITLOrchestrator
from purpose_agent.runtime.streaming import AsyncOrchestrator
from purpose_agent.tools import (
    CalculatorTool,
    FunctionTool,
    LLMCompiler,
    PythonExecTool,
    ReadFileTool,
    Tool,
    ToolRegistry,
    WriteFileTool,
)

__version__ = "0.1.0"

__all__ = [
    "BEGIN",
    "DONE_SIGNAL",
    "Action",
    "ActionSpec",
    "AgentSpec",
    "AgentTeam",
    "AsyncOrchestrator",
    "Backend",
    "BenchmarkRunner",
    "BenchmarkTask",
    "CLIInputHandler",
    "CalculatorTool",
    "Conversation",
    "CostTracker",
    "Council",
    "Environment",
    "Flow",
    "FunctionModel",
    "FunctionTool",
    "HITLOrchestrator",
    "ImmuneSystem",
    "LLMCompiler",
    "Learning",
    "LocalBackend",
    "MemoryKind",
    "MemoryStatus",
    "MemoryStore",
    "Message",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "Orchestrator",
    "PurposeAgentError",
    "PurposeFunction",
    "PythonExecTool",
    "ReadFileTool",
    "RunMode",
    "RunResult",
    "ScriptedModel",
    "SimpleEnvironment",
    "Spark",
    "State",
    "TaskResult",
    "Team",
    "Tool",
    "ToolRegistry",
    "Vault",
    "WriteFileTool",
    "backend_registry",
    "create_slm_backend",
    "purpose",
    "resolve_backend",
    "swarm",
]
