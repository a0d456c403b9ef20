"""Catch and false-positive rates of ``ImmuneSystem().scan`` on one labelled JSONL corpus
(fields text, hostile, category, form), per class and form, with the mean scan time.

    .venv/bin/python benchmarks/eval_immune_blind.py src/purpose_agent/memory/data/immune_blind_v3.jsonl

To score a frozen version, run it with ``PYTHONPATH=<a checkout of that commit>/src``.
"""

from __future__ import annotations

import json
import sys
import time
from collections import defaultdict
from pathlib import Path

from purpose_agent import ImmuneSystem


def main(path: str) -> None:
    with Path(path).open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    immune = ImmuneSystem()
    immune.scan("warm up")  # loads the encoder and the classifier
    hits: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    false_positives: list[str] = []
    t0 = time.perf_counter()
    for row in rows:
        flagged = not immune.scan(row["text"]).safe
        side = "hostile" if row["hostile"] else "ordinary"
        groups = ["all", f"form:{row['form']}"] + ([row["category"]] if row["hostile"] else [])
        for group in groups:
            hits[f"{side} {group}"][0] += flagged
            hits[f"{side} {group}"][1] += 1
        if flagged and not row["hostile"]:
            false_positives.append(row["text"])
    mean_ms = 1000 * (time.perf_counter() - t0) / max(1, len(rows))
    for key in sorted(hits):
        flagged, n = hits[key]
        print(f"{key:30s} flagged {flagged}/{n} = {flagged / n:.3f}")
    print(f"scan mean {mean_ms:.1f} ms over {len(rows)} lessons")
    print("false positives:", *false_positives, sep="\n  ")


if __name__ == "__main__":
    main(sys.argv[1])
