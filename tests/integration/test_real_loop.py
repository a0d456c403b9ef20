"""The whole loop with the real embedded model: it writes code until the unit tests pass."""

from __future__ import annotations

import pytest

import purpose_agent as pa
from purpose_agent.core.events import read_trace
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.envs.coding_tasks import BY_ID

pytestmark = pytest.mark.integration


def test_real_model_solves_a_coding_task(qwen15: pa.LocalBackend) -> None:
    task = BY_ID["is_palindrome"]
    orch = pa.Orchestrator(qwen15, CodingEnvironment(task))
    result = orch.run_task(task.purpose, max_steps=4)
    assert result.success, result.summary()
    assert result.outcome == 1.0
    assert result.usage.calls >= 2  # at least one actor and one critic call
    kinds = {e["kind"] for e in read_trace(result.trace_path or "")}
    assert {"task_start", "action", "observation", "score", "cost", "task_end"} <= kinds
