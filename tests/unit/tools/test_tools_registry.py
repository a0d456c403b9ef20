"""ToolRegistry and Tool RAG."""

from __future__ import annotations

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.tools import (
    CalculatorTool,
    FunctionTool,
    PythonExecTool,
    ReadFileTool,
    ToolRegistry,
    WriteFileTool,
)


def get_weather(city: str) -> str:
    """Get the current weather forecast for a city.

    Args:
        city: the city name
    """
    return f"sunny in {city}"


def send_email(to: str, subject: str, body: str) -> str:
    """Send an email message to a recipient."""
    return "sent"


def translate(text: str, language: str) -> str:
    """Translate text into another language."""
    return text


@pytest.fixture
def registry(tmp_path) -> ToolRegistry:
    reg = ToolRegistry()
    for t in (
        CalculatorTool(),
        PythonExecTool(),
        ReadFileTool(tmp_path),
        WriteFileTool(tmp_path),
        get_weather,
        send_email,
        translate,
    ):
        reg.register(t)
    return reg


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what is 17 * 23 + sqrt(2)? calculate it", "calculator"),
        ("run this python code snippet", "python"),
        ("read the contents of notes.txt file", "read_file"),
        ("write a report to a file", "write_file"),
        ("will it rain in Paris tomorrow? weather forecast", "get_weather"),
        ("email my boss the summary", "send_email"),
        ("translate 'hello' into French language", "translate"),
    ],
)
def test_relevant_tool_comes_first(registry: ToolRegistry, query: str, expected: str) -> None:
    top = registry.get_relevant_tools(query, top_k=3)
    assert top[0].name == expected, [t.name for t in top]
    assert len(top) == 3


def test_ties_are_deterministic_and_registration_ordered(registry: ToolRegistry) -> None:
    names = [t.name for t in registry.get_relevant_tools("zzz qqq", top_k=10)]
    assert names == registry.names()
    assert registry.get_relevant_tools("anything", top_k=0) == []


def test_registry_basics(registry: ToolRegistry) -> None:
    assert len(registry) == 7 and "calculator" in registry
    assert registry.get("translate").name == "translate"
    assert [s["name"] for s in registry.schemas()] == registry.names()
    with pytest.raises(ToolError, match="unknown tool 'nope'"):
        registry.get("nope")
    with pytest.raises(ToolError, match="already registered"):
        registry.register(FunctionTool.from_function(translate))
    schema = registry.call_schema([registry.get("calculator"), registry.get("translate")])
    assert [o["properties"]["tool"]["enum"] for o in schema["anyOf"]] == [["calculator"], ["translate"]]
