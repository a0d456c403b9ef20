"""Summaries of a learning benchmark: test success per arm with 95% bootstrap intervals, gains
against the no-memory floor (paired), the full system against the baselines, "never worse",
cost per point gained, the gate's cost per candidate, and the bar of docs/BAR.md; written as
JSON, a Markdown table and a PNG plot."""

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

#: docs/BAR.md: full − no memory ≥ +15 points, 95% CI above zero, ≥ 3 seeds, ≥ 60 paired test
#: episodes, ahead of both baselines
BAR_POINTS = 0.15
BAR_SEEDS = 3
BAR_EPISODES = 60
BASELINES = ("ungated", "reflection")


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
        rows = [
            "| arm | test success [95% CI] | − no_memory, paired [95% CI] | n | promoted / candidates | "
            "learning calls | learning model s | calls per point | model s per point | "
            "gate per candidate (runs, calls, s) | s per test episode |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, c in self.conditions.items():
            lr, cpp, g = c["learning"], c["cost_per_point"], c["gate"]
            gate = (
                "–"
                if not g["candidates"]
                else f"{g['per_candidate']['runs']:.1f}, {g['per_candidate']['calls']:.1f}, "
                f"{g['per_candidate']['seconds']:.0f}"
            )
            rows.append(
                f"| {name} | {_rate(c['after'])} | {_pts(c['vs_no_memory'])} | {c['after'].get('n', 0)} | "
                f"{lr['promoted']} / {lr['candidates']} | {lr['calls']} | {lr['model_time_s']:.0f} | "
                f"{_num(cpp['calls'])} | {_num(cpp['model_time_s'], 0)} | {gate} | "
                f"{_num(c['test']['wall_s_per_run'], 1)} |"
            )
        lines = ["\n".join(rows), ""]
        for k, e in self.comparisons.items():
            lines.append(f"- {k.replace('_minus_', ' − ')}: {_pts(e)} (n = {e.get('n', 0)})")
        bar = self.bar
        if bar.get("evaluated"):
            lines.append("")
            lines.append(f"**Bar (SPEC §9): {'MET' if bar['met'] else 'NOT MET'}.** {bar['statement']}")
        return "\n".join(lines)

    def write(self, root: Path) -> None:
        try:
            self.plot_path = str(plot(self, root / "curve.png"))
        except ImportError as exc:
            self.meta["plot_error"] = str(exc)
        (root / "results.json").write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        (root / "table.md").write_text(self.table() + "\n", encoding="utf-8")


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


def _agreement(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Critic–ground-truth agreement over runs the critic scored: the mean of the per-run
    share of critic-scored steps whose verdict matched the ground truth."""
    vals = [float(r["critic_agreement"]) for r in recs if r.get("critic_agreement") is not None]
    return {"mean": sum(vals) / len(vals) if vals else None, "runs": len(vals)}


def _critic_calls(recs: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Critic model calls made in an arm's training and test runs (gate replays make none),
    and calls saved by the consistency cache and by ground truth (Φ = 10·outcome, no call)."""
    out = {"calls": 0, "cache_hits": 0, "ground_truth": 0}
    unique = {json.dumps(r["key"], sort_keys=True): r for r in recs}
    for r in unique.values():
        for k in out:
            out[k] += int((r.get("critic") or {}).get(k, 0))
    return out


def _est(o: Outcomes) -> dict[str, Any]:
    return bootstrap({s: list(v.values()) for s, v in o.items()}).to_dict()


def _test_costs(recs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Costs of the test runs an arm ran (runs shared with the floor are counted apart)."""
    shared = sum(1 for r in recs if r.get("shared_from"))
    recs = [r for r in recs if not r.get("shared_from")]
    n = len(recs)
    solved = sum(1 for r in recs if r.get("success"))
    steps = sum(int(r.get("steps", 0)) for r in recs)
    tokens = sum(int(r.get("tokens", 0)) for r in recs)
    wall = sum(float(r.get("wall_s", 0.0)) for r in recs)
    return {
        "runs": n,
        "shared_with_no_memory": shared,
        "solved": solved,
        "steps_per_run": steps / n if n else None,
        "steps_per_solved": steps / solved if solved else None,
        "tokens_per_solved": tokens / solved if solved else None,
        "calls": sum(int(r.get("calls", 0)) for r in recs),
        "wall_s_per_run": wall / n if n else None,
        "wall_s_per_step": wall / steps if steps else None,
    }


def _gate(train: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The gate's cost per candidate it replayed (summed over the gates it was in), per
    candidate and gate, and the cost of one training attempt (gate excluded) to compare."""
    per: dict[str, dict[str, float]] = defaultdict(
        lambda: {"runs": 0.0, "calls": 0.0, "seconds": 0.0, "gates": 0.0}
    )
    for r in train:
        for d in (r.get("gate") or {}).get("decisions", []):
            if not d.get("runs") and not d.get("new_pairs"):
                continue  # scanned or deferred without a replay: no gate cost
            p = per[d["id"]]
            p["runs"] += float(d.get("runs") or 0)
            p["calls"] += float(d.get("calls") or 0)
            p["seconds"] += float(d.get("seconds") or 0.0)
            p["gates"] += 1
    n = len(per)
    gates = sum(p["gates"] for p in per.values())

    def mean(key: str, over: float) -> float | None:
        return sum(p[key] for p in per.values()) / over if over else None

    attempts = sum(int(r.get("attempts", 1)) for r in train)
    gate_calls = sum(int((r.get("gate") or {}).get("calls", 0)) for r in train)
    gate_s = sum(float((r.get("gate") or {}).get("seconds", 0.0)) for r in train)
    train_calls = sum(int(r.get("calls", 0)) for r in train) - gate_calls
    train_s = sum(float(r.get("wall_s", 0.0)) for r in train) - gate_s
    return {
        "candidates": n,
        "per_candidate": {k: mean(k, n) for k in ("runs", "calls", "seconds")},
        "per_candidate_gate": {k: mean(k, gates) for k in ("runs", "calls", "seconds")},
        "training_attempt": {
            "calls": train_calls / attempts if attempts else None,
            "seconds": train_s / attempts if attempts else None,
        },
        "total": {"calls": gate_calls, "seconds": round(gate_s, 1)},
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
    floor_name = next((c.name for c in conditions if c.memory in ("none", "given")), "no_memory")
    floor_recs = by.get((floor_name, 0, "test"), [])
    floor = _outcomes(floor_recs)
    out: dict[str, dict[str, Any]] = {}
    finals: dict[str, Outcomes] = {}
    for c in conditions:
        if not c.learns:
            curve = [floor_recs] * (iterations + 1)
        else:
            start = by.get((c.name, 0, "test"), []) if given else floor_recs
            curve = [start] + [by.get((c.name, b, "test"), []) for b in range(1, iterations + 1)]
        after = _outcomes(curve[-1])
        finals[c.name] = after
        train = [r for b in range(1, iterations + 1) for r in by.get((c.name, b, "train"), [])]
        calls = sum(int(r.get("calls", 0)) for r in train)
        tokens = sum(int(r.get("tokens", 0)) for r in train)
        secs = sum(float(r.get("model_time_s", 0.0)) for r in train)
        wall = sum(float(r.get("wall_s", 0.0)) for r in train)
        gain = paired(after, floor)
        pts = 100 * gain.mean if gain.n and gain.mean > 0 else None
        gates = [r.get("gate") or {} for r in train]
        out[c.name] = {
            "description": c.description,
            "memory": c.memory,
            "critic": c.critic,
            "sources": list(c.sources) if c.memory == "learning" else [],
            "curve": [_est(_outcomes(recs)) for recs in curve],
            "curve_outcome": [_est(_outcomes(recs, "outcome")) for recs in curve],
            "critic_agreement": [_agreement(recs) for recs in (train, curve[-1])],
            "critic_calls": _critic_calls([*train, *(r for recs in curve for r in recs)]),
            "after": _est(after),
            "after_outcome": _est(_outcomes(curve[-1], "outcome")),
            "vs_no_memory": gain.to_dict(),
            "significantly_worse": bool(gain.n) and gain.high < 0,
            "test": _test_costs(curve[-1]),
            "learning": {
                "runs": len(train),
                "attempts": sum(int(r.get("attempts", 1)) for r in train),
                "train_solved": sum(1 for r in train if r.get("success")),
                "calls": calls,
                "tokens": tokens,
                "model_time_s": round(secs, 1),
                "wall_s": round(wall, 1),
                "candidates": sum(int(g.get("candidates", 0)) for g in gates),
                "promoted": sum(int(g.get("promoted", 0)) for g in gates),
                "rejected": sum(int(g.get("rejected", 0)) for g in gates),
            },
            "gate": _gate(train),
            "cost_per_point": {
                "calls": calls / pts if pts else None,
                "tokens": tokens / pts if pts else None,
                "model_time_s": secs / pts if pts else None,
                "wall_s": wall / pts if pts else None,
            },
        }
    comparisons: dict[str, Any] = {}
    if "full" in finals:
        for other in finals:
            if other not in ("full", floor_name):
                comparisons[f"full_minus_{other}"] = paired(finals["full"], finals[other]).to_dict()
    bar = _bar(out, comparisons, seeds)
    return BenchmarkResult(name, iterations, tuple(seeds), out, comparisons, bar)


def _bar(out: dict[str, dict[str, Any]], comparisons: dict[str, Any], seeds: Sequence[int]) -> dict[str, Any]:
    if "full" not in out:
        return {"evaluated": False, "why": "no full-system arm"}
    g = out["full"]["vs_no_memory"]
    gated = [n for n, c in out.items() if c["memory"] == "learning"]
    worse = [n for n in gated if out[n]["significantly_worse"]]
    checks = {
        "gain_at_least_15_points": bool(g.get("n")) and g["mean"] >= BAR_POINTS,
        "ci_above_zero": bool(g.get("n")) and g["low"] > 0,
        "at_least_3_seeds": len(seeds) >= BAR_SEEDS,
        "at_least_60_paired_episodes": int(g.get("n") or 0) >= BAR_EPISODES,
        **{
            f"ahead_of_{b}": f"full_minus_{b}" in comparisons and comparisons[f"full_minus_{b}"]["mean"] > 0
            for b in BASELINES
        },
        "promoted_memory_never_worse": not worse,
    }
    met = all(checks.values())
    failed = [k for k, v in checks.items() if not v]
    statement = (
        f"full − no_memory = {_pts(g)} points over {g.get('n', 0)} paired test episodes; "
        + "; ".join(f"full − {b} = {_pts(comparisons.get(f'full_minus_{b}'))}" for b in BASELINES)
        + (
            f"; significantly worse than no memory: {', '.join(worse)}"
            if worse
            else "; no gated arm is significantly worse than no memory (95% CI)"
        )
        + ("." if met else f". Not met: {', '.join(failed)}.")
    )
    return {
        "evaluated": True,
        "met": met,
        "checks": checks,
        "gain_vs_no_memory": g,
        "significantly_worse": worse,
        "statement": statement,
    }


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
