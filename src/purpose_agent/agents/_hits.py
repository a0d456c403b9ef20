"""The Vault's search results: a ``Hit`` (a cited chunk with its score), rank fusion of
several rankings, and clipping a passage for a tool's answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from purpose_agent.memory.retrieval import RRF_K


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved chunk: where it comes from, its text and its score (higher is better).

    The score is the BM25 score for ``bm25``, the cosine similarity for ``dense`` and the fused
    reciprocal-rank score (best hit = 1.0) for ``hybrid``.
    """

    source: str
    chunk: int
    text: str
    score: float

    @property
    def citation(self) -> str:
        return f"[{self.source}#{self.chunk}]"

    def __str__(self) -> str:
        return f"{self.citation} {self.text}"


def fuse(lists: Sequence[Sequence[Hit]], k: int) -> list[Hit]:
    """Reciprocal rank fusion of ranked hit lists; scores scaled so the best is 1.0."""
    scores: dict[tuple[str, int], float] = {}
    hits: dict[tuple[str, int], Hit] = {}
    for ranked in lists:
        for rank, hit in enumerate(ranked):
            key = (hit.source, hit.chunk)
            scores[key] = scores.get(key, 0.0) + 1.0 / (RRF_K + rank + 1)
            hits.setdefault(key, hit)
    if not scores:
        return []
    top = max(scores.values())
    order = sorted(scores, key=lambda key: (-scores[key], key))[:k]
    return [Hit(hits[key].source, hits[key].chunk, hits[key].text, scores[key] / top) for key in order]


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"
