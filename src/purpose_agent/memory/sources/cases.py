"""Verified worked examples (``episodic_case``): a run that ground truth marks as solved,
stored as its compact trajectory with the task's entities turned into placeholders.

- the same abstracted trajectory again: merged into the stored case (its counter goes up);
- a shorter one for the same task pattern: supersedes the longer (``store.supersede`` when the
  longer one is promoted; a longer candidate is archived, linked from the new case's meta);
- a longer or equal one: kept archived, as evidence for procedure induction only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from purpose_agent.memory.sources._abstract import extract
from purpose_agent.memory.sources._records import TASK_CHARS, Case, case_of, task_key
from purpose_agent.memory.sources._trace import (
    action_record,
    action_texts,
    brief,
    effective,
    is_verified_success,
    state_text,
    transitions,
)
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus, UnsafeMemoryError

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore

EXPERIENCE = "experience"
P = MemoryStatus
LIVE = (P.CANDIDATE, P.QUARANTINED, P.PROMOTED)
EVIDENCE = (*LIVE, P.ARCHIVED)
MAX_STEPS = 30


def build_case(result: TaskResult) -> Case | None:
    """The worked example of a verified success, or None (not solved, or nothing done)."""
    if not is_verified_success(result):
        return None
    trans = [t for t in transitions(result.steps) if effective(t.step)][:MAX_STEPS]
    if not trans:
        return None
    recs = [action_record(t.step) for t in trans]
    ab = extract(result.purpose, [x for r in recs for x in action_texts(r)], state_text(result))
    purpose = " ".join(result.purpose.split())[:TASK_CHARS]
    observations = []
    for i, t in enumerate(trans):
        key = t.rose or i == len(trans) - 1  # where ground truth moved, and the end
        observations.append(ab.apply(brief(t.step.observation)) if key else "")
    return Case(
        ab.apply(purpose),
        tuple(ab.apply_any(r) for r in recs),
        tuple(observations),
        dict(ab.bindings),
        result.run_id,
        len(result.steps),
    )


def recall(
    store: MemoryStore, query: str, kind: MemoryKind, statuses: Sequence[MemoryStatus] = EVIDENCE, k: int = 50
) -> list[Memory]:
    """Memories of ``kind`` lexically near ``query`` (any of ``statuses``), best first."""
    return [
        r.memory for r in store.retrieve(query, k, kinds=[kind], statuses=statuses, dense=False, q_weight=0.0)
    ]


def kin_cases(
    store: MemoryStore, task: str, statuses: Sequence[MemoryStatus] = EVIDENCE
) -> list[tuple[Memory, Case]]:
    """Stored cases whose task pattern is exactly ``task`` (after normalisation)."""
    key = task_key(task)
    out = []
    for m in recall(store, task, MemoryKind.EPISODIC_CASE, statuses):
        c = case_of(m)
        if c is not None and c.key == key:
            out.append((m, c))
    return out


def store_case(store: MemoryStore, case: Case) -> tuple[list[str], str | None]:
    """Write ``case``; returns (ids of new or changed candidates, id of the memory now holding it)."""
    sources = [case.run_id] if case.run_id else []
    live = kin_cases(store, case.task, LIVE)
    same = [m for m, c in live if c.action_keys() == case.action_keys()]
    if same:  # the same abstracted trajectory: the store's duplicate logic merges it
        mid = store.add(same[0].text, MemoryKind.EPISODIC_CASE, made_by=EXPERIENCE, sources=sources)
        return _staged(store, [mid]), mid
    shortest = min((c.steps for _m, c in live), default=None)
    if shortest is not None and case.steps >= shortest:
        # not better than what is stored: kept out of prompts, as evidence for procedures
        mid = store.add(
            case.text(),
            MemoryKind.EPISODIC_CASE,
            status=P.ARCHIVED,
            made_by=EXPERIENCE,
            sources=sources,
            meta=case.meta(),
        )
        return _staged(store, [mid]), mid
    longer_promoted = [m for m, c in live if m.status is P.PROMOTED]
    longer_staged = [m for m, _c in live if m.status is not P.PROMOTED]
    new_id: str | None = None
    if longer_promoted:
        try:
            new_id = store.supersede(
                [m.id for m in longer_promoted],
                case.text(),
                MemoryKind.EPISODIC_CASE,
                f"a shorter verified success ({case.steps} steps) of the same task pattern",
                made_by=EXPERIENCE,
            )
        except UnsafeMemoryError:
            new_id = None
    changed: list[str] = []
    if new_id is None:
        soft = Case(
            case.task,
            case.actions,
            case.observations,
            case.bindings,
            case.run_id,
            case.raw_steps,
            tuple(m.id for m in longer_staged),
        )
        new_id = store.add(
            soft.text(), MemoryKind.EPISODIC_CASE, made_by=EXPERIENCE, sources=sources, meta=soft.meta()
        )
        changed.append(new_id)
    for m in longer_staged:
        if m.id != new_id:  # unless the store merged the new case into it (a near-duplicate)
            store.archive(m.id, f"superseded by the shorter verified case {new_id}")
    return _staged(store, changed), new_id


def _staged(store: MemoryStore, ids: Sequence[str]) -> list[str]:
    """The ids that are candidates (or quarantined): what the gate still has to judge."""
    return [i for i in dict.fromkeys(ids) if store.get(i).status in (P.CANDIDATE, P.QUARANTINED)]


def harvest_case(store: MemoryStore, result: TaskResult) -> tuple[list[str], Case | None]:
    case = build_case(result)
    if case is None:
        return [], None
    changed, _mid = store_case(store, case)
    return changed, case
