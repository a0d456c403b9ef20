"""Roles, team kinds chosen by keywords, and a constrained choice by the model when keywords
do not decide; the memory store a team or agent shares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError
from purpose_agent.memory.protocol import is_database_url
from purpose_agent.memory.store import MemoryStore
from purpose_agent.models.base import Backend, Message

DEFAULT_MEMORY = ".purpose_agent/memory.sqlite"


@dataclass(frozen=True)
class Role:
    """A part an agent plays: its name and what it is asked to do."""

    name: str
    instructions: str


ROLES: dict[str, Role] = {
    r.name: r
    for r in (
        Role(
            "architect",
            "Design the solution in plain words: name the Python function, give its signature, "
            "describe its behaviour (inputs, outputs, edge cases) in two or three "
            "sentences, and state its results for the smallest inputs. No code.",
        ),
        Role(
            "coder",
            "Write the complete, working Python code for the plan, so that the tests pass. One "
            "statement per line, blocks indented by 4 spaces.",
        ),
        Role(
            "tester",
            "Write 3 to 5 unit tests with submit_tests: each a short Python boolean expression that "
            "calls the function of the plan, e.g. add(2, 3) == 5. Do not write the function itself.",
        ),
        Role(
            "researcher",
            "Gather the relevant facts, sources and open questions about the task, as "
            "a concise list of findings.",
        ),
        Role(
            "analyst",
            "Analyse what you were given: what it means, patterns, trade-offs and a "
            "conclusion, with the reasoning behind it.",
        ),
        Role("writer", "Write the text the task asks for: clear, well structured and complete."),
        Role(
            "editor",
            "Edit the draft you were given: fix errors, tighten the wording, keep the "
            "meaning; reply with the full edited text.",
        ),
        Role(
            "reporter",
            "Report the findings you were given as a short, clear summary with the key "
            "numbers and a conclusion.",
        ),
        Role("assistant", "Do the task well and answer it directly and completely."),
    )
}

#: team kinds: the roles of each, in the order they act (code: the architect plans, the tester
#: writes the tests, the coder writes code until the tests pass in the sandbox)
KINDS: dict[str, tuple[str, ...]] = {
    "code": ("architect", "coder", "tester"),
    "research": ("researcher", "analyst"),
    "writing": ("writer", "editor"),
    "data": ("analyst", "reporter"),
    "general": ("assistant",),
}

KEYWORDS: dict[str, tuple[str, ...]] = {
    "code": (
        "code",
        "coding",
        "python",
        "program",
        "programming",
        "function",
        "functions",
        "script",
        "bug",
        "bugs",
        "debug",
        "implement",
        "refactor",
        "api",
        "class",
        "software",
        "algorithm",
        "javascript",
        "typescript",
        "rust",
        "compile",
        "unit test",
        "developer",
    ),
    "research": (
        "research",
        "investigate",
        "study",
        "literature",
        "sources",
        "papers",
        "paper",
        "find out",
        "explore",
        "survey",
        "compare",
        "facts",
        "history",
        "learn about",
    ),
    "writing": (
        "write",
        "writing",
        "essay",
        "article",
        "blog",
        "story",
        "draft",
        "email",
        "poem",
        "letter",
        "copy",
        "edit",
        "prose",
        "novel",
        "post",
    ),
    "data": (
        "data",
        "dataset",
        "datasets",
        "csv",
        "spreadsheet",
        "statistics",
        "stats",
        "chart",
        "charts",
        "metrics",
        "numbers",
        "table",
        "tables",
        "excel",
        "analytics",
        "trend",
        "trends",
    ),
}


def _hits(text: str, words: Iterable[str]) -> int:
    low = " " + re.sub(r"[^a-z0-9+#]+", " ", text.lower()) + " "
    return sum(1 for w in words if f" {w} " in low)


def keyword_scores(text: str, keywords: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """How many of each option's keywords occur in ``text`` (whole words, case-insensitive)."""
    return {name: _hits(text, words) for name, words in keywords.items()}


def by_keywords(text: str, keywords: Mapping[str, Sequence[str]]) -> tuple[str | None, list[str]]:
    """The one option with the most keyword hits, or (None, the tied options) when two or more
    tie at the top, or (None, []) when none matches."""
    scores = keyword_scores(text, keywords)
    best = max(scores.values(), default=0)
    if best == 0:
        return None, []
    top = [name for name, n in scores.items() if n == best]
    return (top[0], top) if len(top) == 1 else (None, top)


@dataclass(frozen=True)
class Choice:
    """A decision and how it was made: "keywords", "model", or "fallback" (the model's reply
    was unusable; ``reason`` says why)."""

    value: str
    how: str
    reason: str = ""


def choose(llm: Backend, question: str, options: Sequence[str], *, fallback: str) -> Choice:
    """Ask the model to pick one of ``options`` (a JSON schema ``enum``: it cannot answer
    anything else). A failing or unusable reply gives ``fallback``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"reason": {"type": "string"}, "choice": {"type": "string", "enum": list(options)}},
        "required": ["reason", "choice"],
    }
    msgs = [
        Message("system", "You route requests. Reply with JSON: a short reason, then your choice."),
        Message("user", f"{question}\nOptions: {', '.join(options)}"),
    ]
    try:
        completion = llm.complete(msgs, schema, max_tokens=96)
    except Exception as exc:
        return Choice(fallback, "fallback", f"the model failed: {type(exc).__name__}: {exc}")
    data = completion.data or {}
    pick = data.get("choice")
    if isinstance(pick, str) and pick in options:
        return Choice(pick, "model", str(data.get("reason", ""))[:300])
    return Choice(fallback, "fallback", f"the model's reply named no option: {completion.text[:200]!r}")


def select_kind(description: str, llm: Backend | None) -> Choice:
    """The team kind for a description: by keywords; a tie (or no keyword at all) is decided
    by the model's constrained choice among the tied kinds (all kinds when none matched)."""
    kind, tied = by_keywords(description, KEYWORDS)
    if kind is not None:
        return Choice(kind, "keywords", f"keywords of {kind!r} matched")
    options = tied or list(KINDS)
    if llm is None:
        return Choice(options[0] if tied else "general", "fallback", "no model to decide")
    question = (
        f"Which team should handle this purpose?\nPURPOSE: {description}\n"
        "code: programming; research: finding things out; writing: texts; data: numbers and "
        "tables; general: anything else."
    )
    return choose(
        llm, question, [o for o in options if o in KINDS], fallback=options[0] if tied else "general"
    )


def open_store(memory: MemoryStore | str | Path | None) -> MemoryStore:
    """The memory space: a store as given, a path, or the default ``.purpose_agent/memory.sqlite``."""
    if isinstance(memory, MemoryStore):
        return memory
    if memory is None:
        memory = DEFAULT_MEMORY
    if not isinstance(memory, (str, Path)) or not str(memory).strip():
        raise ConfigurationError(
            f"memory must be a MemoryStore or a file path (or a postgresql:// URL), got {memory!r}"
        )
    if is_database_url(memory):
        return MemoryStore(memory)
    path = Path(memory)
    path.parent.mkdir(parents=True, exist_ok=True)
    return MemoryStore(path)
