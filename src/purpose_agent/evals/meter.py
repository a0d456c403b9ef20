"""A metering wrapper around a model: every call (actor, critic, distiller, reflection,
validation replay) is counted, so cost per point gained includes the learning overhead."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.models.base import Backend, Completion, Message, Usage, run_sync


@dataclass(frozen=True)
class Meter:
    """Totals at one moment; subtract two to get the cost of what happened between them."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_time_s: float = 0.0

    def __sub__(self, other: Meter) -> Meter:
        return Meter(
            self.calls - other.calls,
            self.prompt_tokens - other.prompt_tokens,
            self.completion_tokens - other.completion_tokens,
            self.model_time_s - other.model_time_s,
        )

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class MeteredBackend:
    """Wraps a Backend; ``meter`` reads the running totals. Other attributes (``reseed``,
    ``count_tokens``, ...) pass through to the wrapped model."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self._lock = threading.Lock()
        self._usage = Usage(calls=0)
        self._time = 0.0

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (a copy being built): no recursion through __getattr__
            raise AttributeError(attr)
        return getattr(self.inner, attr)

    def __reduce__(self) -> tuple[Any, ...]:
        """A copy (a Ray worker's) wraps a copy of the model with its own meter, from zero."""
        return (MeteredBackend, (self.inner,))

    def absorb(self, spent: Meter) -> None:
        """Add what a copy of this model spent elsewhere (a Ray worker's copy, which starts
        from zero) to this meter."""
        with self._lock:
            usage = Usage(spent.prompt_tokens, spent.completion_tokens, None, spent.calls)
            self._usage = self._usage + usage
            self._time += spent.model_time_s

    @property
    def meter(self) -> Meter:
        with self._lock:
            u = self._usage
            return Meter(u.calls, u.prompt_tokens, u.completion_tokens, self._time)

    async def acomplete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        t0 = time.perf_counter()
        completion = await self.inner.acomplete(
            messages, schema, max_tokens=max_tokens, temperature=temperature
        )
        with self._lock:
            self._usage = self._usage + completion.usage
            self._time += time.perf_counter() - t0
        return completion

    def astream(
        self, messages: Sequence[Message], *, max_tokens: int = 512, temperature: float = 0.0
    ) -> AsyncIterator[str]:
        return self.inner.astream(messages, max_tokens=max_tokens, temperature=temperature)

    def complete(
        self,
        messages: Sequence[Message],
        schema: Mapping[str, Any] | None = None,
        *,
        max_tokens: int = 512,
        temperature: float = 0.0,
    ) -> Completion:
        return run_sync(
            lambda: self.acomplete(messages, schema, max_tokens=max_tokens, temperature=temperature)
        )


def reseed(llm: Any, seed: int) -> None:
    """Reset the model's sampling seed when it has one (local models); a no-op otherwise."""
    fn = getattr(llm, "reseed", None)
    if callable(fn):
        fn(seed)
