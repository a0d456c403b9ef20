"""Model backends: the protocol, the embedded local model, HTTP backends, test models."""

from purpose_agent.models.base import Backend, BaseBackend, Completion, Message, Usage
from purpose_agent.models.local import LocalBackend
from purpose_agent.models.ollama import OllamaBackend
from purpose_agent.models.openai_compat import OpenAICompatibleBackend
from purpose_agent.models.registry import backend_registry, create_slm_backend, resolve_backend
from purpose_agent.models.testing import FunctionModel, ScriptedModel

__all__ = [
    "Backend",
    "BaseBackend",
    "Completion",
    "FunctionModel",
    "LocalBackend",
    "Message",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "ScriptedModel",
    "Usage",
    "backend_registry",
    "create_slm_backend",
    "resolve_backend",
]
