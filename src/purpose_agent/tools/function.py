"""``FunctionTool``: a tool built from a plain Python function (sync or async)."""

from __future__ import annotations

import asyncio
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any

from purpose_agent.errors import ToolError
from purpose_agent.tools._docstring import parse_docstring
from purpose_agent.tools._schema import to_annotation, type_to_schema
from purpose_agent.tools.base import BaseTool, ToolResult, check_parameters, check_tool_name


class FunctionTool(BaseTool):
    """Wraps ``fn``; arguments are validated, converted to the annotated types, then passed in.

    Sync functions run in a worker thread so a timeout does not block the event loop (the
    thread itself cannot be killed; use PythonExecTool for untrusted code).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str,
        description: str,
        parameters: dict[str, Any],
        timeout: float | None = None,
        hints: dict[str, Any] | None = None,
    ) -> None:
        self.fn = fn
        self.name = check_tool_name(name)
        self.description = description
        self.parameters = check_parameters(parameters, name)
        self.timeout = timeout
        self._hints = dict(hints or {})
        self._is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
            getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
        )

    @classmethod
    def from_function(
        cls,
        fn: Callable[..., Any],
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> FunctionTool:
        """Build the schema from ``fn``'s type hints and docstring (summary and ``Args:``)."""
        if not callable(fn):
            raise ToolError(f"from_function needs a callable, got {type(fn).__name__}")
        target = fn.func if isinstance(fn, functools.partial) else fn
        tool_name = name or getattr(target, "__name__", None) or type(fn).__name__
        doc = parse_docstring(inspect.getdoc(target))
        try:
            sig = inspect.signature(fn)
            hints = _type_hints(target)
        except (TypeError, ValueError, NameError) as exc:
            raise ToolError(f"cannot read the signature of {tool_name!r}: {exc}") from exc
        props: dict[str, Any] = {}
        required: list[str] = []
        used: dict[str, Any] = {}
        for pname, param in sig.parameters.items():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                raise ToolError(f"tool {tool_name!r}: *args/**kwargs parameters are not supported")
            if param.kind is param.POSITIONAL_ONLY:
                raise ToolError(f"tool {tool_name!r}: positional-only parameter {pname!r} is not supported")
            annotation = hints.get(pname, param.annotation)
            try:
                schema = type_to_schema(annotation)
            except ToolError as exc:
                raise ToolError(f"tool {tool_name!r}, parameter {pname!r}: {exc}") from exc
            if pname in doc.params and doc.params[pname] and "description" not in schema:
                schema["description"] = doc.params[pname]
            if param.default is param.empty:
                required.append(pname)
            elif _jsonable(param.default):
                schema["default"] = param.default
            props[pname] = schema
            used[pname] = annotation
        parameters = {
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": False,
        }
        text = description if description is not None else doc.summary
        return cls(fn, tool_name, text or tool_name.replace("_", " "), parameters, timeout, used)

    async def _arun(self, **kwargs: Any) -> Any:
        try:
            args = {k: to_annotation(v, self._hints.get(k, Any)) for k, v in kwargs.items()}
        except (TypeError, ValueError) as exc:
            return ToolResult.failure(
                f"invalid arguments for tool {self.name!r}: {exc}", kind="invalid_arguments"
            )
        if self._is_async:
            return await self.fn(**args)
        result = await asyncio.to_thread(self.fn, **args)
        if inspect.isawaitable(result):
            return await result
        return result


def _type_hints(fn: Callable[..., Any]) -> dict[str, Any]:
    """Type hints of ``fn``; string annotations may also name the closure's local classes."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except NameError:
        local = inspect.getclosurevars(fn).nonlocals if inspect.isfunction(fn) else {}
        return typing.get_type_hints(fn, localns=dict(local), include_extras=True)


def _jsonable(value: Any) -> bool:
    if value is None or isinstance(value, str | int | float | bool):
        return True
    if isinstance(value, list | tuple):
        return all(_jsonable(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _jsonable(v) for k, v in value.items())
    return False


def tool(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Decorator form of ``FunctionTool.from_function`` (``@tool`` or ``@tool(name=...)``)."""

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool.from_function(f, name=name, description=description, timeout=timeout)

    return wrap(fn) if fn is not None else wrap
