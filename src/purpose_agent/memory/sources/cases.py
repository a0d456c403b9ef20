"""Verified worked examples (``episodic_case``): a run that ground truth marks as solved,
stored as its compact trajectory with the task's entities turned into placeholders.

- the same abstracted trajectory again: merged into the stored case (its counter goes up);
  one the gate rejected stays rejected and is not judged again;
- a shorter one for the same task pattern: a candidate that supersedes the longer live cases
  through the store (``store.supersede(..., status=CANDIDATE)``): they stay as they are until it
  passes the gate, its promotion archives them, and a rollback restores them;
- a longer or equal one: kept archived, as evidence for procedure induction only. A variant
  (other steps) is its own memory, never merged as a near-duplicate, so its action sequence
  stays for the alignment.

The case's meta (task pattern, actions, bindings, run id) and its run as provenance are kept
whichever way it is stored.
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
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore

EXPERIENCE = "experience"
P = MemoryStatus
LIVE = (P.CANDIDATE, P.QUARANTINED, P.PROMOTED)
EVIDENCE = (*LIVE, P.ARCHIVED)
ANY = tuple(P)
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
    kin = kin_cases(store, case.task, ANY)
    live = [(m, c) for m, c in kin if m.status in LIVE]
    twins = [m for m, c in kin if c.action_keys() == case.action_keys()]
    same = [m for m in twins if m.status in LIVE] or [m for m in twins if m.status is P.REJECTED]
    if same:  # the same abstracted trajectory: counted in the stored case
        mid = merge_into(store, same[0], sources)
        return _staged(store, [mid]), mid
    shortest = min((c.steps for _m, c in live), default=None)
    if shortest is not None and case.steps >= shortest:
        # not better than what is stored: kept out of prompts, as evidence for procedures
        twin = next((m for m in twins if m.status is P.ARCHIVED), None)
        if twin is not None:
            return [], merge_into(store, twin, sources)
        mid = store.add(
            case.text(),
            MemoryKind.EPISODIC_CASE,
            status=P.ARCHIVED,
            made_by=EXPERIENCE,
            sources=sources,
            meta=case.meta(),
            dedupe="exact",
        )
        return [], mid
    if live:
        try:
            mid = store.supersede(
                [m.id for m, _c in live],
                case.text(),
                MemoryKind.EPISODIC_CASE,
                f"a shorter verified success ({case.steps} steps) of the same task pattern",
                made_by=EXPERIENCE,
                meta=case.meta(),
                sources=sources,
                status=P.CANDIDATE,
            )
            return [mid], mid
        except ValueError:  # one of them was superseded meanwhile: stored as a plain candidate
            pass
    mid = store.add(
        case.text(),
        MemoryKind.EPISODIC_CASE,
        made_by=EXPERIENCE,
        sources=sources,
        meta=case.meta(),
        dedupe="exact",
    )
    return _staged(store, [mid]), mid


def merge_into(store: MemoryStore, memory: Memory, sources: Sequence[str]) -> str:
    """Count one more success in ``memory`` (its merge counter, the run among its sources)."""
    return store.add(memory.text, memory.kind, made_by=EXPERIENCE, sources=sources, dedupe="exact")


def _staged(store: MemoryStore, ids: Sequence[str]) -> list[str]:
    """The ids that are candidates (or quarantined): what the gate still has to judge."""
    return [i for i in dict.fromkeys(ids) if store.get(i).status in (P.CANDIDATE, P.QUARANTINED)]


def harvest_case(store: MemoryStore, result: TaskResult) -> tuple[list[str], Case | None]:
    case = build_case(result)
    if case is None:
        return [], None
    changed, _mid = store_case(store, case)
    return changed, case
