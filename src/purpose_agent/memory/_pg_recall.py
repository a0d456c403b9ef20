"""Full-text recall on PostgreSQL: tsquery from the query's words, pruned like FTS5's, ts_rank.

The words are those SQLite gets (``retrieval.fts_terms``). Each word becomes its lexemes under
the ``purpose_agent`` text search configuration (asked of the server once per word, then
cached), and the words are OR-ed. As on SQLite, very common words are left out of a query when
the rarer ones already match enough memories (``PG_MATCH_BUDGET``): ranking thousands of
matches of "file" or "the" is what makes full-text recall slow on a large library, and those
words carry little weight. A word's document frequency is estimated from the planner's
statistics of the ``tsv`` column (``pg_stats.most_common_elems``, kept by ANALYZE and
autovacuum, read at most every ``STATS_TTL_S``) when they list it as common; any other word is
counted through the GIN index (cheap: it is rare, and the count stops past the budget).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from purpose_agent.memory._pg_schema import TS_CONFIG
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.retrieval import Filters, fts_terms
from purpose_agent.memory.types import Memory

if TYPE_CHECKING:
    import psycopg

#: Most matches ranked per query (FTS5's is ``retrieval.MATCH_BUDGET``): ``ts_rank`` per row
#: costs more than FTS5's bm25, so fewer common words are kept once rare ones match enough.
PG_MATCH_BUDGET = 1000
STATS_TTL_S = 60.0
LEXEME_CACHE_MAX = 20_000
_PREFIXED = ", ".join(f"m.{c.strip()}" for c in MEMORY_COLUMNS.split(","))


def _quote(lexeme: str) -> str:
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


class Recall:
    """The per-store state of recall: the word -> lexemes cache and the frequency estimates."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lexemes: dict[str, tuple[str, ...]] = {}
        self._freq: dict[str, float] = {}
        self._rows = 0.0
        self._stats_at = float("-inf")

    def lexemes(self, raw: psycopg.Connection[Any], terms: list[str]) -> dict[str, tuple[str, ...]]:
        with self._lock:
            missing = [t for t in terms if t not in self._lexemes]
        if missing:
            rows = raw.execute(
                "SELECT t, ARRAY(SELECT lexeme FROM unnest(to_tsvector(%s::regconfig, t)) "
                "ORDER BY positions[1]) FROM unnest(%s::text[]) AS t",
                (TS_CONFIG, missing),
            ).fetchall()
            with self._lock:
                if len(self._lexemes) > LEXEME_CACHE_MAX:
                    self._lexemes.clear()
                for t, lex in rows:
                    self._lexemes[t] = tuple(lex)
        with self._lock:
            return {t: self._lexemes.get(t, ()) for t in terms}

    def _stats(self, raw: psycopg.Connection[Any]) -> tuple[dict[str, float], float]:
        now = time.monotonic()
        with self._lock:
            if now - self._stats_at < STATS_TTL_S:
                return self._freq, self._rows
        row = raw.execute(
            "SELECT s.most_common_elems::text::text[], s.most_common_elem_freqs, c.reltuples "
            "FROM pg_class c LEFT JOIN pg_stats s ON s.schemaname = current_schema() "
            "AND s.tablename = 'memories' AND s.attname = 'tsv' "
            "WHERE c.oid = to_regclass('memories')"
        ).fetchone()
        freq: dict[str, float] = {}
        rows = 0.0
        if row is not None and row[0] is not None and row[1] is not None:
            freq = {e: float(f) for e, f in zip(row[0], row[1], strict=False)}
            rows = max(0.0, float(row[2] or 0.0))
        with self._lock:
            self._freq, self._rows, self._stats_at = freq, rows, now
        return freq, rows

    def _prune(
        self,
        raw: psycopg.Connection[Any],
        words: dict[str, str],
        lexemes: dict[str, tuple[str, ...]],
        budget: int,
    ) -> list[str]:
        """Rarest words first, as many as fit ``budget`` matches (at least one); words that match
        nothing are dropped. A word the statistics list as common is estimated from them; any
        other word is counted (through the GIN index, capped at ``budget + 1``)."""
        freq, rows = self._stats(raw)
        df: dict[str, float] = {}
        for t in words:
            if rows and freq and all(lx in freq for lx in lexemes[t]):
                df[t] = rows * min(freq[lx] for lx in lexemes[t])
        rest = [t for t in words if t not in df]
        if rest:
            counted = raw.execute(
                "SELECT (SELECT count(*) FROM (SELECT 1 FROM memories WHERE tsv @@ w::tsquery LIMIT %s) s) "
                "FROM unnest(%s::text[]) WITH ORDINALITY AS u(w, i) ORDER BY i",
                (budget + 1, [words[t] for t in rest]),
                prepare=False,
            ).fetchall()
            df.update((t, float(n)) for t, (n,) in zip(rest, counted, strict=True))
        kept: list[str] = []
        total = 0.0
        for n, t in sorted((n, t) for t, n in df.items() if n > 0):
            if kept and total + n > budget:
                break
            kept.append(t)
            total += n
        return kept

    def recall(
        self, raw: psycopg.Connection[Any], query: str, pool: int, filters: Filters, translate: Any
    ) -> list[tuple[Memory, float]]:
        """Top ``pool`` memories by ``ts_rank``, relevance scaled so the best one is 1.0."""
        terms = fts_terms(query)
        if not terms:
            return []
        lexemes = {t: lx for t, lx in self.lexemes(raw, terms).items() if lx}
        words = {t: " & ".join(_quote(x) for x in lx) for t, lx in lexemes.items()}
        kept = self._prune(raw, words, lexemes, max(PG_MATCH_BUDGET, 20 * pool))
        if not kept:
            return []
        tsquery = " | ".join(f"({words[t]})" for t in kept)
        where, params = filters.sql()
        sql = translate(
            f"SELECT {_PREFIXED}, ts_rank(m.tsv, ?::tsquery) AS r FROM memories m "
            f"WHERE m.tsv @@ ?::tsquery{where} ORDER BY r DESC, m.seq LIMIT ?"
        )
        # never prepared: a generic plan cannot see how rare the words are (it scans every row)
        rows = raw.execute(sql, (tsquery, tsquery, *params, pool), prepare=False).fetchall()
        if not rows:
            return []
        top = max(float(r[-1]) for r in rows) or 1.0
        return [(row_to_memory(r), max(0.0, float(r[-1])) / top) for r in rows]
