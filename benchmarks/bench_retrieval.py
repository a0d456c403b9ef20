"""Retrieval latency of MemoryStore at 1k, 10k and 100k memories.

Run: .venv/bin/python benchmarks/bench_retrieval.py [--sizes 1000 10000 100000] [--queries 300]
     [--backend sqlite|postgres] [--pg-url postgresql://user@host:port/db]

Builds stores of synthetic but varied lessons (a vocabulary of real task words plus thousands
of generated identifiers), caches them under the temp dir (SQLite) or in one database per size
on the server of ``--pg-url`` (PostgreSQL: ``<db>_retrieval_<n>``, created if missing; the
default URL is $PURPOSE_AGENT_PG_URL), and times lexical recall + Q re-rank (``retrieve``) and
the Mixture-of-Heuristics (``retrieve_mixture``). Bar: p95 < 20 ms at 100k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ReadOnlyModeError
from purpose_agent.memory import MemoryKind, MemoryStore
from purpose_agent.memory._schema import MEMORY_COLUMNS, SCHEMA_VERSION
from purpose_agent.memory.types import TRUST_PRIORS, normalize_text


def _words(text: str) -> list[str]:
    return text.split()


VERBS = _words(
    "read write open close parse validate check compare sort filter merge split rename move copy delete "
    "search count sum multiply divide round format convert compile test debug retry cache log measure "
    "cook slice chop fry roast boil take drop examine inventory navigate unlock pick place"
)
NOUNS = _words(
    "file directory path config table column row index query schema record list array string number "
    "date time unit price total invoice report chart map key door coin recipe knife pan stove fridge "
    "apple carrot potato onion egg kitchen corridor garden cellar test function module class method "
    "error exception timeout request response token header payload sandbox calculator database"
)
CONDS = _words("before after when unless until if whenever once while instead")
TOOLS = _words("calculator python read_file write_file search shell sql http grep editor")
KINDS = [
    MemoryKind.SKILL_CARD,
    MemoryKind.EPISODIC_CASE,
    MemoryKind.FAILURE_PATTERN,
    MemoryKind.TOOL_POLICY,
    MemoryKind.CRITIC_CALIBRATION,
    MemoryKind.USER_PREFERENCE,
    MemoryKind.PURPOSE_CONTRACT,
]
KIND_WEIGHTS = [30, 20, 20, 15, 5, 5, 5]
SYLLABLES = _words("ka ri to mu ne sa lo vi pe du ra zo fi ge ho ty qu bel dor man tek vor lin sur")


def _vocab(rng: random.Random, n: int = 5000) -> list[str]:
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def _lesson(rng: random.Random, rare: list[str]) -> str:
    v1, v2 = rng.sample(VERBS, 2)
    n1, n2, n3 = rng.sample(NOUNS, 3)
    parts = [
        f"{rng.choice(CONDS).capitalize()} you {v1} the {n1} {{{n2}}}, {v2} the {n3} with {rng.choice(TOOLS)}",
        f"named {rng.choice(rare)} {rng.choice(rare)}",
    ]
    if rng.random() < 0.6:
        parts.append(f"and {rng.choice(VERBS)} every {rng.choice(NOUNS)} of {rng.choice(rare)}")
    if rng.random() < 0.3:
        parts.append(
            f"otherwise the {rng.choice(NOUNS)} fails with {rng.choice(rare)} error {rng.randint(1, 999)}"
        )
    return " ".join(parts) + "."


def _query(rng: random.Random, rare: list[str]) -> str:
    words = rng.sample(VERBS, 2) + rng.sample(NOUNS, 3) + [rng.choice(rare), rng.choice(TOOLS)]
    rng.shuffle(words)
    return "Task: " + " ".join(words) + " and report the result"


def build(path: Path | str, n: int, seed: int = 7) -> float:
    """Create a store of ``n`` memories in one transaction; returns seconds."""
    rng = random.Random(seed)
    rare = _vocab(rng)
    start = time.perf_counter()
    with MemoryStore(path, embedder=None) as store:
        now = time.time()
        rows = []
        for i in range(n):
            kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
            text = _lesson(rng, rare)
            status = rng.choices(["promoted", "candidate", "rejected", "archived"], [70, 15, 10, 5])[0]
            q = rng.random()
            rows.append(
                (
                    "mem_" + uuid.UUID(int=rng.getrandbits(128)).hex[:16],
                    kind.value,
                    text,
                    status,
                    "global",
                    None,
                    "distiller",
                    json.dumps([f"run-{i % 997}"]),
                    TRUST_PRIORS[kind],
                    q,
                    rng.randint(0, 20),
                    0,
                    0,
                    0,
                    0,
                    "[]",
                    None,
                    "{}",
                    now,
                    now,
                    normalize_text(text),
                )
            )
        with store._tx() as c:
            c.executemany(
                f"INSERT INTO memories ({MEMORY_COLUMNS}, norm) VALUES ({','.join('?' * 21)})", rows
            )
        if isinstance(path, str):  # PostgreSQL: merge the GIN pending list, planner statistics
            store.conn.execute("VACUUM ANALYZE memories")
        else:
            store.conn.execute("INSERT INTO memories_fts(memories_fts) VALUES ('optimize')")
            store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return time.perf_counter() - start


def _pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]


def _pg_database(url: str, n: int) -> tuple[str, float]:
    """The URL of this size's database on the server of ``url`` (built unless it holds n memories)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    from purpose_agent.memory._pg_schema import SCHEMA_VERSION as PG_VERSION
    from purpose_agent.memory._pg_schema import with_database

    params = conninfo_to_dict(url)
    name = f"{params.get('dbname') or 'purpose'}_retrieval_{n}_v{PG_VERSION}"
    db_url = with_database(url, name)
    with psycopg.connect(url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            try:
                with MemoryStore(db_url, mode=RunMode.EVAL_TEST, embedder=None) as s:
                    if s.count() == n:
                        return db_url, float("nan")
            except ReadOnlyModeError:
                pass  # an interrupted build left no store: rebuild it
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    return db_url, build(db_url, n)


def bench(n: int, queries: int, cache: Path, pg_url: str | None = None) -> dict[str, float]:
    path: Path | str = cache / f"retrieval_{n}_v{SCHEMA_VERSION}.db"
    build_s = float("nan")
    if pg_url is not None:
        path, build_s = _pg_database(pg_url, n)
    assert isinstance(path, str) or path.suffix == ".db"
    if isinstance(path, Path) and path.exists():
        with MemoryStore(path, mode=RunMode.EVAL_TEST, embedder=None) as s:
            if s.count() != n:
                path.unlink()
    if isinstance(path, Path) and not path.exists():
        for suffix in ("-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        build_s = build(path, n)
    rng = random.Random(1234)
    rare = _vocab(random.Random(7))
    qs = [_query(rng, rare) for _ in range(queries)]
    out: dict[str, float] = {"n": n, "build_s": build_s}
    t0 = time.perf_counter()
    store = MemoryStore(path, mode=RunMode.EVAL_TEST, embedder=None)
    out["open_ms"] = (time.perf_counter() - t0) * 1000
    with store:
        for q in qs[:10]:  # warm the page cache
            store.retrieve(q)
        for name, fn in (
            ("retrieve", lambda q: store.retrieve(q, k=6)),
            ("mixture", lambda q: store.retrieve_mixture(q, shared=2, routed=4)),
        ):
            lat = []
            for q in qs:
                t = time.perf_counter()
                res = fn(q)
                lat.append((time.perf_counter() - t) * 1000)
                assert res, f"no result for {q!r}"
            out[f"{name}_p50_ms"] = statistics.median(lat)
            out[f"{name}_p95_ms"] = _pct(lat, 95)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "purpose_agent_bench")
    ap.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument(
        "--pg-url", default=os.environ.get("PURPOSE_AGENT_PG_URL"), help="server for --backend postgres"
    )
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    if args.backend == "postgres" and not args.pg_url:
        ap.error("--backend postgres needs --pg-url (or PURPOSE_AGENT_PG_URL); see docs/SCALE_OUT.md")
    pg_url = args.pg_url if args.backend == "postgres" else None
    print(f"backend: {args.backend}; load average before: {os.getloadavg()[0]:.2f} (1 min)")
    print(
        f"{'memories':>9} {'build s':>8} {'open ms':>8} {'retrieve p50/p95 ms':>21} {'mixture p50/p95 ms':>20}"
    )
    for n in args.sizes:
        r = bench(n, args.queries, args.cache, pg_url)
        print(
            f"{n:>9} {r['build_s']:>8.2f} {r['open_ms']:>8.1f} "
            f"{r['retrieve_p50_ms']:>10.2f} / {r['retrieve_p95_ms']:<8.2f} "
            f"{r['mixture_p50_ms']:>9.2f} / {r['mixture_p95_ms']:<8.2f}"
        )
    print("(build s = nan: store reused from the cache; bar: retrieve p95 < 20 ms at 100k)")
    print(f"load average after: {os.getloadavg()[0]:.2f} (1 min) on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
