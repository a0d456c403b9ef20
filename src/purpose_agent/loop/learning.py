"""The default learning path: ``Orchestrator(llm, env, memory=MemoryStore(path))`` (or a path)
learns with the gate, configured by one frozen dataclass, ``Learning``.

After each ``LEARNING_TRAIN`` task the memory hook writes candidates from the run (the
grounded sources of ``purpose_agent.memory.sources``, then the free-text distiller, written by
the ``teacher`` model), and the gate (``MemoryCI``) replays pending candidates on validation
tasks with and without them and promotes only on evidence (``purpose_agent.memory.evidence``).

Validation tasks:
- ``Learning(validation=[...])``: ``ReplayTask``s, ``(purpose, environment_factory)`` pairs
  (the factory takes the seed, or nothing; an Environment instance is deep-copied per run), or
  purposes on the orchestrator's own environment (a ``copy.deepcopy`` of it made when the
  Orchestrator is built, copied again and ``reset()`` for each run; an environment that cannot
  be deep-copied is a ``ConfigurationError``).
- Without it, the gate holds out some of the user's own training tasks: every
  ``holdout_every``-th training run (first attempts only), until ``max_validation`` are held.
  The environment is deep-copied when that run starts (after its reset, before its first
  action); each replay runs on a fresh deep copy of that snapshot from the run's initial
  state, through an Orchestrator with the same actions, tools and settings. A held-out run
  is not learned from. A run that ends without ground truth is not held out (it is learned
  from as usual); an environment that cannot be deep-copied is never held out (an ``error``
  event says so once) and the gate keeps candidates quarantined until validation is given.
  Held-out tasks are kept in memory, shared by every Orchestrator on the same store file in
  this process; a new process starts holding out again (the evidence already gathered is in
  the store and is kept).
- With no validation task yet, candidates wait in the store unscanned (status candidate, never
  in a prompt) until the first gate that can replay them. An environment
  that never reports an outcome gives the gate no ground truth: candidates stay quarantined
  (the gate does not promote on Φ) and the decision says so.

The gate runs in the memory hook's ``aafter_task``, awaited by ``Engine.afinish`` after the
run's result is complete: an async caller's event loop keeps running while the replays run
(``after_task`` and ``Engine.finish`` are the sync forms). The connection a gate opens to the
store in ``LEARNING_VALIDATION`` mode is closed when the gate ends.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import TaskResult
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._fanout import Executor, check_executor
from purpose_agent.loop.attempts import current_attempt
from purpose_agent.loop.engine import Engine
from purpose_agent.loop.replay import (
    NoCriticPurposeFunction,
    OrchestratorFactory,
    ReplayTask,
    ValidationReplay,
)
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings
from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.distiller import resolve_teacher as resolve_teacher
from purpose_agent.memory.events import MemoryGated
from purpose_agent.memory.evidence import GateRule, past_evidence
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, MemoryStatus
from purpose_agent.models.base import Backend, run_sync

ValidationItem = ReplayTask | tuple[str, Any] | str
#: what the default path learns from: the grounded sources of ``purpose_agent.memory.sources``
#: and the free-text distiller (written by the teacher)
SOURCES: tuple[str, ...] = ("examples", "procedures", "failures", "distiller")
_GATED_KINDS = tuple(k for k in MemoryKind if k is not MemoryKind.CRITIC_CALIBRATION)


def _check_item(item: Any) -> None:
    if isinstance(item, (ReplayTask, str)):
        if isinstance(item, str) and not item.strip():
            raise ConfigurationError("a validation purpose must not be empty")
        return
    pair = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
    if pair and (isinstance(item[1], Environment) or callable(item[1])):
        return
    raise ConfigurationError(
        f"cannot use {item!r} as a validation task: pass a ReplayTask, a (purpose, environment "
        "factory) pair, or a purpose string (run on the orchestrator's own environment)"
    )


@dataclass(frozen=True)
class Learning:
    """How an Orchestrator with a memory store learns. Pass ``Orchestrator(..., memory=store,
    learning=Learning(...))``; ``memory=store`` alone means ``Learning()``.

    - ``validation``: tasks for the gate (see the module docstring); None: hold out earlier
      training tasks. An empty list is an error.
    - ``teacher``: the model (Backend or spec) that writes lessons; None: the actor's model.
    - ``train_attempts``: attempts per training task that ground truth says failed
      (``purpose_agent.loop.attempts``); ``attempt_temperature`` for attempts after the first.
    - ``holdout_every`` / ``max_validation``: which training runs are held out, and how many.
    - ``units_per_gate``: new paired units per candidate per gate, its cost cap: with 1, a
      candidate costs a gate one run with it plus at most one baseline run (shared by the
      gate's candidates), about the cost of one training run without critic calls;
      ``candidates_per_gate``: candidates replayed per gate (the rest wait).
    - ``alpha`` / ``noise``: the evidence rule (``purpose_agent.memory.evidence``).
    - ``seeds``: seeds per validation task (more than one only helps a model that samples).
    - ``replay_max_steps``: step limit of explicit validation purposes and pairs (held-out
      tasks keep their run's limit).
    - ``sources``: what candidates are written from (a non-empty subset of ``SOURCES``):
      ``"examples"`` (verified worked examples), ``"procedures"`` (induced from several),
      ``"failures"`` (failure and progress patterns grounded in transitions), ``"distiller"``
      (free-text lessons by the teacher). Default: all of them.
    - ``replay_executor``: where the gate's validation replays run: ``"local"`` (this process)
      or ``"ray"`` (each a Ray task, extra ``ray``; the same decisions), on the cluster at
      ``ray_address`` (None: $RAY_ADDRESS, else a local instance).
    """

    validation: Sequence[ValidationItem] | None = None
    teacher: Backend | str | None = None
    train_attempts: int = 1
    attempt_temperature: float = 0.7
    holdout_every: int = 2
    max_validation: int = 8
    units_per_gate: int = 1
    candidates_per_gate: int = 4
    alpha: float = 0.1
    noise: float = 0.05
    seeds: tuple[int, ...] = (0,)
    replay_max_steps: int = 10
    sources: tuple[str, ...] = SOURCES
    replay_executor: Executor = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        check_executor(self.replay_executor, "Learning.replay_executor")
        if isinstance(self.sources, str):
            raise ConfigurationError(f"Learning.sources must be a tuple of names from {list(SOURCES)}")
        object.__setattr__(self, "sources", tuple(dict.fromkeys(self.sources)))
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ConfigurationError(
                f"Learning.sources must be a non-empty subset of {list(SOURCES)}, got {list(self.sources)}"
            )
        if self.validation is not None:
            if isinstance(self.validation, (str, bytes)) or not isinstance(self.validation, Sequence):
                raise ConfigurationError("validation= must be a list of validation tasks")
            if len(self.validation) == 0:
                raise ConfigurationError(
                    "validation= is empty: pass validation tasks, or leave validation=None to hold "
                    "out some of your own training tasks"
                )
            for item in self.validation:
                _check_item(item)
            object.__setattr__(self, "validation", tuple(self.validation))
        if self.teacher is not None and not isinstance(self.teacher, (str, Backend)):
            raise ConfigurationError(
                f"teacher must be a model spec string or a Backend, got {type(self.teacher).__name__}"
            )
        for name in ("train_attempts", "holdout_every", "max_validation", "units_per_gate"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(f"Learning.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.candidates_per_gate < 1 or self.replay_max_steps < 1:
            raise ConfigurationError("candidates_per_gate and replay_max_steps must be ≥ 1")
        if not 0.0 < self.alpha < 1.0 or self.noise < 0.0 or self.attempt_temperature < 0.0:
            raise ConfigurationError("alpha must be in (0, 1); noise and attempt_temperature ≥ 0")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ConfigurationError("Learning.seeds must not be empty")


def merge_teacher(learning: Learning | None, distiller_llm: Backend | str | None) -> Learning | None:
    """``Orchestrator(distiller_llm=x)`` is ``Learning(teacher=x)``; both at once must agree."""
    if distiller_llm is None:
        return learning
    if learning is None:
        return Learning(teacher=distiller_llm)
    if learning.teacher is not None and learning.teacher is not distiller_llm:
        raise ConfigurationError("give the teacher once: distiller_llm= or Learning(teacher=...), not both")
    return Learning(**{**learning.__dict__, "teacher": distiller_llm})


def replica_factory(orch: Engine) -> OrchestratorFactory:
    """Validation runs like ``orch``'s runs (model, actions, tools, settings), in
    ``LEARNING_VALIDATION``, scored from ground truth with no critic call, untraced, on a
    plain ``Engine`` (a validation run does not learn)."""
    actions = [*orch.tools.values(), *(s for s in orch.specs if s.name not in orch.tools)]
    a, c = orch.actor_settings, orch.critic_settings
    actor = ActorSettings(
        max_tokens=orch.actor.max_tokens,
        layout=orch.actor.layout,
        retry_repeats=a.retry_repeats,
        repeat_temperature=a.repeat_temperature,
        tool_top_k=a.tool_top_k,
    )
    critic = CriticSettings(
        phi_threshold=c.phi_threshold,
        success_outcome=c.success_outcome,
        ground_truth_phi=True,
        anomaly_policy=c.anomaly_policy,
    )
    llm, critic_llm = orch.llm, orch.critic_llm

    def make(env: Environment, hook: Any) -> Engine:
        return Engine(
            llm,
            env,
            actions or None,
            critic_llm,
            hook,
            RunMode.LEARNING_VALIDATION,
            actor=actor,
            critic=critic,
            trace=TraceSettings(enabled=False),
            purpose_function=NoCriticPurposeFunction(),
        )

    return make


def _copies(env: Environment) -> Callable[[int], Environment]:
    """A factory of fresh deep copies of ``env`` (the seed is not used)."""
    return lambda seed: copy.deepcopy(env)


def _env_factory(obj: Any) -> Callable[[int], Environment]:
    if isinstance(obj, Environment):
        return _copies(obj)
    try:
        takes_seed = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(obj).parameters.values()
        )
    except (TypeError, ValueError):
        takes_seed = True
    return (lambda seed: obj(seed)) if takes_seed else (lambda seed: obj())


@dataclass
class _Snapshot:
    env: Environment
    max_steps: int
    factory: OrchestratorFactory


@dataclass
class _Pool:
    """Held-out tasks of one store file in this process."""

    tasks: list[ReplayTask] = field(default_factory=list)
    started: int = 0
    snapshots: dict[str, _Snapshot] = field(default_factory=dict)
    no_ground_truth: int = 0
    copy_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(store: MemoryStore) -> _Pool:
    key = str(store.path.resolve())
    with _POOLS_LOCK:
        return _POOLS.setdefault(key, _Pool())


class Learner:
    """The learning state of one memory hook: its validation tasks and its gate."""

    def __init__(self, store: MemoryStore, config: Learning) -> None:
        self.store = store
        self.config = config
        self.pool = _pool(store)
        self.explicit: list[ReplayTask] | None = None
        self.make_orchestrator: OrchestratorFactory | None = None
        self.llm: Backend | None = None
        self._replay: ValidationReplay | None = None
        self._ci: MemoryCI | None = None
        self._reported_copy_error = False

    # ------------------------------------------------------------------ binding
    def bind(self, orch: Engine) -> None:
        """Called by the Orchestrator that owns the hook: validation runs like its runs."""
        self.llm = orch.llm
        self.make_orchestrator = replica_factory(orch)
        if self.config.validation is not None:
            self.explicit = self._normalize(self.config.validation, orch.environment)
        orch.bus.subscribe(lambda event: self._on_event(event, orch))

    def _normalize(self, items: Sequence[ValidationItem], env: Environment) -> list[ReplayTask]:
        template: Environment | None = None
        out: list[ReplayTask] = []
        steps = self.config.replay_max_steps
        for i, item in enumerate(items):
            if isinstance(item, ReplayTask):
                out.append(
                    item if item.key else ReplayTask(**{**item.__dict__, "key": f"v{i}:{item.purpose[:60]}"})
                )
            elif isinstance(item, str):
                if template is None:
                    try:
                        template = copy.deepcopy(env)
                    except Exception as exc:
                        raise ConfigurationError(
                            "validation purposes run on copies of the orchestrator's environment, but "
                            f"copy.deepcopy({type(env).__name__}) failed ({type(exc).__name__}: {exc}); "
                            "pass (purpose, environment_factory) pairs instead"
                        ) from exc
                out.append(ReplayTask(item, _copies(template), None, steps, f"v{i}:{item[:60]}"))
            else:
                purpose, factory = item
                out.append(ReplayTask(purpose, _env_factory(factory), None, steps, f"v{i}:{purpose[:60]}"))
        return out

    # ------------------------------------------------------------------ holdout
    def _on_event(self, event: ev.Event, orch: Engine) -> None:
        if not isinstance(event, ev.TaskStarted) or event.mode != RunMode.LEARNING_TRAIN.value:
            return
        if self.explicit is not None or self.make_orchestrator is None:
            return
        ctx = current_attempt()
        if ctx is not None and ctx.attempt > 1:
            return  # a retry of the same task
        pool = self.pool
        with pool.lock:
            if len(pool.tasks) + len(pool.snapshots) >= self.config.max_validation:
                return
            pool.started += 1
            if pool.started % self.config.holdout_every:
                return
        try:
            env = copy.deepcopy(orch.environment)
        except Exception as exc:
            pool.copy_error = (
                f"cannot hold out training tasks for validation: copy.deepcopy({type(orch.environment).__name__}) "
                f"failed ({type(exc).__name__}: {exc}); pass Learning(validation=...) to gate lessons"
            )
            return
        with pool.lock:
            pool.snapshots[event.run_id] = _Snapshot(env, event.max_steps or 20, self.make_orchestrator)

    def take_holdout(self, result: TaskResult) -> bool:
        """True when ``result``'s run was held out for validation (it is then not learned from)."""
        pool = self.pool
        with pool.lock:
            snap = pool.snapshots.pop(result.run_id, None)
        if snap is None:
            return False
        if result.stop_reason.startswith("error"):
            return False
        if result.outcome is None:
            with pool.lock:
                pool.no_ground_truth += 1
            return False
        initial = result.steps[0].state_before if result.steps else result.final_state
        env = snap.env
        task = ReplayTask(
            result.purpose,
            _copies(env),
            initial,
            snap.max_steps,
            f"holdout:{result.run_id}",
            snap.factory,
        )
        with pool.lock:
            pool.tasks.append(task)
        return True

    def held_out_attempt(self, run_id: str) -> bool:
        with self.pool.lock:
            return run_id in self.pool.snapshots

    def notices(self) -> list[ev.Event]:
        if self.pool.copy_error and not self._reported_copy_error:
            self._reported_copy_error = True
            return [ev.ErrorRaised(where="memory.holdout", message=self.pool.copy_error)]
        return []

    # ------------------------------------------------------------------ gate
    def validation_tasks(self) -> list[ReplayTask]:
        if self.explicit is not None:
            return list(self.explicit)
        with self.pool.lock:
            return list(self.pool.tasks)

    def _empty_reason(self) -> str:
        pool = self.pool
        if pool.copy_error:
            return "no validation tasks: " + pool.copy_error
        if pool.no_ground_truth and not pool.tasks:
            return (
                f"no ground truth: the environment reported no outcome for the {pool.no_ground_truth} "
                "training runs chosen for validation, so the gate has no evidence (it does not decide on Φ)"
            )
        return "no validation tasks yet (none given; held-out training tasks are still being collected)"

    def ci(self) -> MemoryCI:
        if self._ci is None:
            if self.llm is None:
                raise RuntimeError("the learner is not bound to an orchestrator")
            self._replay = ValidationReplay(
                self.store,
                self.llm,
                self.validation_tasks,
                seeds=self.config.seeds,
                make_orchestrator=self.make_orchestrator,
                executor=self.config.replay_executor,
                address=self.config.ray_address,
            )
            self._ci = MemoryCI(
                self.store,
                self._replay,
                alpha=self.config.alpha,
                noise=self.config.noise,
                units_per_gate=self.config.units_per_gate,
            )
        assert self._replay is not None
        self._replay.empty_reason = self._empty_reason()
        return self._ci

    def pending(self, new_ids: Sequence[str], units: Sequence[str]) -> list[str]:
        """The candidates replayed at this gate, at most ``candidates_per_gate``, in this order:

        1. waiting candidates whose evidence so far leans their way (wins > losses, no decision
           yet): they are the closest to a promotion, so they get the units first;
        2. the new candidates (``new_ids``, then any other not yet scanned);
        3. the other waiting candidates, least recently gated first.

        A waiting candidate is only replayed when the units it has not seen could still decide
        it. New candidates left over are scanned and quarantined without a replay by
        :meth:`agate`; they wait for a later gate."""
        waiting = self._waiting()
        rule = GateRule(alpha=self.config.alpha, noise=self.config.noise)
        fresh = [mid for mid in dict.fromkeys(new_ids) if mid in waiting]
        fresh += [
            mid for mid, m in waiting.items() if m.status is MemoryStatus.CANDIDATE and mid not in fresh
        ]
        leaning: list[tuple[int, float, str]] = []
        rest: list[tuple[float, int, float, str]] = []
        for mid, m in waiting.items():
            if m.status is MemoryStatus.CANDIDATE:
                continue
            evidence = past_evidence(self.store, mid)
            unseen = sum(u not in evidence.seen for u in units)
            # not replayed again when the units it has not seen cannot decide it any more
            if not unseen or not rule.reachable(evidence.pairs(), unseen):
                continue
            tally = rule.tally(evidence.pairs())
            if tally.wins > tally.losses:
                leaning.append((tally.losses - tally.wins, m.created_at, mid))
                continue
            replays = self.store.replays(mid)
            last = max((r.at for r in replays), default=0.0)
            rest.append((last, -m.merges, m.created_at, mid))
        leaning.sort()
        rest.sort()
        order = [x[-1] for x in leaning] + fresh + [x[-1] for x in rest]
        return order[: self.config.candidates_per_gate]

    def _waiting(self) -> dict[str, Any]:
        return {
            m.id: m
            for status in (MemoryStatus.CANDIDATE, MemoryStatus.QUARANTINED)
            for m in self.store.list(status=status)
            if m.kind in _GATED_KINDS
        }

    async def agate(self, new_ids: Sequence[str]) -> list[Decision]:
        """Gate the pending candidates. With no validation unit at all nothing runs and nothing
        is written: the new candidates wait in the store (status candidate, never in a prompt)
        and are scanned, quarantined and replayed at the first gate that has units. New
        candidates beyond ``candidates_per_gate`` are scanned and quarantined, and replayed at
        a later gate."""
        ci = self.ci()
        try:
            units = ci.replay.units() if ci.replay is not None else []  # type: ignore[union-attr]
            if not units:
                why = f"waiting as a candidate; {self._empty_reason()}"
                return [Decision(mid, "deferred", why) for mid in dict.fromkeys(new_ids)]
            chosen = self.pending(new_ids, units)
            decisions = await ci.aprocess(chosen)
            left = [
                mid
                for mid, m in self._waiting().items()
                if m.status is MemoryStatus.CANDIDATE and mid not in chosen
            ]
            budget = f"candidates_per_gate={self.config.candidates_per_gate} spent; replayed at a later gate"
            return decisions + ci.quarantine(left, budget)
        finally:
            self.close()

    def gate(self, new_ids: Sequence[str]) -> list[Decision]:
        """Sync form of :meth:`agate`."""
        return run_sync(lambda: self.agate(new_ids))

    def close(self) -> None:
        """Close the connection the replay opened (a later gate opens it again)."""
        if self._replay is not None:
            self._replay.close()


def decision_events(decisions: Sequence[Decision]) -> list[ev.Event]:
    """One ``gate`` event per gated candidate, plus ``promoted`` / ``rejected`` events."""
    out: list[ev.Event] = []
    for d in decisions:
        if d.action == "skipped":
            continue
        out.append(
            MemoryGated(
                memory_id=d.memory_id,
                action=d.action,
                reason=d.reason[:800],
                pairs=d.pairs,
                new_pairs=d.new_pairs,
                wins=d.wins,
                losses=d.losses,
                ties=d.ties,
                gain=d.gain,
                p_value=d.p_value,
                no_ground_truth=d.no_ground_truth,
                runs=d.runs,
                calls=d.calls,
                seconds=round(d.seconds, 4),
                baseline_reused=d.baseline_reused,
            )
        )
        if d.action in ("promoted", "rejected"):
            out.append(ev.MemoryDecided(kind=d.action, memory_id=d.memory_id, reason=d.reason[:500]))
    return out
