"""Memory CI: immune scan → quarantine → replay with and without → promote or reject."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Literal

from purpose_agent.memory.store import MemoryStore, scan_text
from purpose_agent.memory.types import HIGH_TRUST, MemoryKind, MemoryStatus, Scanner, coerce_kind

#: replay(include_ids, exclude_ids) -> one outcome in [0, 1] per validation task (same seeds).
Replay = Callable[[list[str], list[str]], Sequence[float]]
Action = Literal["promoted", "rejected", "skipped", "deferred"]
P = MemoryStatus


@dataclass(frozen=True)
class Decision:
    """What the CI did with one memory, and why."""

    memory_id: str
    action: Action
    reason: str
    mean_with: float | None = None
    mean_without: float | None = None
    gain: float | None = None

    @property
    def promoted(self) -> bool:
        return self.action == "promoted"


class MemoryCI:
    """Gate candidates into the prompt. Promote when mean(with) − mean(without) ≥ min_gain − noise."""

    def __init__(
        self,
        store: MemoryStore,
        replay: Replay | None,
        *,
        scanner: Scanner | None = None,
        min_gain: float = 0.0,
        noise: float = 0.05,
    ) -> None:
        self.store = store
        self.replay = replay
        self.scanner = scanner
        self.min_gain = min_gain
        self.noise = noise

    def _scan(self, text: str, kind: str, scope: str) -> tuple[bool, str]:
        return scan_text(self.scanner or self.store.scanner(), text, kind, scope)

    def process(self, candidate_ids: Sequence[str]) -> list[Decision]:
        """Run every candidate through the gate, one at a time (each sees the ones promoted before it)."""
        return [self.process_one(mid) for mid in dict.fromkeys(candidate_ids)]

    def process_one(self, memory_id: str) -> Decision:
        store = self.store
        m = store.get(memory_id)
        if m.status not in (P.CANDIDATE, P.QUARANTINED):
            return Decision(memory_id, "skipped", f"memory is {m.status.value}, not a candidate")
        safe, why = self._scan(m.text, m.kind.value, m.scope)
        if not safe:
            store.reject(memory_id, why)
            return Decision(memory_id, "rejected", why)
        if m.status is P.CANDIDATE:
            store.quarantine(memory_id, "immune scan passed; awaiting validation replay")
        if self.replay is None:
            return Decision(memory_id, "deferred", "quarantined; no replay function configured")
        try:
            with_s = [float(x) for x in self.replay([memory_id], [])]
            without_s = [float(x) for x in self.replay([], [memory_id])]
        except Exception as exc:  # a failed replay leaves the candidate quarantined
            return Decision(memory_id, "deferred", f"replay failed: {type(exc).__name__}: {exc}")
        if not with_s or not without_s:
            return Decision(memory_id, "deferred", "replay returned no outcomes")
        mw, mo = fmean(with_s), fmean(without_s)
        gain = mw - mo
        threshold = self.min_gain - self.noise
        ok = gain >= threshold
        reason = (
            f"validation replay on {len(with_s)} tasks: with={mw:.3f} without={mo:.3f} gain={gain:+.3f} "
            f"{'≥' if ok else '<'} threshold {threshold:+.3f}"
        )
        action: Action = "promoted" if ok else "rejected"
        store.record_replay(memory_id, with_s, without_s, action, reason)
        if ok:
            try:
                store.promote(memory_id, reason)
            except Exception as exc:  # the store's own scan rejected it
                return Decision(memory_id, "rejected", str(exc), mw, mo, gain)
        else:
            store.reject(memory_id, reason)
        return Decision(memory_id, action, reason, mw, mo, gain)

    def teach(
        self,
        text: str,
        kind: MemoryKind | str = MemoryKind.USER_PREFERENCE,
        scope: str = "global",
        *,
        scope_key: str | None = None,
    ) -> Decision:
        """A human lesson: scanned, then promoted at once with high trust, or kept as rejected
        with the threats as the reason. Roll it back with ``store.rollback(id, reason)``.

        The new text is judged on its own: an unsafe one is stored as its own rejected memory
        and never touches a promoted near-duplicate; a safe one may merge into it."""
        from purpose_agent.memory.types import UnsafeMemoryError

        k = coerce_kind(kind)
        safe, why = self._scan(text, k.value, scope)
        reason = "taught by a human; immune scan passed" if safe else why
        try:
            mid = self.store.add(
                text,
                k,
                scope=scope,
                scope_key=scope_key,
                status=P.PROMOTED if safe else P.REJECTED,
                made_by="human",
                trust=HIGH_TRUST,
                meta={"taught": True},
                reason=reason,
            )
        except UnsafeMemoryError as exc:  # the store's own scanner found what this one did not
            return Decision(exc.memory_id, "rejected", exc.reason)
        return Decision(mid, "promoted" if safe else "rejected", reason)

    def rollback(self, memory_id: str, reason: str) -> list[str]:
        """Undo a promotion through the store; returns the ids it restored."""
        return self.store.rollback(memory_id, reason)
