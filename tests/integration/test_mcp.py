"""A real MCP server (tests/fixtures/mcp_server.py) started over stdio; its tools are listed and called."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from purpose_agent.errors import ToolError
from purpose_agent.models.testing import ScriptedModel
from purpose_agent.tools import LLMCompiler, MCPToolset, Tool, ToolRegistry, load_mcp_tools

pytestmark = pytest.mark.integration

SERVER = str(Path(__file__).resolve().parents[1] / "fixtures" / "mcp_server.py")


@pytest.fixture(scope="module")
def toolset():
    with MCPToolset(sys.executable, [SERVER], name_prefix="") as ts:
        yield ts


def test_tools_are_listed_with_schemas(toolset: MCPToolset) -> None:
    names = sorted(t.name for t in toolset.tools)
    assert names == ["add", "fail", "shout"]
    add = next(t for t in toolset if t.name == "add")
    assert isinstance(add, Tool)
    assert add.description == "Add two integers."
    assert set(add.parameters["properties"]) == {"a", "b"}
    assert add.parameters["properties"]["a"]["type"] == "integer"


def test_calls_from_sync_and_async_code(toolset: MCPToolset) -> None:
    tools = {t.name: t for t in toolset}
    r = tools["add"].run(a=2, b=40)
    assert r.ok and r.output == "42" and r.data == 42
    assert tools["shout"].run(text="hi").output == "HI"


async def test_async_call_and_errors(toolset: MCPToolset) -> None:
    tools = {t.name: t for t in toolset}
    assert (await tools["shout"].arun(text="async")).output == "ASYNC"
    bad = await tools["fail"].arun(reason="nope")
    assert not bad.ok and "MCP tool 'fail' reported an error" in (bad.error or "")
    invalid = await tools["add"].arun(a="two", b=1)
    assert not invalid.ok and "'a' must be an integer" in (invalid.error or "")


async def test_an_agent_calls_mcp_tools_through_the_compiler(toolset: MCPToolset) -> None:
    registry = ToolRegistry(toolset)
    planner = ScriptedModel(
        [
            {
                "calls": [
                    {"id": 1, "tool": "add", "args": {"a": 20, "b": 22}, "depends_on": []},
                    {"id": 2, "tool": "shout", "args": {"text": "the sum is $1"}, "depends_on": [1]},
                ]
            },
            "THE SUM IS 42",
        ]
    )
    result = await LLMCompiler(planner, registry).compile_and_execute_async("add 20 and 22, then shout it")
    assert result.ok, [r.result.error for r in result.calls]
    assert result.results["2"].output == "THE SUM IS 42"
    planner.assert_consumed()


def test_load_mcp_tools_and_startup_failure() -> None:
    ts = load_mcp_tools(sys.executable, [SERVER], name_prefix="srv_")
    try:
        assert sorted(t.name for t in ts) == ["srv_add", "srv_fail", "srv_shout"]
        tools = {t.name: t for t in ts}
        assert tools["srv_add"].run(a=1, b=1).output == "2"
    finally:
        ts.close()
    with pytest.raises(ToolError, match=r"failed to start|did not start"):
        load_mcp_tools(sys.executable, ["-c", "import sys; sys.exit(3)"], startup_timeout=20)
