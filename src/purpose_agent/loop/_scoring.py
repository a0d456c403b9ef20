"""Scoring and cost accounting for the engine: ground truth of a state, Φ of a new state
(from ground truth when allowed, else the critic), the anomaly weight of a step, the cost
event of every model call, the run's result, and calibration examples from ground truth.
The engine is passed in as a ``ScoringHost``, the few things this needs from it, so this
module sits below the engine in the loop's layers."""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from purpose_agent.core import events as ev
from purpose_agent.core.environment import Environment, GroundTruthError
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Action, Score, State, TaskResult
from purpose_agent.critic import anomalies as anom
from purpose_agent.critic.anomalies import AnomalyPolicy
from purpose_agent.critic.purpose_function import ground_truth_score
from purpose_agent.loop import _steps
from purpose_agent.loop._run import Run
from purpose_agent.models.base import Backend, Completion, Usage
from purpose_agent.models.pricing import price_call


class ScoringHost(Protocol):
    environment: Environment
    purpose_function: Any
    mode: RunMode
    llm: Backend
    critic_llm: Backend

    @property
    def ground_truth_phi(self) -> bool: ...

    @property
    def rescore_unchanged(self) -> bool: ...

    @property
    def anomaly_policy(self) -> AnomalyPolicy: ...

    @property
    def phi_threshold(self) -> float: ...

    @property
    def success_outcome(self) -> float: ...

    def _emit(self, run: Run, event: ev.Event) -> None: ...

    def _tokens(self, run: Run, step: int, role: str) -> AbstractContextManager[None]: ...

    def _calibration_store(self) -> Any: ...


def account(host: ScoringHost, run: Run, role: str, completion: Completion | None, step: int = 0) -> Usage:
    """Add a model call to the run's usage and record its ``cost`` event (USD from the price table)."""
    if completion is None:
        return Usage(calls=0)
    run.usage = run.usage + completion.usage
    price = price_call(
        completion.model,
        completion.usage.prompt_tokens,
        completion.usage.completion_tokens,
        backend=host.llm if role == "actor" else host.critic_llm,
    )
    host._emit(
        run,
        ev.CostIncurred(
            role=role,
            model=completion.model,
            step=step,
            prompt_tokens=completion.usage.prompt_tokens,
            completion_tokens=completion.usage.completion_tokens,
            processed_prompt_tokens=completion.usage.processed_prompt_tokens,
            latency_s=completion.latency_s,
            usd=price.usd,
            price_source=price.source,
        ),
    )
    return completion.usage


def outcome(host: ScoringHost, run: Run, state: State) -> float | None:
    """Ground truth of ``state``. A check that raises or returns a non-number is recorded
    (an ``error`` event) and raises ``GroundTruthError``: it is never taken for "unknown"."""
    cause: Exception | None = None
    try:
        value = host.environment.outcome(state)
    except Exception as exc:
        problem, cause = f"environment.outcome raised {type(exc).__name__}: {exc}", exc
    else:
        if value is None:
            return None
        if isinstance(value, numbers.Real) and not math.isnan(value):
            return float(value)
        problem = f"environment.outcome returned {value!r}, not a number or None"
    host._emit(run, ev.ErrorRaised(where="environment.outcome", message=problem[:2000]))
    raise GroundTruthError(f"{problem}; the ground truth is unknown, so the run cannot be judged") from cause


def _count_ground_truth(host: ScoringHost) -> None:
    counter = getattr(host.purpose_function, "count_ground_truth", None)
    if callable(counter):
        counter()


async def score(
    host: ScoringHost,
    purpose: str,
    state: State,
    previous: State | None,
    action: Action | None,
    known: float | None,
) -> tuple[Score, Completion | None]:
    """Φ of a new state: from ground truth when allowed and known, else from the critic."""
    if host.ground_truth_phi and known is not None:
        _count_ground_truth(host)
        return ground_truth_score(known), None
    if previous is None:
        call = await host.purpose_function.ascore(purpose, state)
    else:
        call = await host.purpose_function.ascore(purpose, state, previous, action)
    return call.score, call.completion


@dataclass(frozen=True)
class Judged:
    """Φ of the state a step reached, how much to trust it, and what the judging cost."""

    phi: float
    evidence: str
    confidence: float
    source: str
    anomalies: tuple[str, ...]
    weight: float
    usage: Usage
    model_time_s: float


async def judge_step(
    host: ScoringHost,
    run: Run,
    index: int,
    action: Action,
    before: State,
    after: State,
    after_hash: str,
    known: float | None,
) -> Judged:
    """Score the state step ``index`` reached: an unchanged state keeps its Φ unless the
    critic settings rescore it; then the anomaly checks set the step's weight."""
    unchanged = after_hash == before.fingerprint()
    usage, model_time = Usage(calls=0), 0.0
    found: tuple[str, ...] = ()
    if unchanged and not host.rescore_unchanged:
        phi_after, evidence, confidence = run.phi, "state unchanged", 1.0
        source = run.source if run.source in ("ground_truth", "human") else "unchanged"
    else:
        with host._tokens(run, index, "critic"):
            if unchanged and not (host.ground_truth_phi and known is not None):
                call = await host.purpose_function.ascore(run.purpose, after, before, action, rescore=True)
                scored, completion = call.score, call.completion
            else:
                scored, completion = await score(host, run.purpose, after, before, action, known)
        usage = account(host, run, "critic", completion, index)
        model_time = completion.latency_s if completion else 0.0
        phi_after, evidence, confidence = scored.phi, scored.evidence, scored.confidence
        source, found = scored.source, scored.anomalies
    anomalies = anom.detect(
        host.anomaly_policy,
        history=[*run.history, (after_hash, phi_after)],
        unchanged=unchanged,
        phi_before=run.phi,
        phi_after=phi_after,
        outcome=known,
        source=source,
        found=found,
    )
    weight = host.anomaly_policy.weight(confidence, anomalies)
    if source == "unchanged":
        weight = min(weight, run.weight * host.anomaly_policy.penalty ** len(anomalies))
    return Judged(phi_after, evidence, confidence, source, tuple(anomalies), weight, usage, model_time)


def result(
    run: Run, success_of: Callable[[float, float], bool], success_outcome: float, threshold: float
) -> TaskResult:
    """The result of ``run``: success from ground truth when known, else from a trusted Φ
    (``success_of(phi, weight)``); a run that ended in an error never succeeds."""
    known = run.outcome
    if run.stop_reason.startswith("error"):
        success = False
    elif known is not None:
        success = known >= success_outcome
    else:
        success = success_of(run.phi, run.weight)
    return TaskResult(
        purpose=run.purpose,
        success=success,
        final_phi=run.phi,
        steps=list(run.steps),
        final_state=run.state,
        outcome=known,
        stop_reason=run.stop_reason or "stopped",
        usage=run.usage,
        wall_time_s=time.perf_counter() - run.started,
        run_id=run.run_id,
        trace_path=str(run.trace.path) if run.trace else None,
        memory_ids=tuple(run.memory_ids),
        critic_agreement=_steps.critic_agreement(run.steps, threshold, success_outcome),
        final_weight=run.weight,
    )


def meta_reward(host: ScoringHost, run: Run, finished: TaskResult) -> None:
    """Judgments checked against ground truth become calibration examples (see
    ``critic.calibration``); only when the run mode writes and a store is attached."""
    store = host._calibration_store()
    if finished.outcome is None or store is None or not host.mode.can_write:
        return
    from purpose_agent.critic.calibration import harvest_examples, store_examples

    try:
        for mid in store_examples(store, harvest_examples(finished)):
            host._emit(
                run,
                ev.MemoryDecided(
                    kind="promoted", memory_id=mid, reason="critic calibration from ground truth"
                ),
            )
    except Exception as exc:
        host._emit(run, ev.ErrorRaised(where="critic.calibrate", message=repr(exc)))
