"""The learning demo's phases on fake models: a small fake kitchen game (always) and the real
TextWorldExpress games of the shipped plan (when the bench extra and Java are installed)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

import purpose_agent as pa
from purpose_agent import cli
from purpose_agent.core.environment import ActionSpec
from purpose_agent.demo import DemoPlan, Game, run_learning_demo, textworld_plan
from purpose_agent.memory import MemoryStatus, MemoryStore
from purpose_agent.memory.prompt import EXAMPLES_TITLE
from purpose_agent.models.base import Message

PURPOSE = "You are hungry! Cook a meal with the ingredient on the counter, then eat it."
DISTILLED = "When cooking, look carefully at every object in the kitchen before acting."


class Kitchen(pa.Environment):
    """A three-point cooking game: take the ingredient, prepare the meal, eat it."""

    def __init__(self, ingredient: str) -> None:
        self.ingredient = ingredient

    def _state(self, obs: str, score: float, held: tuple[str, ...], success: bool = False) -> pa.State:
        valid = ["examine counter", "examine stove", "look around"]
        if self.ingredient not in held:
            valid.append(f"take {self.ingredient}")
        elif "meal" not in held:
            valid.append("prepare meal")
        else:
            valid.append("eat meal")
        data = {"score": score, "held": list(held), "success": success, "valid_actions": sorted(valid)}
        return pa.State(data, f"{obs}\nScore: {score:.2f}")

    def reset(self) -> pa.State:
        return self._state(f"You are in the kitchen. On the counter: {self.ingredient}.", 0.0, ())

    def actions(self, state: pa.State) -> Sequence[ActionSpec]:
        return [ActionSpec(a, "") for a in state.data["valid_actions"]]

    def execute(self, action: pa.Action, state: pa.State) -> pa.State:
        held = tuple(state.data["held"])
        score = float(state.data["score"])
        if action.name not in state.data["valid_actions"]:
            return state
        if action.name.startswith("take "):
            return self._state(f"You take the {self.ingredient}.", 1 / 3, (*held, self.ingredient))
        if action.name == "prepare meal":
            return self._state("Adding the meal to your inventory.", 2 / 3, (*held, "meal"))
        if action.name == "eat meal":
            return self._state("You eat the meal. It is delicious.", 1.0, held, success=True)
        return self._state(f"You {action.name}: nothing special.", score, held)

    def is_terminal(self, state: pa.State) -> bool:
        return bool(state.data["success"])

    def outcome(self, state: pa.State) -> float | None:
        return 1.0 if state.data["success"] else float(state.data["score"])


def _props(schema: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return (schema or {}).get("properties", {})


class Player:
    """One FunctionModel for every role. The actor cooks when the game is the easy one (salt)
    or a worked example is in its prompt; otherwise it examines things and never cooks. The
    distiller writes one vague lesson. Every actor prompt is kept."""

    def __init__(self, easy: str = "On the counter: salt") -> None:
        self.easy = easy
        self.prompts: list[str] = []
        self.calls = {"actor": 0, "distiller": 0, "critic": 0}
        self.model = pa.FunctionModel(self.reply)

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = _props(schema)
        if "lessons" in props:
            self.calls["distiller"] += 1
            return {
                "lessons": [{"kind": "skill_card", "trigger": "cooking", "text": DISTILLED}],
                "achieved": "",
            }
        if "score" in props:
            self.calls["critic"] += 1
            return {"evidence": "-", "reason": "-", "score": 5, "confidence": "low"}
        self.calls["actor"] += 1
        prompt = "\n".join(m.content for m in messages)
        self.prompts.append(prompt)
        names = [b["properties"]["action"]["const"] for b in (schema or {}).get("oneOf", [])]
        if EXAMPLES_TITLE in prompt or self.easy in prompt:
            for want in ("eat meal", "prepare meal"):
                if want in names:
                    return {"thought": "cook", "action": want, "params": {}}
            takes = [n for n in names if n.startswith("take ") and n not in ("take cookbook", "take knife")]
            if takes:
                return {"thought": "cook", "action": takes[0], "params": {}}
            if "open fridge" in names:
                return {"thought": "cook", "action": "open fridge", "params": {}}
        done = {json.loads(m.content).get("action") for m in messages if m.role == "assistant"}
        looks = [n for n in names if n.startswith("examine ") and n not in done]
        return {"thought": "look", "action": (looks or ["look around"])[0], "params": {}}


def kitchen_plan() -> DemoPlan:
    def game(name: str, ingredient: str) -> Game:
        return Game(name, PURPOSE, lambda: Kitchen(ingredient))

    return DemoPlan(
        title="fake kitchen",
        held_out=game("test-0", "olive oil"),
        train=(game("train-0", "salt"),),
        validation=tuple(game(f"dev-{i}", x) for i, x in enumerate(("pepper", "onion", "carrot", "egg"))),
        max_steps=5,
    )


class Recorder:
    """The demo's output, with the store's sha256 taken when each phase header is printed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.digests: dict[str, str | None] = {}

    def __call__(self, text: str) -> None:
        self.lines.append(text)
        if text.startswith("== "):
            phase = text.split()[1]
            self.digests[phase] = self.digest()

    def digest(self) -> str | None:
        p = self.path / "memory.sqlite"
        if not p.exists():
            return None
        wal = Path(str(p) + "-wal")
        data = p.read_bytes() + b"|" + (wal.read_bytes() if wal.exists() else b"")
        return hashlib.sha256(data).hexdigest()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_the_demo_phases_on_a_fake_game(tmp_path: Path) -> None:
    player = Player()
    rec = Recorder(tmp_path)
    report = run_learning_demo(player.model, plan=kitchen_plan(), workdir=tmp_path, out=rec)
    text = rec.text
    # a header per phase, in order, then the summary table
    heads = [ln for ln in rec.lines if ln.startswith("== ")]
    assert [h.split()[1] for h in heads] == ["1/4", "2/4", "3/4", "4/4", "Summary"]
    assert "no memory" in heads[0] and "EVAL_TEST" in heads[0] and "EVAL_TEST" in heads[3]
    # before: not solved with no memory
    assert report.before is not None and not report.before.success and report.before.memory_ids == ()
    # learning: the training game taught a worked example, which four paired wins promoted
    [promoted] = report.promoted
    assert promoted.kind == "episodic_case" and (promoted.wins, promoted.losses) == (4, 0)
    assert promoted.p_value == pytest.approx(1 / 16) and promoted.runs > 0 and promoted.calls > 0
    # the distilled lesson did not help: no evidence, kept quarantined (never in a prompt)
    vague = [x for x in report.lessons if x.text == DISTILLED]
    assert vague and vague[0].status == "quarantined" and vague[0].ties >= 1
    # the lessons are printed with their kind and the gate's numbers
    assert f"{promoted.id} [episodic_case]" in text
    assert "4 wins / 0 losses / 0 ties over 4 paired units, p=0.062" in text
    assert "quarantined (no evidence either way yet" in text and f"[skill_card] {DISTILLED}" in text
    # after: the held-out game is played with what was promoted, and its prompt had it
    assert report.after is not None and report.after.success
    assert promoted.id in report.after.memory_ids
    assert f"memories in the prompt: {promoted.id} (episodic_case)" in text
    assert EXAMPLES_TITLE in player.prompts[-1]
    # the EVAL_TEST plays wrote nothing: the store's bytes around each of them are equal
    assert report.test_writes == []
    assert rec.digests["1/4"] == rec.digests["2/4"] is not None
    assert rec.digests["4/4"] == rec.digests["Summary"] == rec.digest()
    assert text.count("EVAL_TEST check: the store file and its WAL are byte-identical") == 2
    # the summary: a before/after table and an honest verdict
    assert "| solved (ground truth)" in text and "| no " in text and "| yes " in text
    assert "verdict: learning helped: the held-out game went from failed to solved" in text
    # ground truth decides: no critic call anywhere (training runs, replays, test plays)
    assert player.calls["critic"] == 0


def test_the_demo_says_so_when_nothing_was_promoted(tmp_path: Path) -> None:
    """A model that never cooks gives the gate no evidence: nothing is promoted, the after-play
    has no lesson, and the verdict says it could not change."""

    def never(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        if "lessons" in _props(schema):
            return {"lessons": [], "achieved": ""}
        return {"thought": "look", "action": "look around", "params": {}}

    rec = Recorder(tmp_path)
    plan = kitchen_plan()
    plan = DemoPlan(
        plan.title, plan.held_out, (Game("train-1", PURPOSE, lambda: Kitchen("flour")),), plan.validation, 3
    )
    report = run_learning_demo(pa.FunctionModel(never), plan=plan, workdir=tmp_path, out=rec)
    assert report.promoted == [] and report.after is not None and report.after.memory_ids == ()
    assert report.before is not None and report.after.outcome == report.before.outcome == 0.0
    assert "verdict: no lesson reached the after-play's prompt" in rec.text
    assert report.test_writes == []


def test_cli_demo_keeps_the_coding_demo_and_the_model_option(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr("purpose_agent.demo.run_demo", lambda *a: calls.append(a) or 0)
    assert cli.main(["demo", "--model", "local:qwen2.5-coder-0.5b"]) == 0
    assert cli.main(["demo", "--task", "is_palindrome", "--max-steps", "3", "--dir", "d"]) == 0
    assert cli.main(["demo", "--game", "textworld"]) == 0
    assert calls == [
        ("local:qwen2.5-coder-0.5b", None, None, None, "questions"),
        ("local", "is_palindrome", 3, "d", "questions"),
        ("local", None, None, None, "textworld"),
    ]
    with pytest.raises(SystemExit):
        cli.main(["demo", "--game", "chess"])


def test_run_demo_refuses_an_unknown_game() -> None:
    from purpose_agent.demo import run_demo

    with pytest.raises(ValueError, match="unknown demo game 'chess'"):
        run_demo(pa.ScriptedModel([]), game="chess")


def test_the_coding_demo_is_still_reachable(capsys: pytest.CaptureFixture[str]) -> None:
    code = "def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]\n"
    model = pa.FunctionModel(
        lambda m, schema: (
            {"evidence": "-", "reason": "-", "score": 10, "confidence": "high"}
            if "score" in _props(schema)
            else {"thought": "write it", "action": "submit_code", "params": {"code": code}}
        )
    )
    from purpose_agent.demo import run_demo

    if shutil.which("bwrap") is None:
        pytest.skip("the coding environment's sandboxed verdict needs bubblewrap")
    assert run_demo(model, "is_palindrome", 2) == 0
    assert "final solution" in capsys.readouterr().out


_TWX = importlib.util.find_spec("textworld_express") is not None and shutil.which("java") is not None


@pytest.mark.skipif(not _TWX, reason="needs textworld-express (bench extra) and Java 17")
def test_the_shipped_plan_on_the_real_games(tmp_path: Path) -> None:
    """The demo's own TextWorldExpress games, played by the fake player: the phases complete,
    the after-play's prompt holds what was promoted, and EVAL_TEST writes nothing."""
    plan = textworld_plan(max_steps=10)
    first = plan.train[0].make_env().reset().describe()  # the training game's opening text
    assert first not in plan.held_out.make_env().reset().describe()
    player = Player(easy=first)  # solves the training game, and any game with a worked example
    rec = Recorder(tmp_path)
    report = run_learning_demo(player.model, plan=plan, workdir=tmp_path, out=rec)
    assert [ln.split()[1] for ln in rec.lines if ln.startswith("== ")] == [
        "1/4",
        "2/4",
        "3/4",
        "4/4",
        "Summary",
    ]
    assert report.before is not None and report.after is not None and report.test_writes == []
    assert report.before.memory_ids == () and not report.before.success
    promoted = {x.id for x in report.promoted}
    assert set(report.after.memory_ids) & promoted
    with MemoryStore(tmp_path / "memory.sqlite", mode=pa.RunMode.EVAL_TEST, embedder=None) as store:
        assert {m.id for m in store.list(status=MemoryStatus.PROMOTED)} == promoted
    assert rec.digests["4/4"] == rec.digest()
    assert player.calls["critic"] == 0


_RG = importlib.util.find_spec("reasoning_gym") is not None


class Solver:
    """The fake actor of the question demo. It runs Python once, then answers. It answers in the
    scorer's form (the bare number) only for the training question or when a worked example is
    in its prompt; otherwise it writes "x = N", which the family's scorer marks wrong."""

    def __init__(self, plan: DemoPlan) -> None:
        self.answers: dict[str, str] = {}
        for g in (plan.held_out, *plan.train, *plan.validation):
            env = g.make_env()
            self.answers[env.question] = str(env.entry["answer"])  # type: ignore[attr-defined]
        self.train_question = plan.train[0].make_env().question  # type: ignore[attr-defined]
        self.calls = {"actor": 0, "critic": 0}
        self.model = pa.FunctionModel(self.reply)

    def reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        props = _props(schema)
        if "lessons" in props:
            return {"lessons": [], "achieved": ""}
        if "score" in props:
            self.calls["critic"] += 1
            return {"evidence": "-", "reason": "-", "score": 5, "confidence": "low"}
        self.calls["actor"] += 1
        prompt = "\n".join(m.content for m in messages)
        last = messages[-1].content
        question = next(q for q in self.answers if q in last)
        answer = self.answers[question]
        if "It printed:" not in last:
            return {"thought": "compute", "action": "run_python", "params": {"code": f"print({answer})"}}
        good = EXAMPLES_TITLE in prompt or question == self.train_question
        return {
            "thought": "answer",
            "action": "DONE",
            "params": {"answer": answer if good else f"x = {answer}"},
        }


@pytest.mark.skipif(not _RG, reason="needs reasoning-gym (demo extra)")
def test_the_shipped_question_plan_learns_the_answer_form(tmp_path: Path) -> None:
    """make demo's own questions (simple_equations, Python available), played by the fake
    solver: the held-out question fails with no memory, the training question's worked example
    is promoted on four paired wins, and the held-out question is then solved with it."""
    from purpose_agent.demo import default_plan

    plan = default_plan()
    assert plan.held_out.name.startswith("test-") and all(g.name.startswith("dev-") for g in plan.validation)
    assert len(plan.validation) >= 4  # four paired wins are the least evidence that promotes
    solver = Solver(plan)
    rec = Recorder(tmp_path)
    report = run_learning_demo(solver.model, plan=plan, workdir=tmp_path, out=rec)
    assert report.before is not None and not report.before.success and report.before.memory_ids == ()
    [promoted] = report.promoted
    assert promoted.kind == "episodic_case" and (promoted.wins, promoted.losses) == (4, 0)
    assert report.after is not None and report.after.success and promoted.id in report.after.memory_ids
    assert "verdict: learning helped" in rec.text
    assert report.test_writes == [] and solver.calls["critic"] == 0
