"""Storing new memories in a MemoryStore: ``add`` (with dedupe and merging into a duplicate)
and ``supersede`` (a new memory that replaces old ones, linked both ways).

A text added as PROMOTED is scanned first; merging and promoting follow ``_may_merge``.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

from purpose_agent.memory._base import new_id
from purpose_agent.memory._retrieve import RetrievalStore
from purpose_agent.memory._schema import MEMORY_COLUMNS, row_to_memory
from purpose_agent.memory._status import StatusStore, linked_note
from purpose_agent.memory.retrieval import Filters
from purpose_agent.memory.types import (
    MADE_BY,
    SCOPES,
    TRUST_PRIORS,
    Memory,
    MemoryKind,
    MemoryStatus,
    UnsafeMemoryError,
    coerce_kind,
    coerce_status,
    jaccard,
    normalize_text,
)

P = MemoryStatus
_STAGING_STATUSES = (P.CANDIDATE, P.QUARANTINED)
#: How ``add`` finds the memory a text merges into: "near" (same normalised text, else token
#: Jaccard ≥ ``dedupe_threshold``), "exact" (same normalised text only), "none" (never merges).
Dedupe = Literal["near", "exact", "none"]
DEDUPE_MODES: tuple[str, ...] = get_args(Dedupe)
_INSERT = f"INSERT INTO memories ({MEMORY_COLUMNS}, norm) VALUES ({','.join('?' * 21)})"


class AddingStore(StatusStore, RetrievalStore):
    """Adding and superseding memories (dedupe, merge, scan) on top of status changes and recall."""

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
                    self._history(c, dup.id, dup.status, P.PROMOTED, why_promoted + linked_note(linked))
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
