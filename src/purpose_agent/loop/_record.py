"""Recording a run (step 5 of the loop): every event goes to the run's JSONL trace, the
engine's listeners and the run's own streaming listener; model tokens stream while a
listener wants them; a cancelled run still records its end and closes its trace."""

from __future__ import annotations

import asyncio
import time
from contextlib import AbstractContextManager, nullcontext

from purpose_agent.core import events as ev
from purpose_agent.loop._run import Run
from purpose_agent.models.base import TokenChunk, stream_tokens


class Recording:
    """The engine's event plumbing (a base of ``Engine``)."""

    bus: ev.EventBus
    #: per-run listeners claimed from ``ev.listen_to_next_run`` (run_task_stream), by run id
    _run_listeners: dict[str, ev.Listener]

    def _emit(self, run: Run, event: ev.Event) -> None:
        object.__setattr__(event, "run_id", run.run_id)
        # the run's own file: only its events, whatever else runs; tokens are left out (the
        # action and score events record the replies)
        if run.trace is not None and not isinstance(event, ev.TokenStreamed):
            try:
                run.trace(event)
            except Exception as exc:  # a full disk must not sink the run
                self.bus.record_error(run.trace, exc)
        self.bus.emit(event)
        listener = self._run_listeners.get(run.run_id)
        if listener is not None:
            try:
                listener(event)
            except Exception as exc:
                self.bus.record_error(listener, exc)

    def _tokens(self, run: Run, step: int, role: str) -> AbstractContextManager[None]:
        """Model calls stream while a run has a streaming listener (``run_task_stream``): its
        chunks become ``TokenStreamed`` events when the listener wants tokens, and a streamed
        call stops at the next token when the run is cancelled."""
        listener = self._run_listeners.get(run.run_id)
        if listener is None:
            return nullcontext()
        wants = bool(getattr(listener, "tokens", False))

        def sink(chunk: TokenChunk) -> None:
            if wants:
                self._emit(
                    run,
                    ev.TokenStreamed(
                        text=chunk.text, step=step, role=role, model=chunk.model, attempt=chunk.attempt
                    ),
                )

        return stream_tokens(sink)

    def _abort(self, run: Run, exc: BaseException) -> None:
        """A run cancelled (or interrupted) mid-way: record its end, close its trace."""
        reason = (
            "cancelled" if isinstance(exc, asyncio.CancelledError) else f"interrupted: {type(exc).__name__}"
        )
        try:
            self._emit(
                run,
                ev.TaskEnded(
                    success=False,
                    final_phi=run.phi,
                    steps=len(run.steps),
                    outcome=run.outcome,
                    stop_reason=reason,
                    wall_time_s=time.perf_counter() - run.started,
                ),
            )
        finally:
            self._run_listeners.pop(run.run_id, None)
            if run.trace is not None:
                run.trace.close()
