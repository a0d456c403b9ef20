"""Credit assignment: only memories that were in the prompt learn from a run's outcome."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable

from purpose_agent.memory.types import Q_PRIOR

#: Pseudo-observations of the prior Q = 0.5 (a Beta-like prior).
PRIOR_WEIGHT = 1


def updated_q(q: float, n: int, outcome: float) -> float:
    """Incremental mean of the outcomes with one pseudo-observation of the prior.

    After outcomes o_1..o_n the value is (0.5 + Σ o) / (n + 1); always in [0, 1].
    """
    o = min(1.0, max(0.0, float(outcome)))
    return q + (o - q) / (n + PRIOR_WEIGHT + 1)


def prior_q() -> float:
    return Q_PRIOR


def apply_credit(conn: sqlite3.Connection, ids: Iterable[str], outcome: float, run_id: str) -> list[str]:
    """Credit ``ids`` for ``run_id`` inside the caller's transaction; returns the ids credited.

    Idempotent per (run_id, id): a retried call changes nothing. When the run recorded its
    inclusions, only ids that were included in that run are credited.
    """
    o = min(1.0, max(0.0, float(outcome)))
    wanted = list(dict.fromkeys(ids))
    included = {
        r[0]
        for r in conn.execute("SELECT memory_id FROM inclusions WHERE run_id = ? AND staging = 0", (run_id,))
    }
    if included:
        wanted = [i for i in wanted if i in included]
    now = time.time()
    credited: list[str] = []
    for mid in wanted:
        row = conn.execute("SELECT q, q_n FROM memories WHERE id = ?", (mid,)).fetchone()
        if row is None:
            continue
        cur = conn.execute(
            "INSERT OR IGNORE INTO credits (run_id, memory_id, outcome, at) VALUES (?, ?, ?, ?)",
            (run_id, mid, o, now),
        )
        if cur.rowcount != 1:
            continue  # already credited for this run
        helpful, harmful = (1, 0) if o >= 0.5 else (0, 1)
        conn.execute(
            "UPDATE memories SET q = ?, q_n = q_n + 1, helpful = helpful + ?, harmful = harmful + ?, "
            "updated_at = ? WHERE id = ?",
            (updated_q(float(row[0]), int(row[1]), o), helpful, harmful, now, mid),
        )
        credited.append(mid)
    return credited
