"""CostTracker: tokens and USD per call from the genai-prices table, local = 0, unknown = None
(never a wrong number), totals per agent, run and team, CostIncurred.usd filled in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import genai_prices
import pytest

import purpose_agent as pa
from purpose_agent.core import events as ev
from purpose_agent.core.events import read_trace
from purpose_agent.models import pricing
from purpose_agent.models.base import Message
from purpose_agent.models.ollama import OllamaBackend
from purpose_agent.runtime import cost
from purpose_agent.runtime.cost import CostSummary, CostTracker, price_call


def table(model: str, provider: str, prompt: int, completion: int) -> float:
    calc = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=prompt, output_tokens=completion), model, provider_id=provider
    )
    return float(calc.total_price)


def test_cloud_prices_come_from_the_table() -> None:
    p = price_call("openai:gpt-4o-mini", 1000, 500)
    assert p.usd == table("gpt-4o-mini", "openai", 1000, 500) and p.usd > 0
    assert p.source.startswith("genai-prices") and "openai/gpt-4o-mini" in p.source
    g = price_call("groq:llama-3.1-8b-instant", 2000, 100)
    assert g.usd == table("llama-3.1-8b-instant", "groq", 2000, 100)


@pytest.mark.parametrize(
    "name", ["local:qwen2.5-coder-1.5b", "local-server:qwen2.5-coder-0.5b", "llamacpp:qwen"]
)
def test_local_models_cost_zero(name: str) -> None:
    assert price_call(name, 10_000, 10_000) == cost.Price(0.0, "local")


def test_ollama_is_free_on_this_machine_and_unknown_elsewhere() -> None:
    here = OllamaBackend("qwen3:1.7b", "http://127.0.0.1:11434")
    there = OllamaBackend("qwen3:1.7b", "http://gpu-box.example:11434")
    assert price_call(here.name, 100, 100, backend=here).usd == 0.0
    far = price_call(there.name, 100, 100, backend=there)
    assert far.usd is None and "price unknown" in far.source


@pytest.mark.parametrize("name", ["openai:no-such-model-xyz", "scripted", "myco:m1", "hf:some/model"])
def test_unknown_models_get_no_price_never_a_guess(name: str) -> None:
    p = price_call(name, 100, 100)
    assert p.usd is None and p.source.startswith("price unknown")


def test_without_the_price_table_prices_are_unknown_and_say_how_to_get_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(pricing, "_genai_prices", lambda: None)  # the price table moved to models
    p = price_call("openai:gpt-4o", 100, 100)
    assert p.usd is None and "purpose-agent[cost]" in p.source
    assert price_call("local:x", 1, 1).usd == 0.0


def test_a_total_with_an_unpriced_call_is_unknown_with_the_known_part() -> None:
    t = CostTracker()
    t.record("openai:gpt-4o-mini", 1000, 100)
    t.record("scripted", 50, 5)
    total = t.total()
    assert total.calls == 2 and total.prompt_tokens == 1050 and total.completion_tokens == 105
    assert total.usd is None and total.unpriced_calls == 1
    assert total.known_usd == table("gpt-4o-mini", "openai", 1000, 100)
    assert "price unknown for 1" in str(total) and "1,155 tokens" in str(total)
    assert str(CostSummary()).startswith("0 calls")


def _critic(name: str) -> pa.FunctionModel:
    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        return {"evidence": "e", "reason": "r", "score": 10, "confidence": "high"}

    return pa.FunctionModel(fn, name=name)


def _agent(actor_name: str, critic_name: str) -> pa.Orchestrator:
    actor = pa.ScriptedModel(
        [{"thought": "t", "action": "DONE", "params": {"answer": "5"}}] * 3, name=actor_name
    )
    return pa.Orchestrator(actor, pa.SimpleEnvironment(), critic_llm=_critic(critic_name))


def test_cost_events_carry_usd_and_totals_add_up_per_agent_run_and_team() -> None:
    tracker = CostTracker()
    coder = _agent("openai:gpt-4o-mini", "groq:llama-3.1-8b-instant")
    tester = _agent("local:qwen2.5-coder-1.5b", "local:qwen2.5-coder-1.5b")
    events: list[ev.Event] = []
    coder.bus.subscribe(events.append)
    tracker.attach(coder, agent="coder")
    tracker.attach(tester, agent="tester")
    r1 = coder.run_task("Answer 2 + 3.", max_steps=1)
    r2 = coder.run_task("Answer 2 + 3.", max_steps=1)
    r3 = tester.run_task("Answer 2 + 3.", max_steps=1)

    costs = [e for e in events if isinstance(e, ev.CostIncurred)]
    assert costs and all(e.usd is not None and e.usd > 0 for e in costs)
    for e in costs:  # each call priced against the table
        model, provider = ("gpt-4o-mini", "openai") if e.role == "actor" else ("llama-3.1-8b-instant", "groq")
        assert e.usd == table(model, provider, e.prompt_tokens, e.completion_tokens)
    run1 = tracker.run(r1.run_id)
    assert run1.usd == pytest.approx(sum(e.usd or 0 for e in costs if e.run_id == r1.run_id))
    assert run1.prompt_tokens == r1.usage.prompt_tokens and run1.calls == r1.usage.calls
    assert tracker.run(r3.run_id).usd == 0.0 and tracker.agent("tester").usd == 0.0
    by_agent = tracker.by_agent()
    assert set(by_agent) == {"coder", "tester"}
    assert by_agent["coder"] == tracker.run(r1.run_id) + tracker.run(r2.run_id)
    assert tracker.total() == by_agent["coder"] + by_agent["tester"]
    assert set(tracker.by_run()) == {r1.run_id, r2.run_id, r3.run_id}
    # the trace records the same numbers (what RunResult.cost reads)
    assert r1.trace_path is not None
    assert CostSummary.of(read_trace(r1.trace_path)) == run1


def test_an_unknown_model_in_a_run_counts_tokens_and_leaves_usd_unknown() -> None:
    tracker = CostTracker()
    orch = _agent("scripted", "openai:gpt-4o-mini")
    orch.bus.subscribe(tracker)
    r = orch.run_task("Answer.", max_steps=1)
    s = tracker.run(r.run_id)
    assert s.usd is None and s.unpriced_calls == 1 and s.tokens == r.usage.total_tokens
    assert s.known_usd > 0  # the critic's calls are priced
