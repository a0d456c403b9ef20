"""FunctionTool: schemas from hints and docstrings, validation, conversion, timeouts, async."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass
from typing import Annotated, Literal

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.tools import BaseTool, FunctionTool, Tool, ToolResult, tool


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Point:
    x: float
    y: float = 0.0


@dataclass
class Shape:
    name: str
    points: list[Point]


@dataclass
class Node:
    child: Node | None


def draw(
    shape: Shape,
    color: Color,
    mode: Literal["fill", "stroke"] = "fill",
    width: int | None = None,
    tags: list[str] | None = None,
    extra: dict[str, int] | None = None,
) -> str:
    """Draw a shape on the canvas.

    Args:
        shape: the shape to draw
        color: fill colour
        mode: how to paint it,
            fill or stroke.
        width: line width in pixels
    """
    assert isinstance(shape, Shape) and all(isinstance(p, Point) for p in shape.points)
    assert isinstance(color, Color)
    return f"{shape.name}:{len(shape.points)}:{color.value}:{mode}:{width}"


def test_schema_from_hints_and_google_docstring() -> None:
    t = FunctionTool.from_function(draw)
    assert t.name == "draw"
    assert t.description == "Draw a shape on the canvas."
    props = t.parameters["properties"]
    assert t.parameters["required"] == ["shape", "color"]
    assert props["color"] == {"enum": ["red", "blue"], "type": "string", "description": "fill colour"}
    assert props["mode"]["enum"] == ["fill", "stroke"] and props["mode"]["default"] == "fill"
    assert props["mode"]["description"] == "how to paint it, fill or stroke."
    assert props["width"]["type"] == ["integer", "null"]
    assert props["tags"]["anyOf"][0] == {"type": "array", "items": {"type": "string"}}
    assert props["extra"]["anyOf"][0] == {"type": "object", "additionalProperties": {"type": "integer"}}
    shape = props["shape"]
    assert shape["required"] == ["name", "points"]
    assert shape["properties"]["points"]["items"]["properties"]["x"] == {"type": "number"}
    assert isinstance(t, Tool)


def test_arguments_are_converted_to_annotated_types() -> None:
    t = FunctionTool.from_function(draw)
    r = t.run(shape={"name": "tri", "points": [{"x": 1}, {"x": 2, "y": 3}]}, color="blue", width=3)
    assert r.ok, r.error
    assert r.output == "tri:2:blue:fill:3"


def test_invalid_arguments_return_a_clear_error_for_the_model() -> None:
    t = FunctionTool.from_function(draw)
    r = t.run(shape={"name": "tri", "points": []}, color="green", bogus=1)
    assert not r.ok and r.meta["kind"] == "invalid_arguments"
    assert "'color' must be one of" in r.error and "green" in r.error
    assert "unexpected argument 'bogus'" in r.error
    r2 = t.run(color="red")
    assert "missing required argument 'shape'" in r2.error
    r3 = t.run(shape={"name": 3, "points": []}, color="red")
    assert "argument 'shape.name' must be a string" in r3.error


def test_numpy_docstring_and_annotated() -> None:
    def scale(value: float, factor: Annotated[int, "how many times"] = 2) -> float:
        """Scale a value.

        Parameters
        ----------
        value : float
            the number to scale
        factor : int
            ignored because Annotated wins
        """
        return value * factor

    t = FunctionTool.from_function(scale, name="scaler", timeout=5)
    assert t.name == "scaler" and t.timeout == 5
    assert t.parameters["properties"]["value"]["description"] == "the number to scale"
    assert t.parameters["properties"]["factor"]["description"] == "how many times"
    r = t.run(value=2, factor=3)
    assert r.ok and r.data == 6.0 and r.output == "6.0"


async def test_async_function_and_timeout() -> None:
    async def slow(seconds: float) -> str:
        """Wait a while."""
        await asyncio.sleep(seconds)
        return "done"

    t = FunctionTool.from_function(slow, timeout=0.05)
    assert (await t.arun(seconds=0)).output == "done"
    r = await t.arun(seconds=5)
    assert not r.ok and "timed out after 0.05 s" in r.error and r.meta["kind"] == "timeout"


def test_exceptions_become_failed_results() -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    r = explode.run()
    assert isinstance(r, ToolResult) and not r.ok
    assert "RuntimeError: kaboom" in r.error


def test_pydantic_models_when_available() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Query(pydantic.BaseModel):
        text: str
        limit: int = pydantic.Field(5, description="max hits")

    def search(q: Query) -> str:
        """Search."""
        assert isinstance(q, Query)
        return f"{q.text}/{q.limit}"

    t = FunctionTool.from_function(search)
    q = t.parameters["properties"]["q"]
    assert q["required"] == ["text"] and q["properties"]["limit"]["description"] == "max hits"
    assert t.run(q={"text": "hi"}).output == "hi/5"


def test_bad_definitions_raise_tool_error() -> None:
    def varargs(*items: int) -> int:
        return sum(items)

    def weird(x: complex) -> None: ...

    with pytest.raises(ToolError, match=r"\*args"):
        FunctionTool.from_function(varargs)
    with pytest.raises(ToolError, match="unsupported parameter type"):
        FunctionTool.from_function(weird)
    with pytest.raises(ToolError, match="invalid tool name"):
        FunctionTool.from_function(lambda: 1, name="has space")

    def walk(n: Node) -> None: ...

    with pytest.raises(ToolError, match="recursive"):
        FunctionTool.from_function(walk)


def test_run_works_inside_a_running_loop() -> None:
    t = FunctionTool.from_function(lambda a, b: a + b, name="add")

    async def main() -> ToolResult:
        return t.run(a=1, b=2)

    assert asyncio.run(main()).output == "3"


def test_custom_base_tool() -> None:
    class Echo(BaseTool):
        name = "echo"
        description = "Echo text."
        parameters = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}  # noqa: RUF012

        async def _arun(self, **kwargs: object) -> str:
            return str(kwargs["text"])

    e = Echo()
    assert e.run(text="hi").output == "hi"
    assert e.run(text=1).error.startswith("invalid arguments for tool 'echo'")


def test_a_docstring_with_a_repeated_line_still_finds_its_parameters() -> None:
    # the hand-written parser looked a line up by its text: the first "Parameters" (prose)
    # hid the real section header below it, and the parameters were lost
    def search(q: str) -> str:
        """Search the notes.

        Parameters

        Parameters
        ----------
        q : str
            the query,
            in plain words
        """
        return q

    t = FunctionTool.from_function(search)
    assert t.description == "Search the notes."
    assert t.parameters["properties"]["q"]["description"] == "the query, in plain words"


def test_a_summary_is_the_whole_first_paragraph() -> None:
    def look(q: str) -> str:
        """Look things up
        across two lines.

        Args:
            q (str): the query
        """
        return q

    t = FunctionTool.from_function(look)
    assert t.description == "Look things up across two lines."
    assert t.parameters["properties"]["q"]["description"] == "the query"
