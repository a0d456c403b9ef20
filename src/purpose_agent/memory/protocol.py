"""What a memory store is, whatever keeps it: the protocol both backends satisfy.

- ``MemoryStore(path)``: one SQLite file (WAL), the embedded default;
- ``MemoryStore("postgresql://...")`` / ``MemoryStore.connect(url)``: PostgreSQL, for a team on
  several machines (``purpose_agent.memory.postgres``, extra ``postgres``).

Both keep the same semantics (kinds, statuses with their history, never delete, supersede and
rollback, the run modes, two-phase retrieval with the Q re-rank, transactions that lose no
update). The shared suite ``tests/unit/memory/test_store_backends.py`` runs on both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, Self, runtime_checkable

from purpose_agent.core.modes import RunMode
from purpose_agent.memory.types import (
    Memory,
    MemoryKind,
    MemoryStatus,
    ReplayResult,
    Retrieved,
    StatusChange,
)

_list = list  # ``list`` is also a method name of the protocol

__all__ = ["DATABASE_SCHEMES", "MemoryStoreProtocol", "is_database_url"]

#: URL schemes that name a PostgreSQL server rather than a SQLite file.
DATABASE_SCHEMES = ("postgresql://", "postgres://")


def is_database_url(location: object) -> bool:
    """True for a ``postgresql://`` (or ``postgres://``) URL; False for a path or anything else."""
    return isinstance(location, str) and location.strip().lower().startswith(DATABASE_SCHEMES)


@runtime_checkable
class MemoryStoreProtocol(Protocol):
    """The public surface of a memory store (``MemoryStore`` and ``PostgresStore`` both have it)."""

    mode: RunMode
    path: Path
    q_weight: float

    # adding and status changes (each one transaction; EVAL_TEST raises ReadOnlyModeError)
    def add(self, text: str, kind: MemoryKind | str, *args: Any, **kwargs: Any) -> str: ...
    def set_status(self, memory_id: str, status: MemoryStatus | str, reason: str) -> Memory: ...
    def promote(self, memory_id: str, reason: str) -> Memory: ...
    def reject(self, memory_id: str, reason: str) -> Memory: ...
    def quarantine(self, memory_id: str, reason: str) -> Memory: ...
    def archive(self, memory_id: str, reason: str) -> Memory: ...
    def supersede(
        self,
        old_ids: Sequence[str],
        new_text: str,
        kind: MemoryKind | str,
        reason: str,
        *args: Any,
        **kwargs: Any,
    ) -> str: ...
    def rollback(self, memory_id: str, reason: str) -> _list[str]: ...

    # runs and credit
    def record_inclusion(self, ids: Iterable[str], run_id: str) -> None: ...
    def credit(self, ids: Iterable[str], outcome: float, run_id: str) -> _list[str]: ...
    def record_replay(
        self,
        memory_id: str,
        with_scores: Sequence[float],
        without_scores: Sequence[float],
        decision: str,
        reason: str,
    ) -> None: ...

    # reads
    def get(self, memory_id: str) -> Memory: ...
    def list(
        self,
        kind: MemoryKind | str | None = None,
        status: MemoryStatus | str | None = None,
        scope: str | None = None,
        *,
        scope_key: str | None = None,
        limit: int | None = None,
    ) -> _list[Memory]: ...
    def history(self, memory_id: str) -> _list[StatusChange]: ...
    def replays(self, memory_id: str | None = None) -> _list[ReplayResult]: ...
    def count(self, status: MemoryStatus | str | None = None) -> int: ...
    def retrieve(self, query: str, k: int = 6, *args: Any, **kwargs: Any) -> _list[Retrieved]: ...
    def retrieve_mixture(
        self, query: str, shared: int = 2, routed: int = 4, *args: Any, **kwargs: Any
    ) -> _list[Retrieved]: ...

    # reports, transfer, lifecycle
    def status_report(self, *, top: int = 10) -> dict[str, Any]: ...
    def export(self, path: str | Path) -> int: ...
    def import_jsonl(self, path: str | Path) -> dict[str, int]: ...
    def with_mode(self, mode: RunMode | str) -> Self: ...
    def verify(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> None: ...
