"""Status report and JSONL export / import of a MemoryStore."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from purpose_agent.memory._schema import MEMORY_COLUMNS
from purpose_agent.memory.types import (
    MADE_BY,
    SCOPES,
    TRUST_PRIORS,
    MemoryKind,
    MemoryStatus,
    coerce_kind,
    coerce_status,
    normalize_text,
)

if TYPE_CHECKING:
    from purpose_agent.memory.store import MemoryStore

P = MemoryStatus


def build_report(store: MemoryStore, top: int) -> dict[str, Any]:
    conn = store.conn
    by_kind: dict[str, dict[str, int]] = {k.value: {s.value: 0 for s in P} for k in MemoryKind}
    by_status = {s.value: 0 for s in P}
    for kind, status, n in conn.execute("SELECT kind, status, COUNT(*) FROM memories GROUP BY kind, status"):
        by_kind.setdefault(kind, {})[status] = n
        by_status[status] = by_status.get(status, 0) + n
    promoted = [
        {
            "id": r[0],
            "kind": r[1],
            "text": r[2],
            "q": round(r[3], 4),
            "trust": r[4],
            "times_included": r[5],
            "helpful": r[6],
            "harmful": r[7],
            "made_by": r[8],
        }
        for r in conn.execute(
            "SELECT id, kind, text, q, trust, times_included, helpful, harmful, made_by FROM memories "
            "WHERE status = 'promoted' ORDER BY q DESC, trust DESC, seq LIMIT ?",
            (top,),
        )
    ]
    rejected = [
        {"id": r[0], "kind": r[1], "text": r[2], "reason": r[3] or ""}
        for r in conn.execute(
            "SELECT m.id, m.kind, m.text, (SELECT h.reason FROM status_history h WHERE h.memory_id = m.id "
            "ORDER BY h.seq DESC LIMIT 1) FROM memories m WHERE m.status = 'rejected' ORDER BY m.seq DESC LIMIT ?",
            (top,),
        )
    ]
    runs = conn.execute("SELECT COUNT(DISTINCT run_id) FROM credits").fetchone()[0]
    return {
        "path": str(store.path),
        "mode": store.mode.value,
        "total": sum(by_status.values()),
        "by_status": by_status,
        "by_kind": by_kind,
        "top_promoted": promoted,
        "rejected": rejected,
        "credited_runs": runs,
    }


def export_jsonl(store: MemoryStore, path: Path) -> int:
    conn = store.conn
    history: dict[str, list[dict[str, Any]]] = {}
    for mid, old, new, reason, at in conn.execute(
        "SELECT memory_id, old_status, new_status, reason, at FROM status_history ORDER BY seq"
    ):
        history.setdefault(mid, []).append({"old_status": old, "new_status": new, "reason": reason, "at": at})
    n = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for (mid,) in conn.execute("SELECT id FROM memories ORDER BY seq").fetchall():
            rec = store.get(mid).to_dict()
            rec["history"] = history.get(mid, [])
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def _parse(line: str, lineno: int, path: Path) -> dict[str, Any]:
    try:
        rec = json.loads(line)
        if not isinstance(rec, dict):
            raise ValueError("not an object")
        coerce_kind(rec["kind"])
        coerce_status(rec["status"])
        if not str(rec["text"]).strip() or not str(rec["id"]).strip():
            raise ValueError("empty id or text")
        if rec.get("scope", "global") not in SCOPES or rec.get("made_by", "distiller") not in MADE_BY:
            raise ValueError("bad scope or made_by")
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}:{lineno}: not a memory record ({exc}); nothing was imported") from exc
    return rec


def import_jsonl(store: MemoryStore, path: Path) -> dict[str, int]:
    recs = [
        _parse(line, i, path)
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.strip()
    ]
    verdicts = {}
    for rec in recs:
        if rec["status"] == P.PROMOTED.value:
            verdicts[rec["id"]] = store._scan(rec["text"], rec["kind"], rec.get("scope"))
    counts = {"added": 0, "skipped": 0, "rejected": 0}
    with store._tx() as c:
        for rec in recs:
            kind = coerce_kind(rec["kind"]).value
            scope, key = rec.get("scope", "global"), rec.get("scope_key")
            norm = normalize_text(rec["text"])
            if (
                c.execute("SELECT 1 FROM memories WHERE id = ?", (rec["id"],)).fetchone()
                or c.execute(
                    "SELECT 1 FROM memories WHERE kind = ? AND norm = ? AND scope = ? AND scope_key IS ?",
                    (kind, norm, scope, key),
                ).fetchone()
            ):
                counts["skipped"] += 1
                continue
            safe, why = verdicts.get(rec["id"], (True, ""))
            status = rec["status"] if safe else P.REJECTED.value
            now = time.time()
            c.execute(
                f"INSERT INTO memories ({MEMORY_COLUMNS}, norm) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    rec["id"],
                    kind,
                    rec["text"].strip(),
                    status,
                    scope,
                    key,
                    rec.get("made_by", "distiller"),
                    json.dumps(list(rec.get("sources", []))),
                    float(rec.get("trust", TRUST_PRIORS[MemoryKind(kind)])),
                    min(1.0, max(0.0, float(rec.get("q", 0.5)))),
                    int(rec.get("q_n", 0)),
                    int(rec.get("times_included", 0)),
                    int(rec.get("helpful", 0)),
                    int(rec.get("harmful", 0)),
                    int(rec.get("merges", 0)),
                    json.dumps(list(rec.get("supersedes", []))),
                    rec.get("superseded_by"),
                    json.dumps(rec.get("meta", {})),
                    float(rec.get("created_at", now)),
                    now,
                    norm,
                ),
            )
            for h in rec.get("history", []):
                store._history(
                    c,
                    rec["id"],
                    P(h["old_status"]) if h.get("old_status") else None,
                    P(h["new_status"]),
                    str(h.get("reason", "")),
                    h.get("at"),
                )
            store._history(
                c,
                rec["id"],
                P(rec["status"]),
                P(status),
                f"imported from {path.name}" + ("" if safe else f"; {why}"),
            )
            counts["added" if safe else "rejected"] += 1
    return counts
