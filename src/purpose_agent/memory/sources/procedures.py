"""Induced procedures (``skill_card``, procedural tier): the ordered steps that two or more
verified successes of the same kind of task share, found by aligning their abstracted action
sequences (difflib's matching blocks, folded over the sequences).

A procedure keeps its provenance (the source case ids in its meta, their runs as sources) and
replaces them in a prompt (the compiler leaves its sources out); the cases are not archived.
New shared steps for a kind that already has live procedures make a candidate that supersedes
them through the store once the gate promotes it (until then they stay as they are).
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from purpose_agent.memory.sources._records import Case, Procedure, case_of, procedure_of, same_kind
from purpose_agent.memory.sources.cases import ANY, EVIDENCE, EXPERIENCE, LIVE, _staged, merge_into, recall
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus

if TYPE_CHECKING:
    from purpose_agent.memory.store import MemoryStore
    from purpose_agent.models.base import Backend

P = MemoryStatus
MIN_SUCCESSES = 2
#: the shortest cases of a kind that a procedure is aligned from
MAX_SOURCES = 5
_TITLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
}


def align(sequences: Sequence[Sequence[str]]) -> list[str]:
    """The ordered elements every sequence shares (pairwise matching blocks, folded)."""
    seqs = [list(s) for s in sequences if s]
    if not seqs or len(seqs) < len(sequences):
        return []
    common = seqs[0]
    for other in seqs[1:]:
        sm = difflib.SequenceMatcher(None, common, other, autojunk=False)
        common = [x for blk in sm.get_matching_blocks() for x in common[blk.a : blk.a + blk.size]]
        if not common:
            break
    return common


def successes(memory: Memory) -> int:
    """How many verified runs a case stands for: itself plus the duplicates merged into it."""
    return 1 + max(0, memory.merges)


def induce(cases: Sequence[tuple[Memory, Case]], *, llm: Backend | None = None) -> Procedure | None:
    """A procedure from verified cases of one kind, or None (fewer than two successes, or no
    step they share). ``llm`` (optional, off by default) only words a short title."""
    cases = sorted(cases, key=lambda mc: (mc[1].steps, mc[0].created_at))[:MAX_SOURCES]
    if not cases or sum(successes(m) for m, _c in cases) < MIN_SUCCESSES:
        return None
    by_key: dict[str, dict[str, Any]] = {}
    for _m, c in cases:
        for k, a in zip(c.action_keys(), c.actions, strict=True):
            by_key.setdefault(k, dict(a))
    common = align([c.action_keys() for _m, c in cases])
    if not common:
        return None
    first = cases[0][1]
    proc = Procedure(
        first.task,
        tuple(by_key[k] for k in common),
        sum(successes(m) for m, _c in cases),
        tuple(m.id for m, _c in cases),
        dict(first.bindings),
    )
    if llm is not None:
        title = _title(llm, proc)
        if title:
            proc = Procedure(
                proc.task, proc.actions, proc.successes, proc.source_ids, proc.bindings, (), title
            )
    return proc


def _title(llm: Backend, proc: Procedure) -> str:
    """A few words naming what the procedure achieves; "" when the model gives nothing usable."""
    from purpose_agent.models.base import Message

    steps = "\n".join(f"{i}. {json.dumps(a)}" for i, a in enumerate(proc.actions, 1))
    msgs = [
        Message("system", "Name what a procedure achieves in at most 10 words. Reply with JSON."),
        Message("user", f"Task: {proc.task}\nSteps:\n{steps}"),
    ]
    try:
        completion = llm.complete(msgs, _TITLE_SCHEMA, max_tokens=40)
    except Exception:
        return ""
    data = completion.data if isinstance(completion.data, dict) else {}
    title = " ".join(str(data.get("title", "")).split())
    return title if 3 <= len(title) <= 80 else ""


def kind_cases(store: MemoryStore, task: str) -> list[tuple[Memory, Case]]:
    """Stored verified cases (not rejected) of the same kind of task as ``task``."""
    out = []
    for m in recall(store, task, MemoryKind.EPISODIC_CASE, EVIDENCE):
        c = case_of(m)
        if c is not None and same_kind(c.task, task):
            out.append((m, c))
    return out


def store_procedure(store: MemoryStore, proc: Procedure, runs: Sequence[str]) -> list[str]:
    """Write ``proc``: the same steps as a stored procedure merge into it (one the gate rejected
    stays rejected); new steps for a kind with live procedures make a candidate that supersedes
    them on its promotion. Returns the ids of new or changed candidates."""
    kin = [
        (m, p)
        for m in recall(store, proc.task, MemoryKind.SKILL_CARD, ANY)
        if (p := procedure_of(m)) is not None and same_kind(p.task, proc.task)
    ]
    twins = [m for m, p in kin if p.action_keys() == proc.action_keys()]
    same = [m for m in twins if m.status in LIVE] or [m for m in twins if m.status is P.REJECTED]
    if same:
        return _staged(store, [merge_into(store, same[0], runs)])
    live = [m.id for m, _p in kin if m.status in LIVE]
    if live:
        try:
            mid = store.supersede(
                live,
                proc.text(),
                MemoryKind.SKILL_CARD,
                f"steps shared by {proc.successes} verified successes",
                made_by=EXPERIENCE,
                meta=proc.meta(),
                sources=runs,
                status=P.CANDIDATE,
            )
            return [mid]
        except ValueError:  # one of them was superseded meanwhile: stored as a plain candidate
            pass
    mid = store.add(
        proc.text(), MemoryKind.SKILL_CARD, made_by=EXPERIENCE, sources=runs, meta=proc.meta(), dedupe="exact"
    )
    return _staged(store, [mid])


def harvest_procedure(store: MemoryStore, case: Case, *, llm: Backend | None = None) -> list[str]:
    """After a verified case is stored: induce and store the procedure of its kind, if any."""
    cases = kind_cases(store, case.task)
    proc = induce(cases, llm=llm)
    if proc is None:
        return []
    used = set(proc.source_ids)
    runs = list(dict.fromkeys(r for m, _c in cases if m.id in used for r in m.sources))
    return store_procedure(store, proc, runs)
