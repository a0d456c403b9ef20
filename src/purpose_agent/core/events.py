"""Typed events. One stream feeds the JSONL trace, callbacks, streaming and cost tracking."""

from __future__ import annotations

import contextvars
import dataclasses
import json
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

TRACE_DIR_ENV = "PURPOSE_AGENT_TRACE_DIR"


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: str
    run_id: str = ""
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class TaskStarted(Event):
    kind: Literal["task_start"] = "task_start"
    purpose: str = ""
    mode: str = ""
    actor_model: str = ""
    critic_model: str = ""
    max_steps: int = 0


@dataclass(frozen=True, kw_only=True)
class ActionChosen(Event):
    kind: Literal["action"] = "action"
    step: int = 0
    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    thought: str = ""
    valid: bool = True


@dataclass(frozen=True, kw_only=True)
class Observed(Event):
    kind: Literal["observation"] = "observation"
    step: int = 0
    observation: str = ""
    state_hash: str = ""


@dataclass(frozen=True, kw_only=True)
class Scored(Event):
    kind: Literal["score"] = "score"
    step: int = 0
    phi_before: float = 0.0
    phi_after: float = 0.0
    delta: float = 0.0
    evidence: str = ""
    confidence: float = 1.0
    source: str = "critic"
    outcome: float | None = None
    anomalies: tuple[str, ...] = ()
    weight: float = 1.0  # trust in this Φ after confidence and anomalies


@dataclass(frozen=True, kw_only=True)
class MemoryIncluded(Event):
    kind: Literal["memory_included"] = "memory_included"
    step: int = 0
    ids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class CandidateProposed(Event):
    kind: Literal["candidate"] = "candidate"
    memory_id: str = ""
    memory_kind: str = ""
    text: str = ""


@dataclass(frozen=True, kw_only=True)
class MemoryDecided(Event):
    kind: Literal["promoted", "rejected"] = "promoted"
    memory_id: str = ""
    reason: str = ""


@dataclass(frozen=True, kw_only=True)
class TokenStreamed(Event):
    """A chunk of a model reply as it streams (``run_task_stream``). ``role`` is the caller
    (actor, critic), ``attempt`` 2 the repair retry of an unusable reply. Not written to the
    trace: the action and score events record the replies."""

    kind: Literal["token"] = "token"
    text: str = ""
    step: int = 0
    role: str = ""
    model: str = ""
    attempt: int = 1


@dataclass(frozen=True, kw_only=True)
class CostIncurred(Event):
    kind: Literal["cost"] = "cost"
    role: str = ""
    model: str = ""
    step: int = 0  # 0: the initial scoring
    prompt_tokens: int = 0
    completion_tokens: int = 0
    processed_prompt_tokens: int | None = None
    latency_s: float = 0.0
    usd: float | None = None  # None: price unknown (never a guess); 0.0 for local models
    price_source: str = ""  # where usd came from: "local", "genai-prices", or why it is unknown


@dataclass(frozen=True, kw_only=True)
class TaskEnded(Event):
    kind: Literal["task_end"] = "task_end"
    success: bool = False
    final_phi: float = 0.0
    steps: int = 0
    outcome: float | None = None
    stop_reason: str = ""
    wall_time_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class ErrorRaised(Event):
    kind: Literal["error"] = "error"
    where: str = ""
    message: str = ""


Listener = Callable[[Event], None]

_RUN_LISTENER: contextvars.ContextVar[Listener | None] = contextvars.ContextVar(
    "purpose_agent_run_listener", default=None
)


def listen_to_next_run(listener: Listener | None) -> contextvars.Token[Listener | None]:
    """The next run started in this context (and only that run, not the runs it starts, such
    as validation replays) sends its events to ``listener`` too (``run_task_stream``)."""
    return _RUN_LISTENER.set(listener)


def claim_run_listener() -> Listener | None:
    """Called by a run as it starts: takes the listener set by ``listen_to_next_run``."""
    listener = _RUN_LISTENER.get()
    if listener is not None:
        _RUN_LISTENER.set(None)
    return listener


class EventBus:
    """Fan-out of events to listeners. A failing listener never breaks the run.

    ``errors`` keeps the last ``max_errors`` listener failures (a deque, so a listener that
    fails on every event cannot grow memory without bound); ``error_count`` counts them all.
    """

    def __init__(self, max_errors: int = 100) -> None:
        self._listeners: list[Listener] = []
        self.errors: deque[str] = deque(maxlen=max_errors)
        self.error_count = 0

    def __len__(self) -> int:
        """The number of subscribed listeners."""
        return len(self._listeners)

    def record_error(self, source: object, exc: BaseException) -> None:
        """Note a failure of a listener (or of a trace writer) without raising."""
        self.error_count += 1
        self.errors.append(f"{getattr(source, '__name__', source)!r}: {exc!r}")

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def emit(self, event: Event) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception as exc:  # a callback bug must not sink the run
                self.record_error(listener, exc)


def default_trace_dir() -> Path:
    return Path(os.environ.get(TRACE_DIR_ENV, ".purpose_agent/traces"))


class JsonlTrace:
    """Append-only JSONL trace, one file per run, one event per line, flushed as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._fh = path.open("a", encoding="utf-8")

    def __call__(self, event: Event) -> None:
        line = json.dumps(event.to_dict(), ensure_ascii=False, default=str)
        with self._lock:
            if self._fh.closed:
                return
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_trace(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The events of a trace file (a torn last line from a crash is skipped)."""
    out: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out
