"""Tool RAG in the loop: with many tools, only the most relevant ones reach the actor."""

from __future__ import annotations

import purpose_agent as pa


def celsius_to_fahrenheit(celsius: float) -> float:
    """Convert a temperature from degrees Celsius to degrees Fahrenheit."""
    return celsius * 9 / 5 + 32


def _noise(name: str, doc: str) -> pa.FunctionTool:
    def fn(text: str) -> str:
        return text

    fn.__name__ = name
    fn.__doc__ = doc
    return pa.FunctionTool.from_function(fn)


NOISE = [
    _noise("translate_text", "Translate a text into another language."),
    _noise("send_email", "Send an email message to a recipient."),
    _noise("search_web", "Search the web for pages about a query."),
    _noise("resize_image", "Resize an image to a width and height."),
    _noise("read_calendar", "List the events in a calendar."),
    _noise("summarize", "Summarize a long document."),
    _noise("spell_check", "Check the spelling of a text."),
]


def test_only_top_k_relevant_tools_are_offered() -> None:
    tools = [*NOISE, pa.FunctionTool.from_function(celsius_to_fahrenheit)]
    actor = pa.ScriptedModel(
        [
            {"thought": "convert", "action": "celsius_to_fahrenheit", "params": {"celsius": 100}},
            {"thought": "answer", "action": "DONE", "params": {"answer": "212"}},
        ]
    )
    critic = pa.FunctionModel(lambda m, s: {"evidence": "-", "reason": "-", "score": 9, "confidence": "high"})
    orch = pa.Orchestrator(actor, pa.SimpleEnvironment(), tools, critic_llm=critic, tool_top_k=3)
    result = orch.run_task("Convert 100 degrees Celsius to Fahrenheit.")
    offered = [b["properties"]["action"]["const"] for b in actor.calls[0].schema["oneOf"]]  # type: ignore[index]
    assert len(offered) == 4 and offered[-1] == "DONE"  # 3 tools + DONE
    assert "celsius_to_fahrenheit" in offered
    assert "212" in result.steps[0].observation


def test_all_tools_offered_when_few() -> None:
    tools = [*NOISE[:2], pa.FunctionTool.from_function(celsius_to_fahrenheit)]
    actor = pa.ScriptedModel([{"thought": "answer", "action": "DONE", "params": {"answer": "x"}}])
    critic = pa.FunctionModel(lambda m, s: {"evidence": "-", "reason": "-", "score": 9, "confidence": "high"})
    pa.Orchestrator(actor, pa.SimpleEnvironment(), tools, critic_llm=critic).run_task("anything")
    offered = [b["properties"]["action"]["const"] for b in actor.calls[0].schema["oneOf"]]  # type: ignore[index]
    assert offered == ["translate_text", "send_email", "celsius_to_fahrenheit", "DONE"]
