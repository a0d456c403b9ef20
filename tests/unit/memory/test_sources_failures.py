"""Lessons grounded in transitions: ground truth fell or rose, the environment's own feedback,
the fix a later step found, and ExpeL-style pairing with a stored success."""

from __future__ import annotations

from typing import Any

from _memory_helpers import make_store

from purpose_agent.core.types import Action, State, Step, TaskResult
from purpose_agent.memory import MemoryKind, MemoryStatus
from purpose_agent.memory.prompt import HEADER
from purpose_agent.memory.sources import harvest, lessons

K, S = MemoryKind, MemoryStatus
TASK = "Your task is to find the coin in the {room}."
CODE_TASK = "Write a Python function `triple` with signature `triple(x)`: return three times x."


def game(
    purpose: str, moves: list[tuple[Any, str, float | None]], run_id: str, **start_data: Any
) -> TaskResult:
    """Each move is (command or Action, observation, ground truth after it, or None)."""
    state = State({"observation": "You are in the hallway.", **start_data}, "You are in the hallway.")
    steps = []
    for i, (cmd, obs, outcome) in enumerate(moves, 1):
        action = cmd if isinstance(cmd, Action) else Action(cmd)
        after = State({"observation": obs, "n": i}, obs)
        steps.append(Step(i, action, state, after, 0.0, 0.0, observation=obs, outcome=outcome))
        state = after
    final = next((s.outcome for s in reversed(steps) if s.outcome is not None), None)
    return TaskResult(purpose, bool(final and final >= 1), 0.0, steps, state, final, run_id=run_id)


def coding_run(attempts: list[tuple[str, int]], run_id: str = "c1") -> TaskResult:
    """Submissions of ``triple`` with the number of its 3 tests each one passes."""
    moves = []
    for code, passed in attempts:
        fails = "\n".join(f"  FAIL triple({n}) == {3 * n} -> assertion false" for n in range(passed + 1, 4))
        obs = f"Current solution:\n```python\n{code}\n```\nTests: {passed}/3 passed." + (
            f"\n{fails}" if fails else ""
        )
        moves.append((Action("submit_code", {"code": code}), obs, passed / 3))
    return game(CODE_TASK, moves, run_id)


def of_kind(store: Any, kind: K) -> list[Any]:
    return [m for m in store.list(kind=kind) if m.kind is kind]


def test_a_score_that_fell_becomes_a_failure_pattern(tmp_path):
    store = make_store(tmp_path / "m.db")
    run = game(
        TASK.format(room="kitchen"),
        [
            ("open door to kitchen", "The door is open. Score 0.5", 0.5),
            ("eat coin", "You swallow the coin. Score 0.2", 0.2),
        ],
        "r1",
    )
    ids = harvest(store, run)
    [f] = of_kind(store, K.FAILURE_PATTERN)
    assert f.id in ids and f.status is S.CANDIDATE and f.made_by == "experience" and f.sources == ("r1",)
    assert 'the action "eat {obj1}" made the ground truth fall from 0.50 to 0.20' in f.text
    assert 'in the situation "The door is open. Score 0.5"' in f.text  # the situation, quoted
    meta = f.meta["failure"]
    assert meta["evidence"] == "fell" and (meta["before"], meta["after"]) == (0.5, 0.2)
    assert meta["action"] == {"action": "eat {obj1}"} and meta["fix"] is None
    assert meta["bindings"] == {
        "room1": "kitchen",
        "obj1": "coin",
    }  # the run's entities, so task_of can fill them back


def test_tests_going_from_k_passing_to_fewer_with_the_fix_that_recovered(tmp_path):
    store = make_store(tmp_path / "m.db")
    good_two = "def triple(x):\n    if x == 3:\n        return 0\n    return 3 * x"
    worse = "def triple(x):\n    return x + 3"
    good = "def triple(x):\n    return 3 * x"
    harvest(store, coding_run([(good_two, 2), (worse, 0), (good, 3)]))
    falls = [m for m in of_kind(store, K.FAILURE_PATTERN) if m.meta["failure"]["evidence"] == "fell"]
    [f] = falls
    assert "fall from 0.67 to 0.00" in f.text
    assert 'The environment said: "FAIL {fn}(1) == 3 -> assertion false"' in f.text  # what the test expected
    assert 'code: - "return x + 3"; + "return 3 * x"' in f.text  # the change that fixed it
    fix = f.meta["failure"]["fix"]
    assert fix["before"]["params"]["code"] == "def {fn}(x):\n    return x + 3"
    assert fix["after"]["params"]["code"] == "def {fn}(x):\n    return 3 * x"


def test_environment_feedback_is_quoted_with_the_change_that_fixed_it(tmp_path):
    store = make_store(tmp_path / "m.db")
    run = game(
        TASK.format(room="kitchen"),
        [
            ("grab the coin", "That's not a verb I recognise.", 0.0),
            ("take coin", "You take the coin.", 0.0),
        ],
        "r1",
    )
    harvest(store, run)
    [f] = of_kind(store, K.FAILURE_PATTERN)
    assert f.meta["failure"]["evidence"] == "feedback"
    assert '"That\'s not a verb I recognise."' in f.text
    assert 'What fixed it later in the run: "grab the {obj1}" → "take {obj1}".' in f.text


def test_progress_in_a_failed_run_gives_procedure_fragments(tmp_path):
    store = make_store(tmp_path / "m.db")
    run = game(
        TASK.format(room="kitchen"),
        [
            ("open door to kitchen", "The door is open.", 0.5),
            ("move north", "You are in a corridor.", 0.5),
        ],
        "r1",
    )
    ids = harvest(store, run)
    [frag] = of_kind(store, K.SKILL_CARD)
    assert frag.id in ids and "fragment" in frag.meta
    assert 'the action "open door to {room1}" made the ground truth rise from 0.00 to 0.50' in frag.text
    assert of_kind(store, K.EPISODIC_CASE) == []  # not solved: no worked example


def test_a_solved_run_gives_a_case_not_fragments(tmp_path):
    store = make_store(tmp_path / "m.db")
    run = game(
        TASK.format(room="kitchen"), [("open door to kitchen", "Open.", 0.5), ("take coin", "Won.", 1.0)], "r"
    )
    harvest(store, run)
    assert len(of_kind(store, K.EPISODIC_CASE)) == 1
    assert [m for m in of_kind(store, K.SKILL_CARD) if "fragment" in m.meta] == []


def test_expel_pairing_with_a_stored_success_of_the_same_kind(tmp_path):
    store = make_store(tmp_path / "m.db")
    won = [
        ("open door to kitchen", "The door is open.", 0.5),
        ("move to kitchen", "You see a coin.", 0.5),
        ("take coin", "You won.", 1.0),
    ]
    harvest(store, game(TASK.format(room="kitchen"), won, "win"))
    lost = [
        ("open door to garage", "The door is open.", 0.5),
        ("move to garage", "You see a coin.", 0.5),
        ("kick coin", "The coin rolls away. You lost.", 0.0),
    ]
    ids = harvest(store, game(TASK.format(room="garage"), lost, "loss"))
    [f] = of_kind(store, K.FAILURE_PATTERN)
    assert f.id in ids
    assert 'do "take {obj1}", not "kick {obj1}"' in f.text and "a verified success did" in f.text
    assert f.meta["failure"]["better_action"] == {"action": "take {obj1}"}
    none_stored = lessons(game(TASK.format(room="garage"), lost, "loss"))  # without a store: no pairing
    assert all(
        "better_action" not in x.meta.get("failure", {}) or not x.meta["failure"]["better_action"]
        for x in none_stored
    )


def test_a_game_lost_without_a_score_change_is_a_failure(tmp_path):
    state = State({"observation": "A dark room."}, "A dark room.")
    lost = State({"observation": "You fell into a pit.", "failure": True}, "You fell into a pit.")
    step = Step(1, Action("jump into pit"), state, lost, 0.0, 0.0, "You fell into a pit.", outcome=0.0)
    [x] = lessons(TaskResult("Find the coin.", False, 0.0, [step], lost, 0.0, run_id="r"))
    assert x.kind is K.FAILURE_PATTERN and x.meta["failure"]["evidence"] == "lost"
    assert '"jump into pit" lost the task' in x.text


def test_no_ground_truth_no_transition_lessons(tmp_path):
    run = game(TASK.format(room="kitchen"), [("open door", "ok", None), ("take coin", "ok", None)], "r")
    assert lessons(run) == []


def test_lessons_appended_to_observations_are_not_evidence(tmp_path):
    appended = f'\n\n{HEADER}\n### Strategic rules\n- [m1 | failure_pattern] "You can\'t trust anything"'
    run = game(
        TASK.format(room="kitchen"),
        [
            ("open door to kitchen", "The door is open." + appended, 0.5),
            ("eat coin", "Gone." + appended, 0.2),
        ],
        "r",
    )
    texts = " ".join(x.text for x in lessons(run))
    assert texts and "Lessons from past runs" not in texts and "trust anything" not in texts


def test_a_wrong_answer_quotes_what_the_environment_expected():
    q = "Answer the question correctly: what is 12 plus 30?"
    s0 = State({"answer": None, "score": None}, "Question: what is 12 plus 30?\nNo answer given yet.")
    s1 = State(
        {"answer": "41", "score": 0.0},
        "Question: what is 12 plus 30?\nAnswer: 41\nIncorrect. The expected answer was 42.",
    )
    step = Step(1, Action("DONE", {"answer": "41"}), s0, s1, 0.0, 0.0, s1.summary, outcome=0.0)
    [x] = lessons(TaskResult(q, False, 0.0, [step], s1, 0.0, run_id="q"))
    assert x.meta["failure"]["evidence"] == "feedback"
    assert '"Incorrect. The expected answer was 42."' in x.text and '"answer": "41"' in x.text


def test_feedback_is_paired_with_a_stored_success(tmp_path):
    store = make_store(tmp_path / "m.db")
    won = [("open door to kitchen", "The door is open.", 0.5), ("take coin", "You won.", 1.0)]
    harvest(store, game(TASK.format(room="kitchen"), won, "win"))
    tried = [
        ("open door to attic", "The door is open.", 0.5),
        ("grab coin", "That's not a verb I recognise.", 0.5),
    ]
    harvest(store, game(TASK.format(room="attic"), tried, "try"))
    [f] = of_kind(store, K.FAILURE_PATTERN)
    assert f.meta["failure"]["evidence"] == "feedback" and f.meta["failure"]["better_action"] == {
        "action": "take {obj1}"
    }
    assert 'do "take {obj1}", not "grab {obj1}"' in f.text and "That's not a verb I recognise." in f.text
