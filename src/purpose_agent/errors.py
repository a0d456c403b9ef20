"""One exception root, with developer errors, run failures and control-flow signals kept apart."""

from __future__ import annotations


class PurposeAgentError(Exception):
    """Root of every error this library raises on purpose."""


# --- developer / configuration errors -------------------------------------------------------
class ConfigurationError(PurposeAgentError, ValueError):
    """Something the developer passed is wrong (a bad spec string, a bad argument)."""


class UnknownProviderError(ConfigurationError):
    """A model spec names a provider that does not exist."""


class MissingExtraError(PurposeAgentError, ImportError):
    """An optional dependency is missing; the message names the extra that installs it."""

    def __init__(self, package: str, extra: str, purpose: str = "") -> None:
        what = f" for {purpose}" if purpose else ""
        super().__init__(
            f"the optional package {package!r} is needed{what}; install it with: "
            f"pip install 'purpose-agent[{extra}]'"
        )
        self.package = package
        self.extra = extra


class ModelFileError(ConfigurationError):
    """A local model file is missing or corrupt; the message names the fix."""


# --- run failures --------------------------------------------------------------------------
class BackendError(PurposeAgentError):
    """A model backend failed after its retries (transport, server error, timeout)."""


class AuthenticationError(BackendError):
    """The provider rejected the API key (HTTP 401/403)."""


class ModelNotFoundError(BackendError):
    """The provider does not know the requested model (HTTP 404)."""


class NetworkBlockedError(BackendError):
    """A network model was called while the network is blocked (tests set PURPOSE_AGENT_OFFLINE=1)."""


class RunFailedError(PurposeAgentError):
    """A run stopped because its model backend failed; ``.result`` keeps the partial run."""

    def __init__(self, result: object, cause: BaseException) -> None:
        steps = len(getattr(result, "steps", []))
        super().__init__(f"run {getattr(result, 'run_id', '?')} failed after {steps} steps: {cause!r}")
        self.result = result


class WorkerLostError(PurposeAgentError):
    """A run fanned out to a Ray worker returned nothing: its worker process died, and died again
    on the retry. The message names the run; nothing of it was recorded."""


class ScriptExhaustedError(PurposeAgentError, AssertionError):
    """A ScriptedModel was called more times than it had replies, or left replies unconsumed."""


class ReadOnlyModeError(PurposeAgentError, PermissionError):
    """A write was attempted in a mode that forbids it (EVAL_TEST writes nothing)."""


class StoreCorruptError(PurposeAgentError):
    """A memory store file cannot be opened or fails its integrity check."""


class StorePathError(ConfigurationError):
    """A memory store path cannot hold a store (a directory, or a file that cannot be created)."""


class StoreUnavailableError(PurposeAgentError, ConnectionError):
    """A memory store's database server cannot be reached or refused the connection; the message
    names the host and database (never the password)."""


class ToolError(PurposeAgentError):
    """A tool was misconfigured (bad definition); failed calls return ToolResult(ok=False) instead."""


class PlanError(PurposeAgentError):
    """A tool plan is invalid: a cycle, an unknown tool, a dangling reference."""
