"""Tools: the protocol, function tools, a registry with Tool RAG, sandboxed built-ins,
the LLMCompiler and MCP servers (extra ``mcp``)."""

from __future__ import annotations

from typing import Any

from purpose_agent.tools.base import BaseTool, Tool, ToolResult
from purpose_agent.tools.calculator import CalculatorTool
from purpose_agent.tools.compiler import CallRecord, CompilerResult, LLMCompiler
from purpose_agent.tools.files import ReadFileTool, WriteFileTool
from purpose_agent.tools.function import FunctionTool, tool
from purpose_agent.tools.python_exec import PythonExecTool
from purpose_agent.tools.registry import ToolRegistry

__all__ = [
    "BaseTool",
    "CalculatorTool",
    "CallRecord",
    "CompilerResult",
    "FunctionTool",
    "LLMCompiler",
    "MCPTool",
    "MCPToolset",
    "PythonExecTool",
    "ReadFileTool",
    "Tool",
    "ToolRegistry",
    "ToolResult",
    "WriteFileTool",
    "load_mcp_tools",
    "tool",
]


def __getattr__(name: str) -> Any:
    # the MCP module is imported lazily: it is cheap, but keeps ``mcp`` out of the import path
    if name in ("MCPTool", "MCPToolset", "load_mcp_tools"):
        from purpose_agent.tools import mcp

        return getattr(mcp, name)
    raise AttributeError(f"module 'purpose_agent.tools' has no attribute {name!r}")
