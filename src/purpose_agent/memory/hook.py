"""The bridge between the loop and the memory kernel: what to put in the prompt before a
step, and what to learn after a task, according to the run mode."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import TaskResult
from purpose_agent.memory.ci import MemoryCI
from purpose_agent.memory.compiler import compile_memories
from purpose_agent.memory.distiller import Distiller
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryKind, Retrieved
from purpose_agent.models.base import Backend

#: what the actor may see: every kind but the critic's calibration examples
ACTOR_KINDS = tuple(k for k in MemoryKind if k is not MemoryKind.CRITIC_CALIBRATION)


class StoreMemoryHook:
    """Retrieval + prompt compilation before steps; credit, distillation and memory CI after tasks.

    - ``LEARNING_TRAIN``: inclusions recorded, the included memories credited from the outcome
      (ground truth when present, else Φ/10), new candidates distilled, and passed through the
      memory CI when one is given (else they wait in the store as candidates).
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
        budget_tokens: int = 400,
        shared: int = 2,
        routed: int = 4,
        count_tokens: Callable[[str], int] | None = None,
        force_include: Sequence[str] = (),
        force_exclude: Sequence[str] = (),
    ) -> None:
        self.store = store if mode is None or store.mode is mode else store.with_mode(mode)
        self.llm = llm
        self.distill = distill
        self.ci = ci
        self.budget_tokens = budget_tokens
        self.shared = shared
        self.routed = routed
        self.count_tokens = count_tokens or getattr(llm, "count_tokens", None)
        # validation replays force a candidate into (or out of) the prompt
        self.force_include = tuple(force_include)
        self.force_exclude = tuple(force_exclude)

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
        return compiled.text, list(compiled.ids)

    def after_task(self, result: TaskResult, mode: RunMode) -> list[ev.Event]:
        if mode is RunMode.EVAL_TEST:
            return []
        out: list[ev.Event] = []
        ids = list(result.memory_ids)
        if ids:
            self.store.record_inclusion(ids, result.run_id)
        if mode is not RunMode.LEARNING_TRAIN:
            return out
        outcome = result.credit_outcome  # ground truth, else Φ/10 weighted by trust in Φ
        if ids:
            self.store.credit(ids, outcome, result.run_id)
        if not self.distill or self.llm is None:
            return out
        new_ids = Distiller(self.llm, store=self.store).learn(result)
        for mid in new_ids:
            m = self.store.get(mid)
            out.append(ev.CandidateProposed(memory_id=mid, memory_kind=m.kind.value, text=m.text[:300]))
        if self.ci is not None and new_ids:
            for d in self.ci.process(new_ids):
                if d.action in ("promoted", "rejected"):
                    out.append(ev.MemoryDecided(kind=d.action, memory_id=d.memory_id, reason=d.reason[:500]))
        return out


def as_hook(memory: Any, llm: Backend, mode: RunMode) -> StoreMemoryHook:
    if isinstance(memory, MemoryStore):
        return StoreMemoryHook(memory, llm=llm, mode=mode)
    raise TypeError(
        f"memory must be a MemoryStore or a hook with compile_for/after_task, got {type(memory).__name__}"
    )
