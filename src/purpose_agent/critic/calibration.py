"""Calibration examples for the critic: what they say, where they come from, how they are found.

A calibration example is a ``critic_calibration`` memory: a state pattern and the right Φ
for it. Two sources:
- a person's override (``made_by="human"``, promoted with high trust through MemoryCI.teach);
- meta-rewarding after a task with ground truth (``made_by="hindsight"``): a judgment that
  agreed with the ground truth becomes an example with the critic's Φ and evidence; one that
  disagreed becomes a correction labelled 10·outcome.

Meta-rewarded examples are promoted at once with low trust, not left as candidates: their
label is verified by the environment's ground truth, which is the check the memory CI's
replay would stand in for (and that replay measures the actor's success, which says nothing
about a critic's calibration). They still pass the immune scan, rank below human examples
(trust), reach only the critic's prompt as quoted data, and can be rolled back.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from purpose_agent.core.types import State, Step, TaskResult
from purpose_agent.critic.claims import find_claims, redact

KIND = "critic_calibration"


class CalibrationStore(Protocol):
    """What the critic needs from a memory store (MemoryStore implements it)."""

    def retrieve(self, query: str, k: int = 6, **kwargs: Any) -> list[Any]: ...


def state_pattern(state: State, limit: int = 320) -> str:
    """A short excerpt of the state (its head and its tail, where results usually are), with
    any claim phrases removed."""
    text = state.describe(20_000)
    text = redact(text, find_claims(text))
    text = " ".join(line.strip() for line in text.splitlines() if line.strip())
    if len(text) <= limit:
        return text
    head = limit // 3
    return text[:head] + " … " + text[-(limit - head - 3) :]


def calibration_text(purpose: str, state: State, phi: float, why: str = "") -> str:
    """The text of a calibration example (a state pattern and the right score)."""
    pattern = state_pattern(state).replace('"', "'")
    goal = " ".join(purpose.split())[:140].replace('"', "'")
    return f'Purpose "{goal}"; state showing "{pattern}": right score {phi:g}/10.' + (
        f" {why}" if why else ""
    )


def label_key(phi: float) -> str:
    """The scope key of a calibration memory: near-duplicate states merge only when they have
    the same right score (a merge across scores would keep the wrong label for one of them)."""
    return f"critic-phi:{phi:g}"


def retrieve_examples(
    store: CalibrationStore, purpose: str, state: State, k: int = 2, scanner: Any = None
) -> list[str]:
    """Texts of the promoted calibration examples most similar to (purpose, state)."""
    query = f"{purpose}\n{state_pattern(state)}"
    try:
        found = store.retrieve(query, k, kinds=[KIND])
    except Exception:  # a broken store must not stop the critic
        return []
    texts = [str(getattr(getattr(r, "memory", r), "text", "")) for r in found]
    if scanner is not None:
        texts = [t for t in texts if getattr(scanner.scan(t), "safe", False)]
    return [t for t in texts if t]


def _judged(steps: Iterable[Step]) -> list[Step]:
    """Steps judged by the critic itself (one per distinct state), with ground truth."""
    seen: set[str] = set()
    out = []
    for s in steps:
        if s.outcome is None or s.phi_source != "critic":
            continue
        fp = s.state_after.fingerprint()
        if fp not in seen:
            seen.add(fp)
            out.append(s)
    return out


def harvest_examples(
    result: TaskResult, *, tolerance: float = 0.15, corrections: bool = True, limit: int = 3
) -> list[tuple[str, dict[str, Any]]]:
    """Meta-rewarding: (text, meta) of the calibration examples a finished task yields, most
    informative first (corrections, then agreements), at most ``limit``."""
    agreed: list[tuple[str, dict[str, Any]]] = []
    corrected: list[tuple[str, dict[str, Any]]] = []
    for s in _judged(result.steps):
        assert s.outcome is not None
        gt = max(0.0, min(1.0, s.outcome))
        meta: dict[str, Any] = {
            "run_id": result.run_id,
            "step": s.index,
            "outcome": gt,
            "critic_phi": s.phi_after,
        }
        if abs(s.phi_after / 10.0 - gt) <= tolerance:
            why = f"(verified by ground truth {gt:.2f})"
            agreed.append(
                (
                    calibration_text(result.purpose, s.state_after, s.phi_after, why),
                    meta | {"source": "agreed", "label": s.phi_after},
                )
            )
        elif corrections:
            label = float(round(10 * gt))
            why = f"(ground truth {gt:.2f}; not {s.phi_after:g})"
            corrected.append(
                (
                    calibration_text(result.purpose, s.state_after, label, why),
                    meta | {"source": "corrected", "label": label},
                )
            )
    return (corrected + agreed)[:limit]


def store_examples(
    store: Any, examples: Sequence[tuple[str, dict[str, Any]]], trust: float = 0.3
) -> list[str]:
    """Add the examples as promoted, low-trust ``critic_calibration`` memories (scanned by the
    store); returns the ids stored. An unsafe one is kept rejected by the store and skipped."""
    ids = []
    for text, meta in examples:
        try:
            label = float(meta.get("label", meta.get("critic_phi", 0.0)))
            ids.append(
                store.add(
                    text,
                    KIND,
                    scope_key=label_key(label),
                    status="promoted",
                    made_by="hindsight",
                    trust=trust,
                    meta=meta,
                )
            )
        except ValueError:  # UnsafeMemoryError: stored as rejected, never reaches a prompt
            continue
    return ids
