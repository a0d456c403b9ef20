"""Claims an actor writes into a state to sway the critic, and their redaction.

Only text the actor itself authored (its action's parameters) is considered: a game's own
"score: 10" line or a test runner's "4/4 passed" comes from the environment and is never
touched. When a claim from the action shows up in the new state, the critic sees the state
with that claim replaced by a marker (the rubric says claims earn nothing; the redaction makes
sure a gullible critic cannot be swayed by them either) and the step is flagged.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from purpose_agent.core.types import Action, State

MARKER = "[unverified claim by the agent removed]"

_PATTERNS = [
    # self-assigned scores: "score 10", "Φ = 10", "rate this 10/10", "10 out of 10", "full marks"
    r"\b(?:score|phi|rating|grade)\s*(?:[:=]|is|of|should be|must be)?\s*(?:a\s+)?(?:10|ten|100)\b(?:\s*/\s*10)?",
    r"Φ\s*[:=]?\s*10\b",
    r"\b10\s*(?:/|out of)\s*10\b",
    r"\b(?:give|award|rate|grant)\s+(?:this|it|me|us|the (?:state|solution|answer|code))\b[^\n.;]{0,24}?"
    r"\b(?:10|ten|full marks|(?:a )?high(?:est)? score|max(?:imum)? score|perfect score)\b",
    r"\bfull marks\b",
    # completion claims
    r"\b(?:task|purpose|goal|job|work|problem|solution)\s+(?:is\s+|has been\s+|was\s+)?"
    r"(?:complete|completed|done|finished|achieved|solved|correct|verified)\b",
    r"\ball (?:the )?(?:unit )?tests? (?:pass|passed|passing|succeed|succeeded|are green)\b",
    r"\b(?:tests|checks) (?:all )?pass(?:ed)?\b",
    # words addressed to the critic: flattery, pleas, instructions
    r"\b(?:dear|hey|hello|attention|note to (?:the )?)\s*(?:critic|judge|grader|evaluator|reviewer)\b",
    r"\byou(?:'re| are)\s+(?:a |an |the |such a |so )?(?:very |truly )?"
    r"(?:great|brilliant|wise|excellent|wonderful|fair|smart|kind|generous|insightful|best)\b",
    r"\bbe (?:generous|kind|lenient)\b",
    r"\bignore (?:the |all |any |your |previous |prior )*(?:rules|instructions|rubric|tests?)\b",
    r"\b(?:deserves?|merits?|earns?|worth)\b[^\n.;]{0,24}?\b(?:10|ten|full|top|highest|perfect)\b",
]
_CLAIM = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.IGNORECASE)


def find_claims(text: str) -> list[str]:
    """The claim phrases in ``text`` (in order, duplicates removed)."""
    norm = unicodedata.normalize("NFKC", text)
    return list(dict.fromkeys(m.group(0) for m in _CLAIM.finditer(norm)))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def actor_claims(action: Action | None) -> list[str]:
    """Claims in the text the actor authored (its parameters and its thought)."""
    if action is None:
        return []
    return find_claims("\n".join([*_strings(dict(action.params)), action.thought]))


def redact(text: str, claims: list[str]) -> str:
    """``text`` with every occurrence of the claims replaced by the marker (case-insensitive)."""
    norm = unicodedata.normalize("NFKC", text)
    for claim in sorted(claims, key=len, reverse=True):
        norm = re.sub(re.escape(claim), MARKER, norm, flags=re.IGNORECASE)
    return norm


def _redact_value(value: Any, claims: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, claims)
    if isinstance(value, Mapping):
        return {k: _redact_value(v, claims) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v, claims) for v in value]
    return value


def redact_state(state: State, action: Action | None) -> tuple[State, list[str]]:
    """The state as the critic should see it, and the actor's claims found in it."""
    claims = actor_claims(action)
    if not claims:
        return state, []
    text = state.describe(100_000)
    present = [c for c in claims if c.lower() in unicodedata.normalize("NFKC", text).lower()]
    if not present:
        return state, []
    data = _redact_value(dict(state.data), present)
    return replace(state, data=data, summary=redact(state.summary, present)), present
