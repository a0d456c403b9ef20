"""The ungated baseline's gate (ExpeL-like: every scanned lesson promoted at once) and the
per-unit sampling seed. The learning arms use the memory hook's own gate (``pa.Learning``)."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from purpose_agent.memory.ci import Decision, MemoryCI
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus


def unit_seed(seed: int, *parts: str) -> int:
    """A stable per-unit sampling seed (independent of run order, so resume is exact)."""
    return (seed * 1_000_003 + zlib.crc32("|".join(parts).encode())) % (2**31 - 1)


class PromoteAll(MemoryCI):
    """Ungated memory (ExpeL-insights-like): every distilled lesson that passes the immune scan
    is promoted at once, with no validation replay."""

    def __init__(self, store: MemoryStore) -> None:
        super().__init__(store, None)

    def process(self, candidate_ids: Sequence[str]) -> list[Decision]:
        return [self.process_one(mid) for mid in dict.fromkeys(candidate_ids)]

    def process_one(self, memory_id: str) -> Decision:
        m = self.store.get(memory_id)
        if m.status not in (MemoryStatus.CANDIDATE, MemoryStatus.QUARANTINED):
            return Decision(memory_id, "skipped", f"memory is {m.status.value}")
        safe, why = self._scan(m.text, m.kind.value, m.scope)
        if not safe:
            self.store.reject(memory_id, why)
            return Decision(memory_id, "rejected", why)
        try:
            self.store.promote(memory_id, "ungated baseline: promoted at once")
        except Exception as exc:
            return Decision(memory_id, "rejected", str(exc))
        return Decision(memory_id, "promoted", "ungated baseline: promoted at once")
