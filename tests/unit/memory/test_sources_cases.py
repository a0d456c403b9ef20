"""Verified worked examples: placeholders, re-instantiation, merge, supersede, run modes."""

from __future__ import annotations

from typing import Any

import pytest
from _memory_helpers import make_store, sha256

from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import Action, State, Step, TaskResult
from purpose_agent.memory import MemoryKind, MemoryStatus, compile_memories
from purpose_agent.memory.sources import (
    build_case,
    case_of,
    extract,
    fill,
    harvest,
    instantiate,
    is_worked_example,
    match_pattern,
)

K, S = MemoryKind, MemoryStatus
COIN = "Your task is to find the coin in the {room}."


def game(
    purpose: str, moves: list[tuple[str, str, float | None]], run_id: str, start: str = ""
) -> TaskResult:
    """A text-game run: each move is (command, observation, ground truth after it)."""
    state = State({"observation": start or "You are in the hallway."}, start or "You are in the hallway.")
    steps = []
    for i, (cmd, obs, outcome) in enumerate(moves, 1):
        after = State({"observation": obs, "n": i}, obs)
        steps.append(Step(i, Action(cmd), state, after, 0.0, 0.0, observation=obs, outcome=outcome))
        state = after
    final = steps[-1].outcome if steps else None
    return TaskResult(purpose, bool(final and final >= 1), 0.0, steps, state, final, run_id=run_id)


def coin_run(room: str, run_id: str, detour: int = 0) -> TaskResult:
    moves = [(f"look around {i}", f"You see nothing special ({i}).", 0.0) for i in range(detour)]
    moves += [
        (f"open door to {room}", f"The door to the {room} is now open.", 0.0),
        (f"move to {room}", f"You are in the {room}. You see a coin.", 0.0),
        ("take coin", "You take the coin. You won!", 1.0),
    ]
    return game(COIN.format(room=room), moves, run_id)


def cases(store: Any, status: S | None = None) -> list[Any]:
    return store.list(kind=K.EPISODIC_CASE, status=status)


# ------------------------------------------------------------------ abstraction
def test_entities_of_the_task_become_consistent_placeholders():
    ab = extract(COIN.format(room="kitchen"), ["open door to kitchen", "move to kitchen", "take coin"])
    assert ab.bindings == {"room1": "kitchen", "obj1": "coin"}
    assert (
        ab.apply("Your task is to find the coin in the Kitchen.")
        == "Your task is to find the {obj1} in the {room1}."
    )
    assert ab.apply("take coin; open door to kitchen") == "take {obj1}; open door to {room1}"
    assert ab.apply("coins and kitchenette") == "coins and kitchenette"  # whole words only


def test_rooms_from_the_state_numbers_quotes_and_identifiers():
    ab = extract(
        "Find a coin.", ["open door to pantry", "take coin"], "To the north is the door to the pantry."
    )
    assert ab.bindings == {"room1": "pantry", "obj1": "coin"}
    ab2 = extract("Use `count_words` to count 'two words' and add 12 or 3.5.", ["answer 15.5"])
    assert ab2.bindings == {"fn": "count_words", "str1": "two words", "num1": "12", "num2": "3.5"}
    assert extract("Find a coin.", ["take apple"]).bindings == {}  # a word of the task no action names


def test_a_coding_task_abstracts_the_function_name_in_the_code():
    purpose = (
        "Write a Python function `double` with signature `double(x: int) -> int`: return twice the number."
    )
    code = "def double(x):\n    return 2 * x\n"
    state0 = State({"passed": 0}, "No solution submitted yet.")
    after = State({"passed": 2}, "Tests: 2/2 passed.")
    step = Step(
        1, Action("submit_code", {"code": code}), state0, after, 0.0, 10.0, "Tests: 2/2 passed.", outcome=1.0
    )
    case = build_case(TaskResult(purpose, True, 10.0, [step], after, 1.0, run_id="r1"))
    assert case is not None
    assert (
        case.task
        == "Write a Python function `{fn}` with signature `{fn}(x: int) -> int`: return twice the number."
    )
    assert case.actions == (
        {"action": "submit_code", "params": {"code": "def {fn}(x):\n    return 2 * x\n"}},
    )
    assert case.bindings == {"fn": "double"}


def test_re_instantiation_for_a_new_task_of_the_same_pattern():
    case = build_case(coin_run("kitchen", "r1"))
    assert case is not None and case.task == "Your task is to find the {obj1} in the {room1}."
    assert match_pattern(case.task, "Your task is to find the key in the garage.") == {
        "obj1": "key",
        "room1": "garage",
    }
    shown = instantiate(case, "your task is to find the  key in the garage.")
    assert shown.matched and shown.task == "Your task is to find the key in the garage."
    assert [a["action"] for a in shown.actions] == ["open door to garage", "move to garage", "take key"]
    other = instantiate(case, "Cook a meal.")  # another kind of task: the original, concrete example
    assert not other.matched and other.actions[2] == {"action": "take coin"}
    assert match_pattern(case.task, "Your task is to find the key.") is None


def test_an_equation_s_variable_becomes_a_placeholder_and_the_task_verb_stays():
    """Seen in a reasoning-gym table: "Solve" became ``{obj1}`` because the code said
    ``solve``, and the one-letter variable stayed, so the example only fitted questions in
    ``e`` and its code imported the new question's first word from sympy."""
    purpose = "Answer the question correctly: Solve for e: 56 - 98*e = -1218"
    code = "from sympy import symbols, Eq, solve\ne = symbols('e')\nprint(solve(Eq(56 - 98*e, -1218), e)[0])"
    ab = extract(purpose, ["run_python", code, "DONE", "13"])
    assert ab.bindings == {"num1": "56", "num2": "98", "num3": "-1218", "var1": "e"}
    pattern = ab.apply(purpose)
    assert pattern == "Answer the question correctly: Solve for {var1}: {num1} - {num2}*{var1} = {num3}"
    bindings = match_pattern(pattern, "Answer the question correctly: Solve for q: 100 - 62*q = -3372")
    assert bindings is not None
    assert fill(ab.apply(code), bindings) == (
        "from sympy import symbols, Eq, solve\nq = symbols('q')\nprint(solve(Eq(100 - 62*q, -3372), q)[0])"
    )


def test_english_one_letter_words_and_unnamed_letters_are_not_variables():
    assert "var1" not in extract("Solve for a: 3*a = 12", ["a = 12 / 3"]).bindings  # "a" is English
    assert "var1" not in extract("Solve for x: 3*x = 12", ["print(12 / 3)"]).bindings  # no action names x
    assert extract("Solve for x: 3*x = 12", ["x = 12 / 3"]).bindings["var1"] == "x"


def test_match_pattern_is_strict_about_repeats_and_literals():
    assert match_pattern("Move {obj1} to {obj1}", "Move box to box") == {"obj1": "box"}
    assert match_pattern("Move {obj1} to {obj1}", "Move box to bag") is None
    assert match_pattern("{a}{b}", "xy") is None  # adjacent placeholders are ambiguous
    assert match_pattern("Take {obj1}.", "Take the red ball.") == {"obj1": "the red ball"}
    assert match_pattern("no placeholders", "No  Placeholders") == {}


# ------------------------------------------------------------------ storing
def test_a_verified_success_is_stored_as_a_compact_abstracted_case(tmp_path):
    store = make_store(tmp_path / "m.db")
    run = coin_run("kitchen", "run-1")
    noop = Step(9, Action("look"), run.final_state, run.final_state, 0.0, 0.0, "same", outcome=1.0)
    done = Step(10, Action("DONE"), run.final_state, run.final_state, 0.0, 0.0, "", outcome=1.0)
    run.steps += [noop, done]
    ids = harvest(store, run)
    [m] = cases(store)
    assert m.id in ids and m.status is S.CANDIDATE and m.made_by == "experience" and m.sources == ("run-1",)
    meta = m.meta["case"]
    assert meta["task"] == "Your task is to find the {obj1} in the {room1}."
    assert meta["actions"] == [
        {"action": "open door to {room1}"},
        {"action": "move to {room1}"},
        {"action": "take {obj1}"},
    ]
    assert meta["bindings"] == {"room1": "kitchen", "obj1": "coin"}
    assert meta["steps"] == 3 and meta["raw_steps"] == 5  # the no-op and DONE are left out
    assert meta["observations"][-1] == "You take the {obj1}. You won!"
    assert '"Your task is to find the {obj1} in the {room1}."' in m.text  # BM25 sees the pattern
    assert "kitchen" not in m.text and is_worked_example(m)


@pytest.mark.parametrize(
    ("outcome", "success"),
    [(None, True), (0.5, False), (0.0, False)],
    ids=["critic-only", "partial", "failed"],
)
def test_only_ground_truth_success_makes_a_case(tmp_path, outcome, success):
    store = make_store(tmp_path / "m.db")
    run = coin_run("kitchen", "r")
    run.outcome, run.success = outcome, success
    harvest(store, run)
    assert cases(store) == []


def test_the_same_trajectory_merges_and_counts(tmp_path):
    store = make_store(tmp_path / "m.db")
    first = harvest(store, coin_run("kitchen", "r1"))
    second = harvest(store, coin_run("garage", "r2"))  # other room, same abstracted trajectory
    [m] = cases(store)
    assert m.id in first and m.id in second
    assert m.merges == 1 and m.sources == ("r1", "r2")


def test_a_merge_into_a_promoted_case_is_not_returned(tmp_path):
    store = make_store(tmp_path / "m.db")
    [mid] = [i for i in harvest(store, coin_run("kitchen", "r1")) if store.get(i).kind is K.EPISODIC_CASE]
    store.promote(mid, "test")
    ids = harvest(store, coin_run("garage", "r2"))
    assert mid not in ids and store.get(mid).merges == 1


def go_to_run(room: str, run_id: str) -> TaskResult:
    """The same length as coin_run but one other step ("go to", not "move to")."""
    return game(
        COIN.format(room=room),
        [
            (f"open door to {room}", f"The door to the {room} is now open.", 0.0),
            (f"go to {room}", f"You are in the {room}. You see a coin.", 0.0),
            ("take coin", "You take the coin. You won!", 1.0),
        ],
        run_id,
    )


def actions(memory: Any) -> list[str]:
    return [a["action"] for a in memory.meta["case"]["actions"]]


def test_a_shorter_success_stages_a_supersession_of_a_longer_candidate(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1", detour=4))
    [long] = cases(store)
    ids = harvest(store, coin_run("garage", "r2"))
    short = next(m for m in cases(store) if m.id != long.id)
    assert short.id in ids and short.status is S.CANDIDATE and short.supersedes == (long.id,)
    assert store.get(long.id).status is S.CANDIDATE  # stays as it is until the shorter one passes the gate
    assert short.meta["case"]["run_id"] == "r2" and short.meta["case"]["steps"] == 3
    assert short.meta["case"]["bindings"] == {"room1": "garage", "obj1": "coin"}
    assert short.sources == ("r2", "r1") and short.made_by == "experience"
    store.promote(short.id, "replay gain")
    old = store.get(long.id)
    assert old.status is S.ARCHIVED and old.superseded_by == short.id


def test_a_rejected_shorter_case_leaves_the_longer_one(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1", detour=4))
    [long] = cases(store)
    harvest(store, coin_run("garage", "r2"))
    short = next(m for m in cases(store) if m.id != long.id)
    store.reject(short.id, "no gain on replay")
    assert store.get(long.id).status is S.CANDIDATE and store.get(long.id).superseded_by is None
    ids = harvest(store, coin_run("attic", "r3"))  # the rejected trajectory again
    assert short.id not in ids and len(cases(store)) == 2
    again = store.get(short.id)
    assert again.status is S.REJECTED and again.merges == 1 and "r3" in again.sources  # not re-judged
    assert store.get(long.id).status is S.CANDIDATE


def test_a_shorter_success_supersedes_a_promoted_case_once_it_passes_the_gate(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1", detour=4))
    [long] = cases(store)
    store.promote(long.id, "test")
    ids = harvest(store, coin_run("garage", "r2"))
    [new] = [m for m in cases(store) if m.id != long.id]
    assert new.id in ids and new.status is S.CANDIDATE  # a candidate for the gate like any other
    assert store.get(long.id).status is S.PROMOTED
    assert [r.memory.id for r in store.retrieve(COIN.format(room="cellar"))] == [long.id]
    store.promote(new.id, "replay gain")
    old = store.get(long.id)
    assert old.status is S.ARCHIVED and old.superseded_by == new.id
    new = store.get(new.id)
    assert new.status is S.PROMOTED and new.supersedes == (long.id,) and new.made_by == "experience"
    parsed = case_of(new)
    assert parsed is not None and parsed.run_id == "r2" and parsed.steps == 3  # read from its meta
    assert parsed.bindings == {"room1": "garage", "obj1": "coin"} and parsed.raw_steps == 3
    assert new.sources[0] == "r2"
    assert store.rollback(new.id, "regression") == [long.id]
    restored = store.get(long.id)
    assert restored.status is S.PROMOTED and restored.superseded_by is None
    assert [r.memory.id for r in store.retrieve(COIN.format(room="cellar"))] == [long.id]


def test_a_shorter_run_one_step_apart_supersedes_instead_of_merging(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1", detour=1))  # 4 steps; the 3-step text is a near-duplicate
    [long] = cases(store)
    harvest(store, coin_run("garage", "r2"))
    [short] = [m for m in cases(store) if m.id != long.id]
    assert store.get(long.id).merges == 0 and short.supersedes == (long.id,)
    assert actions(short) == ["open door to {room1}", "move to {room1}", "take {obj1}"]
    assert actions(store.get(long.id))[0] == "look around 0"


def test_a_same_length_variant_keeps_its_own_action_sequence(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1"))
    [case] = cases(store)
    ids = harvest(store, go_to_run("garage", "r2"))  # a near-duplicate text, one step other
    [variant] = [m for m in cases(store) if m.id != case.id]
    assert store.get(case.id).merges == 0 and store.get(case.id).status is S.CANDIDATE
    assert variant.status is S.ARCHIVED and variant.id not in ids  # evidence, out of prompts
    assert actions(variant) == ["open door to {room1}", "go to {room1}", "take {obj1}"]
    assert variant.sources == ("r2",) and variant.meta["case"]["run_id"] == "r2"
    harvest(store, go_to_run("attic", "r3"))  # the same variant again merges into it
    assert store.get(variant.id).merges == 1 and len(cases(store)) == 2


def test_a_longer_success_after_a_shorter_one_is_kept_out_of_prompts(tmp_path):
    store = make_store(tmp_path / "m.db")
    harvest(store, coin_run("kitchen", "r1"))
    ids = harvest(store, coin_run("garage", "r2", detour=4))
    by_status = {m.status: m for m in cases(store)}
    assert set(by_status) == {S.CANDIDATE, S.ARCHIVED}
    assert by_status[S.ARCHIVED].id not in ids and by_status[S.CANDIDATE].meta["case"]["steps"] == 3


def test_a_case_is_retrieved_for_a_similar_task(tmp_path):
    store = make_store(tmp_path / "m.db")
    [mid] = [i for i in harvest(store, coin_run("kitchen", "r1")) if store.get(i).kind is K.EPISODIC_CASE]
    store.promote(mid, "test")
    store.add("Slice the carrot before cooking it.", K.SKILL_CARD, status=S.PROMOTED)
    purpose = "Your task is to find the key in the garage."
    got = store.retrieve(purpose, 2)
    assert got and got[0].memory.id == mid
    text = compile_memories(got, budget_tokens=400, purpose=purpose).text
    assert '{"action": "take key"}' in text and '"open door to garage"' in text


# ------------------------------------------------------------------ run modes and odd input
def test_eval_test_and_validation_write_nothing(tmp_path):
    path = tmp_path / "m.db"
    make_store(path).close()
    before = sha256(path)
    with make_store(path, RunMode.EVAL_TEST) as ro:
        assert harvest(ro, coin_run("kitchen", "r1")) == []
    assert sha256(path) == before
    with make_store(path, RunMode.LEARNING_VALIDATION) as val:
        assert harvest(val, coin_run("kitchen", "r1")) == [] and val.count() == 0


@pytest.mark.parametrize(
    "result",
    [
        TaskResult("", True, 10.0, [], State(), 1.0),
        TaskResult("Find the coin.", False, 0.0, [], State(), None),
        game("Find the coin.", [("take coin", "", None)], ""),
        game("x", [("odd", "obs", 1.0)], "r"),
    ],
    ids=["no-steps", "no-outcome", "unknown-outcome", "one-word-task"],
)
def test_odd_trajectories_never_raise(tmp_path, result):
    store = make_store(tmp_path / "m.db")
    ids = harvest(store, result)
    assert all(store.get(i).status is S.CANDIDATE for i in ids)
    if not result.steps:
        assert ids == []


def test_odd_params_and_states_do_not_raise(tmp_path):
    store = make_store(tmp_path / "m.db")
    s0, s1 = State({}), State({"x": [1, 2]})
    step = Step(
        1,
        Action("act", {"n": 3, "obj": object(), "deep": {"a": [None, "b" * 5000]}}),
        s0,
        s1,
        0,
        0,
        outcome=1.0,
    )
    ids = harvest(store, TaskResult("Do it with 3 things.", True, 10.0, [step], s1, 1.0, run_id="r"))
    [m] = [store.get(i) for i in ids if store.get(i).kind is K.EPISODIC_CASE]
    [action] = m.meta["case"]["actions"]
    assert action["params"]["n"] == 3 and len(action["params"]["deep"]["a"][1]) <= 400


def test_an_answer_given_with_done_is_a_step_of_the_case(tmp_path):
    store = make_store(tmp_path / "m.db")
    q = "Answer the question correctly: what is 12 plus 30?"
    s0 = State({"answer": None, "score": None}, "Question: what is 12 plus 30?\nNo answer given yet.")
    s1 = State({"answer": "42", "score": 1.0}, "Question: what is 12 plus 30?\nAnswer: 42\nCorrect.")
    step = Step(1, Action("DONE", {"answer": "42"}), s0, s1, 0.0, 10.0, s1.summary, outcome=1.0)
    harvest(store, TaskResult(q, True, 10.0, [step], s1, 1.0, run_id="q1"))
    [m] = cases(store)
    assert m.meta["case"]["task"] == "Answer the question correctly: what is {num1} plus {num2}?"
    assert m.meta["case"]["actions"] == [{"action": "DONE", "params": {"answer": "42"}}]


# ------------------------------------------------------------------ corrected runs
EQ = "Answer the question correctly: Solve for m: 3*m + 5 = 191"
QUESTION = "Question: Solve for m: 3*m + 5 = 191"


def equation_run(printed: str, answer: str, expected: Any = "62", run_id: str = "e1") -> TaskResult:
    """A one-answer run: a program printed ``printed``, then the answer was rejected."""
    s0 = State({"answer": None, "score": None}, f"{QUESTION}\nNo answer given yet.")
    code = "print((191 - 5) / 3)"
    obs1 = f"{QUESTION}\nYou ran:\n{code}\nIt printed:\n{printed}\nNo answer given yet."
    s1 = State({"answer": None, "score": None, "runs": 1, "printed": printed}, obs1)
    data: dict[str, Any] = {"answer": answer, "score": 0.0}
    if expected is not None:
        data["expected"] = expected
    obs2 = f"{QUESTION}\nAnswer: {answer}\nIncorrect. The expected answer was 62."
    s2 = State(data, obs2)
    steps = [
        Step(1, Action("run_python", {"code": code}), s0, s1, 0.0, 0.0, obs1, outcome=0.0),
        Step(2, Action("DONE", {"answer": answer}), s1, s2, 0.0, 0.0, obs2, outcome=0.0),
    ]
    return TaskResult(EQ, False, 0.0, steps, s2, 0.0, run_id=run_id)


def test_a_run_that_found_the_answer_but_gave_it_in_another_form_is_a_corrected_case(tmp_path):
    store = make_store(tmp_path / "m.db")
    ids = harvest(store, equation_run("62.0", "m = 62"))
    [m] = cases(store)
    assert m.id in ids and m.status is S.CANDIDATE and m.made_by == "experience"
    case = case_of(m)
    assert case is not None
    shown = instantiate(case, EQ)
    assert shown.actions[-1] == {"action": "DONE", "params": {"answer": "62"}}
    assert shown.actions[0]["action"] == "run_python"
    assert shown.observations == ("62.0", "")  # what the program printed; no verdict
    assert shown.rejected == "m = 62"
    assert m.text.endswith('(The checker rejected the answer "m = 62"; it accepts the one above.)')
    got = store.retrieve(EQ, 2, statuses=[S.CANDIDATE])
    section = compile_memories(got, budget_tokens=400, purpose=EQ).text
    assert '"answer": "62"' in section
    assert 'The checker rejected the answer "m = 62"; it accepts the one above.' in section


def test_the_rejected_answer_alone_can_show_the_run_had_it(tmp_path):
    case = build_case(equation_run("(nothing)", "m = 62"))
    assert case is not None and case.corrected_from.startswith("m = ")


@pytest.mark.parametrize(
    ("printed", "answer", "expected"),
    [
        ("61.0", "61", "62"),  # the run never had the answer: no correction of a guess
        ("162", "m = 6.2", "62"),  # digits of it are not the number
        ("62.0", "m = 62", None),  # the environment named no accepted answer
        ("62.0", "62", "62"),  # nothing to correct
    ],
)
def test_no_corrected_case_without_the_evidence(printed, answer, expected):
    assert build_case(equation_run(printed, answer, expected)) is None


def test_the_question_and_the_code_are_not_evidence_that_the_run_found_the_answer():
    # 191 is in the question and in the code; only the program's output counts
    assert build_case(equation_run("186.0", "m = 186", expected="191")) is None
