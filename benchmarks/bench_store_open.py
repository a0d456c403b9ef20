"""Time to open a MemoryStore at 1k, 10k and 100k memories, against the full integrity check.

Run: .venv/bin/python benchmarks/bench_store_open.py [--sizes 1000 10000 100000] [--repeat 30]

Reuses the stores of bench_retrieval.py (same cache). Each open is ``MemoryStore(path)`` then
``close()`` in one process with a warm page cache, in LEARNING_TRAIN (read-write, WAL) and in
EVAL_TEST (read-only). ``verify()`` is the full ``PRAGMA quick_check`` that every open used to run;
opening runs it only up to ``FULL_CHECK_MAX_BYTES``. Bar: open < 100 ms at 100k.
"""

from __future__ import annotations

import argparse
import platform
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench_retrieval import build

from purpose_agent.core.modes import RunMode
from purpose_agent.memory import MemoryStore
from purpose_agent.memory._schema import FULL_CHECK_MAX_BYTES, SCHEMA_VERSION


def _times_ms(fn: Callable[[], object], repeat: int) -> list[float]:
    fn()  # warm the page cache and the imports
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _open_close(path: Path, mode: RunMode) -> None:
    MemoryStore(path, mode=mode, embedder=None).close()


def _verify(path: Path) -> None:
    with MemoryStore(path, mode=RunMode.EVAL_TEST, embedder=None) as store:
        store.verify()


def _store(cache: Path, n: int) -> Path:
    path = cache / f"retrieval_{n}_v{SCHEMA_VERSION}.db"
    if path.exists():
        with MemoryStore(path, mode=RunMode.EVAL_TEST, embedder=None) as s:
            if s.count() == n:
                return path
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    build(path, n)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "purpose_agent_bench")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    print(
        f"# {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.machine()}; full check on open up to "
        f"{FULL_CHECK_MAX_BYTES / 2**20:.0f} MiB; median (min-max) of {args.repeat} opens, warm cache"
    )
    print(f"{'memories':>9} {'file MB':>8} {'open train ms':>20} {'open eval ms':>20} {'verify() ms':>20}")
    for n in args.sizes:
        path = _store(args.cache, n)
        cols = []
        for fn in (
            lambda p=path: _open_close(p, RunMode.LEARNING_TRAIN),
            lambda p=path: _open_close(p, RunMode.EVAL_TEST),
            lambda p=path: _verify(p),
        ):
            ts = _times_ms(fn, args.repeat)
            cols.append(f"{statistics.median(ts):7.2f} ({min(ts):.2f}-{max(ts):.2f})")
        size = path.stat().st_size / 1e6
        print(f"{n:>9} {size:>8.1f} {cols[0]:>20} {cols[1]:>20} {cols[2]:>20}")
    print("(verify() includes an open; bar: open < 100 ms at 100k)")


if __name__ == "__main__":
    main()
