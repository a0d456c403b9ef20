"""One unit of the benchmark runner (``purpose_agent.evals.runner``): ``_episode`` runs it and
returns its ledger record, the same in this process and on a Ray worker (``_remote_test``)."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import TaskResult
from purpose_agent.errors import BackendError, RunFailedError
from purpose_agent.evals.conditions import ArmSetup
from purpose_agent.evals.gate import unit_seed
from purpose_agent.evals.ledger import UnitKey
from purpose_agent.evals.meter import Meter, MeteredBackend, reseed
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.memory.events import MemoryGated, TrainingAttempt
from purpose_agent.models._llama_errors import ContextOverflowError


def _result_record(result: TaskResult | None, cost: Meter, wall: float, error: str = "") -> dict[str, Any]:
    if result is None:
        return {
            "success": False, "outcome": 0.0, "steps": 0, "stop_reason": f"error: {error}",
            "calls": cost.calls, "tokens": cost.tokens, "model_time_s": round(cost.model_time_s, 3),
            "wall_s": round(wall, 3), "memories": 0,
        }  # fmt: skip
    return {
        "success": bool(result.success),
        "outcome": float(result.outcome if result.outcome is not None else result.final_phi / 10.0),
        "steps": len(result.steps),
        "stop_reason": result.stop_reason,
        "calls": cost.calls,
        "tokens": cost.tokens,
        "model_time_s": round(cost.model_time_s, 3),
        "wall_s": round(wall, 3),
        "memories": len(result.memory_ids),
        "critic_agreement": result.critic_agreement,
    }


def model_down(exc: BaseException | None) -> bool:
    """The model could not be reached or died (a llama-server that crashed, a refused
    connection, a rejected key): no episode was played, so none is recorded. The benchmark stops
    with the error, and the same command resumes at this unit. (On 2026-12-02 a llama-server that
    died at start was recorded as 130 failed episodes in a few minutes.) A prompt longer than
    the context is the episode's own failure, and is recorded."""
    return isinstance(exc, BackendError) and not isinstance(exc, ContextOverflowError)


def _gate_record(events: Sequence[ev.Event]) -> dict[str, Any]:
    """What the memory hook's gate did after one training task, from its events."""
    gated = [e for e in events if isinstance(e, MemoryGated)]
    decisions = [
        {
            "id": e.memory_id, "action": e.action, "wins": e.wins, "losses": e.losses, "ties": e.ties,
            "pairs": e.pairs, "new_pairs": e.new_pairs, "gain": e.gain, "p": e.p_value, "runs": e.runs,
            "calls": e.calls, "seconds": e.seconds, "reason": e.reason[:240],
        }
        for e in gated
    ]  # fmt: skip
    return {
        "decisions": decisions,
        "candidates": sum(
            isinstance(e, ev.CandidateProposed) and e.memory_kind != "critic_calibration" for e in events
        ),
        "promoted": sum(e.action == "promoted" for e in gated),
        "rejected": sum(e.action == "rejected" for e in gated),
        "runs": sum(e.runs for e in gated),
        "calls": sum(e.calls or 0 for e in gated),
        "seconds": round(sum(e.seconds for e in gated), 3),
    }


def _total(meters: Sequence[MeteredBackend | None]) -> Meter:
    """The summed meters of the models a unit may call (actor, critic, teacher)."""
    m = Meter()
    for other in meters:
        if other is not None:
            c = other.meter
            m = Meter(m.calls + c.calls, m.prompt_tokens + c.prompt_tokens,
                      m.completion_tokens + c.completion_tokens, m.model_time_s + c.model_time_s)  # fmt: skip
    return m


def _episode(
    key: UnitKey,
    task: BenchmarkTask,
    build: Callable[[], Orchestrator],
    llm: MeteredBackend,
    teacher: MeteredBackend | None,
    meters: Sequence[MeteredBackend | None],
    close_stores: bool = True,
) -> dict[str, Any]:
    """Run one unit and return its ledger record (without the key): the same in this process
    and on a Ray worker."""
    # the same sampling seed for a task in every arm (paired), independent of run order
    s = unit_seed(key.seed, "eval" if key.phase == "test" else "train", task.id)
    reseed(llm, s)
    if teacher is not None:
        reseed(teacher, s)
    m0, t0 = _total(meters), time.perf_counter()
    result: TaskResult | None = None
    error = ""
    events: list[ev.Event] = []
    orch: Orchestrator | _Done | None = None
    try:
        orch = build()
        orch.bus.subscribe(events.append)
        result = orch.run_task(task.purpose, task.initial_state, task.max_steps)
    except RunFailedError as exc:
        if model_down(exc.__cause__):
            raise exc.__cause__ from exc  # type: ignore[misc]
        result = exc.result if isinstance(exc.result, TaskResult) else None
        error = repr(exc.__cause__)
    finally:
        store = getattr(getattr(orch, "memory", None), "store", None)
        if store is not None and close_stores:
            store.close()
            orch = _Done(getattr(orch, "purpose_function", None))
            gc.collect()  # the gate's replay stores too: the file is whole before the checkpoint
    rec = _result_record(result, _total(meters) - m0, time.perf_counter() - t0, error)
    rec["split"] = task.split
    stats = getattr(getattr(orch, "purpose_function", None), "stats", None)
    if stats is not None:  # critic calls made, and saved by the cache and by ground truth
        rec["critic"] = {
            "calls": stats.calls,
            "cache_hits": stats.cache_hits,
            "ground_truth": stats.ground_truth,
        }
    if key.phase == "train":
        attempts = [e for e in events if isinstance(e, TrainingAttempt)]
        rec["attempts"] = max(1, len(attempts))
        rec["attempt_successes"] = [bool(e.success) for e in attempts] or [rec["success"]]
        rec["gate"] = _gate_record(events)
    return rec


def _remote_test(
    payload: tuple[
        UnitKey, BenchmarkTask, ArmSetup, MeteredBackend, MeteredBackend | None, MeteredBackend | None
    ],
) -> dict[str, Any]:
    """On a Ray worker: one test episode of an arm (its models are the worker's copies)."""
    key, task, setup, llm, critic_llm, teacher = payload

    def build() -> Orchestrator:
        return setup.orchestrator(task, RunMode.EVAL_TEST)

    return _episode(key, task, build, llm, teacher, (llm, critic_llm, teacher))


@dataclass
class _Done:
    """What is kept of a finished unit's Orchestrator (its memory stores are closed)."""

    purpose_function: Any
