"""Cost: tokens and USD per model call, totals per agent, run and team.

Prices come from the maintained ``genai-prices`` table (extra ``cost``), never from a
hand-written dict. Local models (the embedded llama.cpp, a llama.cpp server, Ollama or vLLM on
this machine) cost 0. A model the table does not know gets its tokens counted and ``usd=None``
("price unknown"): a total that includes such a call is unknown too, never a wrong number.

    tracker = CostTracker()
    tracker.attach(orchestrator, agent="coder")   # or Orchestrator(..., listeners=[tracker])
    orchestrator.run_task("...")
    print(tracker.total())          # the team: every run of every attached agent
    tracker.by_agent()["coder"]     # a CostSummary
    tracker.run(result.run_id)      # one run
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.models.pricing import UNKNOWN, Price, price_call

__all__ = ["CallCost", "CostSummary", "CostTracker", "Price", "price_call"]


# ----------------------------------------------------------------------------- summaries
@dataclass(frozen=True, slots=True)
class CostSummary:
    """Totals over some calls. ``usd`` is None when any call's price is unknown
    (``unpriced_calls``); ``known_usd`` is then the sum of the priced calls only."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    known_usd: float = 0.0
    unpriced_calls: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def usd(self) -> float | None:
        return None if self.unpriced_calls else self.known_usd

    def __add__(self, other: CostSummary) -> CostSummary:
        return CostSummary(
            self.calls + other.calls,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.known_usd + other.known_usd,
            self.unpriced_calls + other.unpriced_calls,
        )

    def __str__(self) -> str:
        tokens = f"{self.tokens:,} tokens ({self.prompt_tokens:,} in, {self.completion_tokens:,} out)"
        calls = f"{self.calls} call{'s' if self.calls != 1 else ''}"
        if self.usd is not None:
            return f"{calls}, {tokens}, ${self.usd:.6f}"
        known = f"; ${self.known_usd:.6f} for the rest" if self.unpriced_calls < self.calls else ""
        return f"{calls}, {tokens}, {UNKNOWN} for {self.unpriced_calls}{known}"

    @classmethod
    def of(cls, events: Iterable[ev.Event | Mapping[str, Any]]) -> CostSummary:
        """Totals of the ``cost`` events among ``events`` (Event objects, or the dicts of
        ``read_trace``), e.g. for ``RunResult.cost``."""
        total = cls()
        for e in events:
            d = e.to_dict() if isinstance(e, ev.Event) else e
            if d.get("kind") == "cost":
                total = total + _one(d.get("prompt_tokens", 0), d.get("completion_tokens", 0), d.get("usd"))
        return total


def _one(prompt_tokens: int, completion_tokens: int, usd: float | None) -> CostSummary:
    return CostSummary(1, int(prompt_tokens), int(completion_tokens), float(usd or 0.0), int(usd is None))


@dataclass(frozen=True, slots=True)
class CallCost:
    """One model call as the tracker recorded it."""

    agent: str
    run_id: str
    role: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    usd: float | None
    price_source: str


class CostTracker:
    """Collects the ``cost`` event of every model call; totals per agent, run and team.

    A tracker is an event listener: pass it as ``Orchestrator(..., listeners=[tracker])`` or
    ``tracker.attach(orchestrator, agent="name")`` (one tracker for the whole team gives the
    team total). Calls outside a loop can be added with ``record``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: list[CallCost] = []

    def attach(self, orchestrator: Any, agent: str = "") -> Callable[[], None]:
        """Listen to ``orchestrator``'s events, its calls counted under ``agent``; returns a
        function that detaches it."""
        name = agent or getattr(getattr(orchestrator, "llm", None), "name", "") or "agent"
        unsubscribe: Callable[[], None] = orchestrator.bus.subscribe(lambda e: self._on(e, name))
        return unsubscribe

    def __call__(self, event: ev.Event) -> None:
        self._on(event, "")

    def _on(self, event: ev.Event, agent: str) -> None:
        if isinstance(event, ev.CostIncurred):
            usd = event.usd
            source = event.price_source
            if not source:  # an event from elsewhere: price it here
                price = price_call(event.model, event.prompt_tokens, event.completion_tokens)
                usd, source = price.usd, price.source
            self._add(
                CallCost(
                    agent,
                    event.run_id,
                    event.role,
                    event.model,
                    event.prompt_tokens,
                    event.completion_tokens,
                    usd,
                    source,
                )
            )

    def record(
        self,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        *,
        agent: str = "",
        run_id: str = "",
        role: str = "",
        backend: Any = None,
    ) -> CallCost:
        """Count a call made outside a loop (e.g. a direct ``backend.complete``)."""
        price = price_call(model, prompt_tokens, completion_tokens, backend=backend)
        call = CallCost(agent, run_id, role, model, prompt_tokens, completion_tokens, price.usd, price.source)
        self._add(call)
        return call

    def _add(self, call: CallCost) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def calls(self) -> list[CallCost]:
        with self._lock:
            return list(self._calls)

    def _sum(self, keep: Callable[[CallCost], bool] = lambda c: True) -> CostSummary:
        total = CostSummary()
        for c in self.calls:
            if keep(c):
                total = total + _one(c.prompt_tokens, c.completion_tokens, c.usd)
        return total

    def total(self) -> CostSummary:
        """Everything this tracker saw (the team, when every agent is attached)."""
        return self._sum()

    def run(self, run_id: str) -> CostSummary:
        return self._sum(lambda c: c.run_id == run_id)

    def agent(self, name: str) -> CostSummary:
        return self._sum(lambda c: c.agent == name)

    def by_agent(self) -> dict[str, CostSummary]:
        return {name: self.agent(name) for name in dict.fromkeys(c.agent for c in self.calls)}

    def by_run(self) -> dict[str, CostSummary]:
        return {rid: self.run(rid) for rid in dict.fromkeys(c.run_id for c in self.calls)}

    def by_model(self) -> dict[str, CostSummary]:
        out: dict[str, CostSummary] = {}
        for c in self.calls:
            out[c.model] = out.get(c.model, CostSummary()) + _one(c.prompt_tokens, c.completion_tokens, c.usd)
        return out

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
