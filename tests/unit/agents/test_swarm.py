"""``swarm``: concurrent runs under a limit, results in input order, failures kept in their slot."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from _agent_models import Fake, done

import purpose_agent as pa
from purpose_agent.errors import ConfigurationError


class Gauge:
    """An async agent that finishes later tasks first and records how many ran at once."""

    def __init__(self, name: str = "gauge", fail_on: str = "") -> None:
        self.name = name
        self.fail_on = fail_on
        self.running = 0
        self.peak = 0

    async def arun(self, task: str) -> str:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            for _ in range(10 - int(task[-1])):  # task "t9" yields least: it ends first
                await asyncio.sleep(0)
            if task == self.fail_on:
                raise ValueError(f"cannot do {task}")
            return f"{self.name}:{task}"
        finally:
            self.running -= 1


def test_results_come_back_in_input_order_under_the_limit() -> None:
    agent = Gauge()
    tasks = [f"t{i}" for i in range(6)]
    results = pa.swarm(tasks, agent, max_concurrency=2)
    assert [r.output for r in results] == [f"gauge:{t}" for t in tasks]
    assert [r.task for r in results] == tasks and all(r.ok and r.success for r in results)
    assert agent.peak == 2
    unlimited = Gauge()
    pa.swarm(tasks, unlimited)
    assert unlimited.peak == 6


def test_a_failure_stays_in_its_own_slot() -> None:
    results = pa.swarm(["t1", "t2", "t3"], Gauge(fail_on="t2"), max_concurrency=3)
    assert [r.ok for r in results] == [True, False, True]
    failed = results[1]
    assert not failed.success and failed.task == "t2" and failed.decided_by == "error"
    assert failed.error == "ValueError: cannot do t2" and failed.agent == "gauge"
    assert str(failed) == "ERROR (gauge): ValueError: cannot do t2"
    assert results[2].output == "gauge:t3"


def test_tasks_go_round_robin_to_the_agents_sync_ones_in_threads() -> None:
    class Sync:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, task: str) -> str:
            return f"{self.name} did {task}"

    results = pa.swarm(["a", "b", "c"], [Sync("x"), Sync("y")])
    assert [r.output for r in results] == ["x did a", "y did b", "x did c"]
    assert [r.agent for r in results] == ["x", "y", "x"]
    assert pa.swarm(["q"], lambda task: task.upper())[0].output == "Q"  # a plain function
    [bad] = pa.swarm(["q"], [object()])
    assert not bad.ok and "is not an agent" in (bad.error or "")


def test_sparks_in_a_swarm_run_through_the_kernel(tmp_path: Path) -> None:
    def actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
        return done(prompt.split("TASK: ")[1].split("\n")[0].upper())

    spark = pa.Spark(
        "s", model=Fake(actor).model, memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    )
    results = pa.swarm(["one", "two", "three"], spark, max_concurrency=2)
    assert [r.output for r in results] == ["ONE", "TWO", "THREE"]
    assert all(r.success and r.trace_path for r in results) and len(spark.history) == 3


def test_a_failing_spark_is_an_error_result(tmp_path: Path) -> None:
    spark = pa.Spark(
        "s", model=pa.ScriptedModel([]), memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None)
    )
    [result] = pa.swarm(["x"], spark)
    assert not result.ok and "RunFailedError" in (result.error or "")


async def test_aswarm_inside_an_event_loop() -> None:
    results = await pa.agents.aswarm(["t1", "t2"], Gauge(), max_concurrency=1)
    assert [r.output for r in results] == ["gauge:t1", "gauge:t2"]
    assert [r.output for r in pa.swarm(["t1"], Gauge())] == ["gauge:t1"]  # sync form inside a loop


@pytest.mark.parametrize(
    ("tasks", "agents", "limit", "message"),
    [
        ("t1", Gauge(), None, "list of tasks"),
        (["t1"], [], None, "at least one agent"),
        (["t1"], Gauge(), 0, "max_concurrency"),
        (["t1"], Gauge(), True, "max_concurrency"),
    ],
)
def test_bad_inputs_are_clear_errors(tasks: Any, agents: Any, limit: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        pa.swarm(tasks, agents, max_concurrency=limit)


def test_no_tasks_no_results() -> None:
    assert pa.swarm([], Gauge()) == []
