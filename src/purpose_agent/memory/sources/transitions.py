"""Lessons grounded in transitions: where ground truth rose, where it fell, and what the
environment itself said.

- ground truth fell (score dropped, fewer tests passing, a game lost): a ``failure_pattern``
  quoting the situation and the action; when a verified success of the same kind is stored,
  paired ExpeL-style ("do X, not Y"); when a later step of the run recovered, the change;
- the environment's feedback (a failing test naming what it expected, "That's not a verb I
  recognise"): a ``failure_pattern`` quoting it, with the change that fixed it later in the run;
- ground truth rose in a run that was not solved: a ``skill_card`` fragment ("in this
  situation, doing X made progress"), so learning starts before the first full success.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from purpose_agent.memory.sources._abstract import extract
from purpose_agent.memory.sources._records import FAILURE, FRAGMENT, TASK_CHARS, Case
from purpose_agent.memory.sources._trace import (
    Transition,
    action_key,
    action_record,
    action_texts,
    effective,
    feedback,
    is_verified_success,
    show_action,
    situation,
    state_text,
    transitions,
)
from purpose_agent.memory.sources.cases import EXPERIENCE, _staged
from purpose_agent.memory.sources.procedures import kind_cases
from purpose_agent.memory.types import MemoryKind

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore

MAX_FAILURES = 3
MAX_PROGRESS = 2
TASK_IN_LESSON = 160
DIFF_LINES = 3


@dataclass(frozen=True)
class Lesson:
    """A candidate written from the evidence of one run."""

    kind: MemoryKind
    text: str
    meta: Mapping[str, Any] = field(default_factory=dict)


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def change(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    """What differs between two actions: the lines of a parameter that changed, else both."""
    pb, pa = before.get("params") or {}, after.get("params") or {}
    if before.get("action") == after.get("action") and set(pb) == set(pa):
        for name in pb:
            old, new = pb[name], pa[name]
            if old != new and isinstance(old, str) and isinstance(new, str):
                diff = [
                    line
                    for line in difflib.ndiff(old.splitlines(), new.splitlines())
                    if line[:2] in ("- ", "+ ") and line[2:].strip()
                ]
                removed = [line[2:].strip() for line in diff if line.startswith("- ")][:DIFF_LINES]
                added = [line[2:].strip() for line in diff if line.startswith("+ ")][:DIFF_LINES]
                if removed or added:
                    return (
                        f"{name}: "
                        + "; ".join(f"- {_q(x)}" for x in removed)
                        + ("; " if removed and added else "")
                        + "; ".join(f"+ {_q(x)}" for x in added)
                    )
    return f"{show_action(before)} → {show_action(after)}"


def _paired(case: Case, prefix: Sequence[str], bad: str) -> dict[str, Any] | None:
    """What the verified success did at the point where the failed run took ``bad``."""
    keys = case.action_keys()
    pos = 0
    if prefix:
        sm = difflib.SequenceMatcher(None, list(prefix), keys, autojunk=False)
        blocks = [b for b in sm.get_matching_blocks() if b.size]
        if blocks:
            pos = blocks[-1].b + blocks[-1].size
    if pos >= len(keys) or keys[pos] == bad:
        return None
    return dict(case.actions[pos])


def _success_of_kind(store: MemoryStore | None, task: str, run_id: str) -> Case | None:
    """The shortest stored verified case of the same kind, from another run."""
    if store is None:
        return None
    best: Case | None = None
    for m, c in kind_cases(store, task):
        if run_id and run_id in m.sources:
            continue
        if best is None or c.steps < best.steps:
            best = c
    return best


def _fix_after(
    trans: Sequence[Transition], i: int, recs: Sequence[dict[str, Any]], fb: str | None
) -> int | None:
    """The first later step that recovered from step ``i``: ground truth back to where it was
    (a fall), or the feedback gone without losing ground (feedback), with a different action."""
    t = trans[i]
    for j in range(i + 1, len(trans)):
        u = trans[j]
        if action_key(recs[j]) == action_key(recs[i]) or not effective(u.step):
            continue
        if t.fell or t.lost:
            if u.after is not None and t.before is not None and u.after >= t.before and not u.lost:
                return j
        elif (
            fb is not None
            and feedback(u.step.observation) != fb
            and (u.after is None or t.after is None or u.after >= t.after)
        ):
            return j
    return None


def lessons(result: TaskResult, store: MemoryStore | None = None) -> list[Lesson]:
    """The grounded lessons of one run (nothing from a run without steps or ground truth,
    except the environment's feedback)."""
    steps = list(result.steps)
    if not steps:
        return []
    trans = transitions(steps)
    recs = [action_record(s) for s in steps]
    ab = extract(result.purpose, [x for r in recs for x in action_texts(r)], state_text(result))
    task = ab.apply(" ".join(result.purpose.split())[:TASK_CHARS])
    abs_recs = [ab.apply_any(r) for r in recs]
    keys = [action_key(r) for r in abs_recs]
    task_q = _q(task if len(task) <= TASK_IN_LESSON else task[: TASK_IN_LESSON - 1] + "…")
    solved = is_verified_success(result)
    success = None if solved else _success_of_kind(store, task, result.run_id)
    failures: list[Lesson] = []
    progress: list[Lesson] = []
    for i, t in enumerate(trans):
        s = t.step
        if s.action.is_done and not effective(s):
            continue
        act = abs_recs[i]
        sit = ab.apply(situation(s.state_before))
        fb_raw = feedback(s.observation)
        fb = ab.apply(fb_raw) if fb_raw else None
        base = {
            "task": task,
            "bindings": dict(ab.bindings),  # the run's own entities: task_of reads the task back
            "situation": sit,
            "action": act,
            "before": t.before,
            "after": t.after,
            "run_id": result.run_id,
            "step": s.index,
        }
        prefix = [k for k, u in zip(keys[:i], trans[:i], strict=True) if effective(u.step)]
        better = _paired(success, prefix, keys[i]) if success is not None else None
        if t.fell or t.lost:
            j = _fix_after(trans, i, recs, fb_raw)
            what = (
                "lost the task"
                if t.lost and not t.fell
                else f"made the ground truth fall from {t.before:.2f} to {t.after:.2f}"
            )
            y = show_action(act)
            if better is not None:
                text = (
                    f"On a task like {task_q}, in the situation {_q(sit)}: do {show_action(better)}, not {y}. "
                    f"{y} {what}; a verified success did {show_action(better)} at this point."
                )
            else:
                text = f"Setback on a task like {task_q}: in the situation {_q(sit)}, the action {y} {what}."
            if fb:
                text += f" The environment said: {_q(fb)}."
            fix = change(act, abs_recs[j]) if j is not None else None
            if fix:
                text += f" Later in the run this recovered it: {fix}."
            evidence = "lost" if t.lost and not t.fell else "fell"
            meta = {**base, "evidence": evidence, "feedback": fb, "fix": _fix_meta(abs_recs, i, j)}
            meta["better_action"] = better
            failures.append(Lesson(MemoryKind.FAILURE_PATTERN, text, {FAILURE: meta}))
        elif fb and not t.rose:
            j = _fix_after(trans, i, recs, fb_raw)
            y = show_action(act)
            if better is not None:
                text = (
                    f"On a task like {task_q}, in the situation {_q(sit)}: do {show_action(better)}, not {y}. "
                    f"After {y} the environment said {_q(fb)}; a verified success did {show_action(better)} "
                    "at this point."
                )
            else:
                text = (
                    f"On a task like {task_q}, in the situation {_q(sit)}, the action {y} got this from "
                    f"the environment: {_q(fb)}."
                )
            fix = change(act, abs_recs[j]) if j is not None else None
            if fix:
                text += f" What fixed it later in the run: {fix}."
            meta = {**base, "evidence": "feedback", "feedback": fb, "fix": _fix_meta(abs_recs, i, j)}
            meta["better_action"] = better
            failures.append(Lesson(MemoryKind.FAILURE_PATTERN, text, {FAILURE: meta}))
        elif t.rose and not solved and t.before is not None and t.after is not None:
            text = (
                f"Progress on a task like {task_q}: in the situation {_q(sit)}, the action "
                f"{show_action(act)} made the ground truth rise from {t.before:.2f} to {t.after:.2f}."
            )
            progress.append(Lesson(MemoryKind.SKILL_CARD, text, {FRAGMENT: base}))
    failures.sort(key=lambda lesson: _rank(lesson))
    return _unique(failures)[:MAX_FAILURES] + _unique(progress)[:MAX_PROGRESS]


def _rank(lesson: Lesson) -> int:
    """Paired and fixed lessons first, then falls, then plain feedback."""
    m = lesson.meta.get(FAILURE, {})
    return (
        (0 if m.get("better_action") else 2)
        + (0 if m.get("fix") else 1)
        + (0 if m.get("evidence") != "feedback" else 1)
    )


def _fix_meta(recs: Sequence[dict[str, Any]], i: int, j: int | None) -> dict[str, Any] | None:
    return None if j is None else {"before": recs[i], "after": recs[j]}


def _unique(items: Sequence[Lesson]) -> list[Lesson]:
    seen: set[str] = set()
    out = []
    for x in items:
        if x.text not in seen:
            seen.add(x.text)
            out.append(x)
    return out


def harvest_transitions(store: MemoryStore, result: TaskResult) -> list[str]:
    """Write the grounded lessons of one run as candidates; returns the staged ids."""
    sources = [result.run_id] if result.run_id else []
    ids = [
        store.add(x.text, x.kind, made_by=EXPERIENCE, sources=sources, meta=dict(x.meta))
        for x in lessons(result, store)
    ]
    return _staged(store, ids)
