"""Tools from an MCP server over stdio, through the official ``mcp`` package (extra ``mcp``).

The client session lives on its own event loop in a background thread, so the wrapped tools can
be called from any event loop or from sync code. Works with mcp 1.x and 2.x.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import re
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from purpose_agent.errors import MissingExtraError, ToolError
from purpose_agent.tools.base import BaseTool, ToolResult

_BAD_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


def _require_mcp() -> Any:
    try:
        import mcp
    except ImportError as exc:
        raise MissingExtraError("mcp", "mcp", "tools from MCP servers") from exc
    return mcp


def _field(obj: Any, *names: str, default: Any = None) -> Any:
    """Read a field under its mcp 2.x (snake_case) or 1.x (camelCase) name."""
    for name in names:
        if hasattr(obj, name):
            return getattr(obj, name)
    return default


def _result_from_mcp(reply: Any, name: str) -> ToolResult:
    texts: list[str] = []
    for block in _field(reply, "content", default=[]) or []:
        text = _field(block, "text")
        texts.append(text if isinstance(text, str) else f"[{_field(block, 'type', default='content')}]")
    output = "\n".join(texts)
    structured = _field(reply, "structured_content", "structuredContent")
    if _field(reply, "is_error", "isError", default=False):
        return ToolResult.failure(
            f"MCP tool {name!r} reported an error: {output or 'no details'}", kind="mcp_error"
        )
    data = structured.get("result", structured) if isinstance(structured, dict) else structured
    return ToolResult.success(output, data if data is not None else output)


class MCPTool(BaseTool):
    """One tool of an MCP server; calls go through its ``MCPToolset``."""

    def __init__(
        self,
        toolset: MCPToolset,
        remote_name: str,
        name: str,
        description: str,
        parameters: dict[str, Any],
        timeout: float | None,
    ) -> None:
        self.toolset = toolset
        self.remote_name = remote_name
        self.name = name
        self.description = description
        self.parameters = parameters
        self.timeout = timeout

    async def _arun(self, **kwargs: Any) -> ToolResult:
        reply = await asyncio.wrap_future(self.toolset.call(self.remote_name, kwargs))
        return _result_from_mcp(reply, self.remote_name)


class MCPToolset:
    """Starts an MCP server (``command args``) over stdio and exposes its tools as ``Tool``s.

    Use as a (sync or async) context manager, or call ``start()`` and later ``close()``.
    """

    def __init__(
        self,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        *,
        cwd: str | None = None,
        timeout: float | None = 30.0,
        startup_timeout: float = 30.0,
        name_prefix: str = "",
    ) -> None:
        self.command = command
        self.args = list(args)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.timeout = timeout
        self.startup_timeout = startup_timeout
        self.name_prefix = name_prefix
        self.tools: list[MCPTool] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._session: Any = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._errlog: Any = None

    # ---------------------------------------------------------------------------- lifecycle
    def start(self) -> MCPToolset:
        """Start the server, list its tools; raise ToolError (with its stderr) on failure."""
        _require_mcp()
        if self._thread is not None:
            return self
        self._errlog = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._thread = threading.Thread(target=self._thread_main, name="mcp-client", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.startup_timeout):
            self.close()
            raise ToolError(f"MCP server {self.command!r} did not start within {self.startup_timeout:g} s")
        if self._error is not None:
            error, stderr = self._error, self._stderr_tail()
            self.close()
            detail = f"; server stderr: {stderr}" if stderr else ""
            raise ToolError(f"MCP server {self.command!r} failed to start: {error!r}{detail}") from error
        return self

    async def astart(self) -> MCPToolset:
        return await asyncio.to_thread(self.start)

    def close(self) -> None:
        """Stop the session and the server process."""
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout=10)
        self._thread = None
        self._session = None
        if self._errlog is not None:
            self._errlog.close()
            self._errlog = None

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __enter__(self) -> MCPToolset:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> MCPToolset:
        return await self.astart()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __iter__(self) -> Iterator[MCPTool]:
        return iter(list(self.tools))

    def __len__(self) -> int:
        return len(self.tools)

    # ------------------------------------------------------------------------------- calls
    def call(self, remote_name: str, arguments: dict[str, Any]) -> concurrent.futures.Future[Any]:
        """Call a server tool; returns a future of the raw MCP result."""
        if self._session is None or self._loop is None:
            raise ToolError("the MCP toolset is not running (call start() or use it as a context manager)")
        return asyncio.run_coroutine_threadsafe(self._session.call_tool(remote_name, arguments), self._loop)

    # ----------------------------------------------------------------------------- internals
    def _thread_main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:
            self._error = self._error or exc
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        mcp = _require_mcp()
        from mcp.client.stdio import stdio_client

        params = mcp.StdioServerParameters(command=self.command, args=self.args, env=self.env, cwd=self.cwd)
        self._stop = asyncio.Event()
        async with (
            stdio_client(params, errlog=self._errlog) as (read, write),
            mcp.ClientSession(read, write) as session,
        ):
            await session.initialize()
            listed = await session.list_tools()
            self.tools = [self._wrap(t) for t in _field(listed, "tools", default=[])]
            self._session = session
            self._ready.set()
            await self._stop.wait()

    def _wrap(self, remote: Any) -> MCPTool:
        remote_name = str(_field(remote, "name"))
        name = _BAD_CHARS.sub("_", self.name_prefix + remote_name)[:64]
        if not re.match(r"^[A-Za-z_]", name):
            name = "t_" + name[:62]
        schema = dict(_field(remote, "input_schema", "inputSchema", default=None) or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        description = _field(remote, "description") or remote_name
        return MCPTool(self, remote_name, name, str(description), schema, self.timeout)

    def _stderr_tail(self) -> str:
        if self._errlog is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._errlog.flush()
            self._errlog.seek(0)
            return str(self._errlog.read()[-1500:]).strip()
        return ""


def load_mcp_tools(
    command: str,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    **options: Any,
) -> MCPToolset:
    """Start an MCP server over stdio; the returned (running) toolset has ``.tools``. Close it after use."""
    return MCPToolset(command, args, env, **options).start()
