"""The ``purpose-agent`` command."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence


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

    return run_demo(args.model, args.task, args.max_steps)


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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="purpose-agent", description="Agents that learn from experience.")
    sub = p.add_subparsers(dest="command")
    m = sub.add_parser("models", help="list embedded models, known small models and providers")
    m.set_defaults(fn=_cmd_models)
    d = sub.add_parser("demo", help="the embedded model writes a function until its tests pass")
    d.add_argument("--model", default="local")
    d.add_argument("--task", default=None, help="a task id of the demo family")
    d.add_argument("--max-steps", type=int, default=5)
    d.set_defaults(fn=_cmd_demo)
    r = sub.add_parser("run", help="run one purpose (no environment: the answer is the final DONE)")
    r.add_argument("purpose")
    r.add_argument("--model", default="local")
    r.add_argument("--max-steps", type=int, default=6)
    r.set_defaults(fn=_cmd_run)
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

    try:
        return int(args.fn(args))
    except PurposeAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
