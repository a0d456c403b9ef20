"""Learning benchmark: held-out test success after learning, for the no-memory floor, the
ungated (ExpeL-like) and reflection (Reflexion-like) baselines, the full default learning path
and its ablations (critic off, one per learning source).

    python benchmarks/bench_learning.py --testbed textworld [--seeds 0,1,2] [--quick]
        [--model local] [--teacher SPEC] [--conditions full,no_memory,...]
        [--executor ray [--ray-address ray://head:10001]] [--memory-url postgresql://...]
        [--concurrency 4]

Every learning arm is what a user writes: ``Orchestrator(llm, env, memory=MemoryStore(path),
learning=pa.Learning(validation=<the dev split>, train_attempts=k, teacher=SPEC, sources=...))``,
gated by the memory hook's own gate after every training task. Test numbers come from
``EVAL_TEST`` runs (the store opened read-only).

Writes ``bench_results/<name>/{config.json,ledger.jsonl,results.json,table.md,curve.png}``
(and the arms' memory under ``memory/``). Interrupt it at any time: the same command resumes at
the first unfinished unit. ``--quick`` is the CI smoke size (plumbing, not numbers).

``--concurrency N`` runs each block's test episodes N at a time in this process, on one
``local-server:`` model whose slots decode them together (each episode has its own seed, and
the ledger lines come in the sequential order, but a batched decode can change the model's
output: BENCHMARKS.md); with such a model the gate also runs each validation unit's two replays
side by side.

``--executor ray`` (extra ``ray``) runs each block's test episodes and the gate's validation
replays as Ray tasks (``--ray-address``; default: $RAY_ADDRESS, else a local instance); the
ledger is the same. The model must be an endpoint every worker can reach (``--model
llamacpp:<model>`` with a llama-server on every node at 127.0.0.1:8080, or a cloud model), not
the in-process ``local`` model, and the workers must see ``--out`` (one machine, or a shared
filesystem), unless ``--memory-url postgresql://user:pw@host/db`` keeps the arms' memories in
that database (one schema per arm and seed; extra ``postgres``; a resume gives it again). See
docs/SCALE_OUT.md.

Calibration (no memory, dev games, to pick the game settings):

    python benchmarks/bench_learning.py --testbed textworld --calibrate 10 \\
        --game-params "numLocations=1,numIngredients=1,..." [--model local:qwen2.5-coder-0.5b]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from purpose_agent.errors import ConfigurationError, PurposeAgentError, StoreUnavailableError
from purpose_agent.evals import BenchmarkConfig, BenchmarkRunner, OrchestratorSettings
from purpose_agent.evals.conditions import BY_NAME, STANDARD
from purpose_agent.evals.tasks import BenchmarkTask, TaskSource, tasks_for
from purpose_agent.evals.testbeds import Size, coding, humaneval, reasoning, textworld
from purpose_agent.memory.distiller import resolve_teacher
from purpose_agent.memory.protocol import is_database_url
from purpose_agent.models.registry import resolve_backend


@dataclass(frozen=True)
class Plan:
    size: Size
    iterations: int
    settings: OrchestratorSettings
    games: tuple[str, ...] = ()
    params: str | None = None


#: one-room cooking games at the 1.5B model's edge (benchmarks/results/cookingworld-calibration.txt)
COOKING = "numLocations=1,numIngredients=2,numDistractorItems=0,includeDoors=0,limitInventorySize=0"
#: four-room coin games: three rooms were too easy (7/9) and six too hard (0/4) for the 1.5B model with no memory (benchmarks/results/cookingworld-calibration.txt)
COIN = "numLocations=4,numDistractorItems=0,includeDoors=0,limitInventorySize=0"
#: reasoning-gym families the 1.5B model can compute with Python, but often does not, or does
#: not answer in the form asked (benchmarks/results/reasoning-python-calibration.txt); the size
#: below is per family. fraction_simplification left the table at v4: the 1.5B model solved 9 of
#: its 10 test questions with no memory (v3), so it can only tie
PY_FAMILIES = ("simple_equations", "time_intervals", "basic_arithmetic")
#: default game parameters per TextWorldExpress game when ``--games`` names one
GAME_PARAMS = {"cookingworld": COOKING, "coin": COIN}

FULL = {
    # validation ≥ 4 tasks: the gate promotes only on ≥ 4 paired wins with no loss (α = 0.1)
    "textworld": Plan(
        Size(train=8, validation=10, test=20, max_steps=10),
        1,
        OrchestratorSettings(actor_max_tokens=96, train_attempts=2, units_per_gate=2, candidates_per_gate=2),
        ("coin",),
        COIN,
    ),
    "reasoning": Plan(
        Size(train=12, validation=6, test=20, max_steps=1),
        1,
        OrchestratorSettings(actor_max_tokens=192, train_attempts=2, units_per_gate=3, candidates_per_gate=4),
        ("leg_counting",),
    ),
    # one-answer questions where the actor may run Python first (up to 2 runs, then answer);
    # 8 dev questions per family, since the gate replays a lesson on its own family first and
    # promotes on 4 wins with no loss: with 4 (v3), a family whose no-memory run solved even one
    # dev question could never promote (at most 3 wins); 7 test questions x 3 families = 21 a seed
    "reasoning-python": Plan(
        Size(train=3, validation=8, test=7, max_steps=3),
        1,
        OrchestratorSettings(actor_max_tokens=256, train_attempts=2, units_per_gate=2, candidates_per_gate=2),
        PY_FAMILIES,
    ),
    "humaneval": Plan(
        Size(train=10, validation=6, test=20, max_steps=3),
        1,
        OrchestratorSettings(actor_max_tokens=384, train_attempts=2, units_per_gate=2, candidates_per_gate=3),
    ),
    "coding": Plan(
        Size(train=6, validation=4, test=4, max_steps=3),
        1,
        OrchestratorSettings(actor_max_tokens=384, train_attempts=2, units_per_gate=2, candidates_per_gate=3),
    ),
}
QUICK = {
    "textworld": Plan(
        Size(1, 4, 1, 3),
        1,
        OrchestratorSettings(actor_max_tokens=64, units_per_gate=1),
        ("cookingworld",),
        COOKING,
    ),
    "reasoning": Plan(Size(1, 4, 1, 1), 1, OrchestratorSettings(actor_max_tokens=128), ("leg_counting",)),
    "reasoning-python": Plan(
        Size(1, 1, 1, 3), 1, OrchestratorSettings(actor_max_tokens=192), ("simple_equations",)
    ),
    "humaneval": Plan(Size(1, 4, 1, 2), 1, OrchestratorSettings(actor_max_tokens=256)),
    "coding": Plan(Size(1, 4, 1, 2), 1, OrchestratorSettings(actor_max_tokens=256)),
}


def source(testbed: str, plan: Plan, games: list[str], params: str | None) -> TaskSource:
    chosen = games or list(plan.games)
    if testbed == "textworld":
        if params is None:
            params = GAME_PARAMS.get(chosen[0], plan.params) if len(chosen) == 1 else plan.params
        return textworld(chosen or ["coin"], plan.size, params)
    if testbed == "reasoning":
        return reasoning(chosen or ["leg_counting"], plan.size)
    if testbed == "reasoning-python":
        return reasoning(chosen, plan.size, python=True)
    if testbed == "coding":
        return coding(plan.size)
    if testbed == "humaneval":
        return humaneval(plan.size)
    raise SystemExit(f"unknown testbed {testbed!r}")


def _fail(parser: argparse.ArgumentParser, message: str) -> None:
    parser.error(message)  # exit status 2, the message on stderr


def calibrate(args: argparse.Namespace, plan: Plan, llm: Any) -> int:
    """No-memory success on ``args.calibrate`` dev (validation-split) games: one line per run
    and a summary, appended to ``--calibration-out``."""
    from purpose_agent.core.modes import RunMode
    from purpose_agent.evals.gate import unit_seed
    from purpose_agent.evals.ground_truth import GroundTruthPurposeFunction
    from purpose_agent.evals.meter import reseed
    from purpose_agent.loop.orchestrator import Orchestrator

    size = Size(0, args.calibrate, 0, args.max_steps or plan.size.max_steps)
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    built = source(args.testbed, replace(plan, size=size), games, args.game_params)
    tasks: list[BenchmarkTask] = [t for t in tasks_for(built, 0) if t.split == "validation"]
    s = plan.settings
    lines: list[str] = []
    solved, steps, wall = 0, 0, 0.0
    for t in tasks:
        reseed(llm, unit_seed(0, "eval", t.id))
        assert t.make_env is not None
        env = t.make_env(0)
        orch = Orchestrator(
            llm, env, mode=RunMode.EVAL_TEST, purpose_function=GroundTruthPurposeFunction(env), trace=False,
            actor_max_tokens=s.actor_max_tokens, phi_threshold=s.phi_threshold, retry_repeats=s.retry_repeats,
        )  # fmt: skip
        t0 = time.perf_counter()
        r = orch.run_task(t.purpose, t.initial_state, t.max_steps)
        dt = time.perf_counter() - t0
        solved += r.success
        steps += len(r.steps)
        wall += dt
        line = (
            f"  {t.id}: {'solved' if r.success else 'failed'} outcome={r.outcome} steps={len(r.steps)} "
            f"{dt:.1f}s ({dt / max(1, len(r.steps)):.1f}s/step) stop={r.stop_reason}"
        )
        print(line, flush=True)
        lines.append(line)
    n = len(tasks)
    head = (
        f"{time.strftime('%Y-%m-%d %H:%M')} model={llm.name} testbed={args.testbed} games={games or list(plan.games)} "
        f"params={args.game_params if args.game_params is not None else plan.params} max_steps={size.max_steps} "
        f"actor_max_tokens={s.actor_max_tokens}: no-memory success {solved}/{n} = {100 * solved / max(1, n):.0f}% "
        f"on dev games; {wall / max(1, n):.1f}s per episode, {wall / max(1, steps):.1f}s per step"
    )
    print(head)
    out = Path(args.calibration_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as f:
        f.write(head + "\n" + "\n".join(lines) + "\n\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--testbed", choices=sorted(FULL), required=True)
    p.add_argument("--seeds", default="0,1,2", help="comma-separated benchmark seeds")
    p.add_argument("--quick", action="store_true", help="CI smoke size")
    p.add_argument("--model", default="local", help="actor model spec (default: the embedded 1.5B model)")
    p.add_argument(
        "--teacher", default=None, help="model spec of the teacher that writes lessons (default: --model)"
    )
    p.add_argument(
        "--conditions", default=",".join(c.name for c in STANDARD), help="arms (no_memory always runs)"
    )
    p.add_argument("--games", default="", help="comma-separated games / families (default per testbed)")
    p.add_argument("--game-params", default=None, help="TextWorldExpress game parameters (default per plan)")
    p.add_argument("--iterations", type=int, default=None, help="training blocks (default per testbed)")
    p.add_argument("--out", default="bench_results")
    p.add_argument("--name", default=None, help="result folder name (default: testbed, size, model)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where test episodes and gate replays run: here, or as Ray tasks (extra ray)",
    )
    p.add_argument(
        "--ray-address",
        default=None,
        help="the Ray cluster of --executor ray (default: $RAY_ADDRESS, else a local instance)",
    )
    p.add_argument(
        "--memory-url",
        default=None,
        help="keep the arms' memories in this PostgreSQL database (postgresql://...), not in --out",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=1,
        help="test episodes at once in this process (a local-server: model decodes them together)",
    )
    p.add_argument(
        "--calibrate", type=int, default=0, metavar="N", help="no-memory success on N dev games, then exit"
    )
    p.add_argument("--max-steps", type=int, default=None, help="calibration: step limit (default per plan)")
    p.add_argument("--calibration-out", default="benchmarks/results/cookingworld-calibration.txt")
    args = p.parse_args(argv)

    # bad input is a clear error before any model is loaded or anything is written
    names = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        _fail(p, f"unknown arm {unknown[0]!r}; choose from {', '.join(BY_NAME)}")
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        _fail(p, f"--seeds must be comma-separated integers, got {args.seeds!r}")
    if args.ray_address is not None and args.executor != "ray":
        _fail(p, "--ray-address is the cluster of --executor ray; pass both")
    if args.calibrate and args.executor != "local":
        _fail(p, "--calibrate runs in this process; drop --executor")
    if args.memory_url is not None and not is_database_url(args.memory_url):
        _fail(p, "--memory-url is a postgresql:// URL (postgresql://user:password@host:port/dbname)")
    teacher = None
    if args.teacher is not None and args.teacher != args.model:
        try:
            teacher = resolve_teacher(args.teacher)
        except PurposeAgentError as exc:
            _fail(p, f"--teacher {args.teacher!r}: {exc}")
    plan = (QUICK if args.quick else FULL)[args.testbed]
    try:
        llm = resolve_backend(args.model)
    except PurposeAgentError as exc:
        _fail(p, f"--model {args.model!r}: {exc}")
    if args.calibrate:
        return calibrate(args, plan, llm)

    iterations = args.iterations or plan.iterations
    conditions = tuple(BY_NAME[n] for n in names)
    model_tag = args.model.replace(":", "-").replace("/", "-")
    name = args.name or f"{args.testbed}{'-quick' if args.quick else ''}-{model_tag}"
    config = BenchmarkConfig(conditions=conditions, seeds=seeds, settings=plan.settings)
    t0 = time.time()
    try:
        runner = BenchmarkRunner(
            llm=llm, teacher=teacher, config=config, out_dir=args.out, progress=not args.no_progress,
            executor=args.executor, ray_address=args.ray_address, memory_url=args.memory_url,
            concurrency=args.concurrency,
        )  # fmt: skip
    except ConfigurationError as exc:
        _fail(p, f"--executor {args.executor} --concurrency {args.concurrency}: {exc}")
    games = [g.strip() for g in args.games.split(",") if g.strip()]
    try:
        result = runner.run(source(args.testbed, plan, games, args.game_params), iterations, name)
    except StoreUnavailableError as exc:  # --memory-url unreachable (the password shown as ***)
        _fail(p, f"--memory-url: {exc}")
    root = Path(args.out) / name
    print(f"\n{name}: model={args.model} teacher={args.teacher or args.model} seeds={','.join(map(str, seeds))} "
          f"iterations={iterations} wall this session={time.time() - t0:.0f}s")  # fmt: skip
    print(result.table())
    print(f"results: {root / 'results.json'}  plot: {result.plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
