"""Status changes of a MemoryStore: ``set_status`` and its shortcuts, ``rollback``, and the
archiving of what a promoted memory supersedes.

Every change is one write transaction and is kept in the memory's status history with its
reason; a promotion scans the text first (an unsafe memory is rejected instead).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence

from purpose_agent.memory._base import StoreBase
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.types import Memory, MemoryStatus, UnsafeMemoryError, coerce_status

P = MemoryStatus


def linked_note(linked: Sequence[str]) -> str:
    """The tail of a promotion's history reason naming the memories it archived."""
    return f" (supersedes {', '.join(linked)})" if linked else ""


class StatusStore(StoreBase):
    """The status changes of a MemoryStore (promote, reject, quarantine, archive, rollback)."""

    def set_status(self, memory_id: str, status: MemoryStatus | str, reason: str) -> Memory:
        """Move a memory to ``status`` with a reason (kept in its history); returns it updated.

        Promotion scans the text first; an unsafe memory is rejected and UnsafeMemoryError raised.
        Promoting a memory that declares it supersedes others (``supersede(..., status=CANDIDATE)``)
        archives them in the same transaction, linked both ways, so ``rollback`` restores them.
        A superseded memory cannot be promoted (ValueError: roll back its successor instead).
        LEARNING_VALIDATION may only quarantine; EVAL_TEST raises.
        """
        status = coerce_status(status)
        if not reason.strip():
            raise ValueError("a status change needs a reason")
        if status is P.QUARANTINED:
            self._require_stage("quarantining a memory")
        else:
            self._require_write(f"setting a memory to {status.value}")
        with self._lock:
            # Text, kind and scope never change, so the scan may run before the transaction;
            # the status it depends on is read inside it (another process may change it).
            m = self.get(memory_id)
            safe, why = self._scan(m.text, m.kind.value, m.scope) if status is P.PROMOTED else (True, "")
            with self._tx() as c:
                old = self._get(c, memory_id)
                if not self.mode.can_write and old.status is not P.CANDIDATE:
                    raise self._deny(
                        f"quarantining a {old.status.value} memory", "only candidates may be quarantined"
                    )
                unsafe = status is P.PROMOTED and old.status is not P.PROMOTED and not safe
                final, final_reason = (P.REJECTED, f"{why} (while: {reason})") if unsafe else (status, reason)
                if final is P.PROMOTED and old.status is not P.PROMOTED and old.superseded_by is not None:
                    raise ValueError(
                        f"memory {memory_id} is superseded by {old.superseded_by}; "
                        "roll that one back to restore it"
                    )
                if old.status is not final:
                    now = time.time()
                    c.execute(
                        "UPDATE memories SET status = ?, updated_at = ? WHERE id = ?",
                        (final.value, now, memory_id),
                    )
                    if final is P.PROMOTED:
                        final_reason += linked_note(self._link_supersessions(c, old, reason, now))
                    self._history(c, memory_id, old.status, final, final_reason)
            if unsafe:
                raise UnsafeMemoryError(memory_id, why)
            return self.get(memory_id)

    def promote(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.PROMOTED, reason)

    def reject(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.REJECTED, reason)

    def quarantine(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.QUARANTINED, reason)

    def archive(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.ARCHIVED, reason)

    def _link_supersessions(self, c: sqlite3.Connection, new: Memory, reason: str, now: float) -> list[str]:
        """On the promotion of ``new`` (inside its transaction): archive every memory it
        declares it supersedes, linked back to it; returns their ids. One superseded by
        another memory meanwhile (or missing) is left as it is and dropped from the links."""
        linked: list[str] = []
        for old_id in new.supersedes:
            row = c.execute(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?", (old_id,)).fetchone()
            old = row_to_memory(row) if row is not None else None
            if old is None or old.id == new.id or old.superseded_by not in (None, new.id):
                continue
            linked.append(old.id)
            if old.superseded_by == new.id:
                continue
            c.execute(
                "UPDATE memories SET status = ?, superseded_by = ?, updated_at = ? WHERE id = ?",
                (P.ARCHIVED.value, new.id, now, old.id),
            )
            self._history(c, old.id, old.status, P.ARCHIVED, f"superseded by {new.id}: {reason}")
        if linked != list(new.supersedes):
            c.execute("UPDATE memories SET supersedes = ? WHERE id = ?", (json.dumps(linked), new.id))
        return linked

    def rollback(self, memory_id: str, reason: str) -> list[str]:
        """Undo a promotion: the memory becomes rejected (history kept) and every memory it
        superseded gets back the status it had before; returns the restored ids."""
        self._require_write("rolling back a promotion")
        with self._lock:
            restored: list[str] = []
            with self._tx() as c:
                m = self._get(c, memory_id)
                if m.status is not P.PROMOTED:
                    raise ValueError(
                        f"memory {memory_id} is {m.status.value}; only a promotion can be rolled back"
                    )
                now = time.time()
                c.execute(
                    "UPDATE memories SET status = ?, updated_at = ? WHERE id = ?",
                    (P.REJECTED.value, now, memory_id),
                )
                self._history(c, memory_id, P.PROMOTED, P.REJECTED, f"rollback: {reason}")
                for old_id in m.supersedes:
                    old = self._get(c, old_id)
                    if old.superseded_by != memory_id:
                        continue
                    row = c.execute(
                        "SELECT old_status FROM status_history WHERE memory_id = ? AND new_status = ? "
                        "ORDER BY seq DESC LIMIT 1",
                        (old_id, P.ARCHIVED.value),
                    ).fetchone()
                    prev = P(row[0]) if row and row[0] else P.PROMOTED
                    c.execute(
                        "UPDATE memories SET status = ?, superseded_by = NULL, updated_at = ? WHERE id = ?",
                        (prev.value, now, old_id),
                    )
                    self._history(
                        c, old_id, old.status, prev, f"restored by rollback of {memory_id}: {reason}"
                    )
                    restored.append(old_id)
            return restored
