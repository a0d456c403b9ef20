"""Memory records: kinds, statuses, scopes, trust priors, prompt tiers."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal, Protocol, runtime_checkable

from purpose_agent.errors import PurposeAgentError


class MemoryKind(StrEnum):
    """The seven kinds of memory (docs/MEMORY.md)."""

    PURPOSE_CONTRACT = "purpose_contract"
    USER_PREFERENCE = "user_preference"
    SKILL_CARD = "skill_card"
    EPISODIC_CASE = "episodic_case"
    FAILURE_PATTERN = "failure_pattern"
    TOOL_POLICY = "tool_policy"
    CRITIC_CALIBRATION = "critic_calibration"


class MemoryStatus(StrEnum):
    """candidate → quarantined → promoted | rejected → archived. Nothing is deleted."""

    CANDIDATE = "candidate"
    QUARANTINED = "quarantined"
    PROMOTED = "promoted"
    REJECTED = "rejected"
    ARCHIVED = "archived"


Scope = Literal["agent", "team", "global"]
SCOPES: tuple[str, ...] = ("agent", "team", "global")
MadeBy = Literal["distiller", "human", "hindsight", "evolution", "reflection", "experience"]
#: "experience": written programmatically from ground truth (memory/sources), not by a model
MADE_BY: tuple[str, ...] = ("distiller", "human", "hindsight", "evolution", "reflection", "experience")
Tier = Literal["strategic", "procedural", "tool"]

HIGH_TRUST, MEDIUM_TRUST, LOW_TRUST = 0.9, 0.6, 0.3
Q_PRIOR = 0.5

#: Trust prior per kind: user-defined/human-taught high, learned medium, meta-learned low.
TRUST_PRIORS: Mapping[MemoryKind, float] = {
    MemoryKind.PURPOSE_CONTRACT: HIGH_TRUST,
    MemoryKind.USER_PREFERENCE: HIGH_TRUST,
    MemoryKind.SKILL_CARD: MEDIUM_TRUST,
    MemoryKind.EPISODIC_CASE: MEDIUM_TRUST,
    MemoryKind.FAILURE_PATTERN: MEDIUM_TRUST,
    MemoryKind.TOOL_POLICY: MEDIUM_TRUST,
    MemoryKind.CRITIC_CALIBRATION: LOW_TRUST,
}

#: Prompt tier per kind: strategic rules, procedural steps, tool tips.
TIERS: Mapping[MemoryKind, Tier] = {
    MemoryKind.PURPOSE_CONTRACT: "strategic",
    MemoryKind.USER_PREFERENCE: "strategic",
    MemoryKind.FAILURE_PATTERN: "strategic",
    MemoryKind.CRITIC_CALIBRATION: "strategic",
    MemoryKind.SKILL_CARD: "procedural",
    MemoryKind.EPISODIC_CASE: "procedural",
    MemoryKind.TOOL_POLICY: "tool",
}

#: Kinds that are always on in a Mixture-of-Heuristics retrieval.
SHARED_KINDS: tuple[MemoryKind, ...] = (MemoryKind.PURPOSE_CONTRACT, MemoryKind.USER_PREFERENCE)


class UnsafeMemoryError(PurposeAgentError, ValueError):
    """A memory failed the immune scan on its way to a prompt; it was rejected, not promoted."""

    def __init__(self, memory_id: str, reason: str) -> None:
        super().__init__(f"memory {memory_id} was rejected by the immune scan: {reason}")
        self.memory_id = memory_id
        self.reason = reason


@dataclass(frozen=True)
class Memory:
    """One stored lesson with its provenance, counters, utility and trust."""

    id: str
    kind: MemoryKind
    text: str
    status: MemoryStatus
    scope: str = "global"
    scope_key: str | None = None
    made_by: str = "distiller"
    sources: tuple[str, ...] = ()
    trust: float = MEDIUM_TRUST
    q: float = Q_PRIOR
    q_n: int = 0
    times_included: int = 0
    helpful: int = 0
    harmful: int = 0
    merges: int = 0
    supersedes: tuple[str, ...] = ()
    superseded_by: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0

    @property
    def tier(self) -> Tier:
        return TIERS[self.kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "text": self.text,
            "status": self.status.value,
            "scope": self.scope,
            "scope_key": self.scope_key,
            "made_by": self.made_by,
            "sources": list(self.sources),
            "trust": self.trust,
            "q": self.q,
            "q_n": self.q_n,
            "times_included": self.times_included,
            "helpful": self.helpful,
            "harmful": self.harmful,
            "merges": self.merges,
            "supersedes": list(self.supersedes),
            "superseded_by": self.superseded_by,
            "meta": dict(self.meta),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class StatusChange:
    """One row of a memory's status history."""

    memory_id: str
    old_status: MemoryStatus | None
    new_status: MemoryStatus
    reason: str
    at: float


@dataclass(frozen=True)
class Retrieved:
    """A retrieved memory: relevance in [0, 1] from recall, final score after the Q re-rank."""

    memory: Memory
    relevance: float
    score: float
    route: Literal["routed", "shared"] = "routed"


@dataclass(frozen=True)
class ReplayResult:
    """One memory-CI replay: outcomes with and without a candidate."""

    memory_id: str
    with_scores: tuple[float, ...]
    without_scores: tuple[float, ...]
    gain: float
    decision: str
    reason: str
    at: float


@runtime_checkable
class Scanner(Protocol):
    """What the store and the CI need from an immune system."""

    def scan(self, text: str, *, kind: Any = None, scope: Any = None) -> Any: ...


# ------------------------------------------------------------------------------ text helpers
_WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens after NFKC normalisation."""
    return [t.lower() for t in _WORD.findall(unicodedata.normalize("NFKC", text))]


def normalize_text(text: str) -> str:
    """The form used to detect duplicates: lower-case words joined by single spaces."""
    return " ".join(tokens(text))


def jaccard(a: str, b: str) -> float:
    """Token-set Jaccard similarity of two texts (1.0 for two empty texts)."""
    sa, sb = set(tokens(a)), set(tokens(b))
    if not sa and not sb:
        return 1.0
    return len(sa & sb) / len(sa | sb)


def coerce_kind(kind: MemoryKind | str) -> MemoryKind:
    try:
        return MemoryKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in MemoryKind)
        raise ValueError(f"unknown memory kind {kind!r}; expected one of: {valid}") from None


def coerce_status(status: MemoryStatus | str) -> MemoryStatus:
    try:
        return MemoryStatus(status)
    except ValueError:
        valid = ", ".join(s.value for s in MemoryStatus)
        raise ValueError(f"unknown memory status {status!r}; expected one of: {valid}") from None
