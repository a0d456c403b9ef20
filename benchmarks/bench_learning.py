"""Learning benchmark: test success before vs after learning, for every baseline and ablation.

    python benchmarks/bench_learning.py --testbed textworld --seeds 0,1,2 [--quick] [--model local]

Writes ``bench_results/<name>/{ledger.jsonl,results.json,table.md,curve.png}``. Interrupt it
at any time: the same command resumes at the first unfinished run. ``--quick`` is the CI
smoke size (plumbing, not numbers).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from purpose_agent.evals import BenchmarkConfig, BenchmarkRunner, OrchestratorSettings
from purpose_agent.evals.conditions import BY_NAME, STANDARD
from purpose_agent.evals.tasks import TaskSource
from purpose_agent.evals.testbeds import Size, coding, humaneval, reasoning, textworld
from purpose_agent.models.registry import resolve_backend


@dataclass(frozen=True)
class Plan:
    size: Size
    iterations: int
    settings: OrchestratorSettings


FULL = {
    # sized so one table (3 seeds, all five arms) fits in under two hours on 2 cores
    "textworld": Plan(Size(2, 1, 2, 5), 1, OrchestratorSettings(actor_max_tokens=160, gate_limit=1)),
    "reasoning": Plan(Size(4, 1, 4, 1), 1, OrchestratorSettings(actor_max_tokens=256, gate_limit=2)),
    "coding": Plan(Size(4, 2, 4, 3), 2, OrchestratorSettings(actor_max_tokens=384, gate_limit=3)),
    "humaneval": Plan(Size(6, 2, 8, 3), 2, OrchestratorSettings(actor_max_tokens=384, gate_limit=3)),
}
QUICK = {
    "textworld": Plan(Size(1, 1, 1, 3), 1, OrchestratorSettings(actor_max_tokens=96, gate_limit=1)),
    "reasoning": Plan(Size(1, 1, 1, 1), 1, OrchestratorSettings(actor_max_tokens=128, gate_limit=1)),
    "coding": Plan(Size(1, 1, 1, 2), 1, OrchestratorSettings(actor_max_tokens=256, gate_limit=1)),
    "humaneval": Plan(Size(1, 1, 1, 2), 1, OrchestratorSettings(actor_max_tokens=256, gate_limit=1)),
}


def source(testbed: str, size: Size, games: list[str]) -> TaskSource:
    if testbed == "textworld":
        return textworld(games or ["coin"], size)
    if testbed == "reasoning":
        return reasoning(games or ["leg_counting"], size)
    if testbed == "coding":
        return coding(size)
    if testbed == "humaneval":
        return humaneval(size)
    raise SystemExit(f"unknown testbed {testbed!r}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--testbed", choices=sorted(FULL), required=True)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated benchmark seeds")
    p.add_argument("--quick", action="store_true", help="CI smoke size")
    p.add_argument("--model", default="local", help="model spec (default: the embedded 1.5B model)")
    p.add_argument("--conditions", default=",".join(c.name for c in STANDARD))
    p.add_argument(
        "--games", default="", help="comma-separated games / families (default: coin, leg_counting)"
    )
    p.add_argument("--iterations", type=int, default=None, help="training blocks (default per testbed)")
    p.add_argument("--out", default="bench_results")
    p.add_argument("--name", default=None, help="result folder name (default: testbed, size, model)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    plan = (QUICK if args.quick else FULL)[args.testbed]
    iterations = args.iterations or plan.iterations
    seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    conditions = tuple(BY_NAME[c.strip()] for c in args.conditions.split(",") if c.strip())
    model_tag = args.model.replace(":", "-").replace("/", "-")
    name = args.name or f"{args.testbed}{'-quick' if args.quick else ''}-{model_tag}"
    config = BenchmarkConfig(conditions=conditions, seeds=seeds, settings=replace(plan.settings))
    llm = resolve_backend(args.model)
    t0 = time.time()
    runner = BenchmarkRunner(llm=llm, config=config, out_dir=args.out, progress=not args.no_progress)
    result = runner.run(
        source(args.testbed, plan.size, [g.strip() for g in args.games.split(",") if g.strip()]),
        iterations,
        name,
    )
    root = Path(args.out) / name
    print(f"\n{name}: model={args.model} seeds={','.join(map(str, seeds))} iterations={iterations} "
          f"wall={time.time() - t0:.0f}s")  # fmt: skip
    print(result.table())
    bar = result.bar
    if bar.get("evaluated"):
        print(f"\nSPEC §9 bar: {'MET' if bar['met'] else 'NOT MET'} {bar['checks']}")
    print(f"results: {root / 'results.json'}  plot: {result.plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
