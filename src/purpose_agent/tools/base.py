"""The tool protocol, its result record and a base class with validation and timeouts.

A tool call never raises for a bad call: invalid arguments, a timeout, a blocked action or an
exception inside the tool become ``ToolResult(ok=False, error=...)`` with a message the model can
read and act on.
"""

from __future__ import annotations

import abc
import asyncio
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from purpose_agent.errors import ToolError
from purpose_agent.models.base import run_sync
from purpose_agent.tools._validate import validate

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The outcome of one tool call. ``ok=False`` always carries an ``error`` sentence."""

    ok: bool
    output: str = ""
    error: str | None = None
    data: Any = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def success(cls, output: str = "", data: Any = None, **meta: Any) -> ToolResult:
        return cls(True, output, None, data, dict(meta))

    @classmethod
    def failure(cls, error: str, output: str = "", **meta: Any) -> ToolResult:
        return cls(False, output, error, None, dict(meta))

    def for_model(self) -> str:
        """The text a model sees: the output, or ``ERROR: ...``."""
        return self.output if self.ok else f"ERROR: {self.error}"


@runtime_checkable
class Tool(Protocol):
    """What an agent needs from a tool."""

    name: str
    description: str
    parameters: dict[str, Any]
    timeout: float | None

    def run(self, **kwargs: Any) -> ToolResult: ...

    async def arun(self, **kwargs: Any) -> ToolResult: ...


def check_tool_name(name: str) -> str:
    """Return ``name`` if it is a valid tool name, else raise ToolError."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ToolError(
            f"invalid tool name {name!r}: use letters, digits, '_', '-' or '.', starting with a letter"
        )
    return name


def check_parameters(parameters: Mapping[str, Any], name: str) -> dict[str, Any]:
    """Return a copy of ``parameters`` if it is an object schema, else raise ToolError."""
    if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
        raise ToolError(f"tool {name!r}: parameters must be a JSON schema with type 'object'")
    return dict(parameters)


def to_result(value: Any) -> ToolResult:
    """Turn whatever a tool body returned into a ToolResult."""
    if isinstance(value, ToolResult):
        return value
    if value is None:
        return ToolResult.success("", None)
    if isinstance(value, str):
        return ToolResult.success(value, value)
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = str(value)
    return ToolResult.success(text, value)


class BaseTool(abc.ABC):
    """Base class: subclasses set ``name``/``description``/``parameters`` and implement ``_arun``.

    ``arun`` validates the arguments against ``parameters``, applies ``timeout`` and turns every
    failure into ``ToolResult(ok=False)``; ``run`` is its synchronous wrapper.
    """

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}  # noqa: RUF012
    timeout: float | None = None
    #: True when ``_arun`` enforces ``timeout`` itself (e.g. by killing a process)
    _self_timed: bool = False

    @abc.abstractmethod
    async def _arun(self, **kwargs: Any) -> Any:
        """Do the work; return a ToolResult, a string or any JSON-serialisable value."""

    def validate_arguments(self, arguments: Mapping[str, Any]) -> str | None:
        """Return an error message for the model, or None when the arguments are valid."""
        if not isinstance(arguments, Mapping):
            return f"arguments for tool {self.name!r} must be an object, got {type(arguments).__name__}"
        problems = validate(dict(arguments), self.parameters)
        if not problems:
            return None
        schema = json.dumps(self.parameters.get("properties", {}), default=str)
        if len(schema) > 600:
            schema = schema[:597] + "..."
        return (
            f"invalid arguments for tool {self.name!r}: {'; '.join(problems)}. Expected parameters: {schema}"
        )

    async def arun(self, **kwargs: Any) -> ToolResult:
        start = time.perf_counter()
        problem = self.validate_arguments(kwargs)
        if problem is not None:
            return ToolResult.failure(problem, tool=self.name, kind="invalid_arguments")
        try:
            if self.timeout is not None and not self._self_timed:
                value = await asyncio.wait_for(self._arun(**kwargs), self.timeout)
            else:
                value = await self._arun(**kwargs)
            result = to_result(value)
        except TimeoutError:
            result = ToolResult.failure(
                f"tool {self.name!r} timed out after {self.timeout:g} s", kind="timeout"
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failed call is a result, not a crash
            result = ToolResult.failure(
                f"tool {self.name!r} failed: {type(exc).__name__}: {exc}", kind="error"
            )
        meta = {"tool": self.name, "elapsed_s": round(time.perf_counter() - start, 6), **result.meta}
        return replace(result, meta=meta)

    def run(self, **kwargs: Any) -> ToolResult:
        return run_sync(lambda: self.arun(**kwargs))

    def schema(self) -> dict[str, Any]:
        """The tool as a function description: name, description, parameters."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
