"""MemoryStore: one SQLite file (WAL) per memory space, with run modes enforced here.

Every write is one ``BEGIN IMMEDIATE`` transaction. Nothing is ever deleted: memories are
rejected, archived or superseded, and every status change is kept with its reason.
``EVAL_TEST`` opens the file read-only (``mode=ro``) so no byte of it changes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args

from purpose_agent.memory import retrieval
from purpose_agent.memory._base import StoreBase, new_id, scan_text
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory.credit import apply_credit
from purpose_agent.memory.embeddings import Embedder
from purpose_agent.memory.protocol import is_database_url
from purpose_agent.memory.retrieval import Filters
from purpose_agent.memory.types import (
    MADE_BY,
    SCOPES,
    SHARED_KINDS,
    TRUST_PRIORS,
    Memory,
    MemoryKind,
    MemoryStatus,
    Retrieved,
    UnsafeMemoryError,
    coerce_kind,
    coerce_status,
    jaccard,
    normalize_text,
)

__all__ = ["MemoryStore", "scan_text"]

P = MemoryStatus
_STAGING_STATUSES = (P.CANDIDATE, P.QUARANTINED)
_list = list
#: How ``add`` finds the memory a text merges into: "near" (same normalised text, else token
#: Jaccard ≥ ``dedupe_threshold``), "exact" (same normalised text only), "none" (never merges).
Dedupe = Literal["near", "exact", "none"]
DEDUPE_MODES: tuple[str, ...] = get_args(Dedupe)
_INSERT = f"INSERT INTO memories ({MEMORY_COLUMNS}, norm) VALUES ({','.join('?' * 21)})"


def _linked_note(linked: Sequence[str]) -> str:
    return f" (supersedes {', '.join(linked)})" if linked else ""


class MemoryStore(StoreBase):
    """Typed lessons in one SQLite file. See the module docstring for the guarantees.

    ``MemoryStore("postgresql://...")`` (or ``MemoryStore.connect(url)``) gives the PostgreSQL
    backend instead (``purpose_agent.memory.postgres``, extra ``postgres``), same semantics."""

    def __new__(cls, path: str | Path, *args: Any, **kwargs: Any) -> MemoryStore:
        if cls is MemoryStore and is_database_url(path):
            from purpose_agent.memory.postgres import PostgresStore

            return super().__new__(PostgresStore)
        return super().__new__(cls)

    @classmethod
    def connect(cls, url: str | Path, **kwargs: Any) -> MemoryStore:
        """The store at ``url``: a ``postgresql://`` URL, or a SQLite file path."""
        return MemoryStore(url, **kwargs)

    def _recall_lexical(
        self, c: sqlite3.Connection, query: str, pool: int, f: Filters
    ) -> _list[tuple[Memory, float]]:
        """Phase one, lexical: BM25 over FTS5 (the PostgreSQL backend uses its tsvector index)."""
        return retrieval.recall_bm25(c, query, pool, f)

    # ------------------------------------------------------------------ adding
    def _find_duplicate(
        self, c: sqlite3.Connection, text: str, kind: MemoryKind, scope: str, key: str | None, dedupe: str
    ) -> Memory | None:
        if dedupe == "none":
            return None
        row = c.execute(
            f"SELECT {MEMORY_COLUMNS} FROM memories WHERE kind = ? AND norm = ? AND scope = ? AND scope_key IS ? "
            "ORDER BY seq LIMIT 1",
            (kind.value, normalize_text(text), scope, key),
        ).fetchone()
        if row is not None or dedupe == "exact":
            return row_to_memory(row) if row is not None else None
        f = Filters(kinds=(kind,), statuses=tuple(P), scope=scope)
        for m, _rel in self._recall_lexical(c, text, 10, f):
            if m.scope_key == key and jaccard(m.text, text) >= self.dedupe_threshold:
                return m
        return None

    def _insert(
        self,
        c: sqlite3.Connection,
        mid: str,
        kind: MemoryKind,
        text: str,
        status: MemoryStatus,
        scope: str,
        scope_key: str | None,
        made_by: str,
        sources: Sequence[str],
        trust: float,
        meta: dict[str, Any] | None,
        now: float,
        *,
        q: float = 0.5,
        supersedes: Sequence[str] = (),
    ) -> None:
        c.execute(
            _INSERT,
            (
                mid,
                kind.value,
                text,
                status.value,
                scope,
                scope_key,
                made_by,
                json.dumps(list(sources)),
                trust,
                q,
                0,
                0,
                0,
                0,
                0,
                json.dumps(list(supersedes)),
                None,
                json.dumps(meta or {}),
                now,
                now,
                normalize_text(text),
            ),
        )

    def add(
        self,
        text: str,
        kind: MemoryKind | str,
        *,
        scope: str = "global",
        scope_key: str | None = None,
        status: MemoryStatus | str = MemoryStatus.CANDIDATE,
        made_by: str = "distiller",
        sources: Iterable[str] = (),
        trust: float | None = None,
        meta: dict[str, Any] | None = None,
        reason: str | None = None,
        dedupe: Dedupe = "near",
    ) -> str:
        """Store a lesson and return its id; a duplicate of the same kind and scope is merged
        into the existing memory (counter bumped, sources joined; its text and meta stay) and
        its id returned. ``dedupe`` says what counts as a duplicate: "near" (the default: the
        same normalised text, else token Jaccard ≥ ``dedupe_threshold``), "exact" (the same
        normalised text only; a variant that differs by a word is stored as its own memory), or
        "none" (never merge). ``reason`` goes to the status history (default: "added by <made_by>").

        Adding as PROMOTED scans the text first: an unsafe one is stored as its own rejected
        memory and UnsafeMemoryError is raised. A text only merges into a promoted memory once
        it has been scanned safe, and promoting a near-duplicate scans that one's text too.
        Re-adding as PROMOTED never revives a superseded memory (a new one is stored instead).
        """
        if dedupe not in DEDUPE_MODES:
            raise ValueError(f"unknown dedupe {dedupe!r}; expected one of {DEDUPE_MODES}")
        kind, status = coerce_kind(kind), coerce_status(status)
        text = text.strip()
        if not text:
            raise ValueError("a memory needs a non-empty text")
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}; expected one of {SCOPES}")
        if made_by not in MADE_BY:
            raise ValueError(f"unknown made_by {made_by!r}; expected one of {MADE_BY}")
        if status not in _STAGING_STATUSES:
            self._require_write(f"adding a {status.value} memory")
        else:
            self._require_stage("adding a memory")
        scans: dict[str, tuple[bool, str]] = {}

        def scan(t: str) -> tuple[bool, str]:
            if t not in scans:
                scans[t] = self._scan(t, kind.value, scope)
            return scans[t]

        if status is P.PROMOTED:
            scan(text)  # before the write lock; the rare scans a duplicate needs run inside it
        trust_v = float(TRUST_PRIORS[kind] if trust is None else trust)
        srcs = [str(s) for s in sources]
        now = time.time()
        with self._tx() as c:
            dup = self._find_duplicate(c, text, kind, scope, scope_key, dedupe)
            created = dup is None or not self._may_merge(dup, text, status, scan)
            if dup is not None and not created:
                mid = dup.id
                if self.mode.can_write or dup.status in _STAGING_STATUSES:
                    merged = list(dict.fromkeys([*dup.sources, *srcs]))
                    c.execute(
                        "UPDATE memories SET merges = merges + 1, sources = ?, trust = MAX(trust, ?), "
                        "updated_at = ? WHERE id = ?",
                        (json.dumps(merged), trust_v if trust is not None else dup.trust, now, dup.id),
                    )
                if status is P.PROMOTED and dup.status is not P.PROMOTED and scan(text)[0]:
                    c.execute("UPDATE memories SET status = ? WHERE id = ?", (P.PROMOTED.value, dup.id))
                    why_promoted = reason or f"promoted on re-add by {made_by}"
                    linked = self._link_supersessions(c, dup, why_promoted, now)
                    self._history(c, dup.id, dup.status, P.PROMOTED, why_promoted + _linked_note(linked))
            else:
                mid = new_id()
                safe, why = scan(text) if status is P.PROMOTED else (True, "")
                final = status if safe else P.REJECTED
                self._insert(c, mid, kind, text, final, scope, scope_key, made_by, srcs, trust_v, meta, now)
                why_added = reason or f"added by {made_by}"
                self._history(c, mid, None, final, why_added + ("" if safe else f"; {why}"))
        if status is P.PROMOTED and not scan(text)[0]:
            raise UnsafeMemoryError(mid, scan(text)[1])
        if created:
            self._embed_new([mid])
        return mid

    def _may_merge(
        self, dup: Memory, text: str, status: MemoryStatus, scan: Callable[[str], tuple[bool, str]]
    ) -> bool:
        """May ``text`` (added as ``status``) merge into its near-duplicate ``dup``? An unsafe or
        rejected text never changes a live memory; a promotion never lifts an unscanned text; a
        text joins a promoted memory only once scanned safe (scans here run inside the write
        transaction, only when a duplicate needs them)."""
        if status is P.REJECTED or (status is P.PROMOTED and not scan(text)[0]):
            return dup.status is P.REJECTED
        if status is P.PROMOTED and dup.superseded_by is not None:
            return False  # a superseded memory is restored by a rollback only
        if status is P.PROMOTED:
            return dup.status is P.PROMOTED or dup.text == text or scan(dup.text)[0]
        if dup.status is P.PROMOTED and self.mode.can_write:  # a candidate joining a live memory
            return scan(text)[0]
        return True

    # ------------------------------------------------------------------ status changes
    def set_status(self, memory_id: str, status: MemoryStatus | str, reason: str) -> Memory:
        """Move a memory to ``status`` with a reason (kept in its history); returns it updated.

        Promotion scans the text first; an unsafe memory is rejected and UnsafeMemoryError raised.
        Promoting a memory that declares it supersedes others (``supersede(..., status=CANDIDATE)``)
        archives them in the same transaction, linked both ways, so ``rollback`` restores them.
        A superseded memory cannot be promoted (ValueError: roll back its successor instead).
        LEARNING_VALIDATION may only quarantine; EVAL_TEST raises.
        """
        status = coerce_status(status)
        if not reason.strip():
            raise ValueError("a status change needs a reason")
        if status is P.QUARANTINED:
            self._require_stage("quarantining a memory")
        else:
            self._require_write(f"setting a memory to {status.value}")
        with self._lock:
            # Text, kind and scope never change, so the scan may run before the transaction;
            # the status it depends on is read inside it (another process may change it).
            m = self.get(memory_id)
            safe, why = self._scan(m.text, m.kind.value, m.scope) if status is P.PROMOTED else (True, "")
            with self._tx() as c:
                old = self._get(c, memory_id)
                if not self.mode.can_write and old.status is not P.CANDIDATE:
                    raise self._deny(
                        f"quarantining a {old.status.value} memory", "only candidates may be quarantined"
                    )
                unsafe = status is P.PROMOTED and old.status is not P.PROMOTED and not safe
                final, final_reason = (P.REJECTED, f"{why} (while: {reason})") if unsafe else (status, reason)
                if final is P.PROMOTED and old.status is not P.PROMOTED and old.superseded_by is not None:
                    raise ValueError(
                        f"memory {memory_id} is superseded by {old.superseded_by}; "
                        "roll that one back to restore it"
                    )
                if old.status is not final:
                    now = time.time()
                    c.execute(
                        "UPDATE memories SET status = ?, updated_at = ? WHERE id = ?",
                        (final.value, now, memory_id),
                    )
                    if final is P.PROMOTED:
                        final_reason += _linked_note(self._link_supersessions(c, old, reason, now))
                    self._history(c, memory_id, old.status, final, final_reason)
            if unsafe:
                raise UnsafeMemoryError(memory_id, why)
            return self.get(memory_id)

    def promote(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.PROMOTED, reason)

    def reject(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.REJECTED, reason)

    def quarantine(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.QUARANTINED, reason)

    def archive(self, memory_id: str, reason: str) -> Memory:
        return self.set_status(memory_id, P.ARCHIVED, reason)

    def supersede(
        self,
        old_ids: Sequence[str],
        new_text: str,
        kind: MemoryKind | str,
        reason: str,
        *,
        made_by: str = "evolution",
        trust: float | None = None,
        meta: dict[str, Any] | None = None,
        sources: Iterable[str] = (),
        status: MemoryStatus | str = MemoryStatus.PROMOTED,
    ) -> str:
        """Store ``new_text`` as a memory that replaces ``old_ids``; returns the new id.

        ``status=PROMOTED`` (the default): the text is scanned, the new memory is promoted and
        the old ones archived at once, linked both ways. ``status=CANDIDATE``: the new memory
        is a candidate that declares what it supersedes (``Memory.supersedes``) and must pass
        the gate like any other; the old ones stay as they are until it is promoted, and its
        promotion archives them in the same transaction (a rejected candidate changes nothing).
        Either way ``rollback(new_id)`` restores what it superseded.

        ``meta`` is the new memory's meta; ``sources`` its own provenance (e.g. the run it
        came from), listed before the old memories' sources. A memory already superseded by
        another one raises ValueError (roll that one back first). Never merges with another
        memory: the new text is always its own row.
        """
        status = coerce_status(status)
        if status not in (P.PROMOTED, P.CANDIDATE):
            raise ValueError(f"supersede stores a promoted memory or a candidate, not {status.value}")
        if status is P.PROMOTED:
            self._require_write("superseding memories")
        else:
            self._require_stage("staging a superseding memory")
        kind = coerce_kind(kind)
        if not old_ids or not new_text.strip() or made_by not in MADE_BY:
            raise ValueError("supersede needs old ids, a non-empty new text and a valid made_by")
        ids = list(dict.fromkeys(old_ids))
        new_srcs = [str(s) for s in sources]
        with self._lock:
            scope = self.get(ids[0]).scope  # never changes: the scan may run before the transaction
            if status is P.PROMOTED:
                safe, why = self._scan(new_text, kind.value, scope)
                if not safe:
                    raise UnsafeMemoryError("(new)", why)
            mid, now = new_id(), time.time()
            trust_v = float(TRUST_PRIORS[kind] if trust is None else trust)
            with self._tx() as c:
                olds = [self._get(c, i) for i in ids]  # statuses as they are now, not before BEGIN
                for m in olds:
                    if m.superseded_by is not None:
                        raise ValueError(
                            f"memory {m.id} is already superseded by {m.superseded_by}; "
                            "roll that one back first, or supersede it instead"
                        )
                first = olds[0]
                srcs = list(dict.fromkeys([*new_srcs, *(s for m in olds for s in m.sources)]))
                self._insert(
                    c,
                    mid,
                    kind,
                    new_text.strip(),
                    status,
                    first.scope,
                    first.scope_key,
                    made_by,
                    srcs,
                    trust_v,
                    meta,
                    now,
                    q=sum(m.q for m in olds) / len(olds),
                    supersedes=[m.id for m in olds],
                )
                if status is P.PROMOTED:
                    self._history(c, mid, None, P.PROMOTED, f"supersedes {len(olds)}: {reason}")
                    self._link_supersessions(c, self._get(c, mid), reason, now)
                else:
                    why = f"added by {made_by}; supersedes {len(olds)} once promoted: {reason}"
                    self._history(c, mid, None, P.CANDIDATE, why)
        self._embed_new([mid])
        return mid

    def _link_supersessions(self, c: sqlite3.Connection, new: Memory, reason: str, now: float) -> _list[str]:
        """On the promotion of ``new`` (inside its transaction): archive every memory it
        declares it supersedes, linked back to it; returns their ids. One superseded by
        another memory meanwhile (or missing) is left as it is and dropped from the links."""
        linked: list[str] = []
        for old_id in new.supersedes:
            row = c.execute(f"SELECT {MEMORY_COLUMNS} FROM memories WHERE id = ?", (old_id,)).fetchone()
            old = row_to_memory(row) if row is not None else None
            if old is None or old.id == new.id or old.superseded_by not in (None, new.id):
                continue
            linked.append(old.id)
            if old.superseded_by == new.id:
                continue
            c.execute(
                "UPDATE memories SET status = ?, superseded_by = ?, updated_at = ? WHERE id = ?",
                (P.ARCHIVED.value, new.id, now, old.id),
            )
            self._history(c, old.id, old.status, P.ARCHIVED, f"superseded by {new.id}: {reason}")
        if linked != list(new.supersedes):
            c.execute("UPDATE memories SET supersedes = ? WHERE id = ?", (json.dumps(linked), new.id))
        return linked

    def rollback(self, memory_id: str, reason: str) -> _list[str]:
        """Undo a promotion: the memory becomes rejected (history kept) and every memory it
        superseded gets back the status it had before; returns the restored ids."""
        self._require_write("rolling back a promotion")
        with self._lock:
            restored: list[str] = []
            with self._tx() as c:
                m = self._get(c, memory_id)
                if m.status is not P.PROMOTED:
                    raise ValueError(
                        f"memory {memory_id} is {m.status.value}; only a promotion can be rolled back"
                    )
                now = time.time()
                c.execute(
                    "UPDATE memories SET status = ?, updated_at = ? WHERE id = ?",
                    (P.REJECTED.value, now, memory_id),
                )
                self._history(c, memory_id, P.PROMOTED, P.REJECTED, f"rollback: {reason}")
                for old_id in m.supersedes:
                    old = self._get(c, old_id)
                    if old.superseded_by != memory_id:
                        continue
                    row = c.execute(
                        "SELECT old_status FROM status_history WHERE memory_id = ? AND new_status = ? "
                        "ORDER BY seq DESC LIMIT 1",
                        (old_id, P.ARCHIVED.value),
                    ).fetchone()
                    prev = P(row[0]) if row and row[0] else P.PROMOTED
                    c.execute(
                        "UPDATE memories SET status = ?, superseded_by = NULL, updated_at = ? WHERE id = ?",
                        (prev.value, now, old_id),
                    )
                    self._history(
                        c, old_id, old.status, prev, f"restored by rollback of {memory_id}: {reason}"
                    )
                    restored.append(old_id)
            return restored

    # ------------------------------------------------------------------ runs and credit
    def record_inclusion(self, ids: Iterable[str], run_id: str) -> None:
        """Record that ``ids`` were in a prompt of ``run_id`` (staging rows in LEARNING_VALIDATION;
        ``times_included`` only counts training runs). Idempotent per (run_id, id)."""
        self._require_stage("recording included memories")
        staging = 0 if self.mode.can_write else 1
        with self._tx() as c:
            for mid in dict.fromkeys(ids):
                cur = c.execute(
                    "INSERT OR IGNORE INTO inclusions (run_id, memory_id, staging, at) VALUES (?,?,?,?)",
                    (run_id, mid, staging, time.time()),
                )
                if cur.rowcount == 1 and not staging:
                    c.execute("UPDATE memories SET times_included = times_included + 1 WHERE id = ?", (mid,))

    def credit(self, ids: Iterable[str], outcome: float, run_id: str) -> _list[str]:
        """Credit the memories that were in the prompt with the run's outcome in [0, 1]:
        helpful if ≥ 0.5 else harmful, Q moves toward the outcome. Idempotent per (run_id, id);
        when inclusions were recorded for the run, ids not included are ignored."""
        self._require_write("crediting memories")
        with self._tx() as c:
            return apply_credit(c, ids, outcome, run_id)

    def record_replay(
        self,
        memory_id: str,
        with_scores: Sequence[float],
        without_scores: Sequence[float],
        decision: str,
        reason: str,
    ) -> None:
        """Store one memory-CI replay result (staging data)."""
        self._require_stage("recording a replay result")
        mw = sum(with_scores) / len(with_scores) if with_scores else 0.0
        mo = sum(without_scores) / len(without_scores) if without_scores else 0.0
        with self._tx() as c:
            c.execute(
                "INSERT INTO replay_results (memory_id, with_scores, without_scores, gain, decision, reason, at) "
                "VALUES (?,?,?,?,?,?,?)",
                (
                    memory_id,
                    json.dumps(list(with_scores)),
                    json.dumps(list(without_scores)),
                    mw - mo,
                    decision,
                    reason,
                    time.time(),
                ),
            )

    # ------------------------------------------------------------------ retrieval
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
    ) -> _list[Retrieved]:
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
    ) -> _list[Retrieved]:
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

    # ------------------------------------------------------------------ reports and transfer
    def status_report(self, *, top: int = 10) -> dict[str, Any]:
        """Memories by kind and status, top promoted with utilities, rejected with reasons."""
        from purpose_agent.memory._report import build_report

        with self._reading():
            return build_report(self, top)

    def export(self, path: str | Path) -> int:
        """Write every memory with its history as JSONL; returns the number written."""
        from purpose_agent.memory._report import export_jsonl

        with self._reading():
            return export_jsonl(self, Path(path))

    def import_jsonl(self, path: str | Path) -> dict[str, int]:
        """Import an export: known ids and duplicates are skipped; promoted lessons are scanned
        (unsafe ones arrive rejected). One transaction. Returns counts added/skipped/rejected."""
        from purpose_agent.memory._report import import_jsonl

        self._require_write("importing memories")
        return import_jsonl(self, Path(path))
