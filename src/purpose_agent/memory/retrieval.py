"""Two-phase retrieval: recall (BM25 via FTS5, dense cosine, or both fused), then a Q re-rank.

Also the Mixture-of-Heuristics selection: a few shared always-on memories plus routed top-k.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from purpose_agent._text import STOPWORDS
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.types import Memory, MemoryKind, MemoryStatus, Retrieved, tokens

MAX_TERMS = 16
#: Most FTS matches scored per query; beyond it the commonest words are left out of the query.
MATCH_BUDGET = 4000
RRF_K = 60


def fts_terms(text: str, max_terms: int = MAX_TERMS) -> list[str]:
    """The search words of free user text: NFKC, lower-cased, deduplicated, stopwords dropped
    (unless nothing else is left), longest first, at most ``max_terms``."""
    words = tokens(text)
    uniq = [w for w in dict.fromkeys(w.replace("_", " ").strip() for w in words) if w]
    kept = [w for w in uniq if w not in STOPWORDS and (len(w) > 1 or not w.isascii())] or uniq
    kept.sort(key=len, reverse=True)  # longer words are rarer: keep them when capping
    return kept[:max_terms]


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


def fts_query(text: str, max_terms: int = MAX_TERMS) -> str | None:
    """An FTS5 MATCH expression for free user text, or None when it has no usable word.

    Every term is a double-quoted string joined by OR, so quotes, operators (AND, OR, NOT,
    NEAR), column filters, ``*`` and ``^`` in user text are matched as plain words.
    """
    terms = fts_terms(text, max_terms)
    return " OR ".join(_quote(t) for t in terms) if terms else None


def _prune(conn: sqlite3.Connection, terms: list[str], budget: int) -> list[str]:
    """Keep the rarest terms whose summed document frequency fits ``budget`` (at least one).

    Scoring every match of very common words is what makes BM25 slow on a large library;
    those words carry little IDF weight, so dropping them changes little but the cost.
    """
    dfs = []
    for t in terms:
        row = conn.execute("SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (_quote(t),))
        df = int(row.fetchone()[0])
        if df:
            dfs.append((df, t))
    dfs.sort()
    kept: list[str] = []
    total = 0
    for df, t in dfs:
        if kept and total + df > budget:
            break
        kept.append(t)
        total += df
    return kept


@dataclass(frozen=True)
class Filters:
    """Which memories may be retrieved."""

    kinds: tuple[MemoryKind, ...] | None = None
    statuses: tuple[MemoryStatus, ...] = (MemoryStatus.PROMOTED,)
    scope: str | None = None
    scope_key: str | None = None
    exclude_ids: tuple[str, ...] = ()

    def sql(self, alias: str = "m") -> tuple[str, list[object]]:
        """A WHERE fragment (starting with AND) and its parameters."""
        parts: list[str] = []
        params: list[object] = []
        if self.statuses:
            parts.append(f"{alias}.status IN ({','.join('?' * len(self.statuses))})")
            params.extend(s.value for s in self.statuses)
        if self.kinds:
            parts.append(f"{alias}.kind IN ({','.join('?' * len(self.kinds))})")
            params.extend(k.value for k in self.kinds)
        if self.scope is not None:
            parts.append(f"{alias}.scope = ?")
            params.append(self.scope)
        if self.scope_key is not None:
            # memories of this key, plus those with no key (global, team-wide)
            parts.append(f"({alias}.scope_key IS NULL OR {alias}.scope_key = ?)")
            params.append(self.scope_key)
        if self.exclude_ids:
            parts.append(f"{alias}.id NOT IN ({','.join('?' * len(self.exclude_ids))})")
            params.extend(self.exclude_ids)
        return "".join(" AND " + p for p in parts), params


def _prefixed(alias: str) -> str:
    return ", ".join(f"{alias}.{c.strip()}" for c in MEMORY_COLUMNS.split(","))


def recall_bm25(
    conn: sqlite3.Connection, query: str, pool: int, filters: Filters
) -> list[tuple[Memory, float]]:
    """Top ``pool`` memories by BM25, with relevance scaled so the best one is 1.0."""
    terms = _prune(conn, fts_terms(query), max(MATCH_BUDGET, 20 * pool))
    if not terms:
        return []
    match = " OR ".join(_quote(t) for t in terms)
    where, params = filters.sql()
    sql = (
        f"SELECT {_prefixed('m')}, bm25(memories_fts) AS r FROM memories_fts "
        f"JOIN memories m ON m.seq = memories_fts.rowid "
        f"WHERE memories_fts MATCH ?{where} ORDER BY r LIMIT ?"
    )
    rows = conn.execute(sql, [match, *params, pool]).fetchall()
    if not rows:
        return []
    raw = [max(0.0, -float(r[-1])) for r in rows]
    top = max(raw) or 1.0
    return [(row_to_memory(r), s / top) for r, s in zip(rows, raw, strict=True)]


def fuse_rrf(lists: Sequence[Sequence[tuple[Memory, float]]], k: int = RRF_K) -> list[tuple[Memory, float]]:
    """Reciprocal rank fusion; relevance scaled so the best fused one is 1.0."""
    scores: dict[str, float] = {}
    mems: dict[str, Memory] = {}
    for ranked in lists:
        for rank, (m, _rel) in enumerate(ranked):
            scores[m.id] = scores.get(m.id, 0.0) + 1.0 / (k + rank + 1)
            mems[m.id] = m
    if not scores:
        return []
    top = max(scores.values())
    order = sorted(scores, key=lambda i: -scores[i])
    return [(mems[i], scores[i] / top) for i in order]


def rerank(cands: Iterable[tuple[Memory, float]], k: int, q_weight: float) -> list[Retrieved]:
    """Second phase: final = (1 − w)·relevance + w·Q; ties broken by trust then id."""
    out = [Retrieved(m, rel, (1.0 - q_weight) * rel + q_weight * m.q) for m, rel in cands]
    out.sort(key=lambda r: (-r.score, -r.memory.trust, r.memory.id))
    return out[:k]


def shared_memories(
    conn: sqlite3.Connection, n: int, kinds: Sequence[MemoryKind], filters: Filters
) -> list[Retrieved]:
    """The ``n`` always-on memories of ``kinds`` with the highest trust × Q."""
    if n <= 0 or not kinds:
        return []
    f = Filters(tuple(kinds), filters.statuses, filters.scope, filters.scope_key, filters.exclude_ids)
    where, params = f.sql()
    rows = conn.execute(
        f"SELECT {_prefixed('m')} FROM memories m WHERE 1=1{where} "
        "ORDER BY m.trust * m.q DESC, m.seq LIMIT ?",
        [*params, n],
    ).fetchall()
    mems = [row_to_memory(r) for r in rows]
    return [Retrieved(m, 1.0, m.trust * m.q, "shared") for m in mems]
