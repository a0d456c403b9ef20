"""``ToolRegistry``: named tools plus Tool RAG (BM25 over name, description, parameter names).

Only the top-k tools relevant to a query need to go into a small model's prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from purpose_agent._text import BM25, tokenize
from purpose_agent.errors import ToolError
from purpose_agent.tools.base import Tool, check_tool_name
from purpose_agent.tools.function import FunctionTool


def _tool_text(tool: Tool) -> list[str]:
    params = tool.parameters.get("properties", {}) if isinstance(tool.parameters, dict) else {}
    parts = [tool.name, tool.name, tool.description, " ".join(params)]
    for spec in params.values():
        if isinstance(spec, dict) and isinstance(spec.get("description"), str):
            parts.append(spec["description"])
    return tokenize(" ".join(parts))


class ToolRegistry:
    """Tools by name, in registration order, with lexical retrieval (``get_relevant_tools``)."""

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._index: BM25[str] = BM25()
        for t in tools:
            self.register(t)

    def register(self, tool: Tool | Callable[..., Any]) -> Tool:
        """Add a tool (a plain function is wrapped with FunctionTool); duplicate names are refused."""
        if not isinstance(tool, Tool):
            if not callable(tool):
                raise ToolError(f"cannot register {tool!r}: not a Tool and not callable")
            tool = FunctionTool.from_function(tool)
        check_tool_name(tool.name)
        if tool.name in self._tools:
            raise ToolError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool
        self._index.add(tool.name, _tool_text(tool))
        return tool

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)
        self._index.remove(name)

    def get(self, name: str) -> Tool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self._tools) or "none"
            raise ToolError(f"unknown tool {name!r} (registered: {known})") from None

    def names(self) -> list[str]:
        return list(self._tools)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))

    def __len__(self) -> int:
        return len(self._tools)

    def scores(self, query: str) -> dict[str, float]:
        """BM25 score of every tool for ``query`` (0.0 for a tool sharing no word with it)."""
        return dict.fromkeys(self._tools, 0.0) | self._index.scores(tokenize(query))

    def get_relevant_tools(self, query: str, top_k: int = 5) -> list[Tool]:
        """The ``top_k`` tools best matching ``query``; ties keep registration order.

        Tools with no matching term fill the remaining slots in registration order.
        """
        if top_k <= 0:
            return []
        scores = self.scores(query)
        order = {name: i for i, name in enumerate(self._tools)}
        ranked = sorted(self._tools, key=lambda name: (-scores[name], order[name]))
        return [self._tools[name] for name in ranked[:top_k]]

    def schemas(self, tools: Iterable[Tool] | None = None) -> list[dict[str, Any]]:
        """Function descriptions (name, description, parameters) of ``tools`` or of all tools."""
        chosen = list(self._tools.values()) if tools is None else list(tools)
        return [{"name": t.name, "description": t.description, "parameters": t.parameters} for t in chosen]

    def call_schema(self, tools: Iterable[Tool] | None = None) -> dict[str, Any]:
        """A JSON schema for one call ``{"tool": name, "args": {...}}`` to any of ``tools``."""
        chosen = list(self._tools.values()) if tools is None else list(tools)
        if not chosen:
            raise ToolError("call_schema needs at least one tool")
        options = [
            {
                "type": "object",
                "properties": {"tool": {"type": "string", "enum": [t.name]}, "args": t.parameters},
                "required": ["tool", "args"],
            }
            for t in chosen
        ]
        return options[0] if len(options) == 1 else {"anyOf": options}

    def __repr__(self) -> str:
        return f"ToolRegistry({list(self._tools)!r})"
