"""Vault: chunking, BM25 (the shared index of purpose_agent._text), dense and hybrid recall, directories, PDFs, the tool."""

from __future__ import annotations

import math
import os
import re
import sqlite3
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import purpose_agent as pa
from purpose_agent.agents import Hit, UnreadableDocumentError, Vault, VaultError, VaultWarning
from purpose_agent.errors import ConfigurationError, MissingExtraError
from purpose_agent.memory.embeddings import embed_available
from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel
from purpose_agent.tools import LLMCompiler, Tool, ToolRegistry

DOCS = {
    "refunds.md": "# Refunds\nRefunds are paid back to the original card within 14 days of the return.",
    "shipping.md": "# Shipping\nParcels to Europe arrive in 3 to 5 working days; express takes one day.",
    "warranty.md": "# Warranty\nEvery kettle has a two-year warranty covering the heating element.",
}


class BagOfWords:
    """A deterministic stand-in embedder (hashed bag of words, a few synonyms folded) that counts calls."""

    name = "bow-test"
    dim = 64
    SYN: ClassVar[dict[str, str]] = {"automobile": "car", "vehicle": "car", "mend": "fix", "repair": "fix"}

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, sum(map(ord, self.SYN.get(w, w))) % self.dim] += 1.0
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-9, None)


def make_pdf(path: Path, *pages: str) -> None:
    """Write a small valid PDF with one line of Helvetica text per page."""
    objs: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for text in pages:
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        page_no, content_no = len(objs) + 1, len(objs) + 2
        kids.append(f"{page_no} 0 R")
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (content_no, 3 + 2 * len(pages))
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >>".encode()
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    path.write_bytes(bytes(out))


# ---------------------------------------------------------------------- query and ranking
def test_from_texts_finds_the_passage_with_source_chunk_text_and_score() -> None:
    vault = Vault.from_texts(DOCS, embedder=None)
    hits = vault.query("how many days until my refund is paid?", k=2)
    assert hits[0].source == "refunds.md" and hits[0].chunk == 0
    assert "14 days" in hits[0].text and hits[0].citation == "[refunds.md#0]"
    assert hits[0].score > 0 and hits[0].score >= hits[1].score
    assert len(hits) == 2 and isinstance(hits[0], Hit)
    assert vault.query("kettle heating element warranty", k=1)[0].source == "warranty.md"
    assert vault.sources == sorted(DOCS) and len(vault) == 3


def test_list_sources_are_numbered_and_k_limits_hits() -> None:
    vault = Vault.from_texts(["alpha beta", "beta gamma", "gamma delta"], embedder=None)
    assert vault.sources == ["text-0", "text-1", "text-2"]
    assert [h.source for h in vault.query("gamma", k=5)] == ["text-1", "text-2"]  # only matches
    assert len(vault.query("beta gamma", k=1)) == 1


def test_bm25_is_not_decided_by_length_in_a_small_vault() -> None:
    """FTS5's bm25() clamps the idf of a word found in half the chunks or more to ~0, so the
    shorter chunk with only the rarer query word would beat the one that has both; the vault's
    ranking counts both words."""
    docs = {
        "both": "invoice payment",
        "one": "invoice",
        "p1": "payment schedule",
        "p2": "payment terms",
        "x1": "office hours",
        "x2": "holiday rota",
    }
    vault = Vault.from_texts(docs, embedder=None)
    native = vault._conn.execute(
        "SELECT c.source FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
        "WHERE chunks_fts MATCH 'invoice OR payment' ORDER BY bm25(chunks_fts) LIMIT 1"
    ).fetchone()[0]
    assert native != "both"  # what the naive ranking does
    assert vault.query("invoice payment", k=1)[0].source == "both"


def test_query_words_with_fts_syntax_are_plain_words() -> None:
    vault = Vault.from_texts({"a": 'The NEAR operator and "quotes" OR stars*'}, embedder=None)
    assert vault.query('NEAR("quotes" OR) stars*', k=3)[0].source == "a"
    assert vault.query('"" * ^ : ( )', k=3) == []
    assert vault.query("refunds", k=3) == []  # no shared word


def test_empty_vault_and_empty_query_give_empty_lists() -> None:
    empty = Vault(embedder=None)
    assert empty.query("anything", k=3) == [] and len(empty) == 0 and empty.sources == []
    assert Vault.from_texts([], embedder=None).query("x") == []
    vault = Vault.from_texts(DOCS, embedder=None)
    assert vault.query("", k=3) == [] and vault.query("   \n", k=3) == []
    assert Vault.from_texts(["   ", ""], embedder=None).query("x") == []


@pytest.mark.parametrize("k", [0, -1, 1.5, True, "3"])
def test_bad_k_is_a_clear_error(k: Any) -> None:
    with pytest.raises(ConfigurationError, match="k must be a positive integer"):
        Vault.from_texts(DOCS, embedder=None).query("refunds", k=k)


def test_bad_inputs_are_clear_errors() -> None:
    vault = Vault.from_texts(DOCS, embedder=None)
    with pytest.raises(ConfigurationError, match="unknown query mode"):
        vault.query("refunds", mode="fuzzy")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="no embedder"):
        vault.query("refunds", mode="dense")
    with pytest.raises(ConfigurationError, match="no embedder"):
        Vault(embedder=None).query("refunds", mode="hybrid")  # even when empty
    with pytest.raises(ConfigurationError, match="one string"):
        Vault.from_texts("just one text", embedder=None)
    with pytest.raises(ConfigurationError, match="must be a string"):
        Vault.from_texts(["ok", 42], embedder=None)  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="non-empty string"):
        vault.add_text("text", source="  ")
    with pytest.raises(ConfigurationError, match="query must be a string"):
        vault.query(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- chunking
def test_word_chunks_overlap_and_keep_the_original_layout() -> None:
    words = " ".join(f"w{i}" for i in range(12))
    vault = Vault.from_texts({"doc": words}, chunk_size=5, chunk_overlap=2, embedder=None)
    rows = vault._conn.execute("SELECT idx, text FROM chunks ORDER BY idx").fetchall()
    assert rows == [(0, "w0 w1 w2 w3 w4"), (1, "w3 w4 w5 w6 w7"), (2, "w6 w7 w8 w9 w10"), (3, "w9 w10 w11")]
    hit = vault.query("w10", k=5)
    assert {h.chunk for h in hit} == {2, 3}
    md = Vault.from_texts({"list.md": "Steps:\n- open the lid\n- pour water"}, chunk_size=50, embedder=None)
    assert md.query("lid")[0].text == "Steps:\n- open the lid\n- pour water"


def test_line_chunks_for_code() -> None:
    code = "\n".join(f"def f{i}():\n    return {i}\n" for i in range(4))  # 12 lines, blanks included
    vault = Vault.from_texts({"m.py": code}, chunk_size=6, chunk_overlap=3, chunk_unit="lines", embedder=None)
    rows = [t for (t,) in vault._conn.execute("SELECT text FROM chunks ORDER BY idx")]
    assert rows[0] == "def f0():\n    return 0\n\ndef f1():\n    return 1"
    assert rows[1].startswith("def f1():") and len(rows) == 3
    assert vault.query("f2", k=3)[0].chunk in (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"chunk_size": 0}, "chunk_size must be a positive integer"),
        (
            {"chunk_size": 10, "chunk_overlap": 10},
            "chunk_overlap must be an integer from 0 to chunk_size - 1",
        ),
        ({"chunk_overlap": -1}, "chunk_overlap"),
        ({"chunk_unit": "chars"}, "chunk unit must be 'words' or 'lines'"),
    ],
)
def test_bad_chunking_is_rejected(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Vault(embedder=None, **kwargs)


# ---------------------------------------------------------------------- storage
def test_file_vault_persists_and_a_re_added_source_replaces_its_chunks(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "vault.sqlite"
    with Vault.from_texts(DOCS, db=db, embedder=None) as vault:
        assert vault.query("refund")[0].source == "refunds.md"
    with Vault(db, embedder=None) as again:
        assert len(again) == 3 and again.query("refund")[0].citation == "[refunds.md#0]"
        assert again.add_text("Refunds now take 30 days.", source="refunds.md") == 1
        assert len(again) == 3
        hits = again.query("refunds days", k=5)
        assert [h.text for h in hits if h.source == "refunds.md"] == ["Refunds now take 30 days."]
        assert again.query("original card") == []  # the old chunk left the index too


def test_bm25_sees_what_another_connection_wrote(tmp_path: Path) -> None:
    db = tmp_path / "shared.sqlite"
    with Vault.from_texts({"a.md": "kettle descaling"}, db=db, embedder=None) as first:
        assert [h.source for h in first.query("kettle", k=5)] == ["a.md"]  # its BM25 index is built
        with Vault(db, embedder=None) as second:
            second.add_text("the kettle whistles", source="b.md")
            second.add_text("descaling with citric acid", source="a.md")  # replaces a.md's chunk
        assert [h.source for h in first.query("kettle", k=5)] == ["b.md"]
        assert first.query("citric", k=1)[0].text == "descaling with citric acid"
        first.add_text("a kettle manual", source="c.md")  # its own write: the index follows
        assert {h.source for h in first.query("kettle", k=5)} == {"b.md", "c.md"}


def test_bm25_words_are_tool_rag_words() -> None:
    """The vault ranks with Tool RAG's tokenizer: camelCase and snake_case split, accents folded."""
    vault = Vault.from_texts(
        {"code.py": "def readConfigFile(path): ...", "notes.md": "Le café ouvre à huit heures."},
        embedder=None,
    )
    assert vault.query("config file", k=1)[0].source == "code.py"
    assert vault.query("read_config", k=1)[0].source == "code.py"
    assert vault.query("CAFE", k=1)[0].source == "notes.md"


def test_bad_vault_files_are_clear_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(VaultError, match="cannot open vault"):
        Vault(junk, embedder=None)
    with pytest.raises(ConfigurationError, match="is a directory"):
        Vault(tmp_path, embedder=None)


# ---------------------------------------------------------------------- directories and PDFs
def test_from_directory_reads_text_markdown_code_and_pdf(tmp_path: Path) -> None:
    (tmp_path / "guide.md").write_text("# Guide\nDescale the kettle monthly with citric acid.")
    (tmp_path / "notes.txt").write_text("\ufeffThe boiler pressure should read 1.5 bar.")  # BOM dropped
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "tool.py").write_text("def descale_interval():\n    return 30  # days\n")
    make_pdf(tmp_path / "manual.pdf", "Press the reset button for ten seconds", "Warranty lasts two years")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.md").write_text("descale descale descale")
    (tmp_path / ".env").write_text("descale")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is skipped, so no warning
        vault = Vault.from_directory(tmp_path, embedder=None)
    assert vault.sources == ["guide.md", "manual.pdf", "notes.txt", "src/tool.py"]
    assert vault.query("reset button", k=1)[0].citation == "[manual.pdf#0]"
    assert "Warranty lasts two years" in vault.query("warranty", k=1)[0].text  # the second page
    assert vault.query("boiler pressure", k=1)[0].text.startswith("The boiler")
    assert {h.source for h in vault.query("descale", k=5)} == {"guide.md", "src/tool.py"}
    assert vault.skipped == []
    only_md = Vault.from_directory(tmp_path, extensions=["md", ".PY"], embedder=None)
    assert only_md.sources == ["guide.md", "src/tool.py"]
    flat = Vault.from_directory(tmp_path, recursive=False, embedder=None)
    assert "src/tool.py" not in flat.sources
    hidden = Vault.from_directory(tmp_path, include_hidden=True, embedder=None)
    assert {".hidden/secret.md", ".env"} <= set(hidden.sources)


def test_binary_unreadable_and_special_files_are_skipped_with_one_warning(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text("Kettles boil water.")
    (tmp_path / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(100)))
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (tmp_path / "dangling.txt").symlink_to(tmp_path / "missing-target.txt")
    os.mkfifo(tmp_path / "pipe.txt")  # opening it would block: it must be skipped unread
    (tmp_path / "big.txt").write_text("word " * 100)
    with pytest.warns(VaultWarning) as caught:
        vault = Vault.from_directory(tmp_path, max_file_bytes=200, embedder=None)
    assert len(caught) == 1
    message = str(caught[0].message)
    for name in ("image.png", "latin1.txt", "broken.pdf", "dangling.txt", "pipe.txt", "big.txt"):
        assert name in message
    assert "good.md" not in message and "6 file(s)" in message
    reasons = dict(vault.skipped)
    assert reasons["image.png"] == "binary"
    assert reasons["latin1.txt"].startswith("not UTF-8")
    assert reasons["broken.pdf"].startswith("unreadable PDF")
    assert reasons["dangling.txt"].startswith("unreadable")
    assert reasons["pipe.txt"] == "not a regular file"
    assert reasons["big.txt"].startswith("too large")
    assert vault.sources == ["good.md"]
    with pytest.raises(UnreadableDocumentError, match="binary"):
        vault.add_file(tmp_path / "image.png")


def test_pdf_without_pypdf_names_the_extra_and_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_pdf(tmp_path / "manual.pdf", "Press the reset button")
    (tmp_path / "notes.md").write_text("Reset the kettle by unplugging it.")
    monkeypatch.setitem(sys.modules, "pypdf", None)  # import pypdf now raises ImportError
    with pytest.raises(ImportError, match=re.escape("pip install 'purpose-agent[vault]'")) as info:
        Vault(embedder=None).add_file(tmp_path / "manual.pdf")
    assert isinstance(info.value, MissingExtraError) and info.value.extra == "vault"
    with pytest.warns(VaultWarning, match=r"manual\.pdf \(the optional package 'pypdf' is needed"):
        vault = Vault.from_directory(tmp_path, embedder=None)
    assert vault.sources == ["notes.md"] and vault.query("reset")[0].source == "notes.md"


def test_a_missing_or_wrong_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"vault directory '.*nope' does not exist"):
        Vault.from_directory(tmp_path / "nope")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(ConfigurationError, match="is not a directory"):
        Vault.from_directory(tmp_path / "file.txt")


# ---------------------------------------------------------------------- dense and hybrid
def test_dense_and_hybrid_find_what_bm25_misses_and_vectors_are_stored_once(tmp_path: Path) -> None:
    emb = BagOfWords()
    texts = {"car.md": "Fix the car engine before a long trip", "plants.md": "Water the plants every morning"}
    vault = Vault.from_texts(texts, db=tmp_path / "v.sqlite", embedder=emb)
    assert emb.embedded == []  # vectors are computed on the first dense query
    assert vault.query("mend automobile", mode="bm25") == []
    dense = vault.query("mend automobile", k=1, mode="dense")
    assert dense[0].source == "car.md" and 0 < dense[0].score <= 1.0 + 1e-6
    assert emb.embedded == [*texts.values(), "mend automobile"]
    hybrid = vault.query("repair vehicle", k=2)  # auto = hybrid with an embedder
    assert hybrid[0].source == "car.md" and math.isclose(hybrid[0].score, 1.0)
    assert emb.embedded[-1] == "repair vehicle" and len(emb.embedded) == 4  # no chunk embedded again
    vault.add_text("Mend a puncture on the bicycle", source="bike.md")
    vault.query("bicycle", mode="dense")
    assert emb.embedded[-2:] == ["Mend a puncture on the bicycle", "bicycle"]  # only the new chunk
    stored = sqlite3.connect(tmp_path / "v.sqlite").execute("SELECT count(*) FROM vectors").fetchone()[0]
    assert stored == 3
    vault.close()
    emb2 = BagOfWords()
    with Vault(tmp_path / "v.sqlite", embedder=emb2) as reopened:
        assert reopened.query("automobile", k=1, mode="dense")[0].source == "car.md"
    assert emb2.embedded == ["automobile"]  # the stored vectors were reused


def test_hybrid_fuses_both_rankings() -> None:
    emb = BagOfWords()
    vault = Vault.from_texts(
        {"a": "repair the car", "b": "car wash prices", "c": "the weather today"}, embedder=emb
    )
    hits = vault.query("fix car", k=3, mode="hybrid")
    assert hits[0].source == "a"  # first by cosine (fix = repair) and in BM25
    assert {h.source for h in hits} >= {"a", "b"}


@pytest.mark.skipif(not embed_available(), reason="the embed extra is not installed")
def test_auto_embedder_uses_minilm_when_the_extra_is_installed() -> None:
    vault = Vault.from_texts(
        {
            "pets.md": "Cats and dogs need regular check-ups at the vet.",
            "tax.md": "File your tax return in April.",
        }
    )
    assert vault.query("animal doctor", k=1, mode="dense")[0].source == "pets.md"
    assert vault.query("animal doctor", k=1)[0].source == "pets.md"  # auto is hybrid here


# ---------------------------------------------------------------------- the tool
def test_as_tool_returns_cited_passages() -> None:
    vault = Vault.from_texts(DOCS, embedder=None)
    tool = vault.as_tool(k=2, max_chars=40)
    assert isinstance(tool, Tool) and tool.name == "search_documents"
    assert "3 document(s)" in tool.description and "[source#chunk]" in tool.description
    assert tool.parameters["required"] == ["query"]
    res = tool.run(query="when is my refund paid")
    assert res.ok and res.output.startswith("Passages (cite them as [source#chunk]):")
    assert "[refunds.md#0] # Refunds\nRefunds are paid back" in res.output
    assert "…" in res.output  # cut to max_chars
    assert res.data[0] == {
        "source": "refunds.md",
        "chunk": 0,
        "text": DOCS["refunds.md"],
        "score": pytest.approx(vault.query("when is my refund paid")[0].score),
    }
    assert len(tool.run(query="days", k=1).data) == 1
    assert len(tool.run(query="days", k=500).data) == 2  # capped to the documents that match
    miss = tool.run(query="submarine")
    assert miss.ok and miss.output == "No passage in the documents matches 'submarine'." and miss.data == []
    bad = tool.run(k=2)
    assert not bad.ok and "query" in (bad.error or "")
    custom = vault.as_tool("kb", "Company handbook")
    assert custom.name == "kb" and custom.description == "Company handbook"


async def test_as_tool_async_and_in_a_registry() -> None:
    vault = Vault.from_texts(DOCS, embedder=None)
    registry = ToolRegistry([vault.as_tool(), pa.CalculatorTool()])
    top = registry.get_relevant_tools("search the documents for passages", top_k=1)
    assert [t.name for t in top] == ["search_documents"]
    res = await registry.get("search_documents").arun(query="express delivery")
    assert res.ok and "[shipping.md#0]" in res.output


def test_an_agent_answers_from_the_documents_with_citations() -> None:
    vault = Vault.from_texts(DOCS, embedder=None)
    seen: list[str] = []

    def model(messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        if schema is not None:  # the planner asks the vault
            return {"calls": [{"id": 1, "tool": "search_documents", "args": {"query": "refund days"}}]}
        seen.append(messages[-1].content)
        cite = re.search(r"\[refunds\.md#\d+\]", messages[-1].content)
        return f"Within 14 days {cite.group(0) if cite else '(no source)'}"

    result = LLMCompiler(FunctionModel(model), ToolRegistry([vault.as_tool()])).compile_and_execute(
        "How long do refunds take?"
    )
    assert result.ok and result.answer == "Within 14 days [refunds.md#0]"
    assert "14 days of the return" in seen[0]
