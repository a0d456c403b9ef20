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
from collections.abc import Sequence
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import TaskResult
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._learning_settings import SOURCES as SOURCES
from purpose_agent.loop._learning_settings import Learning as Learning
from purpose_agent.loop._learning_settings import ValidationItem as ValidationItem
from purpose_agent.loop._learning_settings import _check_item as _check_item
from purpose_agent.loop._learning_settings import merge_teacher as merge_teacher
from purpose_agent.loop._validation import _POOLS as _POOLS
from purpose_agent.loop._validation import _POOLS_LOCK as _POOLS_LOCK
from purpose_agent.loop._validation import _copies as _copies
from purpose_agent.loop._validation import _env_factory as _env_factory
from purpose_agent.loop._validation import _Pool as _Pool
from purpose_agent.loop._validation import _pool as _pool
from purpose_agent.loop._validation import _Snapshot as _Snapshot
from purpose_agent.loop._validation import replica_factory as replica_factory
from purpose_agent.loop.attempts import current_attempt
from purpose_agent.loop.engine import Engine
from purpose_agent.loop.replay import OrchestratorFactory, ReplayTask, ValidationReplay
from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.distiller import resolve_teacher as resolve_teacher
from purpose_agent.memory.events import MemoryGated
from purpose_agent.memory.evidence import GateRule, past_evidence
from purpose_agent.memory.sources import EXPERIENCE
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, MemoryStatus
from purpose_agent.models.base import Backend, run_sync

_GATED_KINDS = tuple(k for k in MemoryKind if k is not MemoryKind.CRITIC_CALIBRATION)


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
        2. the new candidates (``new_ids``, then any other not yet scanned), the ones grounded
           in the runs themselves (``made_by="experience"``: worked examples, procedures,
           failure patterns) before a model's free text (ExpeL found free-text reflections
           lowering success where trajectories raised it);
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
        fresh.sort(key=lambda mid: waiting[mid].made_by != EXPERIENCE)  # stable: grounded first
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
        # a waiting one that a new candidate merged into is in two groups: its first place counts
        order = dict.fromkeys([x[-1] for x in leaning] + fresh + [x[-1] for x in rest])
        return list(order)[: self.config.candidates_per_gate]

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
