"""The default path learns: ``Orchestrator(model, env, memory=MemoryStore(path))`` holds out
earlier tasks for validation, gates candidates on evidence and promotes a lesson that a later
run includes; ``pa.Learning`` configures a teacher, retries and explicit validation; bad
configurations are clear errors."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import purpose_agent as pa
from purpose_agent.core import events as ev
from purpose_agent.errors import ConfigurationError, UnknownProviderError
from purpose_agent.loop.replay import ReplayTask
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore
from purpose_agent.memory.events import MemoryGated, TrainingAttempt
from purpose_agent.models.base import Message

SECRET = "THE SECRET NUMBER IS 42"
LESSON = {"kind": "skill_card", "trigger": "a secret number question", "text": f"Answer 42: {SECRET}."}


def _props(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (schema or {}).get("properties", {})


class Toy:
    """One FunctionModel for every role: the actor answers 42 only when the lesson is in its
    prompt; the distiller writes that lesson; the critic always says 5. Counts calls by role."""

    def __init__(self, distils: bool = True) -> None:
        self.distils = distils
        self.calls: dict[str, int] = {"actor": 0, "distiller": 0, "critic": 0}
        self.model = pa.FunctionModel(self.reply)

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = _props(schema)
        if "lessons" in props:
            self.calls["distiller"] += 1
            return {"lessons": [LESSON] if self.distils else [], "achieved": ""}
        if "score" in props:
            self.calls["critic"] += 1
            return {"evidence": "state", "reason": "toy", "score": 5, "confidence": "medium"}
        self.calls["actor"] += 1
        prompt = "\n".join(m.content for m in messages)
        return {
            "thought": "answer",
            "action": "DONE",
            "params": {"answer": "42" if SECRET in prompt else "7"},
        }


def secret_env() -> pa.SimpleEnvironment:
    return pa.SimpleEnvironment(
        outcome_fn=lambda s: None if "answer" not in s.data else float(s.data["answer"] == "42")
    )


def _events(orch: pa.Orchestrator) -> list[ev.Event]:
    seen: list[ev.Event] = []
    orch.bus.subscribe(seen.append)
    return seen


def test_the_default_path_promotes_a_lesson_end_to_end(tmp_path: Path) -> None:
    toy = Toy()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, trace=False)
    events = _events(orch)
    results = [orch.run_task(f"Say the secret number ({i}).", max_steps=2) for i in range(9)]
    assert not any(r.success for r in results[:8])
    # distilled from failed runs: a failure pattern (merged each time it was written again)
    [lesson] = [m for m in store.list(kind=MemoryKind.FAILURE_PATTERN) if SECRET in m.text]
    assert lesson.status is MemoryStatus.PROMOTED and lesson.merges >= 3
    # every second training run was held out (not learned from): 4 validation tasks, 4 wins
    assert toy.calls["distiller"] == 5
    gated = [e for e in events if isinstance(e, MemoryGated) and e.memory_id == lesson.id]
    assert [e.wins for e in gated if e.new_pairs] == [1, 2, 3, 4] and gated[-1].action == "promoted"
    assert gated[-1].p_value == 1 / 16 and all(e.calls is not None and e.calls <= 2 for e in gated)
    promoted = [e for e in events if isinstance(e, ev.MemoryDecided) and e.memory_id == lesson.id]
    assert [e.kind for e in promoted] == ["promoted"]
    assert "with=1.000 without=0.000" in store.history(lesson.id)[-1].reason
    # the run after the promotion has the lesson in its prompt and succeeds
    assert results[8].success and lesson.id in results[8].memory_ids
    later = pa.Orchestrator(toy.model, secret_env(), memory=tmp_path / "m.sqlite", trace=False)
    result = later.run_task("Say the secret number (again).", max_steps=2)
    assert result.success and lesson.id in result.memory_ids
    # the other candidates (worked examples, failure patterns) showed no evidence: none promoted
    assert {m.id for m in store.list(status=MemoryStatus.PROMOTED)} == {lesson.id}


def test_replays_of_held_out_tasks_make_no_critic_calls_and_run_on_copies(tmp_path: Path) -> None:
    class Counting(pa.Environment):
        def __init__(self) -> None:
            self.executed = 0

        def execute(self, action: pa.Action, state: pa.State) -> pa.State:
            self.executed += 1
            return pa.State({"answer": action.params.get("answer", "")}, "answered")

        def outcome(self, state: pa.State) -> float | None:
            return None if "answer" not in state.data else float(state.data["answer"] == "42")

    toy = Toy()
    env = Counting()
    orch = pa.Orchestrator(
        toy.model, env, memory=MemoryStore(tmp_path / "m.sqlite", embedder=None), trace=False
    )
    for i in range(4):
        orch.run_task(f"Say the secret number ({i}).", max_steps=2)
    critic_in_training = toy.calls["critic"]
    assert env.executed == 4  # the replays ran on deep copies, never on the user's environment
    orch.run_task("Say the secret number (4).", max_steps=2)
    assert orch.memory.learner.validation_tasks()  # type: ignore[union-attr]
    # training runs score with the critic (2 calls each: s0 and s1); replays add none
    assert toy.calls["critic"] - critic_in_training == 2


def test_holdout_skips_an_environment_that_cannot_be_copied(tmp_path: Path) -> None:
    class Locked(pa.SimpleEnvironment):
        def __init__(self) -> None:
            super().__init__(outcome_fn=lambda s: None if "answer" not in s.data else 0.0)
            self.lock = threading.Lock()  # deepcopy fails

    toy = Toy()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = pa.Orchestrator(toy.model, Locked(), memory=store, trace=False)
    events = _events(orch)
    for i in range(3):
        orch.run_task(f"Say the secret number ({i}).", max_steps=2)
    errors = [e for e in events if isinstance(e, ev.ErrorRaised) and e.where == "memory.holdout"]
    assert len(errors) == 1 and "deepcopy(Locked)" in errors[0].message and "validation=" in errors[0].message
    assert toy.calls["distiller"] == 3  # nothing held out: every run teaches
    [lesson] = [m for m in store.list() if SECRET in m.text]
    assert lesson.status is MemoryStatus.CANDIDATE  # no validation: it waits, never in a prompt
    gated = [e for e in events if isinstance(e, MemoryGated)]
    assert gated and "cannot hold out" in gated[-1].reason


def test_an_environment_without_ground_truth_gives_the_gate_no_evidence(tmp_path: Path) -> None:
    toy = Toy()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = pa.Orchestrator(toy.model, pa.SimpleEnvironment(), memory=store, trace=False)
    events = _events(orch)
    for i in range(4):
        orch.run_task(f"Say the secret number ({i}).", max_steps=2)
    assert toy.calls["distiller"] == 4  # runs without an outcome are not held out
    assert orch.memory.learner.validation_tasks() == []  # type: ignore[union-attr]
    assert not store.list(status=MemoryStatus.PROMOTED)
    reasons = [e.reason for e in events if isinstance(e, MemoryGated)]
    assert reasons and "no ground truth" in reasons[-1] and "does not decide on Φ" in reasons[-1]


def test_explicit_validation_purposes_on_the_same_environment(tmp_path: Path) -> None:
    toy = Toy()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    learning = pa.Learning(validation=[f"Tell the secret number ({i})." for i in range(4)], units_per_gate=4)
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, learning=learning, trace=False)
    first = orch.run_task("Say the secret number.", max_steps=2)
    assert not first.success and toy.calls["distiller"] == 1  # nothing held out with explicit validation
    [lesson] = [m for m in store.list() if SECRET in m.text]
    assert lesson.status is MemoryStatus.PROMOTED  # four validation purposes, four wins, one gate
    assert orch.run_task("Say the secret number.", max_steps=2).success


def test_validation_pairs_and_replay_tasks_are_accepted(tmp_path: Path) -> None:
    toy = Toy()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    validation: list[Any] = [
        ("Tell the secret number (a).", secret_env),  # a factory without a seed
        ("Tell the secret number (b).", lambda seed: secret_env()),
        ("Tell the secret number (c).", secret_env()),  # an instance: deep-copied per run
        ReplayTask("Tell the secret number (d).", lambda seed: secret_env(), max_steps=2),
    ]
    learning = pa.Learning(validation=validation, units_per_gate=4)
    orch = pa.Orchestrator(toy.model, secret_env(), memory=store, learning=learning, trace=False)
    orch.run_task("Say the secret number.", max_steps=2)
    [lesson] = [m for m in store.list() if SECRET in m.text]
    assert lesson.status is MemoryStatus.PROMOTED


# ------------------------------------------------------------------ teacher
def test_the_teacher_writes_the_lessons(tmp_path: Path) -> None:
    actor, teacher = Toy(distils=False), Toy()
    for kw in ({"distiller_llm": teacher.model}, {"learning": pa.Learning(teacher=teacher.model)}):
        store = MemoryStore(tmp_path / f"{len(kw)}-{id(kw)}.sqlite", embedder=None)
        pa.Orchestrator(actor.model, secret_env(), memory=store, trace=False, **kw).run_task(  # type: ignore[arg-type]
            "Say the secret number.", max_steps=2
        )
        assert any(SECRET in m.text for m in store.list())
    assert teacher.calls["distiller"] == 2 and actor.calls["distiller"] == 0
    assert teacher.calls["actor"] == 0  # the teacher only teaches


def test_unknown_teacher_spec_is_a_clear_error(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    with pytest.raises(UnknownProviderError, match=r"teacher model .*'opnai:gpt-4o'.*Did you mean 'openai'"):
        pa.Orchestrator(Toy().model, secret_env(), memory=store, distiller_llm="opnai:gpt-4o")
    with pytest.raises(UnknownProviderError, match="teacher model"):
        pa.Orchestrator(Toy().model, secret_env(), memory=store, learning=pa.Learning(teacher="nosuchthing"))
    with pytest.raises(ConfigurationError, match="not both"):
        pa.Orchestrator(
            Toy().model,
            secret_env(),
            memory=store,
            distiller_llm=Toy().model,
            learning=pa.Learning(teacher=Toy().model),
        )
    with pytest.raises(ConfigurationError, match="teacher must be"):
        pa.Learning(teacher=42)  # type: ignore[arg-type]


# ------------------------------------------------------------------ train_attempts
class Retrier:
    """Fails unless the retry note is in its prompt; records the temperature of each call."""

    def __init__(self) -> None:
        self.temperatures: list[float] = []
        self.prompts: list[str] = []
        self.distilled: list[str] = []

        outer = self

        class Model(pa.FunctionModel):
            async def _generate(
                self, messages: Any, schema: Any, *, max_tokens: int, temperature: float
            ) -> Any:
                if "lessons" not in _props(schema) and "score" not in _props(schema):
                    outer.temperatures.append(temperature)
                return await super()._generate(
                    messages, schema, max_tokens=max_tokens, temperature=temperature
                )

        self.model = Model(self.reply)

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = _props(schema)
        prompt = "\n".join(m.content for m in messages)
        if "lessons" in props:
            self.distilled.append(prompt)
            return {"lessons": [], "achieved": ""}
        if "score" in props:
            return {"evidence": "-", "reason": "-", "score": 5, "confidence": "medium"}
        self.prompts.append(prompt)
        answer = "42" if "Last attempt at this task" in prompt else "7"
        return {"thought": "t", "action": "DONE", "params": {"answer": answer}}


def test_train_attempts_retries_a_failed_task_and_learns_from_the_first_success(tmp_path: Path) -> None:
    r = Retrier()
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    orch = pa.Orchestrator(
        r.model, secret_env(), memory=store, learning=pa.Learning(train_attempts=3), trace=False
    )
    events = _events(orch)
    result = orch.run_task("Say the secret number.", max_steps=2)
    assert result.success
    assert [e.kind for e in events].count("task_start") == 2  # every attempt is a recorded run
    attempts = [e for e in events if isinstance(e, TrainingAttempt)]
    assert [(a.attempt, a.success, a.retry, a.learned) for a in attempts] == [
        (1, False, True, False),
        (2, True, False, True),
    ]
    assert r.temperatures == [0.0, 0.7]  # the retry samples
    assert "Last attempt at this task" not in r.prompts[0]
    note = r.prompts[1].split("Last attempt at this task")[1][:400]
    assert "ground truth 0.00" in note and 'DONE({\\"answer\\": \\"7\\"})' in note  # quoted data
    assert len(r.distilled) == 1 and "SUCCEEDED" in r.distilled[0]  # learned from the success only
    cases = [m for m in store.list(kind=MemoryKind.EPISODIC_CASE)]
    assert cases and all(m.sources == (result.run_id,) for m in cases)  # the stored example is the success
    assert orch.status()["runs"] == 2


def test_train_attempts_stop_at_k_and_never_retry_without_ground_truth(tmp_path: Path) -> None:
    r = Retrier()
    never = pa.SimpleEnvironment(outcome_fn=lambda s: None if "answer" not in s.data else 0.0)
    orch = pa.Orchestrator(
        r.model,
        never,
        memory=MemoryStore(tmp_path / "a.sqlite", embedder=None),
        learning=pa.Learning(train_attempts=3),
        trace=False,
    )
    events = _events(orch)
    assert not orch.run_task("Say the secret number.", max_steps=1).success
    assert [e.kind for e in events].count("task_start") == 3 and len(r.distilled) == 1
    r2 = Retrier()
    unknown = pa.Orchestrator(
        r2.model,
        pa.SimpleEnvironment(),
        memory=MemoryStore(tmp_path / "b.sqlite", embedder=None),
        learning=pa.Learning(train_attempts=3),
        trace=False,
    )
    unknown.run_task("Say the secret number.", max_steps=1)
    assert len(r2.temperatures) == 1  # Φ alone never triggers a retry


# ------------------------------------------------------------------ modes and bad configurations
def test_a_read_only_store_cannot_learn_and_eval_test_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "m.sqlite"
    MemoryStore(path, embedder=None).close()
    ro = MemoryStore(path, mode=pa.RunMode.EVAL_TEST, embedder=None)
    with pytest.raises(ConfigurationError, match=r"read-only \(EVAL_TEST\).*LEARNING_TRAIN"):
        pa.Orchestrator(Toy().model, secret_env(), memory=ro)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    toy = Toy()
    orch = pa.Orchestrator(toy.model, secret_env(), memory=ro, mode=pa.RunMode.EVAL_TEST, trace=False)
    for i in range(3):
        orch.run_task(f"Say the secret number ({i}).", max_steps=2)
    by_path = pa.Orchestrator(
        toy.model, secret_env(), memory=str(path), mode=pa.RunMode.EVAL_TEST, trace=False
    )
    by_path.run_task("Say the secret number.", max_steps=2)
    assert toy.calls["distiller"] == 0
    ro.close()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_bad_learning_configurations_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="validation= is empty"):
        pa.Learning(validation=[])
    with pytest.raises(ConfigurationError, match="cannot use 42 as a validation task"):
        pa.Learning(validation=[42])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="train_attempts must be ≥ 1"):
        pa.Learning(train_attempts=0)
    with pytest.raises(ConfigurationError, match="needs memory="):
        pa.Orchestrator(Toy().model, secret_env(), learning=pa.Learning())

    class Locked(pa.SimpleEnvironment):
        def __init__(self) -> None:
            super().__init__()
            self.lock = threading.Lock()

    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    with pytest.raises(
        ConfigurationError, match=r"deepcopy\(Locked\) failed.*\(purpose, environment_factory\)"
    ):
        pa.Orchestrator(Toy().model, Locked(), memory=store, learning=pa.Learning(validation=["a purpose"]))
    from purpose_agent.loop.hook import StoreMemoryHook

    with pytest.raises(ConfigurationError, match="not a StoreMemoryHook"):
        pa.Orchestrator(Toy().model, secret_env(), memory=StoreMemoryHook(store), learning=pa.Learning())
