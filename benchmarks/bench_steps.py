"""Steps per minute of the actor loop on TextWorldExpress cookingworld: the same games one after
another, then 4 at a time, on one llama-server (``local-server:<model>``, parallel slots), in one
run. Optionally the in-process model (``LocalBackend``), one game at a time, first.

Each configuration is what a learning table's test block is: ``BenchmarkRunner`` with the
no-memory floor only (``EVAL_TEST``, nothing written to any memory) and ``concurrency=1`` or
``4``, on dev-fold games (a speed measurement; no test game is played). It prints, per
configuration, the episodes, steps, wall time, steps per minute and games solved, then the
ratio of 4 at a time to one at a time, and how many games ended differently (outcome or step
count) when run 4 at a time than when run alone: the batch-reproducibility of whole episodes.

    python benchmarks/bench_steps.py [--model qwen2.5-coder-1.5b] [--games 8] [--max-steps 10]
        [--concurrency 4] [--inprocess] [--out benchmarks/results/steps-<date>.txt]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from bench_learning import COOKING, FULL

from purpose_agent.evals import BenchmarkConfig, BenchmarkRunner
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.evals.testbeds import Size, textworld
from purpose_agent.models.base import Message
from purpose_agent.models.registry import resolve_backend


def dev_games(n: int, max_steps: int) -> list[BenchmarkTask]:
    """``n`` cookingworld dev-fold games, as the runner's test split (EVAL_TEST runs)."""
    built = textworld(["cookingworld"], Size(0, n, 0, max_steps), COOKING)(0)
    return [dataclasses.replace(t, split="test") for t in built if t.split == "validation"]


def measure(label: str, llm: Any, games: list[BenchmarkTask], concurrency: int, say: Any) -> dict[str, Any]:
    settings = FULL["textworld"].settings
    with tempfile.TemporaryDirectory() as out:
        runner = BenchmarkRunner(
            llm=llm,
            config=BenchmarkConfig(conditions=(), seeds=(0,), settings=settings),
            out_dir=out,
            concurrency=concurrency,
        )
        t0 = time.perf_counter()
        runner.run(lambda _seed: games, 1, "steps")
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (Path(out) / "steps" / "ledger.jsonl").read_text().splitlines()]
    steps = sum(r["steps"] for r in rows)
    res = {
        "label": label,
        "episodes": len(rows),
        "steps": steps,
        "wall_s": round(wall, 1),
        "steps_per_min": round(60 * steps / wall, 2),
        "solved": sum(bool(r["success"]) for r in rows),
        "calls": runner.llm.meter.calls,
        "per_game": {r["key"]["task"]: (r["outcome"], r["steps"], r["stop_reason"]) for r in rows},
    }
    say(
        f"{label:<34} episodes {res['episodes']:>3}  steps {steps:>4}  wall {wall:7.1f} s  "
        f"{res['steps_per_min']:6.2f} steps/min  solved {res['solved']}/{res['episodes']}  calls {res['calls']}"
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--games", type=int, default=8)
    ap.add_argument("--max-steps", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--inprocess", action="store_true", help="also the in-process model, one game at a time")
    ap.add_argument("--out", default=None, help="also append the output to this file")
    args = ap.parse_args()
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    say(
        f"date {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}; command: {' '.join(sys.argv)}; "
        f"host {platform.processor() or platform.machine()}, python {platform.python_version()}"
    )
    games = dev_games(args.games, args.max_steps)
    say(f"{len(games)} cookingworld dev games ({COOKING}), max {args.max_steps} steps, no memory, EVAL_TEST")
    results = []
    if args.inprocess:
        local = resolve_backend(f"local:{args.model}")
        local.complete([Message("user", "Say OK.")], max_tokens=2)
        results.append(measure("in-process, 1 at a time", local, games, 1, say))
        local.close()  # type: ignore[attr-defined]
    server = resolve_backend(f"local-server:{args.model}")
    try:
        server.start()  # type: ignore[attr-defined]  # the model loads before the clock starts
        server.complete([Message("user", "Say OK.")], max_tokens=2)
        slots = getattr(server, "parallel", "?")
        seq = measure(f"server ({slots} slots), 1 at a time", server, games, 1, say)
        par = measure(
            f"server ({slots} slots), {args.concurrency} at a time", server, games, args.concurrency, say
        )
    finally:
        server.close()  # type: ignore[attr-defined]
    results += [seq, par]
    say(
        f"ratio {args.concurrency} at a time / 1 at a time: {par['steps_per_min'] / seq['steps_per_min']:.2f}x steps/min"
    )
    differ = [g for g in seq["per_game"] if seq["per_game"][g] != par["per_game"].get(g)]
    say(
        f"episodes that ended differently {args.concurrency} at a time than alone (outcome, steps or stop): "
        f"{len(differ)} of {len(seq['per_game'])}" + (f" ({', '.join(differ)})" if differ else "")
    )
    if args.out:
        with Path(args.out).open("a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n\n")


if __name__ == "__main__":
    main()
