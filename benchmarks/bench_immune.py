"""Immune-system benchmark on the labelled corpus.

Prints catch rate and false-positive rate (dev, heldout, all), recall per category and per
variant, every miss and false positive, and the mean scan time per lesson.

Run: ``python benchmarks/bench_immune.py [--split dev|heldout|all] [--quiet]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from dataclasses import dataclass
from importlib import resources

from purpose_agent.memory.immune import ImmuneSystem, ScanResult


@dataclass(frozen=True, slots=True)
class Row:
    """One corpus entry with its scan result."""

    text: str
    label: str
    category: str | None
    variant: str
    split: str
    result: ScanResult


def load_corpus() -> list[dict[str, object]]:
    """The corpus shipped with the package."""
    path = resources.files("purpose_agent.memory") / "data" / "immune_corpus.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _rates(rows: list[Row]) -> tuple[float, float, int, int]:
    hostile = [r for r in rows if r.label == "hostile"]
    ordinary = [r for r in rows if r.label == "ordinary"]
    caught = sum(1 for r in hostile if not r.result.safe)
    flagged = sum(1 for r in ordinary if not r.result.safe)
    return (
        caught / len(hostile) if hostile else float("nan"),
        flagged / len(ordinary) if ordinary else float("nan"),
        len(hostile),
        len(ordinary),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--split", choices=["dev", "heldout", "all"], default="all", help="rows to list")
    parser.add_argument("--quiet", action="store_true", help="do not list misses and false positives")
    args = parser.parse_args()

    immune = ImmuneSystem()
    rows: list[Row] = []
    t0 = time.perf_counter()
    for item in load_corpus():
        text = str(item["text"])
        rows.append(
            Row(
                text,
                str(item["label"]),
                item.get("category"),  # type: ignore[arg-type]
                str(item["variant"]),
                str(item.get("split", "dev")),
                immune.scan(text),
            )
        )
    elapsed = time.perf_counter() - t0

    print(f"corpus: {len(rows)} lessons")
    print(f"{'split':<8} {'hostile':>7} {'ordinary':>8} {'catch rate':>11} {'FP rate':>8}")
    for split in ("dev", "heldout", "all"):
        subset = rows if split == "all" else [r for r in rows if r.split == split]
        catch, fp, nh, no = _rates(subset)
        print(f"{split:<8} {nh:>7} {no:>8} {catch:>11.3f} {fp:>8.3f}")

    print("\nrecall per category (all / dev / heldout), and category correctly named:")
    by_cat: dict[str, list[Row]] = defaultdict(list)
    for r in rows:
        if r.label == "hostile" and r.category:
            by_cat[r.category].append(r)
    for cat, items in sorted(by_cat.items()):
        parts = []
        for split in ("all", "dev", "heldout"):
            sub = items if split == "all" else [r for r in items if r.split == split]
            hit = sum(1 for r in sub if not r.result.safe)
            parts.append(f"{hit}/{len(sub)}")
        named = sum(1 for r in items if cat in r.result.categories)
        print(f"  {cat:<20} {parts[0]:>7} {parts[1]:>7} {parts[2]:>7}   named {named}/{len(items)}")

    print("\nrecall per variant (hostile) / pass rate per variant (ordinary):")
    by_var: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in rows:
        by_var[(r.label, r.variant)].append(r)
    for (label, var), items in sorted(by_var.items()):
        good = sum(1 for r in items if (not r.result.safe) == (label == "hostile"))
        print(f"  {label:<9} {var:<13} {good:>3}/{len(items):<3} {good / len(items):.3f}")

    if not args.quiet:
        listed = rows if args.split == "all" else [r for r in rows if r.split == args.split]
        misses = [r for r in listed if r.label == "hostile" and r.result.safe]
        fps = [r for r in listed if r.label == "ordinary" and not r.result.safe]
        print(f"\nmisses ({len(misses)}):")
        for r in misses:
            print(f"  [{r.split}/{r.category}/{r.variant}] {r.text!r}")
        print(f"\nfalse positives ({len(fps)}):")
        for r in fps:
            why = "; ".join(f"{t.rule}: {t.evidence!r}" for t in r.result.threats)
            print(f"  [{r.split}/{r.variant}] {r.text!r}\n      -> {why}")

    print(
        f"\nmean scan time: {elapsed / len(rows) * 1000:.2f} ms per lesson ({len(rows)} lessons, {elapsed:.2f} s)"
    )
    print("\nscan time on adversarial 100 kB inputs (best of 3):")
    for name, text in ADVERSARIAL.items():
        best = min(_timed(immune, text) for _ in range(3))
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
