"""Procedures induced from two or more verified successes of the same kind of task."""

from __future__ import annotations

from typing import Any

from _memory_helpers import make_store

from purpose_agent.core.types import Action, State, Step, TaskResult
from purpose_agent.memory import MemoryKind, MemoryStatus, Retrieved, compile_memories
from purpose_agent.memory.sources import align, case_of, harvest, induce, is_procedure, procedure_of
from purpose_agent.memory.sources._records import support
from purpose_agent.models.testing import ScriptedModel

K, S = MemoryKind, MemoryStatus
TASK = "Your task is to find the coin in the {room}."
#: detours different enough that the store does not merge the cases as near-duplicates
LOOK = ["look around carefully", "read the old sign", "listen at the wall", "inspect every shelf"]
WAIT = ["wait a moment", "check the inventory bag", "smell the fresh flowers", "count all windows"]
FEEL = ["feel the rough floor", "knock twice loudly", "hum a quiet tune", "stretch both arms"]


def game(purpose: str, cmds: list[str], run_id: str) -> TaskResult:
    """A run that ends solved after ``cmds`` (ground truth 1.0 on the last one)."""
    state = State({"observation": "You are in the hallway."}, "You are in the hallway.")
    steps = []
    for i, cmd in enumerate(cmds, 1):
        after = State({"observation": f"after {cmd}", "n": i}, f"after {cmd}")
        outcome = 1.0 if i == len(cmds) else 0.0
        steps.append(Step(i, Action(cmd), state, after, 0.0, 0.0, observation=after.summary, outcome=outcome))
        state = after
    return TaskResult(purpose, True, 10.0, steps, state, 1.0, run_id=run_id)


def coin(room: str, run_id: str, extra: list[str] | None = None) -> TaskResult:
    cmds = [f"open door to {room}", *(extra or []), f"move to {room}", "take coin"]
    return game(TASK.format(room=room), cmds, run_id)


def procedures(store: Any) -> list[Any]:
    return [m for m in store.list(kind=K.SKILL_CARD) if is_procedure(m)]


def test_align_keeps_the_shared_steps_in_order():
    assert align([["a", "b", "c", "d"], ["a", "x", "c", "d"], ["a", "c", "y", "d"]]) == ["a", "c", "d"]
    assert align([["a", "b"], ["b", "a"]]) in (["a"], ["b"])
    assert align([["a"], ["b"]]) == []
    assert align([["a", "b"], []]) == []


def test_no_procedure_from_one_success(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1"))
    assert procedures(store) == []
    [m] = store.list(kind=K.EPISODIC_CASE)
    case = case_of(m)
    assert case is not None and induce([(m, case)]) is None


def test_two_successes_induce_their_shared_steps(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1", LOOK))
    ids = harvest(store, coin("garage", "r2", WAIT))
    [p] = procedures(store)
    assert p.id in ids and p.status is S.CANDIDATE and p.made_by == "experience" and p.kind is K.SKILL_CARD
    proc = procedure_of(p)
    assert proc is not None and proc.successes == 2
    assert [a["action"] for a in proc.actions] == ["open door to {room1}", "move to {room1}", "take {obj1}"]
    case_ids = {m.id for m in store.list(kind=K.EPISODIC_CASE)}
    assert set(p.meta["procedure"]["source_ids"]) == case_ids and set(p.sources) == {"r1", "r2"}
    reasons = [h.reason for i in case_ids for h in store.history(i)]
    assert not any("procedure" in r for r in reasons)  # the sources keep their place and status
    assert p.text.splitlines()[0] == "Procedure shared by verified successes."
    assert p.text.splitlines()[2:] == [
        '1. {"action": "open door to {room1}"}',
        '2. {"action": "move to {room1}"}',
        '3. {"action": "take {obj1}"}',
    ]


def test_a_merged_duplicate_counts_as_a_second_success(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1"))
    harvest(store, coin("garage", "r2"))
    [p] = procedures(store)
    assert support(p, procedure_of(p)) == 2  # type: ignore[arg-type]
    [case] = store.list(kind=K.EPISODIC_CASE)
    assert case.merges == 1
    # a variant one detour step longer is its own (archived) case with its own steps, and a
    # third success of the procedure its steps still align to
    harvest(store, coin("attic", "r3", ["wait"]))
    [variant] = [m for m in store.list(kind=K.EPISODIC_CASE) if m.id != case.id]
    assert store.get(case.id).merges == 1 and variant.status is S.ARCHIVED
    assert [a["action"] for a in variant.meta["case"]["actions"]][1] == "wait"
    [p] = procedures(store)
    assert support(p, procedure_of(p)) == 3 and "r3" in p.sources  # type: ignore[arg-type]
    shown = compile_memories([Retrieved(p, 1.0, 1.0)], purpose="").text
    assert "procedure shared by 3 verified successes" in shown


def test_a_third_success_with_the_same_steps_merges_into_the_procedure(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1", LOOK))
    harvest(store, coin("garage", "r2", WAIT))
    [first] = procedures(store)
    ids = harvest(store, coin("attic", "r3", FEEL))
    [p] = procedures(store)
    assert p.id == first.id and p.id in ids and p.merges == 1 and "r3" in p.sources


def test_new_shared_steps_supersede_the_old_procedure_once_promoted(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1", LOOK))
    harvest(store, coin("garage", "r2", LOOK))
    [old] = procedures(store)
    assert len(procedure_of(old).actions) == 7  # type: ignore[union-attr]
    store.promote(old.id, "replay gain")
    ids = harvest(store, coin("attic", "r3", FEEL))
    [new] = [m for m in procedures(store) if m.id != old.id]
    assert new.id in ids and new.status is S.CANDIDATE and new.supersedes == (old.id,)
    assert store.get(old.id).status is S.PROMOTED  # until the new one passes the gate
    assert len(procedure_of(new).actions) == 3 and new.meta["procedure"]["successes"] == 3  # type: ignore[union-attr]
    assert set(new.sources) == {"r1", "r2", "r3"}
    store.promote(new.id, "replay gain")
    assert store.get(old.id).status is S.ARCHIVED and store.get(old.id).superseded_by == new.id
    assert store.rollback(new.id, "regression") == [old.id] and store.get(old.id).status is S.PROMOTED


def test_new_shared_steps_leave_a_staged_procedure_to_the_gate(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1", LOOK))
    harvest(store, coin("garage", "r2", LOOK))
    [old] = procedures(store)
    harvest(store, coin("attic", "r3", FEEL))
    [new] = [m for m in procedures(store) if m.id != old.id]
    assert store.get(old.id).status is S.CANDIDATE and new.supersedes == (old.id,)
    store.reject(new.id, "no gain on replay")
    assert store.get(old.id).status is S.CANDIDATE  # a rejected replacement changes nothing
    ids = harvest(store, coin("cellar", "r4", WAIT))  # the same three shared steps again
    assert new.id not in ids and store.get(new.id).merges == 1 and len(procedures(store)) == 2


def test_different_tasks_induce_nothing(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, game("Write a haiku about the sea in the kitchen.", ["write poem"], "r1"))
    harvest(store, game("Sort the list of 5 numbers.", ["sort it"], "r2"))
    assert procedures(store) == []


def test_an_optional_model_words_only_a_title(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1"))
    harvest(store, coin("garage", "r2"))
    pairs = [(m, c) for m in store.list(kind=K.EPISODIC_CASE) if (c := case_of(m)) is not None]
    model = ScriptedModel([{"title": "fetch the object from the named room"}])
    proc = induce(pairs, llm=model)
    model.assert_consumed()
    assert proc is not None and proc.title == "fetch the object from the named room"
    assert proc.actions == induce(pairs).actions  # type: ignore[union-attr]
    bad = induce(pairs, llm=ScriptedModel([{"title": "ab"}]))  # too short to name anything
    assert bad is not None and bad.title == ""


def test_a_procedure_replaces_its_sources_in_the_prompt(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin("kitchen", "r1", LOOK))
    harvest(store, coin("garage", "r2", WAIT))
    [p] = procedures(store)
    case_ids = [m.id for m in store.list(kind=K.EPISODIC_CASE)]
    items = [Retrieved(store.get(i), 1.0, 1.0) for i in case_ids] + [Retrieved(p, 0.1, 0.1)]
    purpose = "Your task is to find the key in the cellar."
    c = compile_memories(items, budget_tokens=1000, purpose=purpose)
    assert c.ids == (p.id,) and set(c.dropped) == set(case_ids)
    lines = c.text.splitlines()
    i = next(n for n, line in enumerate(lines) if line.startswith(f"- [{p.id} | skill_card] procedure"))
    assert lines[i + 1 : i + 4] == [
        '  1. {"action": "open door to cellar"}',
        '  2. {"action": "move to cellar"}',
        '  3. {"action": "take key"}',
    ]
    assert "### Procedural steps" in c.text and "### Worked examples" not in c.text
    alone = compile_memories(items[:2], budget_tokens=1000, purpose=purpose)
    assert len(alone.ids) == 1  # without the procedure, one worked example per task pattern
