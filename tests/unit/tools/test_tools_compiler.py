"""LLMCompiler with ScriptedModel / FunctionModel: DAG, concurrency, errors, one replan."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from purpose_agent.errors import PlanError
from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel, ScriptedModel
from purpose_agent.tools import CalculatorTool, FunctionTool, LLMCompiler, ToolRegistry


def _slow_registry(events: list[tuple[str, str, float]]) -> ToolRegistry:
    async def fetch(source: str) -> str:
        """Fetch a document from a source (slow)."""
        events.append(("start", source, time.perf_counter()))
        await asyncio.sleep(0.3)
        events.append(("end", source, time.perf_counter()))
        return f"doc from {source}"

    return ToolRegistry([FunctionTool.from_function(fetch), CalculatorTool()])


def _call(cid: int, tool: str, args: dict[str, Any], deps: Sequence[int] = ()) -> dict[str, Any]:
    return {"id": cid, "tool": tool, "args": args, "depends_on": list(deps)}


async def test_independent_calls_run_concurrently() -> None:
    events: list[tuple[str, str, float]] = []
    planner = ScriptedModel(
        [{"calls": [_call(1, "fetch", {"source": "a"}), _call(2, "fetch", {"source": "b"})]}, "both fetched"]
    )
    compiler = LLMCompiler(planner, _slow_registry(events))
    start = time.perf_counter()
    result = await compiler.compile_and_execute_async("fetch a and b")
    wall = time.perf_counter() - start
    kinds = [e[0] for e in sorted(events, key=lambda e: e[2])]
    assert kinds == ["start", "start", "end", "end"], "the second call must start before the first ends"
    assert result.execution_s < 0.55 and wall < 0.6
    assert result.answer == "both fetched" and result.ok and not result.replanned
    assert [r.result.output for r in result.calls] == ["doc from a", "doc from b"]
    planner.assert_consumed()
    # the plan was requested as constrained JSON with the registered tool names as an enum
    schema = planner.calls[0].schema
    assert schema is not None
    assert schema["properties"]["calls"]["items"]["properties"]["tool"]["enum"] == ["fetch", "calculator"]


async def test_max_concurrency_one_serialises() -> None:
    events: list[tuple[str, str, float]] = []
    plan = {"calls": [_call(1, "fetch", {"source": "a"}), _call(2, "fetch", {"source": "b"})]}
    compiler = LLMCompiler(ScriptedModel([plan, "ok"]), _slow_registry(events), max_concurrency=1)
    result = await compiler.compile_and_execute_async("fetch")
    kinds = [e[0] for e in sorted(events, key=lambda e: e[2])]
    assert kinds == ["start", "end", "start", "end"]
    a, b = result.calls
    assert a.ended_s <= b.started_s + 1e-3


def test_placeholders_pass_results_along_and_sync_api() -> None:
    seen: list[str] = []

    def model(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        if schema is not None:
            return {
                "calls": [
                    _call(1, "calculator", {"expression": "2 + 3"}),
                    _call(2, "calculator", {"expression": "${1} * 10"}),
                    _call(3, "calculator", {"expression": "$2 + $1"}),
                ]
            }
        seen.append(messages[-1].content)
        return "The answer is 55."

    result = LLMCompiler(FunctionModel(model), ToolRegistry([CalculatorTool()])).compile_and_execute(
        "compute"
    )
    assert [r.result.output for r in result.calls] == ["5", "50", "55"]
    assert result.plan.calls[2].depends_on == ("1", "2")  # inferred from the placeholders
    assert result.calls[1].args == {"expression": "5 * 10"}
    assert "$3 calculator" in seen[0] and "-> 55" in seen[0]
    assert result.answer == "The answer is 55."


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        ([_call(1, "calculator", {"expression": "1"}, [2]), _call(2, "calculator", {"expression": "2"}, [1])],
         "dependency cycle among calls 1, 2"),
        ([_call(1, "calculator", {"expression": "1"}, [1])], "depends on itself"),
        ([_call(1, "rm_rf", {})], "unknown tool 'rm_rf'"),
        ([_call(1, "calculator", {"expression": "${7}"})], "depends on '7', which is not in the plan"),
        ([_call(1, "calculator", {"expression": "${1} + 1"})], "depends on itself"),
        ([_call(1, "calculator", {"expression": "1"}), _call(1, "calculator", {"expression": "2"})],
         "used twice"),
    ],
)  # fmt: skip
async def test_invalid_plans_raise_plan_error(calls: list[dict[str, Any]], message: str) -> None:
    planner = ScriptedModel([{"calls": calls}])
    compiler = LLMCompiler(planner, ToolRegistry([CalculatorTool()]))
    with pytest.raises(PlanError, match=message):
        await compiler.compile_and_execute_async("do it")
    planner.assert_consumed()


def _echo_registry() -> ToolRegistry:
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    def double(n: int) -> int:
        """Twice a number."""
        return 2 * n

    return ToolRegistry(
        [FunctionTool.from_function(echo), FunctionTool.from_function(double), CalculatorTool()]
    )


async def test_dollar_amounts_and_code_stay_literal() -> None:
    literal = [
        "$100",  # whole argument: no call 100, so a price, not a reference
        "cost $5.00",  # followed by a decimal part
        "$1,000 or US$1 or \\$1 or $1x",  # thousands, a word before, a backslash, a word after
        "print('$$1') and echo $${1}",  # escaped: a literal $1 / ${1} even though call 1 exists
        "const s = `${name}`; echo ${HOME}",  # named ${...} that is no call id
    ]
    plan = {
        "calls": [
            _call(1, "echo", {"text": "print('$1')"}),  # call 1 has no earlier call: literal
            *(_call(n, "echo", {"text": text}) for n, text in enumerate(literal, start=2)),
        ]
    }
    planner = ScriptedModel([plan, "done"])
    result = await LLMCompiler(planner, _echo_registry()).compile_and_execute_async("echo")
    assert all(c.depends_on == () for c in result.plan.calls)  # no spurious dependency
    outputs = [r.result.output for r in result.calls]
    assert outputs == [
        "print('$1')",
        "$100",
        "cost $5.00",
        "$1,000 or US$1 or \\$1 or $1x",
        "print('$1') and echo ${1}",
        "const s = `${name}`; echo ${HOME}",
    ]


async def test_real_references_are_still_resolved_next_to_prices() -> None:
    plan = {
        "calls": [
            _call(1, "calculator", {"expression": "2 + 3"}),
            _call(2, "echo", {"text": "got $1 apples at $1.50 each, ${1} in all, not $10"}),
            _call(3, "double", {"n": "$1"}),  # whole argument: keeps the data type
            _call(4, "echo", {"text": "= ${3}"}),
        ]
    }
    planner = ScriptedModel([plan, "done"])
    result = await LLMCompiler(planner, _echo_registry()).compile_and_execute_async("refs")
    assert [c.depends_on for c in result.plan.calls] == [(), ("1",), ("1",), ("3",)]
    assert result.calls[1].result.output == "got 5 apples at $1.50 each, 5 in all, not $10"
    assert result.calls[2].args == {"n": 5}
    assert result.calls[3].result.output == "= 10"


async def test_non_strict_mode_replans_an_invalid_plan() -> None:
    planner = ScriptedModel(
        [{"calls": [_call(1, "nope", {})]}, {"calls": [_call(1, "calculator", {"expression": "6*7"})]}, "42"]
    )
    compiler = LLMCompiler(planner, ToolRegistry([CalculatorTool()]), strict=False)
    result = await compiler.compile_and_execute_async("6 times 7")
    assert result.answer == "42" and result.results["1"].output == "42"
    assert "unknown tool 'nope'" in planner.calls[1].messages[-1].content


async def test_replans_once_on_a_failing_call() -> None:
    planner = ScriptedModel(
        [
            {"calls": [_call(1, "calculator", {"expression": "1 / 0"}), _call(2, "calculator", {"expression": "$1 + 1"})]},
            {"calls": [_call(1, "calculator", {"expression": "1 / 4"})]},
            "0.25",
        ]
    )  # fmt: skip
    result = await LLMCompiler(planner, ToolRegistry([CalculatorTool()])).compile_and_execute_async("1/0?")
    planner.assert_consumed()
    assert result.replanned and result.ok and result.answer == "0.25"
    first_round = result.failed_rounds[0]
    assert "division by zero" in (first_round[0].result.error or "")
    assert "skipped: dependency $1 failed" in (first_round[1].result.error or "")
    feedback = planner.calls[1].messages[-1].content
    assert "Executing your plan failed" in feedback and "division by zero" in feedback


async def test_only_one_replan_then_the_joiner_sees_the_errors() -> None:
    bad = {"calls": [_call(1, "calculator", {"expression": "1 / 0"})]}
    planner = ScriptedModel([bad, bad, "cannot divide by zero"])
    result = await LLMCompiler(planner, ToolRegistry([CalculatorTool()])).compile_and_execute_async("1/0")
    planner.assert_consumed()  # exactly two plans and one join: no third planner call
    assert not result.ok and len(result.plans) == 2
    assert "ERROR: calculator: division by zero" in planner.calls[2].messages[-1].content


async def test_separate_joiner_and_tool_rag() -> None:
    planner = ScriptedModel([{"calls": [_call(1, "calculator", {"expression": "2**8"})]}])
    joiner = ScriptedModel(["256"])

    def weather(city: str) -> str:
        """Weather forecast for a city."""
        return "sunny"

    reg = ToolRegistry([weather, CalculatorTool()])
    compiler = LLMCompiler(planner, reg, joiner_llm=joiner, top_k_tools=1)
    result = await compiler.compile_and_execute_async("calculate 2 to the power 8")
    assert result.answer == "256"
    schema = planner.calls[0].schema
    assert schema is not None
    assert schema["properties"]["calls"]["items"]["properties"]["tool"]["enum"] == ["calculator"]
    planner.assert_consumed()
    joiner.assert_consumed()
