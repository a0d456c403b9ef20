"""MemoryStore: one SQLite file (WAL) per memory space, with run modes enforced here.

Every write is one ``BEGIN IMMEDIATE`` transaction. Nothing is ever deleted: memories are
rejected, archived or superseded, and every status change is kept with its reason.
``EVAL_TEST`` opens the file read-only (``mode=ro``) so no byte of it changes.

The store is built in layers, one module each: ``_base`` (connection, transactions, run-mode
checks, reads), ``_status`` (status changes, rollback), ``_retrieve`` (embeddings, recall,
re-rank), ``_adding`` (add, supersede); this module adds runs and credit, reports and transfer,
and chooses the backend (a ``postgresql://`` URL gives ``postgres.PostgresStore``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

# ``Dedupe`` and ``DEDUPE_MODES`` are defined with ``add``; they keep this import path too
from purpose_agent.memory._adding import DEDUPE_MODES as DEDUPE_MODES
from purpose_agent.memory._adding import AddingStore
from purpose_agent.memory._adding import Dedupe as Dedupe
from purpose_agent.memory._base import scan_text
from purpose_agent.memory.credit import apply_credit
from purpose_agent.memory.protocol import is_database_url

__all__ = ["MemoryStore", "scan_text"]


class MemoryStore(AddingStore):
    """Typed lessons in one SQLite file. See the module docstring for the guarantees.

    ``MemoryStore("postgresql://...")`` (or ``MemoryStore.connect(url)``) gives the PostgreSQL
    backend instead (``purpose_agent.memory.postgres``, extra ``postgres``), same semantics."""

    def __new__(cls, path: str | Path, *args: Any, **kwargs: Any) -> MemoryStore:
        if cls is MemoryStore and is_database_url(path):
            from purpose_agent.memory.postgres import PostgresStore

            return super().__new__(PostgresStore)
        return super().__new__(cls)

    @classmethod
    def connect(cls, url: str | Path, **kwargs: Any) -> MemoryStore:
        """The store at ``url``: a ``postgresql://`` URL, or a SQLite file path."""
        return MemoryStore(url, **kwargs)

    # ------------------------------------------------------------------ runs and credit
    def record_inclusion(self, ids: Iterable[str], run_id: str) -> None:
        """Record that ``ids`` were in a prompt of ``run_id`` (staging rows in LEARNING_VALIDATION;
        ``times_included`` only counts training runs). Idempotent per (run_id, id)."""
        self._require_stage("recording included memories")
        staging = 0 if self.mode.can_write else 1
        with self._tx() as c:
            for mid in dict.fromkeys(ids):
                cur = c.execute(
                    "INSERT OR IGNORE INTO inclusions (run_id, memory_id, staging, at) VALUES (?,?,?,?)",
                    (run_id, mid, staging, time.time()),
                )
                if cur.rowcount == 1 and not staging:
                    c.execute("UPDATE memories SET times_included = times_included + 1 WHERE id = ?", (mid,))

    def credit(self, ids: Iterable[str], outcome: float, run_id: str) -> list[str]:
        """Credit the memories that were in the prompt with the run's outcome in [0, 1]:
        helpful if ≥ 0.5 else harmful, Q moves toward the outcome. Idempotent per (run_id, id);
        when inclusions were recorded for the run, ids not included are ignored."""
        self._require_write("crediting memories")
        with self._tx() as c:
            return apply_credit(c, ids, outcome, run_id)

    def record_replay(
        self,
        memory_id: str,
        with_scores: Sequence[float],
        without_scores: Sequence[float],
        decision: str,
        reason: str,
    ) -> None:
        """Store one memory-CI replay result (staging data)."""
        self._require_stage("recording a replay result")
        mw = sum(with_scores) / len(with_scores) if with_scores else 0.0
        mo = sum(without_scores) / len(without_scores) if without_scores else 0.0
        with self._tx() as c:
            c.execute(
                "INSERT INTO replay_results (memory_id, with_scores, without_scores, gain, decision, reason, at) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    memory_id,
                    json.dumps(list(with_scores)),
                    json.dumps(list(without_scores)),
                    mw - mo,
                    decision,
                    reason,
                    time.time(),
                ),
            )

    # ------------------------------------------------------------------ reports and transfer
    def status_report(self, *, top: int = 10) -> dict[str, Any]:
        """Memories by kind and status, top promoted with utilities, rejected with reasons."""
        from purpose_agent.memory._report import build_report

        with self._reading():
            return build_report(self, top)

    def export(self, path: str | Path) -> int:
        """Write every memory with its history as JSONL; returns the number written."""
        from purpose_agent.memory._report import export_jsonl

        with self._reading():
            return export_jsonl(self, Path(path))

    def import_jsonl(self, path: str | Path) -> dict[str, int]:
        """Import an export: known ids and duplicates are skipped; promoted lessons are scanned
        (unsafe ones arrive rejected). One transaction. Returns counts added/skipped/rejected."""
        from purpose_agent.memory._report import import_jsonl

        self._require_write("importing memories")
        return import_jsonl(self, Path(path))
