"""The ``purpose-agent`` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cmd_models(args: argparse.Namespace) -> int:
    from purpose_agent.models import catalog
    from purpose_agent.models.registry import SMALL_MODELS, backend_registry

    installed = catalog.installed_models()
    print("Embedded models (spec 'local:<name>'):")
    for name, model in catalog.EMBEDDED.items():
        mark = "installed" if installed[name] else f"not installed ({model.extra})"
        default = " [default]" if name == catalog.DEFAULT_LOCAL_MODEL else ""
        print(f"  {name:<22} {model.size / 1e6:7.0f} MB  {mark}{default}  {model.note}")
    print("\nKnown small models (create_slm_backend):")
    for info in SMALL_MODELS.values():
        print(f"  {info.name:<22} -> {info.spec}")
    print("\nProviders: " + ", ".join(backend_registry.names()))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from purpose_agent.demo import run_demo

    try:
        return run_demo(args.model, args.task, args.max_steps, args.dir, args.game)
    except ImportError as exc:  # the learning demo's questions need the demo extra (textworld: Java 17)
        print(f"error: {exc}", file=sys.stderr)
        print("the coding demo needs no extra: purpose-agent demo --task is_palindrome", file=sys.stderr)
        return 2


def _cmd_run(args: argparse.Namespace) -> int:
    from purpose_agent._cli_ui import step_printer, working
    from purpose_agent.core.environment import SimpleEnvironment
    from purpose_agent.loop.orchestrator import Orchestrator

    console = _console()
    orch = Orchestrator(args.model, SimpleEnvironment(), listeners=[step_printer(console)])
    if args.approve or args.review_scores or args.checkpoints:
        from purpose_agent.runtime.hitl import HITLOrchestrator

        # a person on the terminal approves / edits / rejects each action (at end of input: rejected)
        hitl = HITLOrchestrator(
            orch,
            approve_actions=args.approve,
            review_scores=args.review_scores,
            checkpoint_dir=args.checkpoints,
        )
        result = hitl.run_task(args.purpose, max_steps=args.max_steps)
    else:
        with working(console, f"running on {orch.llm.name}..."):
            result = orch.run_task(args.purpose, max_steps=args.max_steps)
    print(result.summary())
    answer = result.final_state.data.get("answer")
    if answer:
        print(f"\nanswer: {answer}")
    print(f"trace: {result.trace_path}")
    return 0 if result.success else 1


def _cmd_trace(args: argparse.Namespace) -> int:
    from purpose_agent.core.events import read_trace

    for event in read_trace(args.path):
        if args.json:
            print(json.dumps(event, ensure_ascii=False))
        else:
            detail = {k: v for k, v in event.items() if k not in ("kind", "time", "run_id")}
            print(f"{event.get('kind', '?'):<16} {json.dumps(detail, ensure_ascii=False)[:160]}")
    return 0


DEFAULT_STORE = ".purpose_agent/memory.sqlite"


def _open_store(path: str, *, write: bool) -> Any:
    from purpose_agent.core.modes import RunMode
    from purpose_agent.memory import MemoryStore

    mode = RunMode.LEARNING_TRAIN if write else RunMode.EVAL_TEST
    return MemoryStore(path, mode=mode, embedder=None)


def _cmd_status(args: argparse.Namespace) -> int:
    with _open_store(args.store, write=False) as store:
        report = store.status_report()
    from purpose_agent._cli_ui import status_tables, trace_costs
    from purpose_agent.core.events import default_trace_dir

    trace_dir = Path(args.traces) if args.traces else default_trace_dir()
    costs = trace_costs(trace_dir)
    if args.json:
        report["cost"] = dict(vars(costs))
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    console = _console()
    for part in status_tables(report, costs, trace_dir):
        console.print(part)
    if report["rejected"]:
        console.print("rejected (latest):", markup=False)
        for m in report["rejected"]:
            console.print(f"  {m['id']} [{m['kind']}] {m['text'][:80]} -- {m['reason'][:120]}", markup=False)
    return 0


def _console(*, stderr: bool = False) -> Any:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS") or 120)  # a file or a pipe: wide
    return Console(stderr=stderr, highlight=False, width=width)


BENCH_SCRIPT = Path("benchmarks") / "bench_learning.py"


def _bench_script() -> Path | None:
    """benchmarks/bench_learning.py of the source checkout: under the current directory, or
    next to the package (an editable install)."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (root / BENCH_SCRIPT).is_file():
            return root / BENCH_SCRIPT
    return None


def _cmd_bench(args: argparse.Namespace) -> int:
    """A thin wrapper: every argument goes to the learning benchmark script as it is."""
    import importlib.util

    from purpose_agent.errors import ConfigurationError

    script = _bench_script()
    if script is None:
        raise ConfigurationError(
            f"the learning benchmark script {BENCH_SCRIPT} was not found: it ships with the source "
            "checkout; run `purpose-agent bench` from the repository root"
        )
    spec = importlib.util.spec_from_file_location("purpose_agent_bench_learning", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    print(f"learning benchmark: {script} {' '.join(args.passthrough)}".rstrip(), file=sys.stderr, flush=True)
    return int(module.main(list(args.passthrough)) or 0)


def _cmd_wizard(args: argparse.Namespace) -> int:
    from purpose_agent._wizard import run_wizard

    return run_wizard(args.store, args.model)


def _cmd_teach(args: argparse.Namespace) -> int:
    from purpose_agent.memory import MemoryCI

    with _open_store(args.store, write=True) as store:
        decision = MemoryCI(store, replay=None).teach(args.text, kind=args.kind)
    print(f"{decision.action}: {decision.memory_id} {decision.reason}")
    return 0 if decision.action == "promoted" else 1


def _cmd_memory(args: argparse.Namespace) -> int:
    write = args.action in ("promote", "reject", "rollback")
    with _open_store(args.store, write=write) as store:
        if args.action == "list":
            for m in store.list(status=args.status, kind=args.kind):
                print(f"{m.id} {m.status.value:<11} {m.kind.value:<18} Q={m.q:.2f} {m.text[:90]}")
        elif args.action == "show":
            print(json.dumps(store.get(args.id).to_dict(), indent=2, ensure_ascii=False, default=str))
            for h in store.history(args.id):
                print(f"  {h}")
        elif args.action == "export":
            print(f"exported {store.export(args.path or 'memories.jsonl')} memories")
        elif args.action == "rollback":
            print(f"rolled back {args.id}; restored: {store.rollback(args.id, args.reason)}")
        else:
            getattr(store, args.action)(args.id, args.reason)
            print(f"{args.action}d {args.id}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purpose-agent", description="Agents that learn from experience.")
    sub = p.add_subparsers(dest="command")
    m = sub.add_parser("models", help="list embedded models, known small models and providers")
    m.set_defaults(fn=_cmd_models)
    d = sub.add_parser(
        "demo",
        help="the agent learns from experience (before / learn / lessons / after)",
        description="Learning demo on reasoning-gym questions, with Python available: a held-out "
        "question with no memory, training questions through the default learning path and its gate, "
        "the lessons, the held-out question again. --game textworld plays TextWorldExpress "
        "cookingworld instead (Java 17); --task ID runs the coding demo.",
    )
    d.add_argument("--model", default="local")
    d.add_argument("--game", choices=("questions", "textworld"), default="questions")
    d.add_argument(
        "--task", default=None, help="run the coding demo on this task id instead (e.g. is_palindrome)"
    )
    d.add_argument(
        "--max-steps",
        type=int,
        default=None,
        help="step limit per run (default: 3 questions, 8 textworld, 5 coding)",
    )
    d.add_argument(
        "--dir", default=None, help="where the memory store and traces go (default: a new temp dir)"
    )
    d.set_defaults(fn=_cmd_demo)
    r = sub.add_parser("run", help="run one purpose (no environment: the answer is the final DONE)")
    r.add_argument("purpose")
    r.add_argument("--model", default="local")
    r.add_argument("--max-steps", type=int, default=6)
    r.add_argument(
        "--approve", action="store_true", help="approve, edit or reject each action before it runs"
    )
    r.add_argument(
        "--review-scores", action="store_true", help="review Φ after each step (a new score overrides it)"
    )
    r.add_argument(
        "--checkpoints",
        default=None,
        help="checkpoint after every step here; the same command resumes a killed run",
    )
    r.set_defaults(fn=_cmd_run)
    st = sub.add_parser("status", help="what the memory store has learned")
    st.add_argument("--store", default=DEFAULT_STORE)
    st.add_argument("--json", action="store_true")
    st.add_argument(
        "--traces", default=None, help="trace directory for the cost (default: $PURPOSE_AGENT_TRACE_DIR)"
    )
    st.set_defaults(fn=_cmd_status)
    te = sub.add_parser("teach", help="teach a lesson: scanned, then promoted at once if safe")
    te.add_argument("text")
    te.add_argument("--kind", default="user_preference")
    te.add_argument("--store", default=DEFAULT_STORE)
    te.set_defaults(fn=_cmd_teach)
    me = sub.add_parser("memory", help="list / show / promote / reject / rollback / export memories")
    me.add_argument("action", choices=["list", "show", "promote", "reject", "rollback", "export"])
    me.add_argument("id", nargs="?", help="a memory id (show, promote, reject, rollback)")
    me.add_argument("--store", default=DEFAULT_STORE)
    me.add_argument("--status", default=None)
    me.add_argument("--kind", default=None)
    me.add_argument("--reason", default="by hand (CLI)")
    me.add_argument("--path", default=None, help="export file")
    me.set_defaults(fn=_cmd_memory)
    t = sub.add_parser("trace", help="print a run's JSONL trace")
    t.add_argument("path")
    t.add_argument("--json", action="store_true")
    t.set_defaults(fn=_cmd_trace)
    b = sub.add_parser(
        "bench",
        add_help=False,
        help="run the learning tables (benchmarks/bench_learning.py; every argument is passed on, try --help)",
    )
    b.set_defaults(fn=_cmd_bench)
    w = sub.add_parser("wizard", help="the interactive wizard (also: purpose-agent with no arguments)")
    w.add_argument("--store", default=DEFAULT_STORE)
    w.add_argument("--model", default=None, help="the model spec to offer first (default: local)")
    w.set_defaults(fn=_cmd_wizard)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """The CLI. No arguments on a terminal: the wizard. An error is one line and its fix on
    stderr, exit code 2, never a traceback (``PURPOSE_AGENT_DEBUG=1`` shows it). Plugin modules
    (``$PURPOSE_AGENT_PLUGINS``, entry points ``purpose_agent.plugins``) are imported first."""
    from purpose_agent._cli_ui import load_plugins, print_error

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = getattr(args, "command", None)
    if extra and command != "bench":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if getattr(args, "action", None) in ("show", "promote", "reject", "rollback") and not args.id:
        parser.error(f"memory {args.action} needs a memory id")
    args.passthrough = extra
    try:
        load_plugins()
        if not getattr(args, "fn", None):
            if argv is None and sys.stdin.isatty() and sys.stdout.isatty():
                from purpose_agent._wizard import run_wizard

                return run_wizard(DEFAULT_STORE)
            parser.print_help()
            return 0 if argv is not None else 2
        return int(args.fn(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("PURPOSE_AGENT_DEBUG"):
            raise
        print_error(_console(stderr=True), exc, command)
        return 2
