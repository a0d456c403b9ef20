"""CI smoke of the learning benchmark on a real model and a real testbed (plumbing, not numbers).

Uses the fast embedded 0.5B model (``local:qwen2.5-coder-0.5b``) to keep CI time reasonable;
the reported numbers come from the default 1.5B model (see BENCHMARKS.md)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MODEL = "local:qwen2.5-coder-0.5b"


def test_bench_learning_quick_runs_every_condition_and_resumes(tmp_path: Path) -> None:
    import reasoning_gym  # noqa: F401  (the bench extra must be installed: a missing one fails here)

    cmd = [
        sys.executable, str(ROOT / "benchmarks" / "bench_learning.py"), "--testbed", "reasoning", "--quick",
        "--seeds", "0", "--model", MODEL, "--out", str(tmp_path), "--name", "smoke", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-2000:]
    root = tmp_path / "smoke"
    data = json.loads((root / "results.json").read_text())
    assert set(data["conditions"]) == {
        "no_memory", "ungated", "reflection", "full", "critic_off", "examples_only", "procedures_only",
        "failures_only",
    }  # fmt: skip
    for name, c in data["conditions"].items():
        assert c["curve"][0]["n"] == 1 and c["after"]["n"] == 1, name
        assert c["learning"]["runs"] == (0 if name == "no_memory" else 1), name
    assert data["conditions"]["critic_off"]["learning"]["calls"] >= 1
    assert data["bar"]["evaluated"] and "statement" in data["bar"]
    ledger = (root / "ledger.jsonl").read_text().splitlines()
    recs = [json.loads(x) for x in ledger]
    assert {r["key"]["phase"] for r in recs} == {"train", "test"}
    assert all("gate" in r for r in recs if r["key"]["phase"] == "train")
    assert (root / "memory" / "full-s0.sqlite").exists()
    assert (root / "curve.png").read_bytes()[:4] == b"\x89PNG"
    # a second invocation finds every unit done and runs no model
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (root / "ledger.jsonl").read_text().splitlines() == ledger
