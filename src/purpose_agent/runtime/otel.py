"""OpenTelemetry spans from the loop's events (extra ``otel``: ``opentelemetry-sdk``).

One span per run (``invoke_agent``), per step, per model call (``chat <model>``) and per tool
call (``execute_tool <name>``), with the GenAI semantic-convention attributes
(``gen_ai.operation.name``, ``gen_ai.system`` / ``gen_ai.provider.name``,
``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` / ``output_tokens``).

    from purpose_agent.runtime.otel import configure_otlp, instrument
    configure_otlp()          # an OTLP/HTTP exporter set by the standard OTEL_* variables
    instrument(orchestrator)  # or instrument(orchestrator, tracer_provider=provider)

Tracing is off until asked for. Spans are exported in the background by a batch processor, so
an unreachable collector never slows or breaks a run. Without the extra, asking for tracing
raises an ImportError (``MissingExtraError``) that names it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core import events as ev
from purpose_agent.errors import MissingExtraError

#: our provider names -> GenAI semantic-convention system names
SYSTEMS = {
    "openai": "openai",
    "groq": "groq",
    "deepseek": "deepseek",
    "mistral": "mistral_ai",
    "local": "llama.cpp",
    "local-server": "llama.cpp",
    "llamacpp": "llama.cpp",
    "ollama": "ollama",
    "vllm": "vllm",
}


def _sdk() -> Any:
    try:
        from opentelemetry import trace
        from opentelemetry.sdk import trace as sdk_trace
    except ImportError as exc:
        raise MissingExtraError("opentelemetry-sdk", "otel", "OpenTelemetry tracing") from exc
    return trace, sdk_trace


def _ns(t: float) -> int:
    return int(t * 1e9)


def model_attributes(model: str) -> dict[str, Any]:
    provider, sep, model_id = model.partition(":")
    system = SYSTEMS.get(provider, provider) if sep else model
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": system,
        "gen_ai.provider.name": system,
        "gen_ai.request.model": model_id if sep else model,
    }


@dataclass
class _RunSpans:
    run: Any
    step: Any = None
    step_index: int = -1
    actions: dict[int, tuple[str, float]] = field(default_factory=dict)


class Tracing:
    """The event listener that turns one orchestrator's events into spans."""

    def __init__(self, tracer: Any, trace_api: Any, tools: frozenset[str], agent: str) -> None:
        self._tracer = tracer
        self._trace = trace_api
        self._tools = tools
        self._agent = agent
        self._runs: dict[str, _RunSpans] = {}
        self.detach: Callable[[], None] = lambda: None

    def __call__(self, event: ev.Event) -> None:
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event)

    def _child(self, parent: Any, name: str, start: float, attributes: dict[str, Any]) -> Any:
        ctx = self._trace.set_span_in_context(parent)
        return self._tracer.start_span(name, context=ctx, start_time=_ns(start), attributes=attributes)

    def _on_task_start(self, e: ev.TaskStarted) -> None:
        attrs = {
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": self._agent,
            "gen_ai.request.model": e.actor_model,
            "purpose_agent.run_id": e.run_id,
            "purpose_agent.purpose": e.purpose[:500],
            "purpose_agent.mode": e.mode,
            "purpose_agent.critic_model": e.critic_model,
            "purpose_agent.max_steps": e.max_steps,
        }
        span = self._tracer.start_span(
            f"invoke_agent {self._agent}", start_time=_ns(e.time), attributes=attrs
        )
        self._runs[e.run_id] = _RunSpans(span)

    def _step_span(self, spans: _RunSpans, step: int, start: float) -> Any:
        if step <= 0:
            return spans.run
        if spans.step_index != step:
            if spans.step is not None:
                spans.step.end(end_time=_ns(start))
            spans.step = self._child(spans.run, f"step {step}", start, {"purpose_agent.step": step})
            spans.step_index = step
        return spans.step

    def _on_cost(self, e: ev.CostIncurred) -> None:
        spans = self._runs.get(e.run_id)
        if spans is None:
            return
        start = e.time - e.latency_s
        parent = self._step_span(spans, e.step, start)
        attrs = model_attributes(e.model)
        attrs |= {
            "gen_ai.usage.input_tokens": e.prompt_tokens,
            "gen_ai.usage.output_tokens": e.completion_tokens,
            "purpose_agent.role": e.role,
        }
        if e.usd is not None:
            attrs["purpose_agent.cost.usd"] = e.usd
        span = self._child(parent, f"chat {attrs['gen_ai.request.model']}", start, attrs)
        span.end(end_time=_ns(e.time))

    def _on_action(self, e: ev.ActionChosen) -> None:
        spans = self._runs.get(e.run_id)
        if spans is None:
            return
        step = self._step_span(spans, e.step, e.time)
        step.set_attribute("purpose_agent.action", e.name)
        step.set_attribute("purpose_agent.action_valid", e.valid)
        spans.actions[e.step] = (e.name, e.time)

    def _on_observation(self, e: ev.Observed) -> None:
        spans = self._runs.get(e.run_id)
        if spans is None:
            return
        name, start = spans.actions.pop(e.step, ("", e.time))
        if name in self._tools:
            attrs = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
            span = self._child(self._step_span(spans, e.step, start), f"execute_tool {name}", start, attrs)
            span.end(end_time=_ns(e.time))

    def _on_score(self, e: ev.Scored) -> None:
        spans = self._runs.get(e.run_id)
        if spans is None:
            return
        step = self._step_span(spans, e.step, e.time)
        step.set_attribute("purpose_agent.phi_before", e.phi_before)
        step.set_attribute("purpose_agent.phi_after", e.phi_after)
        step.set_attribute("purpose_agent.phi_source", e.source)

    def _on_error(self, e: ev.ErrorRaised) -> None:
        spans = self._runs.get(e.run_id)
        if spans is None:
            return
        span = spans.step or spans.run
        span.add_event("error", {"purpose_agent.where": e.where, "message": e.message[:1000]})

    def _on_task_end(self, e: ev.TaskEnded) -> None:
        spans = self._runs.pop(e.run_id, None)
        if spans is None:
            return
        if spans.step is not None:
            spans.step.end(end_time=_ns(e.time))
        run = spans.run
        run.set_attribute("purpose_agent.success", e.success)
        run.set_attribute("purpose_agent.final_phi", e.final_phi)
        run.set_attribute("purpose_agent.steps", e.steps)
        run.set_attribute("purpose_agent.stop_reason", e.stop_reason)
        if e.stop_reason.startswith(("error", "cancelled", "interrupted")):
            run.set_status(self._trace.Status(self._trace.StatusCode.ERROR, e.stop_reason))
        run.end(end_time=_ns(e.time))


def instrument(orchestrator: Any, *, tracer_provider: Any = None, agent: str = "") -> Tracing:
    """Emit spans for every run of ``orchestrator`` to ``tracer_provider`` (default: the global
    one, e.g. set by ``configure_otlp``). Returns the listener; ``.detach()`` stops it."""
    trace_api, _ = _sdk()
    provider = tracer_provider or trace_api.get_tracer_provider()
    tracer = provider.get_tracer("purpose_agent")
    tools = frozenset(getattr(orchestrator, "tools", {}) or {})
    name = agent or getattr(getattr(orchestrator, "llm", None), "name", "") or "agent"
    tracing = Tracing(tracer, trace_api, tools, name)
    tracing.detach = orchestrator.bus.subscribe(tracing)
    return tracing


def configure_otlp(*, service_name: str | None = None, set_global: bool = True) -> Any:
    """A TracerProvider exporting over OTLP/HTTP in the background (BatchSpanProcessor), set by
    the standard variables: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``),
    ``OTEL_EXPORTER_OTLP_HEADERS``, ``OTEL_EXPORTER_OTLP_TIMEOUT``, ``OTEL_SERVICE_NAME``.
    Call ``provider.shutdown()`` at exit to flush (bounded by the exporter timeout)."""
    trace_api, sdk_trace = _sdk()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise MissingExtraError("opentelemetry-exporter-otlp-proto-http", "otel", "OTLP export") from exc
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = service_name or os.environ.get("OTEL_SERVICE_NAME") or "purpose-agent"
    provider = sdk_trace.TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if set_global:
        trace_api.set_tracer_provider(provider)
    return provider
