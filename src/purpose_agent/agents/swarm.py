"""``swarm(tasks, agents, max_concurrency=None)``: many runs at once, results in input order.

    results = pa.swarm(["task a", "task b", "task c"], [spark1, spark2], max_concurrency=2)

Task ``i`` goes to ``agents[i % len(agents)]`` (one agent: all tasks). An agent is anything with
``arun(task)`` (awaited) or ``run(task)`` (run in a worker thread): a Spark, a Team, your own.
Runs are asyncio tasks under a semaphore of ``max_concurrency`` (None: all at once). A run that
raises becomes an error result in its own slot (``success=False``, ``error`` names the
exception, ``ok`` is False); the others go on. Local inference through one model serialises
its calls; concurrent local inference is a later issue.

``executor="ray"`` (extra ``ray``) runs the same tasks as Ray tasks on a cluster (``address``,
else $RAY_ADDRESS, else a local instance), same rules and order; see ``agents/_ray.py``.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import Any

from purpose_agent.agents.result import Cost, RunResult, as_text
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._fanout import Executor, check_executor
from purpose_agent.models.base import run_sync

__all__ = ["agent_name", "ask", "aswarm", "swarm"]


def agent_name(agent: Any, index: int = 0) -> str:
    name = getattr(agent, "name", None)
    return name if isinstance(name, str) and name else f"agent{index + 1}"


async def ask(agent: Any, task: str) -> Any:
    """Run one task on an agent: ``await agent.arun(task)`` when it has one, else
    ``agent.run(task)`` in a worker thread; a plain callable is called with the task."""
    arun = getattr(agent, "arun", None)
    if callable(arun):
        return await arun(task)
    run = getattr(agent, "run", None)
    fn = run if callable(run) else agent if callable(agent) else None
    if fn is None:
        raise ConfigurationError(f"{agent!r} is not an agent: it has no run(task) or arun(task)")
    value = await asyncio.to_thread(fn, task)
    return await value if inspect.isawaitable(value) else value


def _as_result(task: str, value: Any, name: str) -> RunResult:
    if isinstance(value, RunResult):
        return value
    text = as_text(value)
    success = bool(getattr(value, "success", True))
    phi = float(getattr(value, "final_phi", getattr(value, "phi", 0.0)) or 0.0)
    trace = getattr(value, "trace_path", None)
    return RunResult(task, text, success, phi, 0, Cost(), trace, (), "agent", name)


def _check(tasks: Sequence[str], agents: Any, max_concurrency: int | None) -> list[Any]:
    if isinstance(tasks, str) or not isinstance(tasks, Sequence):
        raise ConfigurationError("swarm needs a list of tasks")
    pool = list(agents) if isinstance(agents, (list, tuple)) else [agents]
    if not pool:
        raise ConfigurationError("swarm needs at least one agent")
    if max_concurrency is not None and (isinstance(max_concurrency, bool) or max_concurrency < 1):
        raise ConfigurationError(f"max_concurrency must be None or at least 1, got {max_concurrency!r}")
    return pool


def _on_ray(
    tasks: Sequence[str], agents: Any, max_concurrency: int | None, executor: str, address: str | None
) -> list[RunResult] | None:
    """The results from Ray for executor="ray", None for "local"."""
    check_executor(executor, purpose="swarm(executor='ray')")
    if executor == "local":
        return None
    from purpose_agent.agents._ray import ray_swarm

    pool = _check(tasks, agents, max_concurrency)
    names = [agent_name(a, i) for i, a in enumerate(pool)]
    return ray_swarm(list(tasks), pool, names, max_concurrency, address)


async def aswarm(
    tasks: Sequence[str],
    agents: Any,
    max_concurrency: int | None = None,
    *,
    executor: Executor = "local",
    address: str | None = None,
) -> list[RunResult]:
    """The async form of ``swarm``."""
    if executor != "local":
        on_ray = await asyncio.to_thread(_on_ray, tasks, agents, max_concurrency, executor, address)
        assert on_ray is not None
        return on_ray
    pool = _check(tasks, agents, max_concurrency)
    limit = asyncio.Semaphore(max_concurrency or max(1, len(tasks)))

    async def one(i: int, task: str) -> RunResult:
        agent = pool[i % len(pool)]
        name = agent_name(agent, i % len(pool))
        async with limit:
            try:
                return _as_result(task, await ask(agent, task), name)
            except Exception as exc:  # recorded in its slot, never lost
                return RunResult.failed(task, exc, agent=name)

    return list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks))))


def swarm(
    tasks: Sequence[str],
    agents: Any,
    max_concurrency: int | None = None,
    *,
    executor: Executor = "local",
    address: str | None = None,
) -> list[RunResult]:
    """Run every task concurrently (see the module docstring); one result per task, in order."""
    on_ray = _on_ray(tasks, agents, max_concurrency, executor, address)
    if on_ray is not None:
        return on_ray
    return run_sync(lambda: aswarm(tasks, agents, max_concurrency))
