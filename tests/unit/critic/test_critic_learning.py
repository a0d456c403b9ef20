"""Human override, calibration memories that reach the critic, meta-rewarding, contrast pairs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from _critic_helpers import (
    GOOD,
    HALF,
    STUB,
    TASK,
    done,
    passing_score,
    reply,
    rubric_critic,
    state_block,
    submit,
)

import purpose_agent as pa
from purpose_agent.core.events import read_trace
from purpose_agent.critic.contrast import Judgment, acontrast_accuracy, flip, judgments_from, make_pairs
from purpose_agent.envs.coding import CodingEnvironment
from purpose_agent.loop.hook import StoreMemoryHook
from purpose_agent.memory import MemoryKind, MemoryStatus, MemoryStore


def _store(tmp_path: Path) -> MemoryStore:
    return MemoryStore(tmp_path / "mem.sqlite", embedder=None)


def _calibrations(store: MemoryStore) -> list[Any]:
    return [m for m in store.list() if m.kind is MemoryKind.CRITIC_CALIBRATION]


def _orch(
    actor: pa.ScriptedModel, critic: pa.Backend, store: MemoryStore | None, tmp_path: Path, **kw: Any
) -> pa.Orchestrator:
    memory = StoreMemoryHook(store, distill=False, mode=kw.pop("mode", None)) if store is not None else None
    return pa.Orchestrator(
        actor, CodingEnvironment(TASK), critic_llm=critic, memory=memory, trace_dir=tmp_path, **kw
    )


def test_override_replaces_phi_recomputes_rewards_and_is_traced(tmp_path: Path) -> None:
    actor = pa.ScriptedModel([submit(HALF), submit(STUB), submit(HALF), submit(GOOD)])
    orch = _orch(actor, rubric_critic(), None, tmp_path, retry_repeats=False)
    result = orch.run_task(TASK.purpose)
    assert [s.phi_after for s in result.steps] == [5.0, 0.0, 5.0, 10.0]
    changed = orch.override_score(result, 1, 3.0, note="half the tests is not half the work")
    assert [s.index for s in changed] == [1, 2, 3, 4]  # HALF is s1 and s3: Φ follows the state
    assert [s.phi_after for s in result.steps] == [3.0, 0.0, 3.0, 10.0]
    assert [s.reward for s in result.steps] == [3.0, -3.0, 3.0, 7.0]
    assert result.steps[0].phi_source == "human" and "half the tests" in result.steps[0].evidence
    events = [e for e in read_trace(result.trace_path or "") if e["kind"] == "score_override"]
    assert len(events) == 1 and events[0]["phi"] == 3.0 and events[0]["old_phi"] == 5.0
    assert events[0]["memory_status"].startswith("not stored")  # no store attached
    with pytest.raises(ValueError):
        orch.override_score(result, 1, 11)
    with pytest.raises(ValueError, match="no step 9"):
        orch.override_score(result, 9, 1)


def test_override_becomes_a_calibration_memory_that_reaches_the_critic_for_similar_states(
    tmp_path: Path,
) -> None:
    store = _store(tmp_path)
    critic = rubric_critic()
    orch = _orch(pa.ScriptedModel([submit(HALF), done("x")]), critic, store, tmp_path)
    result = orch.run_task(TASK.purpose)
    orch.override_score(result, 1, 2.0, note="returns a constant for one input: hard-coded")
    [memory] = _calibrations(store)
    assert memory.status is MemoryStatus.PROMOTED and memory.made_by == "human" and memory.trust >= 0.9
    assert "right score 2/10" in memory.text and "Tests: 1/2 passed" in memory.text
    # a later run reaching a similar state: the example is in the critic's prompt as quoted data
    critic2 = rubric_critic()
    orch2 = _orch(pa.ScriptedModel([submit(HALF.replace("4 if", "4  if"))]), critic2, store, tmp_path)
    orch2.run_task(TASK.purpose, max_steps=1)
    prompt = critic2.calls[-1].messages
    assert memory.text[:60] not in prompt[0].content
    assert f"<example>\n{memory.text}" in prompt[1].content


def test_override_in_eval_test_writes_no_memory(tmp_path: Path) -> None:
    store = _store(tmp_path)
    orch = _orch(
        pa.ScriptedModel([submit(HALF), done("x")]),
        rubric_critic(),
        store,
        tmp_path,
        mode=pa.RunMode.EVAL_TEST,
    )
    orch.mode = pa.RunMode.EVAL_TEST
    result = orch.run_task(TASK.purpose)
    orch.override_score(result, 1, 2.0)
    assert result.steps[0].phi_after == 2.0 and _calibrations(store) == []


def test_review_scores_path_and_live_run_override(tmp_path: Path) -> None:
    orch = _orch(pa.ScriptedModel([submit(HALF), submit(GOOD)]), rubric_critic(), None, tmp_path)
    result = orch.run_task(TASK.purpose)
    changed = orch.review_scores(result, lambda s: (6.0, "fine") if s.index == 1 else None)
    assert [s.index for s in changed] == [1, 2] and result.steps[1].reward == 4.0

    async def live() -> None:
        orch2 = _orch(pa.ScriptedModel([submit(HALF), submit(GOOD)]), rubric_critic(), None, tmp_path)
        run = await orch2.astart(TASK.purpose)
        await orch2.astep(run)
        orch2.override_score(run, 1, 7.0)
        assert run.phi == 7.0 and run.steps[0].phi_after == 7.0
        step = await orch2.astep(run)
        assert step.phi_before == 7.0 and step.reward == 3.0

    asyncio.run(live())


# ---------------------------------------------------------------- meta-rewarding
def test_meta_reward_turns_checked_judgments_into_low_trust_calibrations(tmp_path: Path) -> None:
    store = _store(tmp_path)

    def half_wrong(messages: Sequence[pa.Message], schema: Any) -> dict[str, Any]:
        k = passing_score(state_block(messages))
        return reply(9 if k == 5 else k)  # right about 0/2 and 2/2, wrong about 1/2

    orch = _orch(
        pa.ScriptedModel([submit(STUB), submit(HALF), submit(GOOD)]),
        pa.FunctionModel(half_wrong),
        store,
        tmp_path,
        meta_reward=True,
    )
    orch.run_task(TASK.purpose)
    mems = _calibrations(store)
    sources = sorted(m.meta["source"] for m in mems)
    assert sources == ["agreed", "agreed", "corrected"]
    assert all(
        m.status is MemoryStatus.PROMOTED and m.trust == pytest.approx(0.3) and m.made_by == "hindsight"
        for m in mems
    )
    corrected = next(m for m in mems if m.meta["source"] == "corrected")
    assert "right score 5/10" in corrected.text and "not 9" in corrected.text


def test_meta_reward_writes_nothing_outside_learning_train(tmp_path: Path) -> None:
    store = _store(tmp_path)
    orch = _orch(
        pa.ScriptedModel([submit(GOOD)]),
        rubric_critic(),
        store,
        tmp_path,
        meta_reward=True,
        mode=pa.RunMode.LEARNING_VALIDATION,
    )
    orch.mode = pa.RunMode.LEARNING_VALIDATION
    orch.run_task(TASK.purpose)
    assert _calibrations(store) == []


# ---------------------------------------------------------------- contrast pairs
def test_contrast_pairs_and_accuracy() -> None:
    a = Judgment("p", "Tests: 2/2 passed.", "Tests: 2/2 passed", "all pass", 10)
    b = Judgment("p", "Tests: 0/2 passed.", "Tests: 0/2 passed", "none pass", 0)
    pairs = make_pairs([a, b])
    assert [p.corruption for p in pairs] == ["flipped_score", "wrong_evidence"] * 2
    assert pairs[0].bad.score == 0 and pairs[1].bad.evidence == "Tests: 0/2 passed"
    assert (flip(5), flip(3), flip(8)) == (0.0, 7.0, 2.0)

    def oracle(messages: Sequence[pa.Message], schema: Any) -> dict[str, Any]:
        text = messages[-1].content
        state = text.split("<state>\n")[1].split("\n</state>")[0]
        right = passing_score(state)
        for label in ("A", "B"):
            line = next(x for x in text.splitlines() if x.startswith(f"JUDGMENT {label}:"))
            evidence = line.split("evidence: ")[1].split("; reason")[0].strip("'")
            if f"score: {right}" in line and evidence in state:
                return {"reason": "fits", "correct": label}
        return {"reason": "?", "correct": "A"}

    report = asyncio.run(acontrast_accuracy(pa.FunctionModel(oracle), pairs))
    assert report.accuracy == 1.0 and report.by_corruption["wrong_evidence"] == (2, 2)
    biased = asyncio.run(
        acontrast_accuracy(pa.FunctionModel(lambda m, s: {"reason": "", "correct": "A"}), pairs)
    )
    assert biased.accuracy is not None and biased.accuracy < 1.0


def test_judgments_from_runs_keep_only_ones_that_agreed(tmp_path: Path) -> None:
    orch = _orch(
        pa.ScriptedModel([submit(HALF), submit(GOOD)]),
        pa.FunctionModel(lambda m, s: reply(10)),
        None,
        tmp_path,
    )
    result = orch.run_task(TASK.purpose)
    js = judgments_from([result])
    assert [j.score for j in js] == [10.0] and "2/2 passed" in js[0].state_text
