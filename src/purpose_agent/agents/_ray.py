"""``swarm(..., executor="ray")``: the runs fanned out over a Ray cluster (extra ``ray``).

Each task is one Ray task that runs ``ask(agent, task)`` on a worker, exactly as the local
executor runs it in the driver; results come back in input order, and a run that raises is an
error result in its own slot. The agent is sent to the worker by value, with the rules of
``purpose_agent.loop._fanout`` (a memory store travels as its location and is reopened on the
worker, an OpenAI-compatible model as its endpoint, a lock as a new lock; an in-process local
model or a ``local-server:`` backend is not sent: a ConfigurationError says so).

What an agent changes on a worker other than its memory (``Spark.history``, say) stays there.
A ``ScriptedModel`` or ``FunctionModel`` is copied (each task starts from the copy it was sent).

A worker process that dies mid-run is retried (``retries`` times, a new worker); if it dies
again, its slot holds an error result that says so. A run is never silently lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from purpose_agent.agents.result import RunResult
from purpose_agent.loop._fanout import WORKER_RETRIES, LostRun, fan_out


def _run_one(payload: tuple[Any, str, str]) -> RunResult:
    """On the worker: the local executor's own path for one task."""
    from purpose_agent.agents.swarm import _as_result, ask
    from purpose_agent.models.base import run_sync

    agent, task, name = payload
    try:
        return _as_result(task, run_sync(lambda: ask(agent, task)), name)
    except Exception as exc:  # recorded in its slot, never lost (as locally)
        return RunResult.failed(task, exc, agent=name)


def ray_swarm(
    tasks: Sequence[str],
    pool: Sequence[Any],
    names: Sequence[str],
    max_concurrency: int | None,
    address: str | None,
    retries: int = WORKER_RETRIES,
) -> list[RunResult]:
    """Run task ``i`` on ``pool[i % len(pool)]`` as Ray tasks, at most ``max_concurrency`` at
    once; one result per task, in input order."""
    who = [names[i % len(pool)] for i in range(len(tasks))]
    values = fan_out(
        _run_one,
        [(pool[i % len(pool)], task, who[i]) for i, task in enumerate(tasks)],
        [f"agent {n!r}" for n in who],
        max_concurrency=max_concurrency,
        address=address,
        retries=retries,
        purpose="swarm(executor='ray')",
        hint="give swarm agents that pickle (models by endpoint, memory by path or URL)",
    )
    return [
        RunResult.failed(task, v.reason, agent=who[i]) if isinstance(v, LostRun) else v
        for i, (task, v) in enumerate(zip(tasks, values, strict=True))
    ]
