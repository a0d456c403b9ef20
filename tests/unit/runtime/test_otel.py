"""OpenTelemetry: spans per run, step, model call and tool call with GenAI attributes (SDK
in-memory exporter); a missing extra is a clear ImportError; a dead collector costs nothing."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import purpose_agent as pa
from purpose_agent.errors import MissingExtraError
from purpose_agent.models.base import Message
from purpose_agent.runtime import otel


def _critic() -> pa.FunctionModel:
    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        done = "answer" in messages[-1].content.split("STATE TO SCORE:")[-1]
        return {"evidence": "e", "reason": "r", "score": 10 if done else 3, "confidence": "high"}

    return pa.FunctionModel(fn, name="ollama:qwen3:1.7b")


def _orchestrator() -> pa.Orchestrator:
    actor = pa.ScriptedModel(
        [
            {"thought": "compute", "action": "calculator", "params": {"expression": "2+3"}},
            {"thought": "done", "action": "DONE", "params": {"answer": "5"}},
        ],
        name="openai:gpt-4o-mini",
    )
    return pa.Orchestrator(actor, pa.SimpleEnvironment(), [pa.CalculatorTool()], critic_llm=_critic())


def test_spans_per_run_step_model_call_and_tool_call_with_genai_attributes() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    orch = _orchestrator()
    otel.instrument(orch, tracer_provider=provider, agent="calc-agent")
    result = orch.run_task("What is 2 + 3?", max_steps=4)
    assert result.success
    spans = {s.name: s for s in exporter.get_finished_spans()}
    names = [s.name for s in exporter.get_finished_spans()]
    run = spans["invoke_agent calc-agent"]
    assert run.parent is None and run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["purpose_agent.run_id"] == result.run_id and run.attributes["purpose_agent.success"]
    assert names.count("step 1") == 1 and names.count("step 2") == 1
    steps = [s for s in exporter.get_finished_spans() if s.name.startswith("step ")]
    assert all(s.parent.span_id == run.context.span_id for s in steps)
    assert steps[0].attributes["purpose_agent.action"] == "calculator"

    chats = [s for s in exporter.get_finished_spans() if s.name.startswith("chat ")]
    assert len(chats) == result.usage.calls == 5  # critic s0, then actor + critic per step
    actor_calls = [s for s in chats if s.attributes["purpose_agent.role"] == "actor"]
    a = actor_calls[0]
    assert a.name == "chat gpt-4o-mini" and a.attributes["gen_ai.system"] == "openai"
    assert (
        a.attributes["gen_ai.request.model"] == "gpt-4o-mini"
        and a.attributes["gen_ai.operation.name"] == "chat"
    )
    assert a.parent.span_id == steps[0].context.span_id
    critic_calls = [s for s in chats if s.attributes["purpose_agent.role"] == "critic"]
    assert critic_calls[0].attributes["gen_ai.system"] == "ollama"
    assert critic_calls[0].attributes["gen_ai.request.model"] == "qwen3:1.7b"
    assert critic_calls[0].parent.span_id == run.context.span_id  # Φ(s0): before any step
    assert sum(s.attributes["gen_ai.usage.input_tokens"] for s in chats) == result.usage.prompt_tokens
    assert sum(s.attributes["gen_ai.usage.output_tokens"] for s in chats) == result.usage.completion_tokens
    assert a.attributes["purpose_agent.cost.usd"] > 0

    tool = spans["execute_tool calculator"]
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "calculator"
    assert tool.parent.span_id == steps[0].context.span_id
    for s in exporter.get_finished_spans():  # children inside their parents
        assert s.start_time <= s.end_time
        if s is not run:
            assert run.start_time <= s.start_time and s.end_time <= run.end_time


def test_detach_stops_tracing() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    orch = _orchestrator()
    otel.instrument(orch, tracer_provider=provider).detach()
    orch.run_task("What is 2 + 3?", max_steps=4)
    assert exporter.get_finished_spans() == ()


def test_without_the_extra_asking_for_tracing_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    with pytest.raises(ImportError, match=r"purpose-agent\[otel\]") as info:
        otel.instrument(_orchestrator())
    assert isinstance(info.value, MissingExtraError) and info.value.extra == "otel"
    with pytest.raises(ImportError, match=r"purpose-agent\[otel\]"):
        otel.configure_otlp(set_global=False)


def test_an_unreachable_collector_never_slows_or_breaks_a_run(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")
    provider = otel.configure_otlp(set_global=False, service_name="pa-test")
    baseline = _orchestrator()
    t0 = time.monotonic()
    assert baseline.run_task("What is 2 + 3?", max_steps=4).success
    plain = time.monotonic() - t0
    traced = _orchestrator()
    otel.instrument(traced, tracer_provider=provider)
    t0 = time.monotonic()
    for _ in range(3):
        traced = _orchestrator()
        otel.instrument(traced, tracer_provider=provider)
        assert traced.run_task("What is 2 + 3?", max_steps=4).success
    assert time.monotonic() - t0 < 3 * plain + 1.0  # export happens in the background
    t0 = time.monotonic()
    provider.shutdown()  # the final flush gives up within the exporter timeout
    assert time.monotonic() - t0 < 15


def test_spans_reach_an_otlp_collector_set_by_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    received: list[tuple[str, bytes]] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
        monkeypatch.setenv("OTEL_SERVICE_NAME", "pa-collector-test")
        provider = otel.configure_otlp(set_global=False)
        orch = _orchestrator()
        otel.instrument(orch, tracer_provider=provider, agent="calc-agent")
        assert orch.run_task("What is 2 + 3?", max_steps=4).success
        provider.shutdown()  # flushes the batch
    finally:
        httpd.shutdown()
    assert received and all(path == "/v1/traces" for path, _ in received)
    names: set[str] = set()
    services: set[str] = set()
    for _, body in received:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            services |= {a.value.string_value for a in rs.resource.attributes if a.key == "service.name"}
            names |= {s.name for ss in rs.scope_spans for s in ss.spans}
    assert services == {"pa-collector-test"}
    assert {"invoke_agent calc-agent", "step 1", "chat gpt-4o-mini", "execute_tool calculator"} <= names
