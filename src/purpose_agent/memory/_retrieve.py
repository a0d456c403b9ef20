"""Embeddings and retrieval of a MemoryStore: lexical recall, the dense index, re-ranking.

``retrieve`` recalls by BM25 (hybrid with dense cosine by reciprocal rank fusion when an
embedder is available), then re-ranks by relevance and Q; ``retrieve_mixture`` adds the
always-on shared memories. The lexical phase is ``_recall_lexical``, which the PostgreSQL
backend replaces with its own full-text recall.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from purpose_agent.memory import retrieval
from purpose_agent.memory._base import StoreBase
from purpose_agent.memory.embeddings import Embedder
from purpose_agent.memory.retrieval import Filters
from purpose_agent.memory.types import (
    SHARED_KINDS,
    Memory,
    MemoryKind,
    MemoryStatus,
    Retrieved,
    coerce_kind,
    coerce_status,
)

P = MemoryStatus


class RetrievalStore(StoreBase):
    """The retrieval part of a MemoryStore (embeddings, recall, re-rank)."""

    def _recall_lexical(
        self, c: sqlite3.Connection, query: str, pool: int, f: Filters
    ) -> list[tuple[Memory, float]]:
        """Phase one, lexical: BM25 over FTS5 (the PostgreSQL backend uses its tsvector index)."""
        return retrieval.recall_bm25(c, query, pool, f)

    def _embedder(self, required: bool) -> Embedder | None:
        from purpose_agent.memory.embeddings import default_embedder, embed_available

        arg = self._embedder_arg
        if arg == "auto":
            return default_embedder() if (required or embed_available()) else None
        if arg is None and required:
            return default_embedder()  # raises MissingExtraError without the extra
        return arg if not isinstance(arg, str) else None

    def _embed_new(self, ids: Sequence[str]) -> None:
        if self._embedder_arg is None or not self.mode.can_write:
            return
        emb = self._embedder(required=False)
        if emb is not None:
            self.index_embeddings(ids=ids)

    def index_embeddings(self, *, ids: Sequence[str] | None = None, batch: int = 64) -> int:
        """Compute and store missing embeddings (all, or of ``ids``); returns how many."""
        from purpose_agent.memory.embeddings import to_blob

        self._require_write("storing embeddings")
        emb = self._embedder(required=True)
        assert emb is not None
        sql = (
            "SELECT m.id, m.text FROM memories m LEFT JOIN embeddings e ON e.memory_id = m.id "
            "AND e.model = ? WHERE e.memory_id IS NULL"
        )
        with self._reading() as c:
            if ids is None:
                rows = c.execute(sql, (emb.name,)).fetchall()
            else:
                wanted = list(dict.fromkeys(ids))
                rows = []
                for i in range(0, len(wanted), 500):  # stay under SQLite's parameter limit
                    part = wanted[i : i + 500]
                    q = sql + f" AND m.id IN ({','.join('?' * len(part))})"
                    rows += c.execute(q, [emb.name, *part]).fetchall()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            vecs = emb.embed([r[1] for r in chunk])
            with self._tx() as c:
                c.executemany(
                    "INSERT OR REPLACE INTO embeddings (memory_id, model, dim, vec) VALUES (?,?,?,?)",
                    [(r[0], emb.name, emb.dim, to_blob(v)) for r, v in zip(chunk, vecs, strict=True)],
                )
        return len(rows)

    def retrieve(
        self,
        query: str,
        k: int = 6,
        *,
        kinds: Iterable[MemoryKind | str] | None = None,
        scope: str | None = None,
        scope_key: str | None = None,
        statuses: Iterable[MemoryStatus | str] = (MemoryStatus.PROMOTED,),
        exclude_ids: Iterable[str] = (),
        dense: bool | None = None,
        q_weight: float | None = None,
        pool: int | None = None,
    ) -> list[Retrieved]:
        """Recall (BM25; hybrid with dense cosine by reciprocal rank fusion when an embedder is
        available, or ``dense=True``), then re-rank by (1 − w)·relevance + w·Q."""
        f = Filters(
            tuple(coerce_kind(x) for x in kinds) if kinds is not None else None,
            tuple(coerce_status(s) for s in statuses),
            scope,
            scope_key,
            tuple(exclude_ids),
        )
        n = pool or max(4 * k, 24)
        with self._reading() as c:
            lex = self._recall_lexical(c, query, n, f)
            emb = self._embedder(required=bool(dense)) if dense is not False else None
            if emb is not None:
                sem = self._dense.recall(c, emb, query, n, f, self._version())
                cands = retrieval.fuse_rrf([lex, sem]) if sem else lex
            else:
                cands = lex
        return retrieval.rerank(cands, k, self.q_weight if q_weight is None else q_weight)

    def retrieve_mixture(
        self,
        query: str,
        shared: int = 2,
        routed: int = 4,
        *,
        shared_kinds: Sequence[MemoryKind | str] = SHARED_KINDS,
        **kwargs: Any,
    ) -> list[Retrieved]:
        """Mixture-of-Heuristics: ``shared`` always-on memories (highest trust × Q among
        ``shared_kinds``) plus the ``routed`` best for the query; never more than shared + routed."""
        f = Filters(
            None,
            tuple(coerce_status(s) for s in kwargs.get("statuses", (P.PROMOTED,))),
            kwargs.get("scope"),
            kwargs.get("scope_key"),
            tuple(kwargs.get("exclude_ids", ())),
        )
        with self._reading() as c:
            always = retrieval.shared_memories(c, shared, [coerce_kind(x) for x in shared_kinds], f)
        taken = tuple(r.memory.id for r in always)
        kwargs["exclude_ids"] = (*tuple(kwargs.get("exclude_ids", ())), *taken)
        return always + self.retrieve(query, routed, **kwargs) if routed > 0 else always
