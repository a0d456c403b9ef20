"""``LLMCompiler``: plan a DAG of tool calls with one model call, run it in parallel, join.

1. The planner answers with constrained JSON: ``{"calls": [{id, tool, args, depends_on}]}``;
   ``"${1}"`` inside args stands for the result of call 1 (and implies the dependency); a bare
   ``"$1"`` does too, but only for a call listed earlier and only where it cannot be a price or
   part of a longer token (``$100``, ``$5.00``, ``US$1``); ``$$1`` is a literal ``$1``. The exact
   rules are in ``tools._plan``.
2. Calls whose dependencies are done run concurrently (asyncio, optional concurrency cap).
3. If a call fails, the planner is asked once more, seeing the error, for a new plan.
4. The joiner composes the final answer from the results.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from purpose_agent.errors import PlanError
from purpose_agent.models.base import Backend, Message, Usage, run_sync
from purpose_agent.tools._plan import Plan, PlannedCall, parse_plan, plan_schema, substitute
from purpose_agent.tools.base import ToolResult
from purpose_agent.tools.registry import ToolRegistry

_PLANNER = """You plan tool calls to answer a request. Reply with JSON only:
{{"calls": [{{"id": 1, "tool": "<tool name>", "args": {{...}}, "depends_on": []}}, ...]}}
Rules: ids are 1, 2, 3, ...; calls that do not depend on each other run in parallel; to use the
result of call N inside args write "${{N}}" and list N in depends_on; use only these tools:
{tools}"""

_JOINER = """Answer the request using the tool results below. Be brief and exact.
Request: {request}
Tool results:
{results}"""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One executed call: the planned call, its arguments after substitution, result, timing."""

    call: PlannedCall
    args: dict[str, Any]
    result: ToolResult
    started_s: float
    ended_s: float

    @property
    def elapsed_s(self) -> float:
        return self.ended_s - self.started_s


@dataclass(frozen=True, slots=True)
class CompilerResult:
    """The answer, the final plan, every call of the final round, and where the time went."""

    answer: str
    plan: Plan
    calls: tuple[CallRecord, ...]
    plans: tuple[Plan, ...]
    failed_rounds: tuple[tuple[CallRecord, ...], ...]
    planning_s: float
    execution_s: float
    joining_s: float
    usage: Usage

    @property
    def replanned(self) -> bool:
        return len(self.plans) > 1

    @property
    def ok(self) -> bool:
        return all(r.result.ok for r in self.calls)

    @property
    def results(self) -> dict[str, ToolResult]:
        return {r.call.id: r.result for r in self.calls}

    @property
    def total_s(self) -> float:
        return self.planning_s + self.execution_s + self.joining_s


class LLMCompiler:
    """Plans with ``planner_llm``, runs the DAG over ``tool_registry``, joins with ``joiner_llm``."""

    def __init__(
        self,
        planner_llm: Backend,
        tool_registry: ToolRegistry,
        joiner_llm: Backend | None = None,
        max_concurrency: int | None = None,
        *,
        max_replans: int = 1,
        top_k_tools: int | None = None,
        strict: bool = True,
        max_tokens: int = 512,
    ) -> None:
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError("max_concurrency must be >= 1 or None")
        self.planner_llm = planner_llm
        self.joiner_llm = joiner_llm or planner_llm
        self.registry = tool_registry
        self.max_concurrency = max_concurrency
        self.max_replans = max_replans
        self.top_k_tools = top_k_tools
        self.strict = strict
        self.max_tokens = max_tokens

    # ------------------------------------------------------------------------------ planning
    def _tool_names(self, request: str) -> list[str]:
        if self.top_k_tools is None:
            return self.registry.names()
        return [t.name for t in self.registry.get_relevant_tools(request, self.top_k_tools)]

    async def plan(self, request: str, feedback: str | None = None) -> tuple[Plan, Usage]:
        """Ask the planner for a plan; raise PlanError if it is invalid."""
        names = self._tool_names(request)
        tools = [self.registry.get(n) for n in names]
        described = "\n".join(
            f"- {t.name}: {t.description} args: {json.dumps(t.parameters.get('properties', {}))}"
            for t in tools
        )
        messages = [Message("system", _PLANNER.format(tools=described)), Message("user", request)]
        if feedback:
            messages.append(Message("user", feedback))
        completion = await self.planner_llm.acomplete(
            messages, plan_schema(names), max_tokens=self.max_tokens
        )
        if completion.data is None:
            raise PlanError(f"the planner's reply is not a valid plan: {completion.parse_error}")
        return parse_plan(completion.data, names), completion.usage

    # ----------------------------------------------------------------------------- execution
    async def execute(self, plan: Plan) -> tuple[CallRecord, ...]:
        """Run the plan: each call starts as soon as its dependencies are done."""
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(self.max_concurrency) if self.max_concurrency else None
        futures: dict[str, asyncio.Future[CallRecord]] = {}
        loop = asyncio.get_running_loop()
        for call in plan.calls:
            futures[call.id] = loop.create_future()
        ids = plan.ids()
        earlier = {cid: ids[:i] for i, cid in enumerate(ids)}  # bare $N names only an earlier call

        async def run_one(call: PlannedCall) -> None:
            deps = [await futures[d] for d in call.depends_on]
            failed = [r.call.id for r in deps if not r.result.ok]
            start = time.perf_counter() - t0
            if failed:
                result = ToolResult.failure(
                    f"skipped: dependency {', '.join('$' + f for f in failed)} failed"
                )
                futures[call.id].set_result(CallRecord(call, call.args, result, start, start))
                return
            results = {r.call.id: r.result for r in deps}
            args = substitute(call.args, results, earlier[call.id])
            if sem is not None:
                async with sem:
                    start = time.perf_counter() - t0
                    result = await self._call(call.tool, args)
            else:
                result = await self._call(call.tool, args)
            futures[call.id].set_result(CallRecord(call, args, result, start, time.perf_counter() - t0))

        tasks = [asyncio.ensure_future(run_one(c)) for c in plan.calls]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
        return tuple(futures[c.id].result() for c in plan.calls)

    async def _call(self, name: str, args: Any) -> ToolResult:
        if not isinstance(args, dict):
            return ToolResult.failure(f"arguments for {name!r} must be an object")
        try:
            return await self.registry.get(name).arun(**args)
        except Exception as exc:  # a misbehaving tool must not break the DAG
            return ToolResult.failure(f"tool {name!r} raised {type(exc).__name__}: {exc}")

    # -------------------------------------------------------------------------------- joining
    async def join(self, request: str, records: tuple[CallRecord, ...]) -> tuple[str, Usage]:
        lines = [
            f"${r.call.id} {r.call.tool}({json.dumps(r.args, default=str)}) -> {r.result.for_model()[:2000]}"
            for r in records
        ]
        prompt = _JOINER.format(request=request, results="\n".join(lines) or "(no tool calls)")
        completion = await self.joiner_llm.acomplete([Message("user", prompt)], max_tokens=self.max_tokens)
        return completion.text.strip(), completion.usage

    # ---------------------------------------------------------------------------------- whole
    async def compile_and_execute_async(self, request: str) -> CompilerResult:
        plans: list[Plan] = []
        failed: list[tuple[CallRecord, ...]] = []
        usage = Usage(calls=0)
        planning = execution = 0.0
        feedback: str | None = None
        records: tuple[CallRecord, ...] = ()
        for attempt in range(self.max_replans + 1):
            t = time.perf_counter()
            try:
                plan, used = await self.plan(request, feedback)
            except PlanError as exc:
                planning += time.perf_counter() - t
                if self.strict or attempt == self.max_replans:
                    raise
                feedback = f"Your plan was invalid: {exc}. Reply with a corrected plan."
                continue
            planning += time.perf_counter() - t
            usage = usage + used
            plans.append(plan)
            t = time.perf_counter()
            records = await self.execute(plan)
            execution += time.perf_counter() - t
            if all(r.result.ok for r in records) or attempt == self.max_replans:
                break
            failed.append(records)
            feedback = _replan_feedback(records)
        t = time.perf_counter()
        answer, used = await self.join(request, records)
        usage = usage + used
        return CompilerResult(
            answer, plans[-1], records, tuple(plans), tuple(failed), planning, execution,
            time.perf_counter() - t, usage,
        )  # fmt: skip

    def compile_and_execute(self, request: str) -> CompilerResult:
        return run_sync(lambda: self.compile_and_execute_async(request))


def _replan_feedback(records: tuple[CallRecord, ...]) -> str:
    lines = [f"${r.call.id} {r.call.tool} -> {r.result.for_model()[:500]}" for r in records]
    return (
        "Executing your plan failed:\n" + "\n".join(lines) + "\nReply with a new complete plan that "
        "avoids the error (you may reuse the calls that worked)."
    )
