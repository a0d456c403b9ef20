"""The user layer on the real embedded model: the quick start as written, a Vault-backed Spark,
a two-node Flow of Sparks with a conditional retry."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import purpose_agent as pa
from purpose_agent.models.local import LocalBackend

pytestmark = pytest.mark.integration


def test_the_quick_start_runs_as_written_and_the_taught_lesson_shapes_the_next_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default store, .purpose_agent/memory.sqlite, lands here
    team = pa.purpose("Help me write Python code")
    first = team.run("Write a fibonacci function")
    print(first)
    assert team.kind == "code" and "def " in first.output and first.tests, first
    assert first.decided_by == "tests" and first.trace_path and Path(first.trace_path).exists()
    decision = team.teach("Always add type hints")
    assert decision.promoted
    second = team.run("Write a fibonacci function")
    print(second)
    assert decision.memory_id in second.memory_ids
    # type hints on the function: an annotated parameter or a return annotation
    assert re.search(r"def \w+\([^)]*:\s*\w+|\)\s*->\s*\w+", second.output), second.output
    status = team.status()
    print(status)
    assert status.runs == 2 and any(
        m["id"] == decision.memory_id and m["used_in_runs"] == 1 for m in status.lessons
    )


def test_a_vault_backed_spark_answers_from_a_directory(tmp_path: Path, qwen15: LocalBackend) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.md").write_text("# Refunds\nRefunds are paid within 14 days of the return.\n")
    (docs / "shipping.md").write_text("# Shipping\nExpress delivery takes 2 working days.\n")
    vault = pa.Vault.from_directory(docs, embedder=None)
    spark = pa.Spark(
        "librarian", model=qwen15, tools=[vault.as_tool()], role="assistant", memory=tmp_path / "m.sqlite"
    )
    result = spark.run(
        "Search the documents: within how many days are refunds paid? Answer with the number and cite the source.",
        check=lambda answer: "14" in answer,
    )
    print(result)
    # it answered (DONE), and the check judged the answer: not a critic's Φ after the search
    assert result.decided_by == "ground_truth" and result.success and "14" in result.output
    assert result.trace_path and "search_documents" in Path(result.trace_path).read_text()  # it searched
    # it cites the passage it drew on: the model's own [refunds.md#0], or the Spark's Sources line
    assert "refunds.md" in result.output and result.sources, result.output
    assert all(s.startswith("refunds.md#") for s in result.sources), result.sources


def test_a_two_node_flow_of_sparks_with_a_conditional_retry(tmp_path: Path, qwen15: LocalBackend) -> None:
    store = tmp_path / "m.sqlite"
    writer = pa.Spark("writer", model=qwen15, role="writer", memory=store, max_steps=2)
    flow = pa.Flow(checkpoint=tmp_path / "flows.sqlite")
    flow.add_node(
        "writer", writer, input=lambda s: s["task"] + (" Use at most 12 words." if s["tries"] else "")
    )

    def count(state: dict[str, object]) -> dict[str, object]:
        return {"tries": int(state["tries"]) + 1, "ok": 0 < len(str(state["writer"]).split()) <= 30}  # type: ignore[call-overload]

    flow.add_node("check", count)
    flow.add_edge(pa.BEGIN, "writer")
    flow.add_edge("writer", "check")
    flow.add_conditional_edge(
        "check",
        lambda s: "done" if s["ok"] or s["tries"] >= 2 else "retry",
        {"done": pa.DONE_SIGNAL, "retry": "writer"},
    )
    result = flow.run({"task": "Write one sentence about the sea.", "tries": 0})
    print(result.state)
    assert result.path[:2] == ["writer", "check"] and result.state["writer"]
    assert result.state["ok"] or result.path == ["writer", "check", "writer", "check"]
