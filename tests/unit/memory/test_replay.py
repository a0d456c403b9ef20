"""Memory CI with the real replay: validation tasks through the Orchestrator in
LEARNING_VALIDATION, a candidate forced in and out, same tasks and seeds."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import purpose_agent as pa
from purpose_agent.loop.hook import StoreMemoryHook
from purpose_agent.loop.replay import ReplayTask, ValidationReplay
from purpose_agent.memory import MemoryCI, MemoryKind, MemoryStatus, MemoryStore
from purpose_agent.models.base import Message

HELPFUL = "For capital questions about {country}, the answer is the capital city, e.g. Paris for France."
HARMFUL = "For capital questions about {country}, answer with the largest city instead of the capital."


def actor_fn(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    """Answers well only with the helpful lesson in its prompt, badly with the harmful one."""
    prompt = "\n".join(m.content for m in messages)
    answer = "Paris" if "Paris for France" in prompt and "largest city" not in prompt else "Lyon"
    return {"thought": "answer", "action": "DONE", "params": {"answer": answer}}


def env(seed: int) -> pa.Environment:
    return pa.SimpleEnvironment(
        outcome_fn=lambda s: None if "answer" not in s.data else float(s.data["answer"] == "Paris")
    )


CRITIC = pa.FunctionModel(lambda m, s: {"evidence": "-", "reason": "-", "score": 5, "confidence": "low"})
TASKS = [ReplayTask("What is the capital of France?", env), ReplayTask("Name the capital of France.", env)]


def _setup(tmp_path: Path) -> tuple[MemoryStore, MemoryCI, ValidationReplay, pa.FunctionModel]:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    actor = pa.FunctionModel(actor_fn)
    replay = ValidationReplay(store, actor, TASKS, critic_llm=CRITIC, seeds=(0, 1))
    return store, MemoryCI(store, replay), replay, actor


def test_helpful_candidate_is_promoted_with_replay_scores(tmp_path: Path) -> None:
    store, ci, replay, actor = _setup(tmp_path)
    cid = store.add(HELPFUL, MemoryKind.SKILL_CARD)
    (decision,) = ci.process([cid])
    assert decision.action == "promoted"
    assert decision.mean_with == 1.0 and decision.mean_without == 0.0
    assert replay.runs == 8  # 2 tasks × 2 seeds, with and without
    assert store.get(cid).status is MemoryStatus.PROMOTED
    with_prompts = [c for c in actor.calls if any(HELPFUL.split(",")[0] in m.content for m in c.messages)]
    assert len(with_prompts) == 4  # forced in exactly for the 'with' runs


def test_harmful_candidate_is_rejected_and_stays_out_of_prompts(tmp_path: Path) -> None:
    store, ci, _, _ = _setup(tmp_path)
    good = store.add(HELPFUL, MemoryKind.SKILL_CARD)
    assert ci.process([good])[0].action == "promoted"
    bad = store.add(HARMFUL, MemoryKind.SKILL_CARD)
    (decision,) = ci.process([bad])
    assert decision.action == "rejected" and decision.mean_with == 0.0 and decision.mean_without == 1.0
    assert store.get(bad).status is MemoryStatus.REJECTED
    assert "gain" in store.history(bad)[-1].reason or "with" in store.history(bad)[-1].reason
    # a later training run sees the promoted lesson and not the rejected one
    seen: list[str] = []

    def spy(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
        seen.extend(m.content for m in messages)
        return actor_fn(messages, schema)

    result = pa.Orchestrator(
        pa.FunctionModel(spy), env(0), critic_llm=CRITIC, memory=StoreMemoryHook(store, distill=False)
    ).run_task("What is the capital of France?")
    assert result.success
    assert any("Paris for France" in s for s in seen) and not any("largest city" in s for s in seen)


def test_training_run_distils_and_gates_through_the_ci(tmp_path: Path) -> None:
    store, ci, _, _ = _setup(tmp_path)
    lesson = {
        "lessons": [
            {
                "kind": "skill_card",
                "trigger": "asked for a capital",
                "text": "For capital questions about {country}, the answer is the capital city, e.g. Paris for France.",
            }
        ],
        "achieved": "answered",
    }
    distiller = pa.ScriptedModel([lesson])
    hook = StoreMemoryHook(store, llm=distiller, ci=ci)
    actor = pa.ScriptedModel([{"thought": "t", "action": "DONE", "params": {"answer": "Lyon"}}])
    events: list[Any] = []
    pa.Orchestrator(actor, env(0), critic_llm=CRITIC, memory=hook, listeners=[events.append]).run_task(
        "What is the capital of France?"
    )
    kinds = [e.kind for e in events]
    assert "candidate" in kinds and "promoted" in kinds
    promoted = store.list(status=MemoryStatus.PROMOTED)
    # the lesson (a failure pattern: the run failed) helps on all four units and is promoted; the
    # hindsight case changes nothing (ties) and stays quarantined: no evidence, no promotion
    assert any("Paris for France" in m.text and m.kind is MemoryKind.FAILURE_PATTERN for m in promoted)
    assert all(store.replays(m.id) for m in promoted)
    hindsight = [m for m in store.list() if m.made_by == "hindsight"]
    assert hindsight and all(m.status is MemoryStatus.QUARANTINED for m in hindsight)


class Slots(pa.FunctionModel):
    """The actor on a model with ``parallel`` slots; counts the calls in flight at once."""

    def __init__(self, parallel: int) -> None:
        super().__init__(actor_fn)
        self.parallel = parallel
        self.in_flight = self.most = 0

    async def acomplete(self, *args: Any, **kwargs: Any) -> Any:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.02)
            return await super().acomplete(*args, **kwargs)
        finally:
            self.in_flight -= 1


def test_on_a_model_with_slots_a_units_two_runs_go_together_and_decide_the_same(tmp_path: Path) -> None:
    for parallel, together in ((1, 1), (4, 2)):
        store = MemoryStore(tmp_path / f"m{parallel}.sqlite", embedder=None)
        actor = Slots(parallel)
        replay = ValidationReplay(store, actor, TASKS, critic_llm=CRITIC, seeds=(0, 1))
        assert replay.pairs_at_once is (parallel > 1)
        (decision,) = MemoryCI(store, replay).process([store.add(HELPFUL, MemoryKind.SKILL_CARD)])
        assert decision.action == "promoted"
        assert (decision.mean_with, decision.mean_without) == (1.0, 0.0)
        assert replay.runs == 8
        assert actor.most == together  # with and without the candidate, side by side on slots
