"""Learning sources grounded in evidence, not in a small model's free text.

``harvest(store, result)`` turns one finished training run into candidate memories:

1. a verified worked example (``episodic_case``) when ground truth marks the run solved;
2. an induced procedure (``skill_card``) once two or more verified successes of the same kind
   of task are stored;
3. lessons from ground-truth transitions: failure patterns where it fell or the environment
   complained (paired with a stored success, ExpeL-style, and with the fix the run found),
   progress fragments where it rose in a run that was not solved.

Everything is written with ``made_by="experience"``; nothing asks a model.

``harvest(store, result, sources=...)`` writes only the selected kinds (``GROUNDED``:
``"examples"``, ``"procedures"``, ``"failures"``; the ablations of the learning benchmark).
Without ``"examples"``, a verified success is still recorded, archived: it never reaches a
prompt and is never gated, but procedures are induced from it and failure patterns pair with it.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import TYPE_CHECKING

from purpose_agent.core.modes import RunMode
from purpose_agent.memory.sources._abstract import (
    Abstraction,
    blank_placeholders,
    extract,
    fill,
    match_pattern,
)
from purpose_agent.memory.sources._records import (
    Case,
    Procedure,
    case_of,
    instantiate,
    procedure_of,
    prompt_lines,
    record_of,
    task_of,
)
from purpose_agent.memory.sources.cases import (
    ANY,
    EXPERIENCE,
    build_case,
    harvest_case,
    kin_cases,
    merge_into,
)
from purpose_agent.memory.sources.procedures import align, harvest_procedure, induce
from purpose_agent.memory.sources.transitions import Lesson, harvest_transitions, lessons

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore
    from purpose_agent.memory.types import Memory

log = logging.getLogger(__name__)

#: the grounded sources :func:`harvest` can write
GROUNDED: tuple[str, ...] = ("examples", "procedures", "failures")


def _record_evidence(store: MemoryStore, case: Case) -> None:
    """Keep a verified success as archived evidence (never in a prompt, never gated)."""
    from purpose_agent.memory.types import MemoryKind, MemoryStatus

    sources = [case.run_id] if case.run_id else []
    twin = next(
        (
            m
            for m, c in kin_cases(store, case.task, ANY)
            if m.status is MemoryStatus.ARCHIVED and c.action_keys() == case.action_keys()
        ),
        None,
    )
    if twin is not None:
        merge_into(store, twin, sources)
        return
    store.add(
        case.text(),
        MemoryKind.EPISODIC_CASE,
        status=MemoryStatus.ARCHIVED,
        made_by=EXPERIENCE,
        sources=sources,
        meta=case.meta(),
        dedupe="exact",
    )


def harvest(store: MemoryStore, result: TaskResult, *, sources: Collection[str] = GROUNDED) -> list[str]:
    """Write the candidate memories of one finished run; return the ids of new or changed
    candidates (not of memories it merged into promoted ones).

    ``sources`` selects what is written (a subset of ``GROUNDED``; see the module docstring).
    Only in ``LEARNING_TRAIN``: in any other mode it writes nothing and returns []. It never
    raises: an odd trajectory yields fewer (or no) candidates, and a failing source is logged
    and skipped while the others still run.
    """
    unknown = sorted(set(sources) - set(GROUNDED))
    if unknown:
        raise ValueError(f"unknown learning source(s) {unknown}; choose from {list(GROUNDED)}")
    try:
        if getattr(store, "mode", None) is not RunMode.LEARNING_TRAIN:
            return []
        out: list[str] = []
        try:
            if "examples" in sources:
                ids, case = harvest_case(store, result)
                out += ids
            elif "procedures" in sources or "failures" in sources:
                case = build_case(result)
                if case is not None:
                    _record_evidence(store, case)
            else:
                case = None
            if case is not None and "procedures" in sources:
                out += harvest_procedure(store, case)
        except Exception:
            log.warning("harvest: worked example / procedure skipped", exc_info=True)
        if "failures" in sources:
            try:
                out += harvest_transitions(store, result)
            except Exception:
                log.warning("harvest: transition lessons skipped", exc_info=True)
        return list(dict.fromkeys(out))
    except Exception:  # never let learning sink the run that fed it
        log.warning("harvest failed", exc_info=True)
        return []


def is_worked_example(memory: Memory) -> bool:
    """A verified worked example written by :func:`harvest` (rendered as one in prompts)."""
    return case_of(memory) is not None


def is_procedure(memory: Memory) -> bool:
    """A procedure induced from several verified successes."""
    return procedure_of(memory) is not None


__all__ = [
    "EXPERIENCE",
    "GROUNDED",
    "Abstraction",
    "Case",
    "Lesson",
    "Procedure",
    "align",
    "blank_placeholders",
    "build_case",
    "case_of",
    "extract",
    "fill",
    "harvest",
    "induce",
    "instantiate",
    "is_procedure",
    "is_worked_example",
    "lessons",
    "match_pattern",
    "procedure_of",
    "prompt_lines",
    "record_of",
    "task_of",
]
