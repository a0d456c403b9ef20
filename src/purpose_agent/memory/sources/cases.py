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

A **corrected** run is a worked example too: a one-answer run whose answer the checker
rejected, after which the environment named the answer it accepts (``state.data["expected"]``),
and whose own steps had found that answer (a program printed it, or the rejected answer holds
it in another form: ``m = 62`` for ``62``). Its case is the run with the accepted answer in
the final action (the checker scores an answer, not the path to it), and it keeps the rejected
one (``corrected_from``), which prompts show. A run that never found the answer gives none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from purpose_agent.memory.sources._abstract import Abstraction, extract, shows_value
from purpose_agent.memory.sources._records import TASK_CHARS, Case, case_of, task_key
from purpose_agent.memory.sources._trace import (
    Transition,
    action_record,
    action_texts,
    brief,
    clean_observation,
    effective,
    is_verified_success,
    state_text,
    transitions,
)
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus

if TYPE_CHECKING:
    from purpose_agent.core.types import Step, TaskResult
    from purpose_agent.memory.store import MemoryStore

EXPERIENCE = "experience"
P = MemoryStatus
LIVE = (P.CANDIDATE, P.QUARANTINED, P.PROMOTED)
EVIDENCE = (*LIVE, P.ARCHIVED)
ANY = tuple(P)
MAX_STEPS = 30
#: where an environment puts, after a rejected answer, the answer its checker accepts
EXPECTED = "expected"
ANSWER = "answer"


def build_case(result: TaskResult) -> Case | None:
    """The worked example of a verified success, or of a corrected run (module docstring);
    None otherwise (not solved, or nothing done)."""
    if not is_verified_success(result):
        return corrected_case(result)
    trans = _effective(result)
    if not trans:
        return None
    recs = [action_record(t.step) for t in trans]
    ab = _abstraction(result, recs)
    observations = []
    for i, t in enumerate(trans):
        key = t.rose or i == len(trans) - 1  # where ground truth moved, and the end
        observations.append(ab.apply(brief(t.step.observation)) if key else "")
    return _case(result, ab, recs, observations)


def corrected_case(result: TaskResult) -> Case | None:
    """The run with the answer the checker accepts, when its final answer was rejected, the
    environment named the accepted one, and the run's own steps had found it; else None."""
    trans = _effective(result)
    if not trans or is_verified_success(result):
        return None
    last = trans[-1].step
    data = last.state_after.data
    expected = data.get(EXPECTED) if isinstance(data, Mapping) else None
    given = (last.action.params or {}).get(ANSWER)
    if not last.action.is_done or not isinstance(expected, str | int | float) or given is None:
        return None
    expected, given = str(expected).strip(), str(given).strip()
    if not expected or given == expected:
        return None
    found = [shown_line(_new_lines(t.step), expected) for t in trans[:-1]]
    if not any(found) and not shows_value(given, expected):
        return None  # the run never had the answer: correcting it would teach a guess
    recs = [action_record(t.step) for t in trans]
    recs[-1] = {**recs[-1], "params": {**recs[-1].get("params", {}), ANSWER: expected}}
    ab = _abstraction(result, recs)
    observations = [ab.apply(brief(line)) for line in found] + [""]
    return _case(result, ab, recs, observations, corrected_from=ab.apply(given))


def _new_lines(step: Step) -> list[str]:
    """The lines of a step's observation that the environment produced in answer to it: not
    already in the state before (the question) and not the action's own text (the code)."""
    before = set(clean_observation(step.state_before.describe(4000)).splitlines())
    own = {
        line.strip()
        for x in action_texts({"params": dict(step.action.params or {})})
        for line in x.splitlines()
    }
    return [
        line
        for line in clean_observation(step.observation).splitlines()
        if line.strip() and line not in before and line.strip() not in own
    ]


def shown_line(lines: Sequence[str], value: str) -> str:
    """The last of ``lines`` that shows ``value`` (see ``shows_value``), or ""."""
    return next((line for line in reversed(lines) if shows_value(line, value)), "")


def _effective(result: TaskResult) -> list[Transition]:
    """The run's transitions that changed the state (at most ``MAX_STEPS``)."""
    return [t for t in transitions(result.steps) if effective(t.step)][:MAX_STEPS]


def _abstraction(result: TaskResult, recs: Sequence[dict[str, Any]]) -> Abstraction:
    return extract(result.purpose, [x for r in recs for x in action_texts(r)], state_text(result))


def _case(
    result: TaskResult,
    ab: Abstraction,
    recs: Sequence[dict[str, Any]],
    observations: Sequence[str],
    corrected_from: str = "",
) -> Case:
    purpose = " ".join(result.purpose.split())[:TASK_CHARS]
    return Case(
        ab.apply(purpose),
        tuple(ab.apply_any(r) for r in recs),
        tuple(observations),
        dict(ab.bindings),
        result.run_id,
        len(result.steps),
        corrected_from=corrected_from,
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
