"""N independent slow tools: sequential calls vs the LLMCompiler DAG (one run, wall time).

Run: .venv/bin/python benchmarks/bench_llmcompiler.py [--n 6] [--delay 0.5] [--kind sleep|subprocess]

The planner is a FunctionModel that returns the plan at once, so planning cost is near zero; it
is reported separately anyway, as is the joiner.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel
from purpose_agent.tools import FunctionTool, LLMCompiler, ToolRegistry


def make_tool(kind: str, delay: float) -> FunctionTool:
    async def slow_lookup(key: str) -> str:
        """Look up a key in a slow service."""
        if kind == "subprocess":
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", f"import time; time.sleep({delay})"
            )
            await proc.wait()
        else:
            await asyncio.sleep(delay)
        return f"value-{key}"

    return FunctionTool.from_function(slow_lookup)


async def main(n: int, delay: float, kind: str) -> None:
    tool = make_tool(kind, delay)
    registry = ToolRegistry([tool])

    t = time.perf_counter()
    for i in range(n):
        result = await tool.arun(key=str(i))
        assert result.ok, result.error
    sequential = time.perf_counter() - t

    def planner(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        if schema is None:
            return "all values fetched"
        return {
            "calls": [
                {"id": i + 1, "tool": "slow_lookup", "args": {"key": str(i)}, "depends_on": []}
                for i in range(n)
            ]
        }

    compiler = LLMCompiler(FunctionModel(planner), registry)
    t = time.perf_counter()
    out = await compiler.compile_and_execute_async(f"look up keys 0..{n - 1}")
    total = time.perf_counter() - t
    assert out.ok and len(out.calls) == n

    print(f"# bench_llmcompiler  date={date.today()}  python={platform.python_version()}  cores={_cores()}")
    print(f"tools: N={n} independent '{kind}' tools, {delay:g} s each; planner/joiner: FunctionModel")
    print(f"sequential               : {sequential:7.3f} s")
    print(f"LLMCompiler DAG execution: {out.execution_s:7.3f} s  (planning {out.planning_s:.4f} s, "
          f"joining {out.joining_s:.4f} s, end to end {total:.3f} s)")  # fmt: skip
    print(f"speed-up (sequential / DAG execution): {sequential / out.execution_s:5.2f}x")
    print(f"speed-up (sequential / end to end)   : {sequential / total:5.2f}x")


def _cores() -> int:
    import os

    return os.cpu_count() or 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=6)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--kind", choices=["sleep", "subprocess"], default="sleep")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.delay, args.kind))
