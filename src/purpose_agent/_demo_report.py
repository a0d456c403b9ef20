"""What the learning demo prints and returns (``purpose_agent.demo``): a play, a lesson and
the demo's report, the step printer, the gate lines, the lessons by status, the before/after
table."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from purpose_agent.core import events as ev
from purpose_agent.core.types import TaskResult
from purpose_agent.memory.events import MemoryGated
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus

Out = Callable[[str], None]


@dataclass(frozen=True)
class Play:
    """One printed run: what it did and what it cost."""

    label: str
    game: str
    success: bool
    outcome: float | None
    steps: int
    calls: int
    seconds: float
    stop: str
    memory_ids: tuple[str, ...] = ()

    @classmethod
    def of(cls, label: str, game: str, result: TaskResult) -> Play:
        return cls(
            label,
            game,
            result.success,
            result.outcome,
            len(result.steps),
            result.usage.calls,
            result.wall_time_s,
            result.stop_reason,
            tuple(result.memory_ids),
        )


@dataclass(frozen=True)
class Lesson:
    """A memory the learning phase wrote, with the gate's numbers for it."""

    id: str
    kind: str
    status: str
    text: str
    pairs: int = 0
    wins: int = 0
    losses: int = 0
    ties: int = 0
    gain: float | None = None
    p_value: float | None = None
    runs: int = 0
    calls: int = 0
    seconds: float = 0.0
    gates: int = 0
    reason: str = ""


@dataclass
class DemoReport:
    """What the learning demo did (returned by :func:`run_learning_demo`)."""

    store_path: Path
    before: Play | None = None
    training: list[Play] = field(default_factory=list)
    after: Play | None = None
    lessons: list[Lesson] = field(default_factory=list)
    test_writes: list[str] = field(default_factory=list)  # files an EVAL_TEST play changed
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def promoted(self) -> list[Lesson]:
        return [x for x in self.lessons if x.status == MemoryStatus.PROMOTED.value]

    @property
    def verdict(self) -> str:
        b, a = self.before, self.after
        if b is None or a is None:
            return "incomplete"
        if not a.memory_ids:
            return "no lesson reached the after-play's prompt (nothing was promoted), so it could not change"
        bo, ao = b.outcome or 0.0, a.outcome or 0.0
        if a.success and not b.success:
            return "learning helped: the held-out game went from failed to solved"
        if ao > bo + 1e-9:
            return f"learning helped partly: the score rose from {bo:.2f} to {ao:.2f}, the game is not solved"
        if ao < bo - 1e-9 or (b.success and not a.success):
            return f"learning made it worse on this game: the score fell from {bo:.2f} to {ao:.2f}"
        if a.success and a.steps < b.steps:
            return f"solved both times; with the lessons in {a.steps} steps instead of {b.steps}"
        return "learning did not change the result on this game"


def file_digests(path: Path) -> dict[str, str]:
    """sha256 of the store file and of its write-ahead log (a missing log counts as empty).
    The ``-shm`` file is left out: it is SQLite's shared-memory index, which readers create
    and maintain, not stored data."""
    out = {}
    for suffix in ("", "-wal"):
        p = Path(str(path) + suffix)
        out[p.name] = hashlib.sha256(p.read_bytes() if p.exists() else b"").hexdigest()
    return out


def short(text: str, n: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _first_sentence(observation: str) -> str:
    lines = [ln for ln in observation.splitlines() if ln.strip() and not ln.startswith(("Score:", "NOTE:"))]
    return lines[0] if lines else ""


class StepPrinter:
    """One line per step: the action, what the game said, and the ground-truth score."""

    def __init__(self, out: Out, kinds: Callable[[str], str]) -> None:
        self.out = out
        self.kinds = kinds
        self.action = ""
        self.observation = ""

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.MemoryIncluded) and event.step == 0 and event.ids:
            shown = ", ".join(f"{mid} ({self.kinds(mid)})" for mid in event.ids)
            self.out(f"  memories in the prompt: {shown}")
        elif isinstance(event, ev.ActionChosen):
            self.action = event.name + (f" {event.params}" if event.params else "")
            if not event.valid:
                self.action += " [invalid reply]"
        elif isinstance(event, ev.Observed):
            self.observation = _first_sentence(event.observation)
        elif isinstance(event, ev.Scored):
            score = f"score {event.outcome:.2f}" if event.outcome is not None else f"Φ {event.phi_after:.1f}"
            self.out(
                f"  {event.step:>2}. {short(self.action, 36):<36} → {short(self.observation, 58)}  [{score}]"
            )


def end_line(play: Play) -> str:
    verdict = "SOLVED" if play.success else "NOT SOLVED"
    score = f"score {play.outcome:.2f}" if play.outcome is not None else "no ground truth"
    return (
        f"  {verdict} in {play.steps} steps, {score} (stop: {play.stop}; "
        f"{play.calls} model calls, {play.seconds:.1f}s)"
    )


def header(out: Out, text: str) -> None:
    out("")
    out(f"== {text} " + "=" * max(3, 86 - len(text)))


class Collector:
    """The learning events of the training runs."""

    def __init__(self) -> None:
        self.candidates: list[ev.CandidateProposed] = []
        self.gated: list[MemoryGated] = []
        self.errors: list[ev.ErrorRaised] = []

    def __call__(self, event: ev.Event) -> None:
        if isinstance(event, ev.CandidateProposed):
            self.candidates.append(event)
        elif isinstance(event, MemoryGated):
            self.gated.append(event)
        elif isinstance(event, ev.ErrorRaised):
            self.errors.append(event)


def gate_line(g: MemoryGated) -> str:
    p = f", p={g.p_value:.3f}" if g.p_value is not None else ""
    gain = f", gain {g.gain:+.2f}" if g.gain is not None else ""
    calls = "?" if g.calls is None else str(g.calls)
    shared = f", {g.baseline_reused} shared baselines" if g.baseline_reused else ""
    decided = {"promoted": "PROMOTED", "rejected": "REJECTED", "deferred": "kept quarantined"}.get(
        g.action, g.action
    )
    if not g.pairs and not g.new_pairs:
        return f"    {g.memory_id}: {decided} ({short(g.reason, 110)})"
    return (
        f"    {g.memory_id}: {decided} after {g.pairs} paired units ({g.new_pairs} new): "
        f"{g.wins} wins / {g.losses} losses / {g.ties} ties{p}{gain}; "
        f"this gate: {g.runs} runs, {calls} calls, {g.seconds:.1f}s{shared}"
    )


def lessons_of(store: MemoryStore, gated: Sequence[MemoryGated]) -> list[Lesson]:
    """Every memory in the store, with its latest gate numbers and its summed gate cost."""
    out = []
    for m in store.list():
        mine = [g for g in gated if g.memory_id == m.id]
        history = store.history(m.id)
        row = Lesson(m.id, m.kind.value, m.status.value, m.text, reason=history[-1].reason if history else "")
        if mine:
            g = mine[-1]  # its tallies are over every paired unit so far
            row = replace(
                row,
                pairs=g.pairs,
                wins=g.wins,
                losses=g.losses,
                ties=g.ties,
                gain=g.gain,
                p_value=g.p_value,
                runs=sum(x.runs for x in mine),
                calls=sum(x.calls or 0 for x in mine),
                seconds=sum(x.seconds for x in mine),
                gates=len(mine),
            )
        out.append(row)
    return out


_STATUS_TITLES = (
    (MemoryStatus.PROMOTED, "promoted (these enter prompts)"),
    (MemoryStatus.QUARANTINED, "quarantined (no evidence either way yet; never in a prompt)"),
    (MemoryStatus.CANDIDATE, "candidates not gated yet (never in a prompt)"),
    (MemoryStatus.REJECTED, "rejected (kept for audit; never in a prompt)"),
    (MemoryStatus.ARCHIVED, "archived (superseded, or kept only as evidence for procedures)"),
)


def print_lessons(out: Out, lessons: Sequence[Lesson]) -> None:
    if not lessons:
        out("  no lessons were written")
        return
    for status, title in _STATUS_TITLES:
        rows = [x for x in lessons if x.status == status.value]
        if not rows:
            continue
        out(f"  {title}:")
        for x in rows:
            out(f"    {x.id} [{x.kind}] {short(x.text, 96)}")
            if x.gates:
                p = f", p={x.p_value:.3f}" if x.p_value is not None else ""
                gain = f", gain {x.gain:+.2f}" if x.gain is not None else ""
                out(
                    f"        gate: {x.wins} wins / {x.losses} losses / {x.ties} ties over {x.pairs} "
                    f"paired units{p}{gain}; cost {x.runs} runs, {x.calls} calls, {x.seconds:.1f}s "
                    f"in {x.gates} gate(s)"
                )
            elif status is MemoryStatus.REJECTED and x.reason:
                out(f"        {short(x.reason, 110)}")


def table(out: Out, rows: Sequence[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    w2 = max(len(r[2]) for r in rows)
    for i, (a, b, c) in enumerate(rows):
        out(f"  | {a:<{w0}} | {b:<{w1}} | {c:<{w2}} |")
        if i == 0:
            out(f"  |{'-' * (w0 + 2)}|{'-' * (w1 + 2)}|{'-' * (w2 + 2)}|")


def play_row(p: Play | None, what: str) -> str:
    if p is None:
        return "-"
    return {
        "success": "yes" if p.success else "no",
        "score": f"{p.outcome:.2f}" if p.outcome is not None else "-",
        "steps": str(p.steps),
        "calls": str(p.calls),
        "seconds": f"{p.seconds:.1f}",
        "memories": str(len(p.memory_ids)),
    }[what]
