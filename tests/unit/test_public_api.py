"""The top-level namespace is a small, explicit contract (SPEC §2)."""

from __future__ import annotations

import inspect

import purpose_agent as pa

EXPECTED = {
    "Action",
    "ActionSpec",
    "Backend",
    "Environment",
    "FunctionModel",
    "LocalBackend",
    "Message",
    "OllamaBackend",
    "OpenAICompatibleBackend",
    "Orchestrator",
    "PurposeAgentError",
    "PurposeFunction",
    "RunMode",
    "ScriptedModel",
    "SimpleEnvironment",
    "State",
    "TaskResult",
    "backend_registry",
    "create_slm_backend",
    "resolve_backend",
    # memory (the memory kernel issue) and tools (the tools issue)
    "MemoryStore",
    "MemoryKind",
    "MemoryStatus",
    "ImmuneSystem",
    "Learning",  # the default learning path's one configuration (issue 10)
    "Tool",
    "FunctionTool",
    "ToolRegistry",
    "CalculatorTool",
    "PythonExecTool",
    "ReadFileTool",
    "WriteFileTool",
    "LLMCompiler",
    # agents (the user layer issue)
    "Flow",
    "BEGIN",
    "DONE_SIGNAL",
    "Vault",
    "purpose",
    "Team",
    "RunResult",
    "Spark",
    "swarm",
    "Council",
    "Conversation",
    "AgentSpec",
    "AgentTeam",
    # evaluation (the proof-of-learning issue)
    "BenchmarkRunner",
    "BenchmarkTask",
    # runtime services (issue 14)
    "AsyncOrchestrator",
    "CostTracker",
    "HITLOrchestrator",
    "CLIInputHandler",
}


def test_all_is_explicit_small_and_importable() -> None:
    assert set(pa.__all__) == EXPECTED
    assert len(pa.__all__) == len(set(pa.__all__))
    for name in pa.__all__:
        assert getattr(pa, name) is not None


def test_contract_signatures() -> None:
    params = inspect.signature(pa.Orchestrator).parameters
    assert list(params)[:6] == ["llm", "environment", "available_actions", "critic_llm", "memory", "mode"]
    assert params["mode"].default is pa.RunMode.LEARNING_TRAIN
    assert list(inspect.signature(pa.Orchestrator.run_task).parameters) == [
        "self",
        "purpose",
        "initial_state",
        "max_steps",
    ]
    assert inspect.signature(pa.Orchestrator.run_task).parameters["max_steps"].default == 20
    assert list(inspect.signature(pa.resolve_backend).parameters) == ["spec", "api_key", "base_url"]
    assert list(inspect.signature(pa.OpenAICompatibleBackend).parameters)[:3] == [
        "model",
        "base_url",
        "api_key",
    ]
    assert list(inspect.signature(pa.State).parameters) == ["data", "summary"]
    assert list(inspect.signature(pa.Action).parameters) == ["name", "params", "thought"]
    assert {m.name for m in pa.RunMode} == {"LEARNING_TRAIN", "LEARNING_VALIDATION", "EVAL_TEST"}
    for method in ("execute", "reset", "is_terminal", "outcome"):
        assert hasattr(pa.Environment, method)


def test_cli_entry_points() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "purpose_agent", "models"], capture_output=True, text=True, check=True
    )
    assert "qwen2.5-coder-1.5b" in out.stdout and "Providers:" in out.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "purpose_agent", "run", "x", "--model", "opneai:gpt-4o"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "Valid providers" in bad.stderr
