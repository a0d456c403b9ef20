"""Memory CI: immune scan → quarantine → paired validation replay → promote, reject, or keep
quarantined until the evidence decides (the rule is in ``purpose_agent.memory.evidence``).

``aprocess`` is the gate; ``process`` is its sync form. A replay with an async
``arun_unit`` (``purpose_agent.loop.replay.ValidationReplay``) is awaited, so an async caller's
event loop keeps running while the validation runs do."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from purpose_agent.memory.evidence import (
    GateRule,
    Pair,
    Tally,
    UnitRun,
    encode_reason,
    past_evidence,
    recorded_baselines,
)
from purpose_agent.memory.store import MemoryStore, scan_text
from purpose_agent.memory.types import HIGH_TRUST, MemoryKind, MemoryStatus, Scanner, coerce_kind
from purpose_agent.models.base import run_sync

#: replay(include_ids, exclude_ids) -> one outcome in [0, 1] per validation unit, same units and
#: seeds both ways (None: that run reported no ground truth). A replay with ``units()`` and
#: ``run_unit(key, include, exclude)`` (see ``evidence.UnitReplay``) is run one unit at a time.
Replay = Callable[[list[str], list[str]], Sequence[float | None]]
Action = Literal["promoted", "rejected", "skipped", "deferred"]
P = MemoryStatus


@dataclass(frozen=True)
class Decision:
    """What the CI did with one memory, why, on which numbers, and what the gate cost.

    ``mean_with`` / ``mean_without`` / ``gain`` / ``wins`` / ``losses`` / ``ties`` / ``p_value``
    are over every paired unit so far (this gate and earlier ones); ``new_pairs`` ran in this
    gate. ``runs``, ``calls`` and ``seconds`` are this gate's cost for this candidate (a shared
    baseline run is counted once, for the candidate that ran it; ``baseline_reused`` counts
    the baseline runs it took from the gate's cache, or from the replay's own, instead).
    ``calls`` is None when the replay does not report model calls.
    """

    memory_id: str
    action: Action
    reason: str
    mean_with: float | None = None
    mean_without: float | None = None
    gain: float | None = None
    wins: int = 0
    losses: int = 0
    ties: int = 0
    p_value: float | None = None
    pairs: int = 0
    new_pairs: int = 0
    no_ground_truth: int = 0
    runs: int = 0
    calls: int | None = 0
    seconds: float = 0.0
    baseline_reused: int = 0

    @property
    def promoted(self) -> bool:
        return self.action == "promoted"


@dataclass
class _Gate:
    """One gate (one ``process`` call): the baseline runs shared by its candidates, keyed by
    the promoted state they ran with (``MemoryCI._promoted``) and the unit. ``baselines`` is the
    CI's own cache, kept across gates; ``legacy`` (whole-replay callables) lives one gate."""

    baselines: dict[tuple[frozenset[Any], str], UnitRun] = field(default_factory=dict)
    legacy: dict[frozenset[Any], list[float | None]] = field(default_factory=dict)


def state_id(state: frozenset[Any], model: str = "") -> str:
    """A short stable name of a promoted state (``MemoryCI._promoted``) and the model the
    replays ran on, stored with each replay result so that a later gate, in any process, can
    reuse its baselines (and a gate on another model does not)."""
    blob = json.dumps([model, sorted(state)], ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass
class _Cost:
    runs: int = 0
    calls: int | None = 0
    reused: int = 0
    state: frozenset[Any] | None = None  # the promoted state the baselines ran in

    def add(self, run: UnitRun) -> None:
        if run.cached:
            self.reused += 1
            return
        self.runs += 1
        if self.calls is not None:
            self.calls += run.calls


def _sync_override(cls: type, sync: str, async_: str) -> bool:
    """Whether the nearest class of ``cls`` that defines ``sync`` or ``async_`` defines only
    ``sync``: a subclass that redefines the sync form is called through it."""
    for c in cls.__mro__:
        if sync in vars(c) or async_ in vars(c):
            return async_ not in vars(c)
    return False


class MemoryCI:
    """Gate candidates into the prompt on positive evidence only.

    Each candidate is scanned, quarantined, then replayed on validation units with and without
    it (same tasks, seeds and store state). The decision follows ``GateRule`` (see
    ``purpose_agent.memory.evidence``): promote iff wins > losses, one-sided sign test
    p ≤ ``alpha`` and mean gain > max(``noise``, ``min_gain``); reject iff the mirror holds
    against it; otherwise it stays quarantined, and a later gate replays it on units it has not
    seen (its earlier pairs are read back from the store). A tie is no evidence: a lesson with
    a gain of +0.00 is never promoted.

    Cost: the "without" runs depend only on the promoted memories (ids, texts, Q and trust: what
    can reach a prompt), the unit and its seed, so they are shared by all candidates and kept
    across gates (``baselines``) until a promotion, rollback or utility update changes that
    state; a replay with ``run_unit`` is run one unit at a time, at most ``units_per_gate`` new
    units (None: all units not yet seen), the units most like the lesson's task first when the
    replay ranks them (``units_for(memory)``, as ``ValidationReplay`` does), and stops as soon
    as the rule decides, or at a tie once the units left in this gate cannot decide it. Units
    run one after another (each can stop the next); a replay whose ``pairs_at_once`` is true
    (``ValidationReplay(executor="ray")``: each run a Ray task) runs a unit's baseline and its
    run with the candidate side by side, the same decisions (the run with the candidate is
    made, and counted, even when the baseline then reports no ground truth).
    """

    def __init__(
        self,
        store: MemoryStore,
        replay: Replay | Any | None,
        *,
        scanner: Scanner | None = None,
        min_gain: float = 0.0,
        noise: float = 0.05,
        alpha: float = 0.1,
        units_per_gate: int | None = None,
    ) -> None:
        self.store = store
        self.replay = replay
        self.scanner = scanner
        self.min_gain = min_gain
        self.noise = noise
        self.rule = GateRule(alpha=alpha, noise=noise, min_gain=min_gain)
        if units_per_gate is not None and units_per_gate < 1:
            raise ValueError(f"units_per_gate must be ≥ 1 or None, got {units_per_gate}")
        self.units_per_gate = units_per_gate
        #: baseline runs by (promoted state, unit), across gates; only the current state is kept
        self.baselines: dict[tuple[frozenset[Any], str], UnitRun] = {}

    def _scan(self, text: str, kind: str, scope: str) -> tuple[bool, str]:
        return scan_text(self.scanner or self.store.scanner(), text, kind, scope)

    async def aprocess(self, candidate_ids: Sequence[str]) -> list[Decision]:
        """One gate: every candidate in turn (each sees the ones promoted before it), the
        baseline runs shared between them."""
        gate = self._gate()
        return [await self._process(mid, gate) for mid in dict.fromkeys(candidate_ids)]

    def _gate(self) -> _Gate:
        """A new gate: the cache keeps the baselines of the current promoted state, also those
        recorded by earlier gates of other processes (read back from the replay results)."""
        state = self._promoted()
        for stale in [k for k in self.baselines if k[0] != state]:
            del self.baselines[stale]
        for key, outcome in recorded_baselines(self.store, state_id(state, self._model())).items():
            self.baselines.setdefault((state, key), UnitRun(outcome, cached=True))
        return _Gate(baselines=self.baselines)

    def quarantine(self, candidate_ids: Sequence[str], why: str) -> list[Decision]:
        """Scan and quarantine without replaying (the gate's budget is spent): each waits for a
        later gate, or is rejected now if the scan finds a threat."""
        out: list[Decision] = []
        for mid in dict.fromkeys(candidate_ids):
            m = self.store.get(mid)
            if m.status is not P.CANDIDATE:
                out.append(Decision(mid, "skipped", f"memory is {m.status.value}, not a new candidate"))
                continue
            safe, threat = self._scan(m.text, m.kind.value, m.scope)
            if not safe:
                self.store.reject(mid, threat)
                out.append(Decision(mid, "rejected", threat))
                continue
            self.store.quarantine(mid, f"immune scan passed; {why}")
            out.append(Decision(mid, "deferred", f"quarantined; {why}"))
        return out

    def process(self, candidate_ids: Sequence[str]) -> list[Decision]:
        """Sync form of :meth:`aprocess`."""
        return run_sync(lambda: self.aprocess(candidate_ids))

    async def aprocess_one(self, memory_id: str) -> Decision:
        return await self._process(memory_id, self._gate())

    def process_one(self, memory_id: str) -> Decision:
        return run_sync(lambda: self.aprocess_one(memory_id))

    async def _run_unit(self, key: str, include: list[str], exclude: list[str]) -> UnitRun:
        """One validation run: awaited when the replay has ``arun_unit``."""
        arun = getattr(self.replay, "arun_unit", None)
        if callable(arun) and not _sync_override(type(self.replay), "run_unit", "arun_unit"):
            return cast(UnitRun, await arun(key, include, exclude))
        return cast(UnitRun, self.replay.run_unit(key, include, exclude))  # type: ignore[union-attr]

    def _model(self) -> str:
        """The name of the model the replay runs on ("" when it does not say)."""
        llm = getattr(self.replay, "llm", None)
        return str(getattr(llm, "name", "") or "")

    def _promoted(self) -> frozenset[Any]:
        """The promoted state a baseline run depends on: what can reach its prompt and rank it."""
        return frozenset((m.id, m.text, m.q, m.trust) for m in self.store.list(status=P.PROMOTED))

    async def _process(self, memory_id: str, gate: _Gate) -> Decision:
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
        t0 = time.perf_counter()
        past = past_evidence(store, memory_id)
        cost = _Cost()
        new: list[Pair] = []
        no_gt: list[str] = []
        try:
            if callable(getattr(self.replay, "run_unit", None)) and callable(
                getattr(self.replay, "units", None)
            ):
                ran = await self._run_units(memory_id, past.pairs(), past.seen, gate, cost, new, no_gt)
            else:
                ran = self._run_legacy(memory_id, gate, cost, new, no_gt)
        except Exception as exc:  # a failed replay leaves the candidate quarantined
            return Decision(memory_id, "deferred", f"replay failed: {type(exc).__name__}: {exc}")
        seconds = time.perf_counter() - t0
        if not ran:
            empty = getattr(self.replay, "empty_reason", "") or "no validation units to replay"
            why = "no new validation units" if past.seen or past.anonymous else empty
            t = self.rule.tally(past.pairs())
            return self._decision(memory_id, "deferred", f"quarantined; {why}", t, 0, 0, cost, seconds)
        t = self.rule.tally(past.pairs(new))
        verdict = self.rule.verdict(t)
        action: Action = {"promote": "promoted", "reject": "rejected"}.get(verdict, "deferred")  # type: ignore[assignment]
        reason = self._reason(t, len(new), len(no_gt) + len(past.no_ground_truth), verdict, cost, seconds)
        store.record_replay(
            memory_id,
            [p.with_ for p in new],
            [p.without for p in new],
            action,
            encode_reason(
                reason,
                [p.key for p in new],
                no_gt,
                {
                    "runs": cost.runs,
                    "calls": cost.calls,
                    "seconds": round(seconds, 3),
                    "state": state_id(cost.state, self._model()) if cost.state is not None else None,
                },
            ),
        )
        if action == "promoted":
            try:
                store.promote(memory_id, reason)
            except Exception as exc:  # the store's own scan rejected it
                return self._decision(memory_id, "rejected", str(exc), t, len(new), len(no_gt), cost, seconds)
        elif action == "rejected":
            store.reject(memory_id, reason)
        return self._decision(memory_id, action, reason, t, len(new), len(no_gt), cost, seconds)

    async def _run_units(
        self,
        memory_id: str,
        earlier: list[Pair],
        seen: set[str],
        gate: _Gate,
        cost: _Cost,
        new: list[Pair],
        no_gt: list[str],
    ) -> bool:
        replay = self.replay
        rank = getattr(replay, "units_for", None)  # the units most like the lesson's task first
        units = rank(self.store.get(memory_id)) if callable(rank) else replay.units()  # type: ignore[union-attr]
        todo = [u for u in units if u not in seen]
        if self.units_per_gate is not None:
            todo = todo[: self.units_per_gate]
        promoted = self._promoted()
        cost.state = promoted
        together = bool(getattr(replay, "pairs_at_once", False))
        for i, key in enumerate(todo):
            cache_key = (promoted, key)
            base = gate.baselines.get(cache_key)
            run: UnitRun | None = None
            if base is None:
                if together:
                    base, run = await self._run_pair(key, memory_id)
                    cost.add(run)
                else:
                    base = await self._run_unit(key, [], [memory_id])
                gate.baselines[cache_key] = base
                cost.add(base)
            else:
                cost.reused += 1
            if base.outcome is None:  # no ground truth on this unit: no evidence, skip the 'with' run
                no_gt.append(key)
                continue
            if run is None:
                run = await self._run_unit(key, [memory_id], [])
                cost.add(run)
            if run.outcome is None:
                no_gt.append(key)
                continue
            new.append(Pair(key, float(run.outcome), float(base.outcome)))
            pairs = [*earlier, *new]
            if self.rule.verdict(self.rule.tally(pairs)) != "undecided":
                break  # decided
            if abs(new[-1].diff) <= self.rule.tie and not self.rule.reachable(pairs, len(todo) - i - 1):
                break  # a tie, and the units left in this gate cannot decide it
        return bool(todo)

    async def _run_pair(self, key: str, memory_id: str) -> tuple[UnitRun, UnitRun]:
        """A unit's baseline and its run with the candidate, side by side; both finish before a
        failure of either is raised (the baseline's first)."""
        base, run = await asyncio.gather(
            self._run_unit(key, [], [memory_id]), self._run_unit(key, [memory_id], []), return_exceptions=True
        )
        for value in (base, run):
            if isinstance(value, BaseException):
                raise value
        return cast(UnitRun, base), cast(UnitRun, run)

    def _run_legacy(
        self, memory_id: str, gate: _Gate, cost: _Cost, new: list[Pair], no_gt: list[str]
    ) -> bool:
        """A plain ``replay(include, exclude)`` callable: all units at once, keyed by position."""
        replay: Replay = self.replay  # type: ignore[assignment]
        cost.calls = None
        with_s = list(replay([memory_id], []))
        promoted = self._promoted()
        without_s = gate.legacy.get(promoted)
        if without_s is None:
            without_s = list(replay([], [memory_id]))
            gate.legacy[promoted] = without_s
        else:
            cost.reused += len(without_s)
        cost.runs += len(with_s) + (0 if cost.reused else len(without_s))
        for i, (w, o) in enumerate(zip(with_s, without_s, strict=False)):
            if w is None or o is None:
                no_gt.append(f"#{i}")
            else:
                new.append(Pair(f"#{i}", float(w), float(o)))
        return bool(with_s or without_s)

    def _reason(self, t: Tally, new: int, no_gt: int, verdict: str, cost: _Cost, seconds: float) -> str:
        calls = "?" if cost.calls is None else str(cost.calls)
        head = (
            f"validation replay on {t.pairs} paired units ({new} new): with={t.mean_with or 0.0:.3f} "
            f"without={t.mean_without or 0.0:.3f} gain={t.gain or 0.0:+.3f}; wins {t.wins}, "
            f"losses {t.losses}, ties {t.ties}; sign test p={min(t.p_for, t.p_against):.3f}"
            if t.pairs
            else "no paired validation units with ground truth"
        )
        if no_gt:
            head += f"; {no_gt} units reported no ground truth (the gate does not decide on Φ)"
        verdicts = {
            "promote": "promoted: evidence that it helps",
            "reject": "rejected: evidence that it hurts",
            "undecided": "kept quarantined: no evidence either way yet",
        }
        return (
            f"{head}; {verdicts[verdict]} ({self.rule.describe()}); gate cost {cost.runs} runs, "
            f"{calls} calls, {seconds:.2f}s"
            + (f", {cost.reused} baseline runs shared" if cost.reused else "")
        )

    @staticmethod
    def _decision(
        memory_id: str,
        action: Action,
        reason: str,
        t: Tally,
        new: int,
        no_gt: int,
        cost: _Cost,
        seconds: float,
    ) -> Decision:
        return Decision(
            memory_id,
            action,
            reason,
            t.mean_with,
            t.mean_without,
            t.gain,
            t.wins,
            t.losses,
            t.ties,
            min(t.p_for, t.p_against) if t.pairs else None,
            t.pairs,
            new,
            no_gt,
            cost.runs,
            cost.calls,
            seconds,
            cost.reused,
        )

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
