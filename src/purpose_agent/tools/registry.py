"""``ToolRegistry``: named tools plus Tool RAG (BM25 over name, description, parameter names).

Only the top-k tools relevant to a query need to go into a small model's prompt.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from purpose_agent._text import STOPWORDS
from purpose_agent.errors import ToolError
from purpose_agent.tools.base import Tool, check_tool_name
from purpose_agent.tools.function import FunctionTool

_WORD = re.compile(r"[A-Za-z]+|\d+")
_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])")
_SUFFIXES = ("ing", "ed", "es", "s")


def _stem(word: str) -> str:
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    return word[:6]


def tokenize(text: str) -> list[str]:
    """Lower-cased, stop-word-free, crudely stemmed tokens (``read_file`` -> read, file)."""
    words = _WORD.findall(_CAMEL.sub(" ", text))
    return [_stem(w.lower()) for w in words if w.lower() not in STOPWORDS]


def _tool_text(tool: Tool) -> list[str]:
    params = tool.parameters.get("properties", {}) if isinstance(tool.parameters, dict) else {}
    parts = [tool.name, tool.name, tool.description, " ".join(params)]
    for spec in params.values():
        if isinstance(spec, dict) and isinstance(spec.get("description"), str):
            parts.append(spec["description"])
    return tokenize(" ".join(parts))


class ToolRegistry:
    """Tools by name, in registration order, with lexical retrieval (``get_relevant_tools``)."""

    k1: float = 1.2
    b: float = 0.75

    def __init__(self, tools: Iterable[Tool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._docs: dict[str, list[str]] = {}
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
        self._docs[tool.name] = _tool_text(tool)
        return tool

    def unregister(self, name: str) -> None:
        self._tools.pop(name, None)
        self._docs.pop(name, None)

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
        """BM25 score of every tool for ``query``."""
        terms = tokenize(query)
        n = len(self._docs)
        if not n or not terms:
            return dict.fromkeys(self._docs, 0.0)
        avg = sum(len(d) for d in self._docs.values()) / n or 1.0
        df: Counter[str] = Counter()
        for doc in self._docs.values():
            df.update(set(doc))
        out: dict[str, float] = {}
        for name, doc in self._docs.items():
            tf = Counter(doc)
            score = 0.0
            for term in set(terms):
                if not tf[term]:
                    continue
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                norm = tf[term] + self.k1 * (1 - self.b + self.b * len(doc) / avg)
                score += idf * tf[term] * (self.k1 + 1) / norm
            out[name] = score
        return out

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
