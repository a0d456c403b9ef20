"""The gate promotes on evidence only: the rule, ties kept quarantined, evidence accumulated
across gates, rejection on evidence against, the shared baseline and the gate's cost, and
replays that make no critic call when the environment has ground truth."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from _memory_helpers import make_store

import purpose_agent as pa
from purpose_agent.loop.replay import ReplayTask, ValidationReplay
from purpose_agent.memory import MemoryCI, MemoryKind, MemoryStatus, MemoryStore
from purpose_agent.memory.evidence import GateRule, Pair, UnitRun, past_evidence, sign_p
from purpose_agent.models.base import Message

K, S = MemoryKind, MemoryStatus


class UnitFake:
    """A unit replay: outcome 0.5 without any lesson; a lesson whose text says "helps" adds 0.3,
    "hurts" takes 0.3; anything else changes nothing. Records every run."""

    def __init__(self, store: MemoryStore, keys: Sequence[str]) -> None:
        self.store = store
        self.keys = list(keys)
        self.log: list[tuple[str, tuple[str, ...]]] = []

    def units(self) -> list[str]:
        return list(self.keys)

    def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
        self.log.append((key, tuple(include)))
        out = 0.5
        for mid in include:
            text = self.store.get(mid).text
            out += 0.3 if "helps" in text else -0.3 if "hurts" in text else 0.0
        return UnitRun(out, calls=3, seconds=0.0)

    def with_runs(self, mid: str) -> list[str]:
        return [k for k, inc in self.log if mid in inc]

    def baselines(self) -> list[str]:
        return [k for k, inc in self.log if not inc]


@pytest.fixture
def store(tmp_path: Path) -> Any:
    s = make_store(tmp_path / "m.db")
    yield s
    s.close()


# ------------------------------------------------------------------ the rule
def test_sign_test_and_the_rule_thresholds() -> None:
    assert sign_p(4, 4) == 1 / 16 and sign_p(3, 3) == 1 / 8 and sign_p(0, 0) == 1.0
    rule = GateRule()  # alpha 0.1, noise 0.05

    def verdict(wins: int, losses: int, ties: int = 0) -> str:
        pairs = (
            [Pair(None, 1.0, 0.0)] * wins + [Pair(None, 0.0, 1.0)] * losses + [Pair(None, 0.5, 0.5)] * ties
        )
        return rule.verdict(rule.tally(pairs))

    assert verdict(4, 0) == "promote" and verdict(3, 0) == "undecided"
    assert verdict(5, 1) == "undecided" and verdict(6, 1) == "promote"  # p = 7/64 > 0.1, then 8/128
    assert verdict(0, 0, ties=12) == "undecided"  # a gain of +0.00 is no evidence
    assert verdict(0, 4) == "reject" and verdict(1, 4) == "undecided"
    assert verdict(4, 0, ties=60) == "promote"  # mean gain 4/64 > noise
    assert verdict(4, 0, ties=80) == "undecided"  # mean gain 4/84 within noise
    tiny = [Pair(None, 0.52, 0.5)] * 8  # wins, but a gain within noise
    assert rule.verdict(rule.tally(tiny)) == "undecided"


def test_unreachable_decision_is_detected() -> None:
    rule = GateRule()
    assert rule.reachable([], 4) and not rule.reachable([], 3)
    assert not rule.reachable([Pair("a", 0.5, 0.5)], 3)  # at most three wins: p = 1/8


# ------------------------------------------------------------------ gates
def test_ties_stay_quarantined_evidence_accumulates_and_then_promotes(store: MemoryStore) -> None:
    replay = UnitFake(store, ["a", "b"])
    ci = MemoryCI(store, replay)
    good = store.add("This lesson helps with {x}", K.SKILL_CARD)
    flat = store.add("A lesson that changes nothing about {x}", K.SKILL_CARD)
    d_good, d_flat = ci.process([good, flat])
    assert (d_good.action, d_good.wins, d_good.p_value) == ("deferred", 2, 0.25)
    # a tie, and one unit left cannot decide it: stop (the baseline came from the shared cache)
    assert d_flat.action == "deferred" and d_flat.ties == 1 and d_flat.gain == 0.0
    assert (d_flat.runs, d_flat.baseline_reused) == (1, 1)
    assert store.get(good).status is S.QUARANTINED and store.get(flat).status is S.QUARANTINED
    assert (
        "kept quarantined" in store.replays(good)[-1].reason
        and store.replays(good)[-1].decision == "deferred"
    )
    # the same units again: nothing new to learn, nothing is re-run, nothing is counted twice
    again = ci.process([good])[0]
    assert again.action == "deferred" and again.runs == 0 and again.pairs == 2
    assert replay.with_runs(good) == ["a", "b"]
    # more validation units arrive: only the new ones run, the evidence adds up, and it decides
    replay.keys += ["c", "d", "e", "f"]
    d2 = MemoryCI(store, replay).process([good, flat])
    assert d2[0].action == "promoted" and d2[0].pairs == 4 and d2[0].new_pairs == 2
    assert replay.with_runs(good) == ["a", "b", "c", "d"]  # stopped as soon as it was decided
    assert store.get(good).status is S.PROMOTED
    assert d2[1].action == "deferred" and d2[1].ties == 3  # still no evidence: still quarantined
    assert store.get(flat).status is S.QUARANTINED
    ev = past_evidence(store, good)
    assert sorted(ev.by_key) == ["a", "b", "c", "d"]
    assert "with=0.800 without=0.500 gain=+0.300" in store.history(good)[-1].reason


def test_evidence_against_rejects_and_every_decision_stores_its_numbers(store: MemoryStore) -> None:
    replay = UnitFake(store, ["a", "b", "c", "d", "e"])
    bad = store.add("This lesson hurts: skip the {check}", K.SKILL_CARD)
    d = MemoryCI(store, replay).process([bad])[0]
    assert d.action == "rejected" and d.losses == 4 and d.gain == pytest.approx(-0.3)
    assert store.get(bad).status is S.REJECTED
    [rr] = store.replays(bad)
    assert rr.decision == "rejected" and rr.with_scores == pytest.approx((0.2,) * 4)
    assert "losses 4" in rr.reason and '"units": ["a", "b", "c", "d"]' in rr.reason
    assert "gate cost 8 runs, 24 calls" in rr.reason


def test_shared_baseline_early_stop_and_cost_per_candidate(store: MemoryStore) -> None:
    replay = UnitFake(store, [f"u{i}" for i in range(8)])
    one = store.add("First lesson: it helps with {a}", K.SKILL_CARD)
    two = store.add("Second lesson: a neutral note on {b}", K.SKILL_CARD)
    d1, d2 = MemoryCI(store, replay, units_per_gate=4).process([one, two])
    # one: decided after four wins; its baseline runs are paid by it
    assert d1.action == "promoted" and d1.runs == 8 and d1.calls == 24 and d1.baseline_reused == 0
    # two: the store changed (one was promoted), so its baseline is new; its first tie leaves at
    # most three wins in this gate (p = 1/8): the gate stops after one unit
    assert d2.action == "deferred" and d2.runs == 2 and d2.new_pairs == 1
    # two candidates, same store state: the second reuses the first one's baseline runs
    three = store.add("Third lesson: a remark on {c}", K.SKILL_CARD)
    four = store.add("Fourth lesson: this helps with {d}", K.SKILL_CARD)
    before = len(replay.baselines())
    d3, d4 = MemoryCI(store, replay, units_per_gate=4).process([three, four])
    # u0 in this state was recorded by two's gate: taken from the store, not run again
    assert replay.baselines()[before:] == ["u1", "u2", "u3"]
    assert (d3.runs, d3.calls, d3.baseline_reused) == (1, 3, 1)
    assert (d4.action, d4.runs, d4.calls, d4.baseline_reused) == ("promoted", 7, 21, 1)
    assert "1 baseline runs shared" in d4.reason


def test_a_failing_or_empty_replay_defers(store: MemoryStore) -> None:
    mid = store.add("This lesson helps with {x}", K.SKILL_CARD)
    d = MemoryCI(store, UnitFake(store, [])).process([mid])[0]
    assert d.action == "deferred" and "no validation units" in d.reason
    assert store.get(mid).status is S.QUARANTINED and store.replays(mid) == []


# ------------------------------------------------------------------ real replays: no critic calls
def _actor(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> dict[str, Any]:
    if "score" in (schema or {}).get("properties", {}):
        raise AssertionError("a validation replay called the critic")
    prompt = "\n".join(m.content for m in messages)
    answer = "Paris" if "Paris for France" in prompt else "Lyon"
    return {"thought": "answer", "action": "DONE", "params": {"answer": answer}}


def _env(seed: int) -> pa.Environment:
    return pa.SimpleEnvironment(
        outcome_fn=lambda s: None if "answer" not in s.data else float(s.data["answer"] == "Paris")
    )


def test_replays_make_no_critic_calls_when_ground_truth_exists(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    actor = pa.FunctionModel(_actor)
    tasks = [ReplayTask(f"Capital of France? ({i})", _env) for i in range(4)]
    replay = ValidationReplay(store, actor, tasks)
    mid = store.add("For capital questions about {country}: e.g. Paris for France.", K.SKILL_CARD)
    d = MemoryCI(store, replay).process([mid])[0]
    assert d.action == "promoted" and d.wins == 4
    assert replay.runs == 8 and d.calls == 8  # one actor call per run, no critic call at all
    assert all("score" not in (c.schema or {}).get("properties", {}) for c in actor.calls)


def test_no_ground_truth_keeps_candidates_quarantined_and_says_so(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    actor = pa.FunctionModel(_actor)
    no_gt = [ReplayTask(f"Capital of France? ({i})", lambda seed: pa.SimpleEnvironment()) for i in range(4)]
    replay = ValidationReplay(store, actor, no_gt)
    mid = store.add("For capital questions about {country}: e.g. Paris for France.", K.SKILL_CARD)
    d = MemoryCI(store, replay).process([mid])[0]
    assert d.action == "deferred" and d.no_ground_truth == 4 and d.pairs == 0
    assert "no ground truth" in d.reason and "does not decide on Φ" in d.reason
    assert replay.runs == 4  # only the baselines: without ground truth the 'with' run is skipped
    assert store.get(mid).status is S.QUARANTINED
    assert MemoryCI(store, replay).process([mid])[0].runs == 0  # those units are not re-run


def test_baselines_are_kept_across_gates_until_the_promoted_state_changes(store: MemoryStore) -> None:
    replay = UnitFake(store, ["a", "b"])
    ci = MemoryCI(store, replay, units_per_gate=2)
    flat = store.add("A remark that changes nothing about {x}", K.SKILL_CARD)
    ci.process([flat])
    assert replay.baselines() == ["a"]  # a tie on "a", and "b" alone cannot decide: stopped
    # a later gate, the same promoted state: the candidate's baseline comes from the cache
    other = store.add("Another neutral remark on {y}", K.SKILL_CARD)
    [d] = ci.process([other])
    assert replay.baselines() == ["a"] and (d.runs, d.baseline_reused) == (1, 1)
    # a promotion changes what a baseline run sees: the next gate runs its baselines again
    assert ci.teach("Always check the water level first").promoted
    late = store.add("A third neutral remark on {w}", K.SKILL_CARD)
    [d3] = ci.process([late])
    assert replay.baselines() == ["a", "a"] and (d3.runs, d3.baseline_reused) == (2, 0)
    assert all(k[0] == ci._promoted() for k in ci.baselines)  # only the current state is kept


def test_the_learner_replays_at_most_its_budget_and_the_leaning_candidates_first(tmp_path: Path) -> None:
    from purpose_agent.loop.learning import Learner

    class Fake(UnitFake):
        empty_reason = ""

        def close(self) -> None:
            pass

    store = make_store(tmp_path / "l.db")
    learner = Learner(store, pa.Learning(candidates_per_gate=2, units_per_gate=1))
    replay = Fake(store, [f"u{i}" for i in range(6)])
    learner._replay = replay  # type: ignore[assignment]
    learner._ci = MemoryCI(store, replay, units_per_gate=1)
    ids = [store.add(f"Lesson {i}: this helps with {{thing{i}}}", K.SKILL_CARD) for i in range(3)]
    first = {d.memory_id: d for d in learner.gate(ids)}
    # two replayed (one win each); the third scanned and quarantined, waiting for a later gate
    assert [first[i].wins for i in ids[:2]] == [1, 1] and first[ids[2]].runs == 0
    assert "candidates_per_gate=2 spent" in first[ids[2]].reason
    assert all(store.get(i).status is S.QUARANTINED for i in ids)
    # next gate, one new candidate: the two leaning their way go first and fill the budget
    new = store.add("Lesson 3: this helps with {thing3}", K.SKILL_CARD)
    second = {d.memory_id: d for d in learner.gate([new])}
    assert [second[i].wins for i in ids[:2]] == [2, 2]
    assert new in second and second[new].runs == 0 and ids[2] not in second
    # a new candidate that merged into a waiting one: that one counts once, among the new ones
    wide = Learner(store, pa.Learning(candidates_per_gate=10, units_per_gate=1))
    chosen = wide.pending([ids[0]], replay.units())
    assert sorted(chosen) == sorted([*ids, new]) and chosen[0] == ids[0]
    store.close()
    # among new candidates, those grounded in the runs go before a model's free text
    other = make_store(tmp_path / "g.db")
    free = other.add("Free text: this helps with {thing5}", K.SKILL_CARD, made_by="distiller")
    grounded = other.add("Grounded: this helps with {thing6}", K.SKILL_CARD, made_by="experience")
    one = Learner(other, pa.Learning(candidates_per_gate=1))
    assert one.pending([free, grounded], replay.units()) == [grounded]
    other.close()


def test_a_new_gate_in_another_process_reuses_the_recorded_baselines(store: MemoryStore) -> None:
    replay = UnitFake(store, ["a", "b", "c"])
    first = store.add("Lesson one: this helps with {x}", K.SKILL_CARD)
    MemoryCI(store, replay, units_per_gate=2).process([first])
    assert replay.baselines() == ["a", "b"]
    # a new MemoryCI (another Orchestrator, another process) on the same store and state
    second = store.add("Lesson two: this helps with {y}", K.SKILL_CARD)
    [d] = MemoryCI(store, replay, units_per_gate=3).process([second])
    assert replay.baselines() == ["a", "b", "c"]  # only "c" had no recorded baseline
    assert (d.runs, d.baseline_reused, d.wins) == (4, 2, 3)
    # the recorded outcomes are what the runs gave, so the evidence is the same as a rerun's
    assert [p.without for p in past_evidence(store, second).pairs()] == [0.5, 0.5, 0.5]
    # after a promotion the state differs: nothing recorded before applies
    assert MemoryCI(store, replay).teach("Always read the whole task first").promoted
    third = store.add("Lesson three: this helps with {z}", K.SKILL_CARD)
    MemoryCI(store, replay, units_per_gate=1).process([third])
    assert replay.baselines() == ["a", "b", "c", "a"]


def test_recorded_baselines_of_another_model_are_not_reused(store: MemoryStore) -> None:
    replay = UnitFake(store, ["a"])
    replay.llm = pa.FunctionModel(lambda m, s: "x", name="model-a")  # type: ignore[attr-defined]
    MemoryCI(store, replay).process([store.add("Lesson one: this helps with {x}", K.SKILL_CARD)])
    replay.llm = pa.FunctionModel(lambda m, s: "x", name="model-b")  # type: ignore[attr-defined]
    MemoryCI(store, replay).process([store.add("Lesson two: this helps with {y}", K.SKILL_CARD)])
    assert replay.baselines() == ["a", "a"]


def _capital_env(city: str) -> Any:
    def make(seed: int) -> pa.Environment:
        return pa.SimpleEnvironment(
            outcome_fn=lambda s: None if "answer" not in s.data else float(s.data["answer"] == city)
        )

    return make


def test_the_gate_replays_a_lesson_on_the_tasks_most_like_its_own_first(tmp_path: Path) -> None:
    """Validation tasks of another kind come first in the list; the lesson cannot help there
    (a tie both ways), and after one tie the 3 units left in the gate could not decide it.
    Ranked by task similarity, the gate spends its 4 units on the capital-of-France questions
    and promotes on 4 wins."""
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    actor = pa.FunctionModel(_actor)
    others = [
        ReplayTask(f"Capital of Germany? ({i})", _capital_env("Berlin"), key=f"de{i}") for i in range(3)
    ]
    france = [ReplayTask(f"Capital of France? ({i})", _capital_env("Paris"), key=f"fr{i}") for i in range(4)]
    replay = ValidationReplay(store, actor, [*others, *france])
    mid = store.add("For capital questions about France: e.g. Paris for France.", K.SKILL_CARD)
    assert replay.units_for(store.get(mid))[:4] == ["fr0#0", "fr1#0", "fr2#0", "fr3#0"]
    assert replay.units()[:3] == ["de0#0", "de1#0", "de2#0"]  # the given order is unchanged
    d = MemoryCI(store, replay, units_per_gate=4).process([mid])[0]
    assert (d.action, d.wins, d.losses, d.ties) == ("promoted", 4, 0, 0)
    assert sorted(past_evidence(store, mid).by_key) == ["fr0#0", "fr1#0", "fr2#0", "fr3#0"]

    # the same gate on a replay that does not rank its units: the first unit is a tie, and
    # the 3 left cannot decide it, so the lesson stays quarantined
    class Unranked:
        def __init__(self, inner: ValidationReplay) -> None:
            self.inner = inner

        def units(self) -> list[str]:
            return self.inner.units()

        def run_unit(self, key: str, include: Sequence[str], exclude: Sequence[str]) -> UnitRun:
            return self.inner.run_unit(key, include, exclude)

    other = store.add("For capital questions about France: Paris is the answer for France.", K.SKILL_CARD)
    d2 = MemoryCI(store, Unranked(replay), units_per_gate=4).process([other])[0]
    assert (d2.action, d2.ties, d2.pairs) == ("deferred", 1, 1)


def test_a_grounded_lessons_task_is_read_from_its_meta() -> None:
    from purpose_agent.memory.sources import task_of
    from purpose_agent.memory.types import Memory

    case = Memory(
        "m1", K.EPISODIC_CASE, "Worked example ...", S.CANDIDATE, meta={"case": {"task": "Solve {a}x = {b}"}}
    )
    fail = Memory("m2", K.FAILURE_PATTERN, "In ...", S.CANDIDATE, meta={"failure": {"task": "Cook {dish}"}})
    plain = Memory("m3", K.SKILL_CARD, "Always check units.", S.CANDIDATE)
    assert [task_of(m) for m in (case, fail, plain)] == [
        "Solve {a}x = {b}",
        "Cook {dish}",
        "Always check units.",
    ]


def test_units_are_ranked_by_the_words_that_tell_kinds_of_task_apart(tmp_path: Path) -> None:
    """reasoning-gym purposes share "Answer the question correctly"; the abstraction of a failed
    run had turned "Solve" into {obj1}. With the run's entities filled back in (its meta keeps
    them), the equation questions come first; numbers and the variable letter do not count."""
    from purpose_agent.memory.sources import task_of
    from purpose_agent.memory.types import Memory

    head = "Answer the question correctly: "
    purposes = [f"{head}Calculate 12 + 7 * 3", f"{head}Calculate 4 * 5", f"{head}Solve for m: 3*m = 12",
                f"{head}Solve for b: 7*b = 98"]  # fmt: skip
    store = MemoryStore(tmp_path / "m.sqlite", embedder=None)
    replay = ValidationReplay(
        store, pa.FunctionModel(_actor), [ReplayTask(p, _env, key=f"u{i}") for i, p in enumerate(purposes)]
    )
    pattern = f"{head}{{obj1}} for e: {{num1}}*e = {{num2}}"
    lesson = Memory(
        "m1", K.FAILURE_PATTERN, "In ...", S.QUARANTINED,
        meta={"failure": {"task": pattern, "bindings": {"obj1": "Solve", "num1": "98", "num2": "1218"}}},
    )  # fmt: skip
    assert task_of(lesson) == f"{head}Solve for e: 98*e = 1218"
    assert replay.units_for(lesson)[:2] == ["u2#0", "u3#0"]
    arithmetic = Memory("m2", K.SKILL_CARD, "To calculate an expression, run it in Python.", S.QUARANTINED)
    assert replay.units_for(arithmetic)[:2] == ["u0#0", "u1#0"]
