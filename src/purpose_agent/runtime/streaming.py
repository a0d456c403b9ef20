"""``AsyncOrchestrator(orch).run_task_stream(purpose)``: the typed events of one run as an async
iterator, model tokens included (``TokenStreamed``), as the run makes them.

    async with AsyncOrchestrator(orch).run_task_stream("sum 2 and 3") as events:
        async for event in events:
            if event.kind == "token":
                print(event.text, end="")
    events.result  # the TaskResult

- Tokens come from real streaming on every backend (llama.cpp in-process, OpenAI-compatible
  SSE, Ollama NDJSON), constrained as usual; the completion is the chunks joined.
- Leaving the iteration early (``break`` then ``aclose()``, ``async with``, or cancelling
  the consuming task) cancels the run and waits for it: the trace ends with a ``task_end``
  event with stop reason ``cancelled`` and is closed, a local model stops at the next token
  (its worker thread is joined, its context stays usable), an HTTP stream is closed.
- A failure mid-run is an ``error`` event followed by ``task_end``; the iteration then ends
  normally with ``result`` (the partial result) and ``error`` set. Nothing is retried after a
  token was sent, so no token is sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.core.types import State, TaskResult
from purpose_agent.errors import RunFailedError
from purpose_agent.loop.orchestrator import Orchestrator

_END = object()


class _QueueListener:
    """The run's listener: every event into the stream's queue (tokens only when wanted)."""

    def __init__(self, queue: asyncio.Queue[Any], tokens: bool) -> None:
        self.queue = queue
        self.tokens = tokens

    def __call__(self, event: ev.Event) -> None:
        self.queue.put_nowait(event)


class EventStream:
    """The events of one run (an async iterator and async context manager). After the
    iteration: ``result`` (the TaskResult, partial after a failure) and ``error``."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        purpose: str,
        initial_state: State | None,
        max_steps: int,
        tokens: bool,
    ) -> None:
        self.result: TaskResult | None = None
        self.error: BaseException | None = None
        self._gen = self._events(orchestrator, purpose, initial_state, max_steps, tokens)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> ev.Event:
        return await self._gen.__anext__()

    async def aclose(self) -> None:
        """Stop the run (if still going) and wait until it has wound down."""
        await self._gen.aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _events(
        self,
        orch: Orchestrator,
        purpose: str,
        initial_state: State | None,
        max_steps: int,
        tokens: bool,
    ) -> AsyncGenerator[ev.Event, None]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        listener = _QueueListener(queue, tokens)

        async def run() -> TaskResult:
            ev.listen_to_next_run(listener)  # in this task's own context only
            return await orch.arun_task(purpose, initial_state, max_steps)

        task = asyncio.create_task(run(), name=f"run_task_stream: {purpose[:40]}")
        task.add_done_callback(lambda _t: queue.put_nowait(_END))
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                yield item
            try:
                self.result = task.result()
            except RunFailedError as exc:  # the error event and task_end were streamed
                self.result = exc.result if isinstance(exc.result, TaskResult) else None
                self.error = exc
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})  # the run closes its trace and stops its model call
                if not task.cancelled() and task.exception() is None:
                    self.result = task.result()


class AsyncOrchestrator:
    """The async face of an ``Orchestrator``: ``run_task_stream`` and ``arun_task``."""

    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orchestrator = orchestrator

    def run_task_stream(
        self,
        purpose: str,
        initial_state: State | None = None,
        max_steps: int = 20,
        *,
        tokens: bool = True,
    ) -> EventStream:
        """The run's events as they happen; ``tokens=False`` leaves out ``TokenStreamed``."""
        return EventStream(self.orchestrator, purpose, initial_state, max_steps, tokens)

    async def arun_task(
        self, purpose: str, initial_state: State | None = None, max_steps: int = 20
    ) -> TaskResult:
        return await self.orchestrator.arun_task(purpose, initial_state, max_steps)

    def __getattr__(self, name: str) -> Any:  # status(), memory, bus, ... of the orchestrator
        if name == "orchestrator":
            raise AttributeError(name)
        return getattr(self.orchestrator, name)
