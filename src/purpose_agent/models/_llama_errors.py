"""The errors of the llama-server engine (``purpose_agent.models.llama_server``), one module so
every part of it raises the same classes."""

from __future__ import annotations

from purpose_agent.errors import BackendError, ConfigurationError

__all__ = [
    "ContextOverflowError",
    "CoresBusyError",
    "LlamaServerError",
    "PortInUseError",
    "ServerBinaryNotFoundError",
]


class LlamaServerError(BackendError):
    """The llama-server child failed to start, died, or refused a request."""


class ServerBinaryNotFoundError(LlamaServerError, ConfigurationError):
    """No llama-server binary was found; the message lists the places looked at and the fix."""


class PortInUseError(LlamaServerError, ConfigurationError):
    """The requested port on 127.0.0.1 is taken by another process."""


class ContextOverflowError(LlamaServerError):
    """The request (prompt + max_tokens) does not fit in a slot's context."""


class CoresBusyError(LlamaServerError, ConfigurationError):
    """Another process has a model loaded on the cores this server would use."""
