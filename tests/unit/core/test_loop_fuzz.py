"""Fuzzing the loop: whatever the models reply (prose, broken JSON, TOML with datetimes, huge or
unicode text, wrong types) and whatever the environment says, a run ends with a TaskResult, or
with RunFailedError only when a model backend failed, and a ground-truth failure never
becomes a success."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import purpose_agent as pa
from purpose_agent.core.environment import FREE_FORM_PARAMS, ActionSpec
from purpose_agent.core.events import read_trace
from purpose_agent.errors import RunFailedError
from purpose_agent.models.base import Message

ACTIONS = [
    ActionSpec("poke", "poke the thing", FREE_FORM_PARAMS),
    ActionSpec("say", 'say something: params {"text": ...}', FREE_FORM_PARAMS),
    ActionSpec(
        "set", "set n", {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    ),
]
STOPS = {"done", "terminal", "solved", "phi_threshold", "loop", "max_steps"}

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
names = st.sampled_from(["poke", "say", "set", "DONE", "INVALID", ""]) | st.text(max_size=12)
dict_replies = st.fixed_dictionaries(
    {"thought": json_values, "action": names | json_values, "params": json_values}
) | st.dictionaries(st.text(max_size=8), json_values, max_size=4)
toml_values = (
    st.datetimes().map(lambda d: d.isoformat())
    | st.dates().map(lambda d: d.isoformat())
    | st.times().map(lambda t: t.isoformat())
    | st.integers().map(str)
    | st.text(max_size=30).map(json.dumps)
)
toml_replies = st.builds(
    lambda name, key, value: f'thought = "t"\naction = {json.dumps(name)}\n\n[params]\n{key} = {value}\n',
    names,
    st.sampled_from(["when", "text", "n", "x"]),
    toml_values,
)
text_replies = st.one_of(
    st.text(max_size=300),  # prose, any unicode
    st.tuples(dict_replies, st.integers(0, 120)).map(lambda t: json.dumps(t[0])[: t[1]]),  # cut JSON
    toml_replies,
    st.integers(2_000, 60_000).map(lambda n: '{"thought": "' + "é" * n),  # huge, never closed
    st.tuples(st.text(max_size=50), dict_replies).map(
        lambda t: f"<think>{t[0]}</think>```json\n{json.dumps(t[1])}\n```"
    ),
)
replies = st.lists(dict_replies | text_replies, min_size=1, max_size=8)
critic_replies = st.lists(
    st.fixed_dictionaries(
        {
            "evidence": st.text(max_size=40),
            "reason": st.text(max_size=40),
            "score": st.integers(-5, 20) | st.text(max_size=5) | st.floats(),
            "confidence": st.sampled_from(["high", "medium", "low", "sure"]),
        }
    )
    | text_replies,
    min_size=1,
    max_size=5,
)
env_texts = st.lists(
    st.text(max_size=200) | st.integers(0, 20_000).map(lambda n: "ø" * n), min_size=1, max_size=5
)


def cycling(replies: Sequence[Any], fail_at: int | None, name: str) -> pa.FunctionModel:
    """Serves the replies round and round; call number ``fail_at`` raises like a dead backend."""
    calls = {"n": 0}

    def fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        n = calls["n"]
        calls["n"] += 1
        if fail_at is not None and n == fail_at:
            raise ConnectionError("backend down")
        return replies[n % len(replies)]

    return pa.FunctionModel(fn, name=name)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    actor_replies=replies,
    critic_said=critic_replies,
    texts=env_texts,
    ground_truth=st.sampled_from([None, 0.0, 0.5, 1.0]),
    fail_at=st.none() | st.integers(0, 8),
    env_raises=st.booleans(),
)
def test_random_replies_and_environment_texts_never_crash_the_loop(
    actor_replies: list[Any],
    critic_said: list[Any],
    texts: list[str],
    ground_truth: float | None,
    fail_at: int | None,
    env_raises: bool,
) -> None:
    def execute(action: pa.Action, state: pa.State) -> pa.State:
        n = int(state.data.get("n", 0)) + 1
        if env_raises and n % 2 == 0:
            raise RuntimeError(texts[0][:50])
        text = texts[n % len(texts)]
        return pa.State({"n": n, "text": text, "last": action.name}, text)

    # the ground truth is known only after the first action: before it, Φ alone shapes
    env = pa.SimpleEnvironment(
        execute,
        initial_state=pa.State({"n": 0}, texts[0]),
        outcome_fn=lambda s: ground_truth if s.data.get("n") else None,
    )
    with tempfile.TemporaryDirectory() as tmp:
        orch = pa.Orchestrator(
            cycling(actor_replies, fail_at, "actor"),
            env,
            ACTIONS,
            critic_llm=cycling(critic_said, None, "critic"),
            trace_dir=tmp,
        )
        try:
            result = orch.run_task("poke the thing until it talks", max_steps=4)
        except RunFailedError as exc:
            assert fail_at is not None, f"the loop failed without a backend error: {exc.__cause__!r}"
            assert isinstance(exc.__cause__, ConnectionError)
            assert isinstance(exc.result, pa.TaskResult)
            result = exc.result
            assert result.stop_reason.startswith("error") and not result.success
        else:
            assert result.stop_reason in STOPS
        assert len(result.steps) <= 4
        if result.outcome is not None and result.outcome < 1.0:
            assert not result.success  # ground truth failed: Φ never overrules it
        if result.final_state.data.get("n"):
            assert result.outcome == ground_truth
        for step in result.steps:
            json.dumps(step.action.to_dict())  # params are plain JSON
        events = read_trace(result.trace_path or "")
        assert events[0]["kind"] == "task_start" and events[-1]["kind"] == "task_end"
        assert {e["run_id"] for e in events} == {result.run_id}
        assert len(orch.bus._listeners) == 0
