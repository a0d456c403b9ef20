"""Distiller: a finished run → candidate lessons; evolution: several lessons → one general one."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from purpose_agent.errors import ConfigurationError
from purpose_agent.memory.types import MemoryKind, MemoryStatus, UnsafeMemoryError, jaccard
from purpose_agent.models.base import Backend, Message, run_sync
from purpose_agent.models.registry import resolve_backend

if TYPE_CHECKING:
    from purpose_agent.core.types import TaskResult
    from purpose_agent.memory.store import MemoryStore

LESSON_KINDS = ("skill_card", "failure_pattern", "tool_policy", "episodic_case")
MAX_TEXT = 600
MERGE_SIMILARITY = 0.8

LESSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "lessons": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "kind": {"type": "string", "enum": list(LESSON_KINDS)},
                    "trigger": {"type": "string"},
                    "text": {"type": "string"},
                },
                "required": ["kind", "trigger", "text"],
            },
        },
        "achieved": {"type": "string"},
    },
    "required": ["lessons", "achieved"],
}

_SYSTEM = (
    "You turn an agent's run into short reusable lessons for future runs on SIMILAR tasks. "
    "Reply with JSON only. Each lesson has: kind; trigger = the kind of task or situation in a few "
    "words (not what the agent thought); text = what to do, one or two concrete sentences "
    "(a technique, a check, a pitfall), general enough for other tasks of that kind. "
    "Replace task-specific names and numbers with {placeholders}. "
    "Kinds: skill_card (a technique that worked), failure_pattern (a mistake and how to avoid it), "
    "tool_policy (how to use a tool), episodic_case (a short worked example). At most {n} lessons.\n"
    "Example: {example}"
)
#: the prompt's one example lesson; small models sometimes copy it back, and a copy is dropped
_EXAMPLE_TRIGGER = "comparing strings while ignoring case and punctuation"
_EXAMPLE_TEXT = "Normalise first: keep only characters where ch.isalnum() and lower() them, then compare."
_EXAMPLE = json.dumps(
    {
        "lessons": [{"kind": "failure_pattern", "trigger": _EXAMPLE_TRIGGER, "text": _EXAMPLE_TEXT}],
        "achieved": "",
    }
)
ECHO_SIMILARITY = 0.5
_SUCCESS = 'The run SUCCEEDED. Extract skill cards or episodic cases. Set achieved to "".\n\n{trace}'
_FAILURE = (
    "The run FAILED. Extract failure patterns (what went wrong, what to do instead). In achieved, "
    'say briefly what the run did accomplish (a sub-goal it reached), or "" if nothing.\n\n{trace}'
)
_FINAL = "\n\nFINAL STATE:\n{state}"


@dataclass(frozen=True)
class Candidate:
    """A proposed lesson; ``merge_into`` names a stored near-duplicate it should merge into."""

    text: str
    kind: MemoryKind
    trigger: str = ""
    made_by: str = "distiller"
    sources: tuple[str, ...] = ()
    merge_into: str | None = None


def _echoes_example(text: str, trigger: str) -> bool:
    """A lesson copied from the prompt's example, not learned from the run."""
    return (
        jaccard(text, _EXAMPLE_TEXT) >= ECHO_SIMILARITY
        or jaccard(trigger, _EXAMPLE_TRIGGER) >= ECHO_SIMILARITY
    )


def _clip(s: Any) -> str:
    text = " ".join(str(s).split()) if isinstance(s, str) else ""
    return text[:MAX_TEXT]


class Distiller:
    """Distil a TaskResult into candidate lessons with one structured model call."""

    def __init__(
        self, llm: Backend, *, store: MemoryStore | None = None, max_lessons: int = 3, max_tokens: int = 400
    ) -> None:
        self.llm = llm
        self.store = store
        self.max_lessons = max_lessons
        self.max_tokens = max_tokens

    def messages(self, result: TaskResult) -> list[Message]:
        body = (_SUCCESS if result.success else _FAILURE).format(trace=result.trajectory_text(limit=3000))
        body += _FINAL.format(state=result.final_state.describe(1200))
        return [
            Message("system", _SYSTEM.replace("{n}", str(self.max_lessons)).replace("{example}", _EXAMPLE)),
            Message("user", body),
        ]

    async def adistill(self, result: TaskResult) -> list[Candidate]:
        """Candidates from one run; malformed model output gives [] (never raises)."""
        completion = await self.llm.acomplete(
            self.messages(result), LESSON_SCHEMA, max_tokens=self.max_tokens
        )
        data = completion.data if isinstance(completion.data, dict) else None
        if data is None or completion.parse_error is not None:
            return []  # garbage or truncated (even after the repair retry): learn nothing
        sources = (result.run_id,) if result.run_id else ()
        out: list[Candidate] = []
        lessons = data.get("lessons")
        for item in lessons if isinstance(lessons, list) else []:
            if not isinstance(item, dict) or item.get("kind") not in LESSON_KINDS:
                continue
            text, trigger = _clip(item.get("text")), _clip(item.get("trigger"))
            if len(text) < 8 or _echoes_example(text, trigger):
                continue
            kind = MemoryKind(item["kind"])
            if not result.success and kind is MemoryKind.SKILL_CARD:
                kind = MemoryKind.FAILURE_PATTERN  # a failed run does not teach a skill
            full = (
                f"When {trigger.rstrip('.')}: {text}"
                if trigger and trigger.lower() not in text.lower()
                else text
            )
            out.append(Candidate(full[:MAX_TEXT], kind, trigger, "distiller", sources))
        achieved = _clip(data.get("achieved"))
        if not result.success and len(achieved) >= 8:
            text = f"A run aiming at '{_clip(result.purpose)[:160]}' failed but achieved: {achieved}"
            out.append(Candidate(text[:MAX_TEXT], MemoryKind.EPISODIC_CASE, "", "hindsight", sources))
        return self._dedupe(out[: self.max_lessons + 1])

    def distill(self, result: TaskResult) -> list[Candidate]:
        """Sync form of :meth:`adistill`."""
        return run_sync(lambda: self.adistill(result))

    def _dedupe(self, cands: list[Candidate]) -> list[Candidate]:
        kept: list[Candidate] = []
        for c in cands:
            if any(k.kind is c.kind and jaccard(k.text, c.text) >= MERGE_SIMILARITY for k in kept):
                continue
            merge = None
            if self.store is not None:
                for r in self.store.retrieve(
                    c.text, 5, kinds=[c.kind], statuses=tuple(MemoryStatus), dense=False, q_weight=0.0
                ):
                    if jaccard(r.memory.text, c.text) >= MERGE_SIMILARITY:
                        merge = r.memory.id
                        break
            kept.append(Candidate(c.text, c.kind, c.trigger, c.made_by, c.sources, merge))
        return kept

    def _target(self, store: MemoryStore | None) -> MemoryStore:
        target = store or self.store
        if target is None:
            raise ValueError("learn needs a store")
        return target

    async def alearn(self, result: TaskResult, store: MemoryStore | None = None) -> list[str]:
        """Distil and add the candidates to the store (duplicates merge); returns their ids."""
        target = self._target(store)
        return [
            target.add(c.text, c.kind, made_by=c.made_by, sources=c.sources)
            for c in await self.adistill(result)
        ]

    def learn(self, result: TaskResult, store: MemoryStore | None = None) -> list[str]:
        """Sync form of :meth:`alearn`."""
        target = self._target(store)
        return [
            target.add(c.text, c.kind, made_by=c.made_by, sources=c.sources) for c in self.distill(result)
        ]


_EVOLVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


def _groups(texts: Sequence[tuple[str, str]], threshold: float) -> list[list[str]]:
    """Greedy single-link clusters of (id, text) by token Jaccard."""
    groups: list[list[tuple[str, str]]] = []
    for mid, text in texts:
        for g in groups:
            if any(jaccard(text, t) >= threshold for _, t in g):
                g.append((mid, text))
                break
        else:
            groups.append([(mid, text)])
    return [[mid for mid, _ in g] for g in groups]


def evolve(
    store: MemoryStore,
    kind: MemoryKind | str,
    llm: Backend,
    *,
    min_group: int = 3,
    similarity: float = 0.3,
    max_tokens: int = 200,
) -> list[str]:
    """Generalise each group of ≥ ``min_group`` similar promoted lessons of ``kind`` into one
    lesson that supersedes them (rollback restores them); returns the new ids."""
    k = MemoryKind(kind)
    mems = {m.id: m for m in store.list(kind=k, status=MemoryStatus.PROMOTED)}
    new_ids: list[str] = []
    for group in _groups([(m.id, m.text) for m in mems.values()], similarity):
        if len(group) < min_group:
            continue
        listing = "\n".join(f"- {mems[i].text}" for i in group)
        msgs = [
            Message(
                "system", "Merge similar lessons into one general lesson. Keep {placeholders}. Reply JSON."
            ),
            Message(
                "user", f"Lessons:\n{listing}\n\nWrite one short general lesson that covers all of them."
            ),
        ]
        completion = llm.complete(msgs, _EVOLVE_SCHEMA, max_tokens=max_tokens)
        text = _clip((completion.data or {}).get("text")) if isinstance(completion.data, dict) else ""
        if len(text) < 8:
            continue
        try:
            new_ids.append(
                store.supersede(group, text, k, f"evolution: generalised {len(group)} similar lessons")
            )
        except UnsafeMemoryError:
            continue  # the generalisation failed the immune scan; the originals stay
    return new_ids


def resolve_teacher(spec: Backend | str) -> Backend:
    """The teacher model; an unknown spec is a ConfigurationError that names the teacher."""
    try:
        return resolve_backend(spec)
    except ConfigurationError as exc:
        raise type(exc)(f"teacher model (distiller_llm / Learning.teacher) {spec!r}: {exc}") from exc
