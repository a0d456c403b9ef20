"""Citations of an answer: the passages a tool returned that the answer draws on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _agent_models import Fake, done

import purpose_agent as pa
from purpose_agent.agents._citations import cite, passages, supporting

OUT = (
    "Passages (cite them as [source#chunk]):\n\n"
    "[refunds.md#0] # Refunds Refunds are paid within 14 days of the return.\n\n"
    "[shipping.md#0] # Shipping Express delivery takes 2 working days."
)


def test_passages_are_read_from_the_tools_output() -> None:
    found = passages([OUT, "no citation here"])
    assert list(found) == ["refunds.md#0", "shipping.md#0"]
    assert found["refunds.md#0"] == "# Refunds Refunds are paid within 14 days of the return."
    assert list(passages(["[My Notes/a.md#2] Notes here."])) == ["My Notes/a.md#2"]  # a source with a space


def test_an_uncited_answer_gets_the_passage_it_draws_on() -> None:
    answer, sources = cite("Refunds are paid within 14 days of the return.", [OUT])
    assert sources == ("refunds.md#0",)
    assert answer == "Refunds are paid within 14 days of the return.\n\nSources: [refunds.md#0]"


def test_an_answer_that_cites_keeps_its_own_citation() -> None:
    text = "Within 14 days [refunds.md#0]."
    assert cite(text, [OUT]) == (text, ("refunds.md#0",))
    named = "Within 14 days, says refunds.md."
    assert cite(named, [OUT]) == (named, ("refunds.md#0",))


def test_an_answer_no_passage_supports_gets_no_citation() -> None:
    assert cite("I could not find it.", [OUT]) == ("I could not find it.", ())
    assert cite("Paris is the capital of France.", [OUT]) == ("Paris is the capital of France.", ())
    assert cite("14 days", ["no passages"]) == ("14 days", ())
    # one shared word is not support
    assert supporting("14", passages([OUT])) == []


def test_a_vault_backed_spark_cites_the_document_it_answered_from(tmp_path: Path) -> None:
    vault = pa.Vault.from_texts(
        {
            "refunds.md": "Refunds are paid within 14 days of the return.",
            "shipping.md": "Express takes 2 days.",
        },
        embedder=None,
    )

    def actor(prompt: str, actions: list[str], turn: int) -> dict[str, Any]:
        if turn == 0:
            return {
                "thought": "search",
                "action": "search_documents",
                "params": {"query": "refunds paid days"},
            }
        return done("Refunds are paid within 14 days.")

    spark = pa.Spark(
        "librarian",
        model=Fake(actor, score=5).model,
        tools=[vault.as_tool()],
        memory=pa.MemoryStore(tmp_path / "s.sqlite", embedder=None),
    )
    result = spark.run("Within how many days are refunds paid?", check=lambda a: "14" in a)
    assert result.success and result.sources == ("refunds.md#0",)
    assert result.output.endswith("Sources: [refunds.md#0]") and "refunds.md" in str(result)
