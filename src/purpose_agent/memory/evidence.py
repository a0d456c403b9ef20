"""The evidence rule of the memory gate.

A candidate is judged on *paired* validation units: one unit is a (validation task, seed),
run once with the candidate forced into the prompt and once without it, from the same state
and seed. Only units where both runs reported ground truth count. Each gate adds the units
the candidate has not been replayed on yet; the pairs of earlier gates are read back from the
store's replay results, so evidence accumulates and a unit is never counted twice.

With ``d = with − without`` per unit, ``wins = #(d > tie)``, ``losses = #(d < −tie)`` and
``p(k) = P[Binomial(wins + losses, ½) ≥ k]`` (a one-sided sign test; ties carry no sign):

- **promote** iff ``wins > losses`` and ``p(wins) ≤ alpha`` and ``mean(d) > max(noise, min_gain)``;
- **reject** iff ``losses > wins`` and ``p(losses) ≤ alpha`` and ``mean(d) < −noise``;
- otherwise the candidate **stays quarantined** and collects more evidence at later gates.

With the defaults (``alpha = 0.1``, ``noise = 0.05``) promotion needs at least four wins with
no loss (p = 1/16), five wins to one loss is not enough (p ≈ 0.11), six to one is (p ≈ 0.06).
The gate looks after every new unit and stops as soon as the rule decides, or at a tie once
the units left in this gate cannot make it decide (a candidate that keeps winning or losing
goes on collecting evidence); ``alpha`` is the level of each look, not a corrected error rate
over all looks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import comb
from statistics import fmean
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from purpose_agent.memory.store import MemoryStore

Verdict = Literal["promote", "reject", "undecided"]
#: marks the machine-readable tail of a replay result's reason (unit keys, cost)
GATE_TAG = "\n[gate] "


@dataclass(frozen=True)
class UnitRun:
    """One validation run: its ground-truth outcome (None when the run reported none) and cost
    (``cached``: the replay answered from its own cache, nothing ran)."""

    outcome: float | None
    calls: int = 0
    seconds: float = 0.0
    cached: bool = False


class UnitReplay(Protocol):
    """A replay that runs one validation unit at a time (so the gate can stop early)."""

    def units(self) -> Sequence[str]: ...

    def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun: ...


@dataclass(frozen=True)
class Pair:
    """A paired unit: the outcome with and without the candidate (``key`` None: unknown unit)."""

    key: str | None
    with_: float
    without: float

    @property
    def diff(self) -> float:
        return self.with_ - self.without


@dataclass(frozen=True)
class Tally:
    """The numbers the rule decides on."""

    pairs: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    mean_with: float | None = None
    mean_without: float | None = None
    gain: float | None = None
    p_for: float = 1.0  # P[Bin(wins+losses, ½) ≥ wins]
    p_against: float = 1.0  # P[Bin(wins+losses, ½) ≥ losses]


def sign_p(k: int, n: int) -> float:
    """One-sided sign-test p-value: P[Binomial(n, ½) ≥ k] (1.0 when n = 0)."""
    if n <= 0:
        return 1.0
    return sum(comb(n, i) for i in range(max(k, 0), n + 1)) / float(1 << n)


@dataclass(frozen=True)
class GateRule:
    """The rule of the module docstring, with its parameters."""

    alpha: float = 0.1
    noise: float = 0.05
    min_gain: float = 0.0
    tie: float = 1e-9

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.noise < 0.0:
            raise ValueError(f"noise must be ≥ 0, got {self.noise}")

    def tally(self, pairs: Sequence[Pair]) -> Tally:
        if not pairs:
            return Tally()
        wins = sum(p.diff > self.tie for p in pairs)
        losses = sum(p.diff < -self.tie for p in pairs)
        mw, mo = fmean(p.with_ for p in pairs), fmean(p.without for p in pairs)
        n = wins + losses
        return Tally(
            len(pairs), wins, losses, len(pairs) - n, mw, mo, mw - mo, sign_p(wins, n), sign_p(losses, n)
        )

    def verdict(self, t: Tally) -> Verdict:
        if t.gain is None:
            return "undecided"
        if t.wins > t.losses and t.p_for <= self.alpha and t.gain > max(self.noise, self.min_gain):
            return "promote"
        if t.losses > t.wins and t.p_against <= self.alpha and t.gain < -self.noise:
            return "reject"
        return "undecided"

    def reachable(self, pairs: Sequence[Pair], remaining: int) -> bool:
        """Could ``remaining`` more units (outcomes in [0, 1]) still make the rule decide?"""
        if remaining <= 0:
            return False
        best = [*pairs, *(Pair(None, 1.0, 0.0) for _ in range(remaining))]
        worst = [*pairs, *(Pair(None, 0.0, 1.0) for _ in range(remaining))]
        return self.verdict(self.tally(best)) == "promote" or self.verdict(self.tally(worst)) == "reject"

    def describe(self) -> str:
        return (
            f"promote iff wins > losses, sign-test p ≤ {self.alpha:g} and gain > "
            f"{max(self.noise, self.min_gain):.3f}; reject iff losses > wins, p ≤ {self.alpha:g} "
            f"and gain < {-self.noise:+.3f}"
        )


@dataclass
class Evidence:
    """What earlier gates found for one memory: pairs by unit, and units without ground truth."""

    by_key: dict[str, Pair]
    anonymous: list[Pair]
    no_ground_truth: set[str]

    @property
    def seen(self) -> set[str]:
        return set(self.by_key) | self.no_ground_truth

    def pairs(self, new: Iterable[Pair] = ()) -> list[Pair]:
        """All pairs, a unit's latest result replacing an earlier one of the same unit."""
        merged = dict(self.by_key)
        extra: list[Pair] = []
        for p in new:
            if p.key is None:
                extra.append(p)
            else:
                merged[p.key] = p
        return [*self.anonymous, *merged.values(), *extra]


def encode_reason(reason: str, keys: Sequence[str | None], no_gt: Sequence[str], cost: dict[str, Any]) -> str:
    """A replay result's reason: the human sentence, then the unit keys of its scores (in
    order), the units that reported no ground truth, and the cost, as one JSON line."""
    tail = {"units": list(keys), "no_ground_truth": list(no_gt), **cost}
    return reason + GATE_TAG + json.dumps(tail, ensure_ascii=False)


def _tail(reason: str) -> dict[str, Any]:
    """The JSON line ``encode_reason`` put after the sentence ({} when there is none)."""
    if GATE_TAG not in reason:
        return {}
    try:
        tail = json.loads(reason.rsplit(GATE_TAG, 1)[1])
    except ValueError:
        return {}
    return tail if isinstance(tail, dict) else {}


def recorded_baselines(store: MemoryStore, state: str) -> dict[str, float]:
    """The "without" outcome of every unit that an earlier gate replayed in the promoted state
    ``state`` (the ``state`` entry of its JSON line), by unit key; the latest one wins."""
    out: dict[str, float] = {}
    for r in store.replays():
        tail = _tail(r.reason)
        if tail.get("state") != state:
            continue
        keys = tail.get("units") or []
        for key, without in zip(keys, r.without_scores, strict=False):
            if isinstance(key, str):
                out[key] = float(without)
    return out


def past_evidence(store: MemoryStore, memory_id: str) -> Evidence:
    """The evidence stored by earlier gates for ``memory_id`` (replay results, oldest first).
    Results written before unit keys were recorded count as pairs of unknown units."""
    ev = Evidence({}, [], set())
    for r in store.replays(memory_id):
        tail = _tail(r.reason)
        keys = tail.get("units") or []
        for i, (w, o) in enumerate(zip(r.with_scores, r.without_scores, strict=False)):
            key = keys[i] if i < len(keys) and isinstance(keys[i], str) else None
            pair = Pair(key, float(w), float(o))
            if key is None:
                ev.anonymous.append(pair)
            else:
                ev.by_key[key] = pair
                ev.no_ground_truth.discard(key)
        for key in tail.get("no_ground_truth") or []:
            if isinstance(key, str) and key not in ev.by_key:
                ev.no_ground_truth.add(key)
    return ev
