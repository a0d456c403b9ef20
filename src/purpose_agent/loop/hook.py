"""The bridge between the loop and the memory kernel: what to put in the prompt before a
step, and what to learn after a task, according to the run mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpose_agent.core import events as ev
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import TaskResult
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop.attempts import current_attempt, failure_note, should_retry, with_note
from purpose_agent.loop.learning import decision_events
from purpose_agent.memory.ci import Decision, MemoryCI, _sync_override
from purpose_agent.memory.distiller import Distiller
from purpose_agent.memory.events import TrainingAttempt
from purpose_agent.memory.prompt import compile_memories
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, Retrieved
from purpose_agent.models.base import Backend

if TYPE_CHECKING:
    from purpose_agent.loop.engine import Engine
    from purpose_agent.loop.learning import Learner, Learning

#: what the actor may see: every kind but the critic's calibration examples
ACTOR_KINDS = tuple(k for k in MemoryKind if k is not MemoryKind.CRITIC_CALIBRATION)

#: a learning source: (store, finished run) -> ids of the candidates it wrote
Source = Callable[[MemoryStore, TaskResult], list[str]]


def _harvest(store: MemoryStore, result: TaskResult) -> list[str]:
    from purpose_agent.memory.sources import harvest

    return harvest(store, result)


def _harvester(selected: tuple[str, ...]) -> Source:
    """``harvest`` limited to the ``selected`` grounded sources (``Learning(sources=...)``)."""

    def source(store: MemoryStore, result: TaskResult) -> list[str]:
        from purpose_agent.memory.sources import harvest

        return harvest(store, result, sources=selected)

    return source


class StoreMemoryHook:
    """Retrieval + prompt compilation before steps; credit, candidates and the gate after tasks.

    - ``LEARNING_TRAIN``: inclusions recorded, the included memories credited from the outcome
      (ground truth when present, else Φ/10), new candidates written by the grounded sources
      (``purpose_agent.memory.sources.harvest``) and by the free-text distiller (model ``llm``,
      the teacher), then gated: by ``ci`` when one is given (the new candidates only), else by
      the ``learning`` gate when one is configured (``purpose_agent.loop.learning``), else
      they wait in the store as candidates. ``distill=False`` writes no candidates at all.
    - ``LEARNING_VALIDATION``: inclusions recorded as staging data only.
    - ``EVAL_TEST``: nothing is written.
    """

    def __init__(
        self,
        store: MemoryStore,
        *,
        llm: Backend | None = None,
        mode: RunMode | None = None,
        distill: bool = True,
        ci: MemoryCI | None = None,
        learning: Learning | None = None,
        sources: Sequence[Source] | None = None,
        budget_tokens: int = 400,
        shared: int = 2,
        routed: int = 4,
        count_tokens: Callable[[str], int] | None = None,
        force_include: Sequence[str] = (),
        force_exclude: Sequence[str] = (),
    ) -> None:
        self._owns_store = not (mode is None or store.mode is mode)
        self.store = store if not self._owns_store else store.with_mode(mode)  # type: ignore[arg-type]
        self._held_out = False
        self.llm = llm
        self.distill = distill
        self.ci = ci
        self.learning = learning
        self.sources: tuple[Source, ...] = (_harvest,) if sources is None else tuple(sources)
        self.budget_tokens = budget_tokens
        self.shared = shared
        self.routed = routed
        self.count_tokens = count_tokens or getattr(llm, "count_tokens", None)
        # validation replays force a candidate into (or out of) the prompt
        self.force_include = tuple(force_include)
        self.force_exclude = tuple(force_exclude)
        self.learner: Learner | None = None
        if learning is not None:
            from purpose_agent.loop.learning import Learner

            self.learner = Learner(self.store, learning)

    def attach(self, orch: Engine) -> None:
        """Called by the Orchestrator this hook serves (validation runs are built like its runs)."""
        if self.learner is not None:
            self.learner.bind(orch)

    def status_report(self) -> dict[str, Any]:
        return self.store.status_report()

    def compile_for(
        self, purpose: str, context: str, *, exclude: Sequence[str] = ()
    ) -> tuple[str, list[str]]:
        skip = (*exclude, *self.force_exclude)
        forced = [Retrieved(self.store.get(mid), 1.0, 1.0) for mid in self.force_include if mid not in skip]
        skip = (*skip, *self.force_include)
        retrieved = forced + self.store.retrieve_mixture(
            f"{purpose}\n{context}", self.shared, self.routed, exclude_ids=skip, kinds=ACTOR_KINDS
        )
        # defence in depth: a promoted memory was scanned, but re-scan before it enters a prompt
        safe = [r for r in retrieved if self.store.scanner().scan(r.memory.text).safe]
        compiled = compile_memories(safe, budget_tokens=self.budget_tokens, count_tokens=self.count_tokens)
        return with_note(compiled.text), list(compiled.ids)

    def _sourced(self, result: TaskResult, out: list[ev.Event]) -> list[str]:
        """Candidate ids from the grounded sources (one failing source must not lose the others)."""
        new_ids: list[str] = []
        for source in self.sources:
            try:
                new_ids += source(self.store, result)
            except Exception as exc:
                out.append(ev.ErrorRaised(where="memory.harvest", message=repr(exc)))
        return new_ids

    def _proposed(self, new_ids: list[str], out: list[ev.Event]) -> list[str]:
        new_ids = list(dict.fromkeys(new_ids))
        for mid in new_ids:
            m = self.store.get(mid)
            out.append(ev.CandidateProposed(memory_id=mid, memory_kind=m.kind.value, text=m.text[:300]))
        return new_ids

    async def _acandidates(self, result: TaskResult, out: list[ev.Event]) -> list[str]:
        """New candidate ids from every source; the distiller is one more source, never the only one."""
        new_ids = self._sourced(result, out)
        if self.llm is not None:
            new_ids += await Distiller(self.llm, store=self.store).alearn(result)
        return self._proposed(new_ids, out)

    def _candidates(self, result: TaskResult, out: list[ev.Event]) -> list[str]:
        """Sync form of :meth:`_acandidates`."""
        new_ids = self._sourced(result, out)
        if self.llm is not None:
            new_ids += Distiller(self.llm, store=self.store).learn(result)
        return self._proposed(new_ids, out)

    def _credit(self, result: TaskResult, mode: RunMode, out: list[ev.Event]) -> bool:
        """Inclusions recorded and credited, the attempt series told: True when the run is to be
        learned from now (``LEARNING_TRAIN``, not a retried attempt)."""
        if mode is RunMode.EVAL_TEST:
            return False
        ids = list(result.memory_ids)
        if ids:
            self.store.record_inclusion(ids, result.run_id)
        if mode is not RunMode.LEARNING_TRAIN:
            return False
        outcome = result.credit_outcome  # ground truth, else Φ/10 weighted by trust in Φ
        if ids:
            self.store.credit(ids, outcome, result.run_id)
        learner = self.learner
        self._held_out = learner is not None and learner.take_holdout(result)
        ctx = current_attempt()
        retry = not self._held_out and should_retry(result, ctx)
        if ctx is not None:
            ctx.retry = retry
            if retry:
                ctx.note = failure_note(result)
            out.append(
                TrainingAttempt(
                    attempt=ctx.attempt,
                    total=ctx.total,
                    success=result.success,
                    outcome=result.outcome,
                    retry=retry,
                    learned=not retry and not self._held_out and self.distill,
                )
            )
        if learner is not None:
            out += learner.notices()
        return not retry  # learn from the attempt that ends the series

    async def aafter_task(self, result: TaskResult, mode: RunMode) -> list[ev.Event]:
        """What the run teaches (see the class docstring), as events; awaited by ``Engine.afinish``."""
        out: list[ev.Event] = []
        if not self._credit(result, mode, out):
            return out
        learn = self.distill and not self._held_out
        new_ids = await self._acandidates(result, out) if learn else []
        if self.ci is not None:
            if new_ids:
                out += decision_events(await _aprocess(self.ci, new_ids))
        elif self.learner is not None:
            out += decision_events(await self.learner.agate(new_ids))
        return out

    def after_task(self, result: TaskResult, mode: RunMode) -> list[ev.Event]:
        """Sync form of :meth:`aafter_task` (for ``Engine.finish``)."""
        out: list[ev.Event] = []
        if not self._credit(result, mode, out):
            return out
        learn = self.distill and not self._held_out
        new_ids = self._candidates(result, out) if learn else []
        if self.ci is not None:
            if new_ids:
                out += decision_events(self.ci.process(new_ids))
        elif self.learner is not None:
            out += decision_events(self.learner.gate(new_ids))
        return out

    def close(self) -> None:
        """Close the connections this hook opened: the store it opened in another run mode or
        from a path, and the gate's replay (a store given in the right mode stays open)."""
        if self.learner is not None:
            self.learner.close()
        if self._owns_store:
            self.store.close()


async def _aprocess(ci: MemoryCI, ids: list[str]) -> list[Decision]:
    """``ci.aprocess``, unless ``ci`` redefines only the sync ``process`` (as the benchmark's
    ``PromoteAll`` does): then that one, as the sync path would."""
    if not callable(getattr(ci, "aprocess", None)) or _sync_override(type(ci), "process", "aprocess"):
        return ci.process(ids)
    return await ci.aprocess(ids)


def as_hook(
    memory: Any,
    llm: Backend,
    mode: RunMode,
    learning: Learning | None = None,
) -> StoreMemoryHook:
    """The default path: a MemoryStore (or a path to one) with the learning gate."""
    from purpose_agent.loop.learning import Learning, resolve_teacher

    opened = isinstance(memory, (str, Path))
    if opened:
        memory = MemoryStore(
            memory, mode=RunMode.EVAL_TEST if mode is RunMode.EVAL_TEST else RunMode.LEARNING_TRAIN
        )
    if not isinstance(memory, MemoryStore):
        raise TypeError(
            "memory must be a MemoryStore, a path to one, or a hook with compile_for/after_task, "
            f"got {type(memory).__name__}"
        )
    if memory.mode is RunMode.EVAL_TEST and mode is not RunMode.EVAL_TEST:
        raise ConfigurationError(
            f"memory store {str(memory.path)!r} is opened read-only (EVAL_TEST) but the Orchestrator "
            f"runs in {mode.name}, which learns: open it with MemoryStore(path) to learn, or pass "
            "mode=RunMode.EVAL_TEST to evaluate without writing"
        )
    config = learning or Learning()
    teacher = resolve_teacher(config.teacher) if config.teacher is not None else llm
    count = getattr(llm, "count_tokens", None)
    grounded = tuple(s for s in config.sources if s != "distiller")
    sources: list[Source] = []
    if grounded:
        sources.append(_harvest if len(grounded) == 3 else _harvester(grounded))
    hook = StoreMemoryHook(
        memory,
        llm=teacher if "distiller" in config.sources else None,
        mode=mode,
        learning=config,
        sources=sources,
        count_tokens=count,
    )
    hook._owns_store = hook._owns_store or opened
    return hook
