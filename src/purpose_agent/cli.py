"""The ``purpose-agent`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
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
        return run_demo(args.model, args.task, args.max_steps, args.dir)
    except ImportError as exc:  # the learning demo's game needs the bench extra (and Java 17)
        print(f"error: {exc}", file=sys.stderr)
        print("the coding demo needs no extra: purpose-agent demo --task is_palindrome", file=sys.stderr)
        return 2


def _cmd_run(args: argparse.Namespace) -> int:
    from purpose_agent.core.environment import SimpleEnvironment
    from purpose_agent.core.orchestrator import Orchestrator

    orch = Orchestrator(args.model, SimpleEnvironment())
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
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    print(f"{report['path']}: {report['total']} memories {report['by_status']}")
    print(f"runs credited: {report['credited_runs']}")
    print("top promoted (Q, included, helpful/harmful):")
    for m in report["top_promoted"]:
        print(
            f"  {m['id']} Q={m['q']:.2f} n={m['times_included']} +{m['helpful']}/-{m['harmful']} "
            f"[{m['kind']}] {m['text'][:100]}"
        )
    print("rejected:")
    for m in report["rejected"]:
        print(f"  {m['id']} [{m['kind']}] {m['text'][:80]} -- {m['reason'][:120]}")
    return 0


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
        help="the agent learns a text game from experience (before / learn / lessons / after)",
        description="Learning demo on TextWorldExpress cookingworld (bench extra, Java 17): a held-out "
        "game with no memory, training games through the default learning path and its gate, the "
        "lessons, the held-out game again. --task ID runs the coding demo instead.",
    )
    d.add_argument("--model", default="local")
    d.add_argument(
        "--task", default=None, help="run the coding demo on this task id instead (e.g. is_palindrome)"
    )
    d.add_argument(
        "--max-steps", type=int, default=None, help="step limit per run (default: 8 learning, 5 coding)"
    )
    d.add_argument(
        "--dir", default=None, help="where the memory store and traces go (default: a new temp dir)"
    )
    d.set_defaults(fn=_cmd_demo)
    r = sub.add_parser("run", help="run one purpose (no environment: the answer is the final DONE)")
    r.add_argument("purpose")
    r.add_argument("--model", default="local")
    r.add_argument("--max-steps", type=int, default=6)
    r.set_defaults(fn=_cmd_run)
    st = sub.add_parser("status", help="what the memory store has learned")
    st.add_argument("--store", default=DEFAULT_STORE)
    st.add_argument("--json", action="store_true")
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
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "fn", None):
        parser.print_help()
        return 0 if sys.stdin.isatty() or argv is not None else 2
    from purpose_agent.errors import PurposeAgentError

    if getattr(args, "action", None) in ("show", "promote", "reject", "rollback") and not args.id:
        parser.error(f"memory {args.action} needs a memory id")
    try:
        return int(args.fn(args))
    except KeyError as exc:
        print(f"error: {exc.args[0] if exc.args else exc}", file=sys.stderr)
        return 2
    except PurposeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
