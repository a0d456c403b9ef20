"""Validation replay for the memory CI: run validation tasks through the Orchestrator in
``LEARNING_VALIDATION`` mode with a candidate forced into, or kept out of, the prompt, with the
same tasks and seeds both ways.

Replays score from ground truth (``ground_truth_phi=True``) and make no critic calls: a state
without an outcome gets Φ = 0 with zero confidence (it only feeds the actor's progress line,
the same way with and without the candidate). A unit's outcome is the environment's ground
truth at the end of the run, or None when it reported none: the gate never decides on Φ.

``executor="ray"`` (extra ``ray``) runs each replay as a Ray task: the same run on a worker
(``loop/_fanout.py``: the store reopened from its location, the model a copy or rebuilt from
its endpoint), so the gate decides the same. The gate sends a unit's two runs (without and with the
candidate) at once (``pairs_at_once``), on Ray and also in this process when the model decodes
concurrent calls together (a ``local-server:`` model's slots); units still run one after
another, since each result can end the gate. A replay whose worker died twice raises ``WorkerLostError``; the gate then
keeps the candidate quarantined and its decision says why.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

from purpose_agent._text import BM25, tokenize
from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Action, Score, State
from purpose_agent.critic.purpose_function import CriticCall, NoModel, PurposeFunction
from purpose_agent.errors import RunFailedError
from purpose_agent.loop._fanout import (
    Executor,
    LostRun,
    absorb,
    afan_out_one,
    check_executor,
    refuse_local_model,
    spent,
)
from purpose_agent.loop.attempts import ATTEMPT
from purpose_agent.loop.engine import Engine
from purpose_agent.loop.settings import CriticSettings, TraceSettings
from purpose_agent.memory.evidence import UnitRun
from purpose_agent.memory.sources import blank_placeholders, task_of
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import Memory
from purpose_agent.models.base import Backend, run_sync

#: (environment, memory hook) -> the Orchestrator a validation run uses
OrchestratorFactory = Callable[[Environment, Any], Engine]


def _terms(text: str) -> list[str]:
    """The words that tell one kind of task from another: no placeholder, number or letter."""
    return [t for t in tokenize(blank_placeholders(text)) if len(t) > 1 and not t.isdigit()]


@dataclass(frozen=True)
class ReplayTask:
    """A validation task: its purpose and an environment per seed.

    ``key`` names the task across gates (evidence is accumulated per task and seed; default:
    its position and purpose). ``make_orchestrator`` builds the run's Orchestrator (default: a
    plain one on the replay's model, without tools)."""

    purpose: str
    make_env: Callable[[int], Environment]
    initial_state: State | None = None
    max_steps: int = 6
    key: str = ""
    make_orchestrator: OrchestratorFactory | None = None


class NoCriticPurposeFunction(PurposeFunction):
    """Φ for validation replays without a model call: with ``ground_truth_phi=True`` a state
    with an outcome is scored from it by the orchestrator; any other state gets Φ = 0 with
    zero confidence."""

    def __init__(self) -> None:
        super().__init__(NoModel("no-critic", "validation replays make no critic calls"), cache=False)

    async def ascore(
        self,
        purpose: str,
        state: State,
        previous: State | None = None,
        action: Action | None = None,
        **_: Any,
    ) -> CriticCall:
        return CriticCall(Score(0.0, "no ground truth for this state", "", 0.0, False, "fallback"), None)


def decodes_together(llm: object) -> bool:
    """True for a model that decodes concurrent calls in one batch (``parallel`` ≥ 2, e.g. a
    llama-server with several slots); a metered wrapper passes the attribute through."""
    parallel = getattr(llm, "parallel", 1)
    return isinstance(parallel, int) and not isinstance(parallel, bool) and parallel >= 2


def _reseed(llm: Backend | None, seed: int) -> None:
    reseed = getattr(llm, "reseed", None)
    if callable(reseed):
        reseed(seed)


class ValidationReplay:
    """The replay ``MemoryCI`` runs: ``units()`` and ``run_unit(key, include, exclude)`` (one
    validation run), and ``replay(include_ids, exclude_ids) -> outcomes`` for all units.

    ``tasks`` is a sequence, or a callable returning the current tasks (validation sets that
    grow, such as held-out training tasks). A unit is (task, seed), keyed ``"<task key>#<seed>"``.
    ``critic_llm``: when given, states without ground truth are scored by this critic instead
    of Φ = 0 (for the actor's progress line only; outcomes still come from ground truth). A
    run whose model fails counts as outcome 0.0. ``executor="ray"``: each run is a Ray task
    (on the cluster at ``address``; see the module docstring).
    """

    def __init__(
        self,
        store: MemoryStore,
        llm: Backend,
        tasks: Sequence[ReplayTask] | Callable[[], Sequence[ReplayTask]],
        *,
        critic_llm: Backend | None = None,
        seeds: Sequence[int] = (0,),
        trace: bool = False,
        make_orchestrator: OrchestratorFactory | None = None,
        executor: Executor = "local",
        address: str | None = None,
    ) -> None:
        check_executor(executor, "replay executor")
        if executor == "ray":
            refuse_local_model(llm)
            refuse_local_model(critic_llm)
        if not callable(tasks) and not tasks:
            raise ValueError("a validation replay needs at least one task")
        if not seeds:
            raise ValueError("a validation replay needs at least one seed")
        self._source = store
        self._store: MemoryStore | None = None  # the LEARNING_VALIDATION store, opened when needed
        self.llm = llm
        self.critic_llm = critic_llm
        self._tasks = tasks if callable(tasks) else list(tasks)
        self.seeds = list(seeds)
        self.trace = trace
        self.make_orchestrator = make_orchestrator
        self.executor = executor
        self.address = address
        self.runs = 0
        self.calls = 0
        self.empty_reason = ""

    @property
    def store(self) -> MemoryStore:
        """The store in ``LEARNING_VALIDATION`` mode: the given one, or a connection to its file
        opened on first use and closed by :meth:`close` (reopened when used again)."""
        if self._source.mode is RunMode.LEARNING_VALIDATION:
            return self._source
        if self._store is None:
            self._store = self._source.with_mode(RunMode.LEARNING_VALIDATION)
        return self._store

    def close(self) -> None:
        """Close the connection this replay opened, if any (the given store stays open)."""
        store, self._store = self._store, None
        if store is not None:
            store.close()

    @property
    def pairs_at_once(self) -> bool:
        """True when the gate runs a unit's baseline and its run with the candidate side by side:
        on Ray (each is a Ray task), and in this process when the model decodes concurrent calls
        together (``parallel`` of 2 or more: a ``local-server:`` model's slots). Both runs of a
        pair use the unit's seed; on one in-process model they would only wait for each other."""
        return self.executor == "ray" or decodes_together(self.llm)

    @property
    def tasks(self) -> list[ReplayTask]:
        return list(self._tasks() if callable(self._tasks) else self._tasks)

    def _index(self) -> dict[str, tuple[ReplayTask, int]]:
        out: dict[str, tuple[ReplayTask, int]] = {}
        for i, task in enumerate(self.tasks):
            base = task.key or f"{i}:{task.purpose[:80]}"
            for seed in self.seeds:
                out[f"{base}#{seed}"] = (task, seed)
        return out

    def units(self) -> list[str]:
        return list(self._index())

    def units_for(self, memory: Memory) -> list[str]:
        """The units, those whose task is most like the lesson's own task first (BM25 of the
        lesson's task against the units' purposes: a word every task shares counts for little;
        numbers, single letters and placeholders are left out; ties keep the order of
        :meth:`units`). A gate replays a few units at a time, so it spends them where the
        lesson can make a difference: a worked example for one kind of question is tried on
        questions of that kind before any other."""
        index = list(self._index().items())
        bm25: BM25[int] = BM25()
        for i, (_, (task, _)) in enumerate(index):
            bm25.add(i, _terms(task.purpose))
        score = bm25.scores(_terms(task_of(memory)))
        ranked = sorted(range(len(index)), key=lambda i: (-score.get(i, 0.0), i))
        return [index[i][0] for i in ranked]

    def _orchestrator(self, task: ReplayTask, env: Environment, hook: Any) -> Engine:
        factory = task.make_orchestrator or self.make_orchestrator
        if factory is not None:
            return factory(env, hook)
        return Engine(
            self.llm,
            env,
            critic_llm=self.critic_llm,
            memory=hook,
            mode=RunMode.LEARNING_VALIDATION,
            critic=CriticSettings(ground_truth_phi=True),
            trace=TraceSettings(enabled=self.trace),
            purpose_function=None if self.critic_llm is not None else NoCriticPurposeFunction(),
        )

    async def arun_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
        """One validation run of unit ``key`` with ``include`` forced into the prompt and
        ``exclude`` kept out of it."""
        from purpose_agent.loop.hook import StoreMemoryHook

        try:
            task, seed = self._index()[key]
        except KeyError:
            raise KeyError(f"no validation unit {key!r}") from None
        if self.executor == "ray":
            return await self._arun_on_ray(key, task, seed, include, exclude)
        _reseed(self.llm, seed)
        if self.critic_llm is not None and self.critic_llm is not self.llm:
            _reseed(self.critic_llm, seed)
        hook = StoreMemoryHook(
            self.store,
            distill=False,
            force_include=include,
            force_exclude=exclude,
            count_tokens=getattr(self.llm, "count_tokens", None),
        )
        orch = self._orchestrator(task, task.make_env(seed), hook)
        self.runs += 1
        t0 = time.perf_counter()
        token = ATTEMPT.set(None)  # a replay is never a training attempt (no retry note, no sampling)
        try:
            # in a fresh context, as a run of its own: no attempt, stream or listener of the
            # training run that is learning reaches it
            result = await asyncio.get_running_loop().create_task(
                orch.arun_task(task.purpose, task.initial_state, task.max_steps),
                context=contextvars.Context(),
            )
            outcome = None if result.outcome is None else float(result.outcome)
        except RunFailedError as exc:
            result = exc.result  # type: ignore[assignment]
            outcome = 0.0
        finally:
            ATTEMPT.reset(token)
        calls = int(getattr(getattr(result, "usage", None), "calls", 0) or 0)
        self.calls += calls
        return UnitRun(outcome, calls, time.perf_counter() - t0)

    async def _arun_on_ray(
        self, key: str, task: ReplayTask, seed: int, include: Sequence[str], exclude: Sequence[str]
    ) -> UnitRun:
        """The same run as a Ray task: a one-unit copy of this replay runs it on a worker."""
        one = ValidationReplay(
            self.store,
            self.llm,
            [replace(task, key=key.rsplit("#", 1)[0])],
            critic_llm=self.critic_llm,
            seeds=[seed],
            trace=self.trace,
            make_orchestrator=self.make_orchestrator,
        )
        self.runs += 1
        value = await afan_out_one(
            _remote_unit,
            (one, key, list(include), list(exclude)),
            f"validation unit {key!r}",
            address=self.address,
            purpose="Learning(replay_executor='ray')",
            hint="give validation tasks, environments and models that pickle (models by endpoint)",
        )
        if isinstance(value, LostRun):
            raise value.exception()
        run, cost = value
        absorb(self.llm, cost)  # a metered model counts the worker's calls as its own
        self.calls += run.calls
        return cast(UnitRun, run)

    def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
        """Sync form of :meth:`arun_unit`."""
        return run_sync(lambda: self.arun_unit(key, include, exclude))

    def __call__(self, include_ids: Sequence[str], exclude_ids: Sequence[str]) -> list[float | None]:
        return [self.run_unit(k, include_ids, exclude_ids).outcome for k in self.units()]


def _remote_unit(payload: tuple[ValidationReplay, str, list[str], list[str]]) -> tuple[UnitRun, Any]:
    """On a Ray worker: one validation run, and what the model's copy spent on it (the store
    reopened here is closed after it)."""
    replay, key, include, exclude = payload
    try:
        return replay.run_unit(key, include, exclude), spent(replay.llm)
    finally:
        replay.close()
        replay._source.close()
