"""Terminal output of the CLI (rich): run progress, the status tables, costs read from traces,
one-line errors with their fix, and plugin loading."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from purpose_agent.core import events as ev

PLUGINS_ENV = "PURPOSE_AGENT_PLUGINS"
ENTRY_POINT_GROUP = "purpose_agent.plugins"


# ----------------------------------------------------------------------------- plugins
def load_plugins() -> list[str]:
    """Import the plugin modules: those named in ``$PURPOSE_AGENT_PLUGINS`` (comma-separated) and
    the entry points of group ``purpose_agent.plugins``. A plugin registers what it brings on
    import, e.g. ``backend_registry.register("myprovider", factory)``. Returns their names."""
    from importlib.metadata import entry_points

    from purpose_agent.errors import ConfigurationError

    loaded = []
    for name in [n.strip() for n in os.environ.get(PLUGINS_ENV, "").split(",") if n.strip()]:
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigurationError(
                f"cannot import the plugin module {name!r} named in ${PLUGINS_ENV}: {type(exc).__name__}: {exc}"
            ) from exc
        loaded.append(name)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"cannot load the plugin entry point {point.name!r} ({point.value}): {type(exc).__name__}: {exc}"
            ) from exc
        loaded.append(point.name)
    return loaded


# ----------------------------------------------------------------------------- errors
def fix_for(exc: BaseException, command: str | None) -> str:
    """The fix to print under an error, by the error's type (empty when its message has one)."""
    from purpose_agent import errors as E

    text = str(exc)
    if "fix:" in text.lower() or "install it with" in text:
        return ""
    if isinstance(exc, E.ConfigurationError) and "plugin" in text:
        return f"check the module name and PYTHONPATH, or drop it from ${PLUGINS_ENV}"
    if isinstance(exc, E.UnknownProviderError | E.ModelFileError):
        return "pick a model spec from `purpose-agent models` (the default is --model local)"
    if isinstance(exc, E.ConfigurationError) and "model spec" in text:
        return "pick a model spec from `purpose-agent models` (the default is --model local)"
    missing = isinstance(exc, E.ReadOnlyModeError | E.StorePathError) or "does not exist" in text
    if missing and command in ("status", "memory"):
        return (
            "teach a lesson (`purpose-agent teach TEXT`) or run a task to create the store, "
            "or point --store at an existing one"
        )
    if isinstance(exc, E.AuthenticationError):
        return "set the provider's API key (e.g. OPENAI_API_KEY) or pass another --model"
    if isinstance(exc, E.BackendError):
        return "check that the model server is running and reachable, or pass another --model"
    if isinstance(exc, E.MissingExtraError | ImportError):
        return "install the missing extra, e.g. pip install 'purpose-agent[local]'"
    if isinstance(exc, OSError):
        return "check the path and its permissions"
    if not isinstance(exc, E.PurposeAgentError):
        return f"this looks like a bug; rerun with PURPOSE_AGENT_DEBUG=1 for the traceback ({type(exc).__name__})"
    return ""


def print_error(console: Console, exc: BaseException, command: str | None) -> None:
    message = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        message = str(exc.args[0])
    console.print(f"error: {message}", markup=False, highlight=False, soft_wrap=True)
    fix = fix_for(exc, command)
    if fix:
        console.print(f"fix: {fix}", markup=False, highlight=False, soft_wrap=True)


# ----------------------------------------------------------------------------- run progress
def step_printer(console: Console) -> Callable[[ev.Event], None]:
    """A listener that prints one line per action, score and error while a run goes on."""

    def show(event: ev.Event) -> None:
        if isinstance(event, ev.ActionChosen):
            params = json.dumps(dict(event.params), ensure_ascii=False)
            console.print(f"step {event.step}: {event.name} {params[:100]}", markup=False, highlight=False)
        elif isinstance(event, ev.Scored):
            console.print(
                f"   Φ {event.phi_before:.1f} → {event.phi_after:.1f}  {event.evidence[:80]}",
                markup=False,
                highlight=False,
            )
        elif isinstance(event, ev.ErrorRaised):
            console.print(f"   ({event.where}: {event.message[:120]})", markup=False, highlight=False)

    return show


@contextmanager
def working(console: Console, text: str) -> Iterator[None]:
    """A spinner while a long call runs (a plain line when the output is not a terminal)."""
    if console.is_terminal:
        with console.status(text):
            yield
    else:
        console.print(text, markup=False, highlight=False)
        yield


# ----------------------------------------------------------------------------- status
@dataclass
class Costs:
    """Model cost read from the run traces (``cost`` events)."""

    runs: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usd: float = 0.0
    unpriced: int = 0  # calls whose price is unknown


def trace_costs(trace_dir: Path) -> Costs:
    costs = Costs()
    if not trace_dir.is_dir():
        return costs
    for path in sorted(trace_dir.glob("*.jsonl")):
        try:
            events = ev.read_trace(path)
        except OSError:
            continue
        if any(e.get("kind") == "task_start" for e in events):
            costs.runs += 1
        for e in events:
            if e.get("kind") != "cost":
                continue
            costs.calls += 1
            costs.prompt_tokens += int(e.get("prompt_tokens") or 0)
            costs.completion_tokens += int(e.get("completion_tokens") or 0)
            usd = e.get("usd")
            if isinstance(usd, int | float):
                costs.usd += float(usd)
            else:
                costs.unpriced += 1
    return costs


def _table(title: str) -> Table:
    return Table(title=title, title_justify="left", box=box.SIMPLE, pad_edge=False, collapse_padding=True)


def status_tables(report: dict[str, Any], costs: Costs, trace_dir: Path) -> list[Any]:
    """The renderables of ``purpose-agent status``: memories by kind and status, top utilities, cost."""
    statuses = list(report["by_status"])
    by_kind = _table(f"{report['path']}: {report['total']} memories")
    by_kind.add_column("kind", no_wrap=True)
    for s in statuses:
        by_kind.add_column(s, justify="right", min_width=len(s))
    by_kind.add_column("total", justify="right")
    for kind, counts in report["by_kind"].items():
        by_kind.add_row(kind, *(str(counts.get(s, 0)) for s in statuses), str(sum(counts.values())))
    by_kind.add_row(
        "all", *(str(report["by_status"][s]) for s in statuses), str(report["total"]), style="bold"
    )

    top = _table("top utilities (promoted)")
    for col, just in (("id", "left"), ("kind", "left"), ("Q", "right"), ("used", "right"), ("+/-", "right")):
        top.add_column(col, justify=just, no_wrap=True)  # type: ignore[arg-type]
    top.add_column("lesson", overflow="fold")
    for m in report["top_promoted"]:
        top.add_row(
            m["id"], m["kind"], f"{m['q']:.2f}", str(m["times_included"]), f"+{m['helpful']}/-{m['harmful']}",
            m["text"][:120],
        )  # fmt: skip
    if not report["top_promoted"]:
        top.add_row("-", "-", "-", "-", "-", "no promoted lesson yet")

    cost = _table(f"cost (from the traces in {trace_dir})")
    for col in ("runs", "model calls", "prompt tokens", "completion tokens", "USD"):
        cost.add_column(col, justify="right")
    usd = f"{costs.usd:.4f}"
    if costs.unpriced:
        usd += f" (+ {costs.unpriced} calls, price unknown)"
    cost.add_row(
        str(costs.runs), str(costs.calls), str(costs.prompt_tokens), str(costs.completion_tokens), usd
    )
    return [by_kind, top, cost, f"runs credited in the store: {report['credited_runs']}"]
