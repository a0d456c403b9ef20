"""Distiller (ScriptedModel: good JSON, garbage, truncated), hindsight, dedupe/merge, evolve."""

from __future__ import annotations

import pytest
from _memory_helpers import HOSTILE_MARK, make_store

from purpose_agent.core.types import Action, State, Step, TaskResult
from purpose_agent.memory import Distiller, MemoryKind, MemoryStatus, evolve
from purpose_agent.memory.distiller import LESSON_SCHEMA
from purpose_agent.models.testing import FunctionModel, ScriptedModel

K, S = MemoryKind, MemoryStatus


def _result(success: bool, run_id: str = "run-7") -> TaskResult:
    s0, s1 = State({"x": 0}, "start"), State({"x": 1}, "file read")
    step = Step(0, Action("read_file", {"path": "a.txt"}, "look first"), s0, s1, 0.0, 4.0, "contents: 42")
    return TaskResult(
        "Sum the numbers in a.txt", success, 4.0, [step], s1, outcome=1.0 if success else 0.0, run_id=run_id
    )


GOOD = {
    "lessons": [
        {
            "kind": "skill_card",
            "trigger": "a task sums numbers in a file",
            "text": "Read {file} first, then add the numbers with the calculator",
        },
        {"kind": "tool_policy", "trigger": "using read_file", "text": "Pass a relative {path} to read_file"},
        {"kind": "wisdom", "trigger": "x", "text": "an unknown kind is dropped"},
        {"kind": "episodic_case", "trigger": "", "text": "short"},
    ],
    "achieved": "",
}


def test_success_gives_skill_cards_with_placeholders():
    llm = ScriptedModel([GOOD])
    with llm:
        cands = Distiller(llm).distill(_result(True))
    assert [c.kind for c in cands] == [K.SKILL_CARD, K.TOOL_POLICY]
    assert cands[0].text == (
        "When a task sums numbers in a file: Read {file} first, then add the numbers with the calculator"
    )
    assert all(c.sources == ("run-7",) and c.made_by == "distiller" for c in cands)
    call = llm.calls[0]
    assert call.schema is not None and "maxLength" not in str(call.schema)
    assert call.schema["properties"]["lessons"]["items"]["properties"]["kind"]["enum"] == [
        "skill_card",
        "failure_pattern",
        "tool_policy",
        "episodic_case",
    ]
    assert "SUCCEEDED" in call.messages[-1].content and "Sum the numbers" in call.messages[-1].content


def test_failure_gives_failure_patterns_and_hindsight():
    reply = {
        "lessons": [
            {
                "kind": "failure_pattern",
                "trigger": "the file is missing",
                "text": "Check that {file} exists before reading it",
            },
            {"kind": "skill_card", "trigger": "x", "text": "A failed run cannot teach a skill card"},
        ],
        "achieved": "it located the input file and read its first line",
    }
    with ScriptedModel([reply]) as llm:
        cands = Distiller(llm).distill(_result(False))
    kinds = [(c.kind, c.made_by) for c in cands]
    assert kinds == [
        (K.FAILURE_PATTERN, "distiller"),
        (K.FAILURE_PATTERN, "distiller"),
        (K.EPISODIC_CASE, "hindsight"),
    ]
    assert "located the input file" in cands[-1].text and "Sum the numbers" in cands[-1].text
    assert "FAILED" in llm.calls[0].messages[-1].content


def test_a_copy_of_the_prompt_example_is_dropped():
    """Small models sometimes hand the system prompt's example back as a lesson (seen with the
    1.5B model on leg counting): it was not learned from the run, so it is not a candidate."""
    reply = {
        "lessons": [
            {
                "kind": "failure_pattern",
                "trigger": "comparing strings while ignoring case and punctuation",
                "text": "Normalise first: keep only characters where ch.isalnum() and lower() them, then compare.",
            },
            {
                "kind": "failure_pattern",
                "trigger": "counting legs of animals",
                "text": "Normalise first: keep alnum characters, lower() them and compare.",
            },
            {
                "kind": "failure_pattern",
                "trigger": "counting legs",
                "text": "Multiply each count by its legs, then add",
            },
        ],
        "achieved": "",
    }
    with ScriptedModel([reply]) as llm:
        cands = Distiller(llm).distill(_result(False))
        system = llm.calls[0].messages[0].content
    assert [c.text for c in cands] == ["When counting legs: Multiply each count by its legs, then add"]
    assert (
        '"trigger": "comparing strings while ignoring case and punctuation"' in system
    )  # the example is shown


@pytest.mark.parametrize(
    "replies",
    [
        ["no json at all, sorry", "still not json"],
        [
            '{"lessons": [{"kind": "skill_card", "trigger": "x", "text": "Do the th',
            '{"lessons": [{"kind": "skill_card", "trig',
        ],
        ['{"lessons": "none", "achieved": 3}', "[1, 2, 3]"],
        ["", ""],
    ],
    ids=["garbage", "truncated", "wrong-shape", "empty"],
)
def test_malformed_output_never_raises(replies):
    with ScriptedModel(replies) as llm:
        assert Distiller(llm).distill(_result(True)) == []


async def test_adistill():
    llm = ScriptedModel([GOOD])
    assert len(await Distiller(llm).adistill(_result(True))) == 2


def test_dedupe_within_batch_and_against_store(tmp_path):
    store = make_store(tmp_path / "m.db")
    existing = store.add(
        "Read {file} first, then add the numbers with the calculator tool", K.SKILL_CARD, status=S.PROMOTED
    )
    reply = {
        "lessons": [
            {
                "kind": "skill_card",
                "trigger": "",
                "text": "Read {file} first, then add the numbers with the calculator",
            },
            {
                "kind": "skill_card",
                "trigger": "",
                "text": "read {file} first then add the numbers with the calculator!",
            },
            {"kind": "tool_policy", "trigger": "", "text": "Pass a relative {path} to read_file"},
        ],
        "achieved": "",
    }
    d = Distiller(ScriptedModel([reply, reply]), store=store)
    cands = d.distill(_result(True))
    assert len(cands) == 2
    assert cands[0].merge_into == existing and cands[1].merge_into is None
    ids = d.learn(_result(True, run_id="run-8"))
    assert ids[0] == existing  # merged: counter bumped, source added
    m = store.get(existing)
    assert m.merges == 1 and "run-8" in m.sources
    assert store.get(ids[1]).status is S.CANDIDATE
    store.close()


def test_evolve_generalises_three_similar_lessons(tmp_path):
    store = make_store(tmp_path / "m.db")
    texts = [
        "Before editing parser.py run the parser tests and read its docs",
        "Before editing lexer.py run the token tests first",
        "Before editing cli.py read the usage docs and run the cli tests",
    ]
    similar = [store.add(t, K.SKILL_CARD, status=S.PROMOTED) for t in texts]
    assert len(set(similar)) == 3
    other = store.add("Answer the user in one paragraph", K.SKILL_CARD, status=S.PROMOTED)
    pair = [
        store.add(f"Use the calculator for {x} sums of prices", K.SKILL_CARD, status=S.PROMOTED)
        for x in ("large", "long")
    ]

    def fn(messages, schema):
        assert schema is not None and "text" in schema["properties"]
        assert all(store.get(i).text in messages[-1].content for i in similar)
        return {"text": "Before editing {file}, run its tests and read its docs"}

    llm = FunctionModel(fn)
    new_ids = evolve(store, K.SKILL_CARD, llm)
    assert len(new_ids) == 1 and len(llm.calls) == 1
    new = store.get(new_ids[0])
    assert new.status is S.PROMOTED and new.made_by == "evolution" and set(new.supersedes) == set(similar)
    assert all(store.get(i).status is S.ARCHIVED for i in similar)
    assert all(store.get(i).status is S.PROMOTED for i in (other, *pair))
    assert store.rollback(new.id, "worse on validation") == similar
    assert all(store.get(i).status is S.PROMOTED for i in similar)
    store.close()


def test_evolve_skips_unusable_or_hostile_generalisations(tmp_path):
    store = make_store(tmp_path / "m.db")
    for t in (
        "Before editing a.py run its tests",
        "Before editing b.py run the quick tests",
        "Before editing c.py read it and run tests",
    ):
        store.add(t, K.SKILL_CARD, status=S.PROMOTED)
    assert evolve(store, K.SKILL_CARD, ScriptedModel(["garbage", "garbage"])) == []
    assert evolve(store, K.SKILL_CARD, ScriptedModel([{"text": f"{HOSTILE_MARK} now"}])) == []
    assert store.count(S.PROMOTED) == 3 and store.count(S.ARCHIVED) == 0
    store.close()


def test_schema_is_grammar_safe():
    assert "maxLength" not in str(LESSON_SCHEMA) and "minLength" not in str(LESSON_SCHEMA)
