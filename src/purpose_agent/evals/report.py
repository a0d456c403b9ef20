"""Summaries of a learning benchmark: curves with 95% bootstrap intervals, gains before vs after
and against the no-memory floor, cost per point gained; written as JSON, a Markdown table and
a PNG plot."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from purpose_agent.evals.conditions import Condition
from purpose_agent.evals.stats import Estimate, bootstrap, paired

Outcomes = dict[int, dict[str, float]]  # seed -> task -> value

#: SPEC §9: after − no memory ≥ +15 points, 95% CI above zero, ≥ 3 seeds, ahead of both baselines
BAR_POINTS = 0.15
BAR_SEEDS = 3


@dataclass
class BenchmarkResult:
    """What ``BenchmarkRunner.run`` returns (and writes as ``results.json``)."""

    name: str
    iterations: int
    seeds: tuple[int, ...]
    conditions: dict[str, dict[str, Any]]
    comparisons: dict[str, Any]
    bar: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    plot_path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "iterations": self.iterations,
            "seeds": list(self.seeds),
            "conditions": self.conditions,
            "comparisons": self.comparisons,
            "bar": self.bar,
            "meta": self.meta,
            "plot_path": self.plot_path,
        }

    def table(self) -> str:
        """The learning table in Markdown."""
        head = (
            "| condition | test success before | after | after − before | after − no memory | "
            "steps / solved | tokens / solved | learning calls | learning tokens | calls per point | "
            "critic agreement before → after |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|"
        )
        rows = [head]
        for name, c in self.conditions.items():
            cpp = c["cost_per_point"]["calls"]
            rows.append(
                f"| {name} | {_rate(c['before'])} | {_rate(c['after'])} | {_pts(c['gain'])} | "
                f"{_pts(c['vs_no_memory'])} | {_num(c['test']['steps_per_solved'])} | "
                f"{_num(c['test']['tokens_per_solved'], 0)} | {c['learning']['calls']} | "
                f"{c['learning']['tokens']} | {_num(cpp)} | {_agree(c['critic_agreement'])} |"
            )
        return "\n".join(rows)

    def write(self, root: Path) -> None:
        try:
            self.plot_path = str(plot(self, root / "curve.png"))
        except ImportError as exc:
            self.meta["plot_error"] = str(exc)
        (root / "results.json").write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        (root / "table.md").write_text(self.table() + "\n", encoding="utf-8")


def _agree(curve: Sequence[dict[str, Any]]) -> str:
    def one(a: dict[str, Any]) -> str:
        return "–" if a.get("mean") is None else f"{100 * a['mean']:.0f}% ({a['runs']})"

    return f"{one(curve[0])} → {one(curve[-1])}" if curve else "–"


def _rate(e: dict[str, Any]) -> str:
    return "–" if not e.get("n") else Estimate(**e).rate()


def _pts(e: dict[str, Any] | None) -> str:
    return "–" if not e or not e.get("n") else Estimate(**e).pct()


def _num(x: float | None, digits: int = 1) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _collect(records: Iterable[dict[str, Any]]) -> dict[tuple[str, int, str], list[dict[str, Any]]]:
    out: dict[tuple[str, int, str], list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        k = r["key"]
        out[(k["condition"], k["block"], k["phase"])].append(r)
    return out


def _outcomes(recs: Sequence[dict[str, Any]], metric: str = "success") -> Outcomes:
    out: Outcomes = defaultdict(dict)
    for r in recs:
        out[r["key"]["seed"]][r["key"]["task"]] = float(r[metric])
    return dict(out)


def _test_records(
    by: dict[tuple[str, int, str], list[dict[str, Any]]], c: Condition, block: int, given: bool
) -> list[dict[str, Any]]:
    if block == 0 or not c.learns:
        return by.get((c.name if given else c.before_key, 0, "test"), [])
    return by.get((c.name, block, "test"), [])


def _agreement(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Critic–ground-truth agreement over test runs the critic scored: the mean of the per-run
    share of critic-scored steps whose verdict matched the ground truth."""
    vals = [float(r["critic_agreement"]) for r in recs if r.get("critic_agreement") is not None]
    return {"mean": sum(vals) / len(vals) if vals else None, "runs": len(vals)}


def _critic_calls(recs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Critic model calls made in an arm's training and test runs (gate replays not included),
    and calls saved by the consistency cache and by ground truth (Φ = 10·outcome, no call)."""
    out = {"calls": 0, "cache_hits": 0, "ground_truth": 0}
    unique = {json.dumps(r["key"], sort_keys=True): r for r in recs}  # a shared run counts once
    for r in unique.values():
        for k in out:
            out[k] += int((r.get("critic") or {}).get(k, 0))
    return out


def _est(o: Outcomes) -> dict[str, Any]:
    return bootstrap({s: list(v.values()) for s, v in o.items()}).to_dict()


def _solved_costs(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    solved = sum(1 for r in recs if r.get("success"))
    steps = sum(int(r.get("steps", 0)) for r in recs)
    tokens = sum(int(r.get("tokens", 0)) for r in recs)
    return {
        "runs": len(recs),
        "solved": solved,
        "steps_per_run": steps / len(recs) if recs else None,
        "steps_per_solved": steps / solved if solved else None,
        "tokens_per_solved": tokens / solved if solved else None,
        "calls": sum(int(r.get("calls", 0)) for r in recs),
    }


def summarize(
    records: Iterable[dict[str, Any]],
    conditions: Sequence[Condition],
    seeds: Sequence[int],
    iterations: int,
    name: str,
) -> BenchmarkResult:
    by = _collect(records)
    given = any(c.memory == "given" for c in conditions)
    floor_cond = next((c for c in conditions if c.memory == "none"), None)
    out: dict[str, dict[str, Any]] = {}
    finals: dict[str, Outcomes] = {}
    for c in conditions:
        curve = [_test_records(by, c, b, given) for b in range(iterations + 1)]
        before, after = _outcomes(curve[0]), _outcomes(curve[-1])
        floor = _outcomes(_test_records(by, floor_cond, 0, given)) if floor_cond else before
        finals[c.name] = after
        learn = [
            r
            for b in range(1, iterations + 1)
            for ph in ("train", "gate")
            for r in by.get((c.name, b, ph), [])
        ]
        calls = sum(int(r.get("calls", 0)) for r in learn)
        tokens = sum(int(r.get("tokens", 0)) for r in learn)
        secs = sum(float(r.get("model_time_s", 0.0)) for r in learn)
        gain = paired(after, floor)
        pts = 100 * gain.mean if gain.n and gain.mean > 0 else None
        gates = [r for b in range(1, iterations + 1) for r in by.get((c.name, b, "gate"), [])]
        out[c.name] = {
            "description": c.description,
            "memory": c.memory,
            "critic": c.critic,
            "curve": [_est(_outcomes(recs)) for recs in curve],
            "curve_outcome": [_est(_outcomes(recs, "outcome")) for recs in curve],
            "critic_agreement": [_agreement(recs) for recs in curve],
            "critic_calls": _critic_calls([*learn, *(r for recs in curve for r in recs)]),
            "before": _est(before),
            "after": _est(after),
            "gain": paired(after, before).to_dict(),
            "vs_no_memory": gain.to_dict(),
            "test": _solved_costs(curve[-1]),
            "learning": {
                "runs": sum(1 for r in learn if r["key"]["phase"] == "train"),
                "calls": calls,
                "tokens": tokens,
                "model_time_s": round(secs, 1),
                "promoted": sum(int(r.get("promoted", 0)) for r in gates),
                "rejected": sum(int(r.get("rejected", 0)) for r in gates),
            },
            "cost_per_point": {
                "calls": calls / pts if pts else None,
                "tokens": tokens / pts if pts else None,
                "model_time_s": secs / pts if pts else None,
            },
        }
    comparisons: dict[str, Any] = {}
    if "full" in finals:
        for other in ("ungated", "reflection", "critic_off"):
            if other in finals:
                comparisons[f"full_minus_{other}"] = paired(finals["full"], finals[other]).to_dict()
    bar = _bar(out, comparisons, seeds)
    return BenchmarkResult(name, iterations, tuple(seeds), out, comparisons, bar)


def _bar(out: dict[str, dict[str, Any]], comparisons: dict[str, Any], seeds: Sequence[int]) -> dict[str, Any]:
    if "full" not in out:
        return {"evaluated": False, "why": "no full-system condition"}
    g = out["full"]["vs_no_memory"]
    checks = {
        "gain_at_least_15_points": bool(g.get("n")) and g["mean"] >= BAR_POINTS,
        "ci_above_zero": bool(g.get("n")) and g["low"] > 0,
        "at_least_3_seeds": len(seeds) >= BAR_SEEDS,
        "ahead_of_ungated": "full_minus_ungated" in comparisons
        and comparisons["full_minus_ungated"]["mean"] > 0,
        "ahead_of_reflection": "full_minus_reflection" in comparisons
        and comparisons["full_minus_reflection"]["mean"] > 0,
    }
    return {"evaluated": True, "met": all(checks.values()), "checks": checks, "gain_vs_no_memory": g}


def plot(result: BenchmarkResult, path: Path) -> Path:
    """Test success per training block, one line per condition, 95% CI as a band."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("the plot needs matplotlib: pip install 'purpose-agent[bench]'") from exc
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, c in result.conditions.items():
        pts = [(b, e) for b, e in enumerate(c["curve"]) if e["n"]]
        if not pts:
            continue
        xs = [b for b, _ in pts]
        ax.plot(xs, [100 * e["mean"] for _, e in pts], marker="o", label=name)
        ax.fill_between(xs, [100 * e["low"] for _, e in pts], [100 * e["high"] for _, e in pts], alpha=0.15)
    ax.set_xlabel("training blocks completed")
    ax.set_ylabel("test success (%) — EVAL_TEST")
    ax.set_title(f"{result.name}: seeds {','.join(map(str, result.seeds))} (95% bootstrap CI)")
    ax.set_ylim(-2, 102)
    ax.set_xticks(range(result.iterations + 1))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
