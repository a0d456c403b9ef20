"""Worked examples and procedures as records: their text (for BM25 and people), their meta
(for re-instantiation), and a view that reads either.

A memory's ``meta`` is the source of truth; the text is parsed only when the meta is missing
(a memory written without it, e.g. by an older release). What a record replaces is linked in the
store (``Memory.supersedes``); the ``supersedes`` in a record's meta is read for older stores.
Formats (``{…}`` are placeholders, lines are JSON):

    Worked example: a verified success in 2 steps.
    Task: "Your task is to find a {obj1}."
    1. {"action": "open door to {room1}"} -> "You open the door."
    2. {"action": "take {obj1}"}

    Procedure shared by verified successes.
    Task: "Your task is to find a {obj1}."
    1. {"action": "open door to {room1}"}
    2. {"action": "take {obj1}"}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.memory.sources._abstract import fill, fill_any, match_pattern
from purpose_agent.memory.sources._trace import action_key
from purpose_agent.memory.types import Memory, MemoryKind, jaccard, normalize_text

CASE, PROCEDURE, FRAGMENT, FAILURE = "case", "procedure", "fragment", "failure"
CASE_HEAD = "Worked example: a verified success in"
PROC_HEAD = "Procedure shared by verified successes."
_TASK = "Task: "
_STEP = re.compile(r"^\s*(\d+)\.\s+")
_DECODER = json.JSONDecoder()
#: task patterns at least this similar (token Jaccard) are "of the same kind"
SAME_KIND = 0.75
#: the task pattern kept (longer purposes are cut), and the part of it a prompt shows
TASK_CHARS = 1000
TASK_SHOWN = 240


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"


def task_key(task: str) -> str:
    return normalize_text(task)


def same_kind(a: str, b: str) -> bool:
    """Two abstracted task patterns name the same kind of task."""
    return task_key(a) == task_key(b) or jaccard(a, b) >= SAME_KIND


def _actions(value: Any) -> tuple[dict[str, Any], ...] | None:
    if not isinstance(value, list | tuple):
        return None
    out: list[dict[str, Any]] = []
    for a in value:
        if not isinstance(a, Mapping) or not isinstance(a.get("action"), str):
            return None
        rec: dict[str, Any] = {"action": a["action"]}
        if isinstance(a.get("params"), Mapping) and a["params"]:
            rec["params"] = dict(a["params"])
        out.append(rec)
    return tuple(out)


def _str_map(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): str(v) for k, v in value.items() if isinstance(v, str | int | float)}


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True)
class Case:
    """A verified worked example: the abstracted task and its compact trajectory."""

    task: str
    actions: tuple[dict[str, Any], ...]
    observations: tuple[str, ...] = ()
    bindings: Mapping[str, str] = field(default_factory=dict)
    run_id: str = ""
    raw_steps: int = 0
    supersedes: tuple[str, ...] = ()
    #: a corrected run: the answer it gave, which the checker rejected (the case ends with the
    #: answer the checker accepts, which the run itself had found; see ``cases.corrected_case``)
    corrected_from: str = ""

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def key(self) -> str:
        return task_key(self.task)

    def action_keys(self) -> list[str]:
        return [action_key(a) for a in self.actions]

    def text(self) -> str:
        lines = [f"{CASE_HEAD} {_steps(self.steps)}.", _TASK + json.dumps(self.task, ensure_ascii=False)]
        for i, a in enumerate(self.actions, 1):
            obs = self.observations[i - 1] if i - 1 < len(self.observations) else ""
            tail = f" -> {json.dumps(obs, ensure_ascii=False)}" if obs else ""
            lines.append(f"{i}. {action_key(a)}{tail}")
        if self.corrected_from:
            lines.append(rejected_note(self.corrected_from))
        return "\n".join(lines)

    def meta(self) -> dict[str, Any]:
        return {
            CASE: {
                "version": 1,
                "task": self.task,
                "key": self.key,
                "actions": [dict(a) for a in self.actions],
                "observations": list(self.observations),
                "bindings": dict(self.bindings),
                "steps": self.steps,
                "raw_steps": self.raw_steps,
                "run_id": self.run_id,
                "supersedes": list(self.supersedes),
                "corrected_from": self.corrected_from,
            }
        }


def rejected_note(answer: str) -> str:
    """The line under a corrected case: the form of answer the checker rejected."""
    return f"(The checker rejected the answer {json.dumps(answer, ensure_ascii=False)}; it accepts the one above.)"


@dataclass(frozen=True)
class Procedure:
    """Ordered steps shared by several verified successes of one kind of task."""

    task: str
    actions: tuple[dict[str, Any], ...]
    successes: int
    source_ids: tuple[str, ...] = ()
    bindings: Mapping[str, str] = field(default_factory=dict)
    supersedes: tuple[str, ...] = ()
    title: str = ""

    @property
    def key(self) -> str:
        return task_key(self.task)

    def action_keys(self) -> list[str]:
        return [action_key(a) for a in self.actions]

    def text(self) -> str:
        # the count lives in the meta: a re-induction with the same steps merges (same text)
        head = PROC_HEAD
        if self.title:
            head += f" {self.title}"
        lines = [head, _TASK + json.dumps(self.task, ensure_ascii=False)]
        lines += [f"{i}. {action_key(a)}" for i, a in enumerate(self.actions, 1)]
        return "\n".join(lines)

    def meta(self) -> dict[str, Any]:
        return {
            PROCEDURE: {
                "version": 1,
                "task": self.task,
                "key": self.key,
                "steps": [dict(a) for a in self.actions],
                "successes": self.successes,
                "source_ids": list(self.source_ids),
                "bindings": dict(self.bindings),
                "supersedes": list(self.supersedes),
                "title": self.title,
            }
        }


def _parse_text(text: str) -> tuple[str, str, list[dict[str, Any]], list[str]] | None:
    """(head, task, actions, observations) from a record's text, or None."""
    lines = text.splitlines()
    if len(lines) < 2 or not lines[1].startswith(_TASK):
        return None
    try:
        task = json.loads(lines[1][len(_TASK) :])
    except ValueError:
        return None
    if not isinstance(task, str):
        return None
    actions: list[dict[str, Any]] = []
    observations: list[str] = []
    for line in lines[2:]:
        m = _STEP.match(line)
        if not m:
            continue
        rest = line[m.end() :]
        try:
            rec, end = _DECODER.raw_decode(rest)
        except ValueError:
            return None
        parsed = _actions([rec])
        if not parsed:
            return None
        actions.append(parsed[0])
        tail = rest[end:].strip()
        obs = ""
        if tail.startswith("->"):
            try:
                value = json.loads(tail[2:].strip())
                obs = value if isinstance(value, str) else ""
            except ValueError:
                obs = ""
        observations.append(obs)
    return lines[0], task, actions, observations


def case_of(memory: Memory) -> Case | None:
    """The worked example a memory holds (from its meta, else its text), or None."""
    if memory.kind is not MemoryKind.EPISODIC_CASE:
        return None
    m = memory.meta.get(CASE) if isinstance(memory.meta, Mapping) else None
    if isinstance(m, Mapping) and isinstance(m.get("task"), str):
        actions = _actions(m.get("actions"))
        if actions is not None:
            return Case(
                m["task"],
                actions,
                _strs(m.get("observations")),
                _str_map(m.get("bindings")),
                str(m.get("run_id") or ""),
                int(m.get("raw_steps") or len(actions)),
                _strs(m.get("supersedes")),
                str(m.get("corrected_from") or ""),
            )
    if not memory.text.startswith(CASE_HEAD):
        return None
    parsed = _parse_text(memory.text)
    if parsed is None or not parsed[2]:
        return None
    _head, task, actions_l, obs = parsed
    return Case(task, tuple(actions_l), tuple(obs), {}, "", len(actions_l))


def procedure_of(memory: Memory) -> Procedure | None:
    """The induced procedure a memory holds (from its meta, else its text), or None."""
    if memory.kind is not MemoryKind.SKILL_CARD:
        return None
    m = memory.meta.get(PROCEDURE) if isinstance(memory.meta, Mapping) else None
    if isinstance(m, Mapping) and isinstance(m.get("task"), str):
        actions = _actions(m.get("steps"))
        if actions:
            return Procedure(
                m["task"],
                actions,
                int(m.get("successes") or 0),
                _strs(m.get("source_ids")),
                _str_map(m.get("bindings")),
                _strs(m.get("supersedes")),
                str(m.get("title") or ""),
            )
    if not memory.text.startswith(PROC_HEAD):
        return None
    parsed = _parse_text(memory.text)
    if parsed is None or not parsed[2]:
        return None
    head, task, actions_l, _obs = parsed
    title = head[len(PROC_HEAD) :].strip()
    return Procedure(task, tuple(actions_l), 0, (), {}, memory.supersedes, title)


def support(memory: Memory, record: Procedure) -> int:
    """How many verified successes stand behind a procedure: those it was induced from, plus
    one for each later success that re-induced the same steps (merged into it)."""
    return max(record.successes, 1) + max(0, memory.merges)


# ------------------------------------------------------------------ re-instantiation
def bindings_for(task: str, original: Mapping[str, str], purpose: str) -> tuple[dict[str, str], bool]:
    """Values for a record's placeholders, and whether they come from the current task: its
    entities when it matches the pattern (placeholders it does not bind stay), else the
    original ones (a concrete example of a similar task)."""
    if purpose:
        matched = match_pattern(task, purpose)
        if matched is not None:
            return matched, True
    return dict(original), False


@dataclass(frozen=True)
class Shown:
    """A record ready for a prompt: task and steps filled in."""

    task: str
    actions: tuple[dict[str, Any], ...]
    observations: tuple[str, ...]
    matched: bool
    rejected: str = ""  # a corrected case: the answer the checker rejected, filled in


def instantiate(record: Case | Procedure, purpose: str = "") -> Shown:
    b, matched = bindings_for(record.task, record.bindings, purpose)
    obs = record.observations if isinstance(record, Case) else ()
    return Shown(
        fill(record.task, b),
        tuple(fill_any(dict(a), b) for a in record.actions),
        tuple(fill(o, b) for o in obs),
        matched,
        fill(record.corrected_from, b) if isinstance(record, Case) else "",
    )


def prompt_lines(memory: Memory, record: Case | Procedure, purpose: str = "") -> list[str]:
    """The lines of one record in the memory section: a labelled head, then one JSON action
    per line (every string quoted, so no line can become an instruction of its own)."""
    shown = instantiate(record, purpose)
    label = f"- [{memory.id} | {memory.kind.value}]"
    shown_task = shown.task if len(shown.task) <= TASK_SHOWN else shown.task[: TASK_SHOWN - 1] + "…"
    task = json.dumps(shown_task, ensure_ascii=False)
    if isinstance(record, Case):
        head = f"{label} worked example, solved in {_steps(record.steps)}, for the task {task}:"
    else:
        n = support(memory, record)
        head = f"{label} procedure shared by {n} verified successes, for tasks like {task}:"
    lines = [head]
    for i, a in enumerate(shown.actions, 1):
        obs = shown.observations[i - 1] if i - 1 < len(shown.observations) else ""
        tail = f" -> {json.dumps(obs, ensure_ascii=False)}" if obs else ""
        lines.append(f"  {i}. {json.dumps(a, ensure_ascii=False)}{tail}")
    if shown.rejected:
        lines.append("  " + rejected_note(shown.rejected))
    return lines


def filled_text(memory: Memory, purpose: str) -> str:
    """A grounded lesson's text with the current task's entities, when its task pattern (in
    its meta) matches ``purpose``; else the text as stored."""
    if purpose and isinstance(memory.meta, Mapping):
        for key in (FAILURE, FRAGMENT):
            data = memory.meta.get(key)
            if isinstance(data, Mapping) and isinstance(data.get("task"), str):
                b = match_pattern(data["task"], purpose)
                if b:
                    return fill(memory.text, b)
    return memory.text


def task_of(memory: Memory) -> str:
    """The task a grounded lesson was learned on: the task pattern in its meta (worked example,
    procedure, failure pattern or progress fragment) with the run's own entities filled back
    in where the meta keeps them, else the lesson's own text. (A pattern alone can hide the
    very word that tells one kind of task from another: "Solve" became "{obj1}".)"""
    if isinstance(memory.meta, Mapping):
        for key in (CASE, PROCEDURE, FAILURE, FRAGMENT):
            data = memory.meta.get(key)
            if isinstance(data, Mapping) and isinstance(data.get("task"), str) and data["task"]:
                bindings = data.get("bindings")
                if isinstance(bindings, Mapping):
                    return fill(str(data["task"]), {str(k): str(v) for k, v in bindings.items()})
                return str(data["task"])
    return memory.text


def record_of(memory: Memory) -> Case | Procedure | None:
    return case_of(memory) or procedure_of(memory)


def is_source(case_memory: Memory, proc_memory: Memory, record: Procedure) -> bool:
    """A case the procedure was induced from: named in its meta, or all of the case's runs
    are among the procedure's runs."""
    if case_memory.id in record.source_ids:
        return True
    runs = set(case_memory.sources)
    return bool(runs) and runs <= set(proc_memory.sources)


def superseded_ids(memory: Memory, record: Case | Procedure | None) -> Sequence[str]:
    """The memories this one replaces (store links and the soft links in its meta)."""
    soft = record.supersedes if record is not None else ()
    return tuple(dict.fromkeys([*memory.supersedes, *soft]))
