"""The embedded model solves a task with the calculator and the sandboxed Python tool."""

from __future__ import annotations

import pytest

import purpose_agent as pa

pytestmark = pytest.mark.integration

PURPOSE = (
    "Step 1: with the python tool, compute S = 1**2 + 2**2 + ... + 50**2 (the squares). "
    "Step 2: with the calculator, compute S * 3. Finally answer with the number S * 3."
)


def test_real_model_uses_python_and_calculator(qwen15: pa.LocalBackend) -> None:
    env = pa.SimpleEnvironment(
        outcome_fn=lambda s: float("128775" in str(s.data.get("answer", "")).replace(",", ""))
    )
    orch = pa.Orchestrator(qwen15, env, [pa.CalculatorTool(), pa.PythonExecTool(timeout=10)])
    result = orch.run_task(PURPOSE, max_steps=6)
    used = [s.action.name for s in result.steps]
    assert result.success and result.outcome == 1.0, result.summary()
    assert "python" in used and "calculator" in used, used
    python_step = next(s for s in result.steps if s.action.name == "python")
    assert "42925" in python_step.observation  # the sandbox ran the model's code
