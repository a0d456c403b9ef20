"""The learning memory kernel: typed lessons in SQLite, retrieval, the memory prompt
(``memory.prompt``), distiller, memory CI, credit assignment and the grounded learning sources. The
immune system lives in ``purpose_agent.memory.immune`` and is imported lazily where it is
needed. What runs the loop to learn (the default learning path ``Learning``, validation
replays, training attempts, the memory hook) is one layer up, in ``purpose_agent.loop``."""

from __future__ import annotations

from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.distiller import Candidate, Distiller, evolve
from purpose_agent.memory.embeddings import Embedder, MiniLMEmbedder, embed_available
from purpose_agent.memory.evidence import GateRule
from purpose_agent.memory.prompt import CompiledMemories, compile_memories
from purpose_agent.memory.retrieval import fts_query
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import (
    TRUST_PRIORS,
    Memory,
    MemoryKind,
    MemoryStatus,
    ReplayResult,
    Retrieved,
    StatusChange,
    UnsafeMemoryError,
)

__all__ = [
    "TRUST_PRIORS",
    "Candidate",
    "CompiledMemories",
    "Decision",
    "Distiller",
    "Embedder",
    "GateRule",
    "Memory",
    "MemoryCI",
    "MemoryKind",
    "MemoryStatus",
    "MemoryStore",
    "MiniLMEmbedder",
    "ReplayResult",
    "Retrieved",
    "StatusChange",
    "UnsafeMemoryError",
    "compile_memories",
    "embed_available",
    "evolve",
    "fts_query",
]
