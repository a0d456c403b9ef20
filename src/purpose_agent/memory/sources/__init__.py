"""Learning sources grounded in evidence, not in a small model's free text.

``harvest(store, result)`` turns one finished training run into candidate memories:

1. a verified worked example (``episodic_case``) when ground truth marks the run solved;
2. an induced procedure (``skill_card``) once two or more verified successes of the same kind
   of task are stored;
3. lessons from ground-truth transitions: failure patterns where it fell or the environment
   complained (paired with a stored success, ExpeL-style, and with the fix the run found),
   progress fragments where it rose in a run that was not solved.

Everything is written with ``made_by="experience"``; nothing asks a model.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from purpose_agent.core.modes import RunMode
from purpose_agent.memory.sources._abstract import Abstraction, extract, fill, match_pattern
from purpose_agent.memory.sources._records import (
    Case,
    Procedure,
    case_of,
    instantiate,
    procedure_of,
    prompt_lines,
    record_of,
)
from purpose_agent.memory.sources.cases import EXPERIENCE, build_case, harvest_case
from purpose_agent.memory.sources.procedures import align, harvest_procedure, induce
from purpose_agent.memory.sources.transitions import Lesson, harvest_transitions, lessons

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore
    from purpose_agent.memory.types import Memory

log = logging.getLogger(__name__)


def harvest(store: MemoryStore, result: TaskResult) -> list[str]:
    """Write the candidate memories of one finished run; return the ids of new or changed
    candidates (not of memories it merged into promoted ones).

    Only in ``LEARNING_TRAIN``: in any other mode it writes nothing and returns []. It never
    raises: an odd trajectory yields fewer (or no) candidates, and a failing source is logged
    and skipped while the others still run.
    """
    try:
        if getattr(store, "mode", None) is not RunMode.LEARNING_TRAIN:
            return []
        out: list[str] = []
        try:
            ids, case = harvest_case(store, result)
            out += ids
            if case is not None:
                out += harvest_procedure(store, case)
        except Exception:
            log.warning("harvest: worked example / procedure skipped", exc_info=True)
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
    "Abstraction",
    "Case",
    "Lesson",
    "Procedure",
    "align",
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
]
