"""Immune-system benchmark: catch and false-positive rates, per class and per form, and scan time.

Two corpora, reported apart:

- ``dev``: ``immune_train.jsonl`` + ``immune_corpus.jsonl``, what the rules were written against
  and the classifier was trained on (in-sample for the classifier: an optimistic number);
- ``heldout``: ``immune_heldout.jsonl``, written after the rules and the classifier were frozen
  and never used to tune them: the number to quote.

Each corpus is scanned twice: with the rules layers only (rules, parser, secrets) and with the
full system (plus the classifier, when the ``embed`` extra is installed). Scan time is measured
per lesson on the full system (mean and p95, warm), plus adversarial 100 kB inputs.

Run: ``python benchmarks/bench_immune.py [--quiet] [--skip-adversarial]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

from purpose_agent.memory.immune import CATEGORIES, ImmuneSystem, ScanResult

DATA = resources.files("purpose_agent.memory") / "data"
CORPORA = {
    "dev": ("immune_train.jsonl", "immune_corpus.jsonl"),
    "heldout": ("immune_heldout.jsonl",),
    # written apart from the detector, scanned once per frozen version (BENCHMARKS.md)
    "blind": ("immune_blind_v3.jsonl",),
    # a second one, written blind (2026-12-01) after v3 had been seen; scanned once by v4 (e9ae0c3), now seen
    "blind4": ("immune_blind_v4.jsonl",),
}


@dataclass(frozen=True, slots=True)
class Row:
    """One corpus entry with its two scan results."""

    text: str
    label: str
    category: str | None
    form: str
    rules: ScanResult
    full: ScanResult
    seconds: float


def load(names: tuple[str, ...]) -> list[dict[str, object]]:
    """The labelled rows of the named data files (comment lines skipped)."""
    rows: list[dict[str, object]] = []
    for name in names:
        for line in (DATA / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if "text" in row:
                    if "label" not in row:  # the blind corpus marks hostile rows with a boolean
                        row["label"] = "hostile" if row["hostile"] else "ordinary"
                    rows.append(row)
    return rows


def _rate(hits: int, n: int) -> str:
    return f"{hits}/{n} = {hits / n:.3f}" if n else "-"


def report(name: str, rows: list[Row], quiet: bool) -> None:
    hostile = [r for r in rows if r.label == "hostile"]
    ordinary = [r for r in rows if r.label == "ordinary"]
    print(f"\n=== {name}: {len(hostile)} hostile, {len(ordinary)} ordinary")
    print(f"{'system':<26} {'catch':>18} {'false positives':>18}")
    for system in ("rules", "full"):
        caught = sum(1 for r in hostile if not getattr(r, system).safe)
        flagged = sum(1 for r in ordinary if not getattr(r, system).safe)
        label = "rules+parser+secrets" if system == "rules" else "full (+classifier)"
        print(f"{label:<26} {_rate(caught, len(hostile)):>18} {_rate(flagged, len(ordinary)):>18}")

    print("\ncatch per class (rules / full), and class named correctly by the full system:")
    for cat in CATEGORIES:
        items = [r for r in hostile if r.category == cat]
        if not items:
            continue
        rules = sum(1 for r in items if not r.rules.safe)
        full = sum(1 for r in items if not r.full.safe)
        named = sum(1 for r in items if cat in r.full.categories)
        print(
            f"  {cat:<20} {_rate(rules, len(items)):>16}  {_rate(full, len(items)):>16}   named {named}/{len(items)}"
        )

    print("\nper form: hostile caught / ordinary passed (rules / full):")
    by_form: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by_form[(r.label, r.form)].append(r)
    for (label, form), items in sorted(by_form.items()):
        good_rules = sum(1 for r in items if (not r.rules.safe) == (label == "hostile"))
        good_full = sum(1 for r in items if (not r.full.safe) == (label == "hostile"))
        verb = "caught" if label == "hostile" else "passed"
        print(
            f"  {label:<9} {form:<13} {verb} {_rate(good_rules, len(items)):>16}  {_rate(good_full, len(items)):>16}"
        )

    layers = {r.full.layers for r in rows}
    notes = {n for r in rows for n in r.full.notes}
    print(f"\nlayers: {sorted(layers)}" + (f"; notes: {sorted(notes)}" if notes else ""))
    if not quiet:
        misses = [r for r in hostile if r.full.safe]
        fps = [r for r in ordinary if not r.full.safe]
        print(f"\nmisses of the full system ({len(misses)}):")
        for r in misses:
            print(f"  [{r.category}/{r.form}] {r.text[:160]!r}")
        print(f"\nfalse positives of the full system ({len(fps)}):")
        for r in fps:
            why = "; ".join(f"{t.rule}: {t.evidence[:60]!r}" for t in r.full.threats)
            print(f"  [{r.form}] {r.text[:160]!r}\n      -> {why}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quiet", action="store_true", help="do not list misses and false positives")
    parser.add_argument("--skip-adversarial", action="store_true", help="skip the 100 kB inputs")
    parser.add_argument(
        "--corpus", action="append", choices=sorted(CORPORA), help="scan only these corpora (default: all)"
    )
    args = parser.parse_args()

    rules_only = ImmuneSystem(classifier=None)
    full = ImmuneSystem()
    t0 = time.perf_counter()
    full.scan("Warm-up: load the embedder, the classifier and the secret plugins.")
    cold = time.perf_counter() - t0
    print(
        f"date: {time.strftime('%Y-%m-%d %H:%M %Z')}; python {platform.python_version()}; {os.cpu_count()} cores"
    )
    if hasattr(os, "getloadavg"):
        print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"first scan (loads embedder, classifier, plugins): {cold * 1000:.0f} ms")

    times: list[float] = []
    results: dict[str, list[Row]] = {}
    for name, files in CORPORA.items():
        if args.corpus and name not in args.corpus:
            continue
        rows: list[Row] = []
        for item in load(files):
            text = str(item["text"])
            r = rules_only.scan(text)
            t = time.perf_counter()
            f = full.scan(text)
            dt = time.perf_counter() - t
            times.append(dt)
            form = str(item.get("form") or item.get("variant") or "plain")
            rows.append(Row(text, str(item["label"]), item.get("category"), form, r, f, dt))  # type: ignore[arg-type]
        results[name] = rows
    for name, rows in results.items():
        report(name, rows, args.quiet)

    times.sort()
    p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
    print(
        f"\nscan time per lesson, full system, warm ({len(times)} lessons): mean {statistics.mean(times) * 1000:.1f} ms,"
        f" median {statistics.median(times) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms"
    )
    if not args.skip_adversarial:
        print("\nscan time on adversarial 100 kB inputs, full system (best of 3):")
        for name, text in ADVERSARIAL.items():
            best = min(_timed(full, text) for _ in range(3))
            print(f"  {name:<12} {best * 1000:8.1f} ms")


#: inputs that stress regular expressions (long runs, near-matches, wide Unicode)
ADVERSARIAL = {
    "prose": ("The quick brown fox jumps over the lazy dog. " * 2300)[:100_000],
    "spaced": "a " * 50_000,
    "percent": "a%4" * 33_000,
    "ignore-spam": "ignore the " * 9_000 + "x",
    "unicode": "".join(chr(0x20 + (i * 7919) % 0x2F00) for i in range(100_000)),
    "at-signs": "x@" * 50_000,
}


def _timed(immune: ImmuneSystem, text: str) -> float:
    t0 = time.perf_counter()
    immune.scan(text)
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()
