from __future__ import annotations

import json
from pathlib import Path

import pytest

from purpose_agent.evals import BenchmarkTask, Ledger, UnitKey, bootstrap, paired
from purpose_agent.evals.tasks import blocks, tasks_for


def test_bootstrap_interval_brackets_the_mean_and_is_exact_for_constants() -> None:
    e = bootstrap({0: [1, 0, 1, 1], 1: [0, 1, 0, 1]}, seed=1)
    assert e.n == 8 and e.mean == pytest.approx(5 / 8)
    assert 0.0 <= e.low < e.mean < e.high <= 1.0
    c = bootstrap([1.0, 1.0, 1.0])
    assert (c.low, c.mean, c.high) == (1.0, 1.0, 1.0)
    assert bootstrap([]).n == 0


def test_paired_difference_uses_only_shared_seed_task_pairs() -> None:
    after = {0: {"a": 1.0, "b": 1.0, "x": 1.0}, 1: {"a": 1.0}}
    before = {0: {"a": 0.0, "b": 1.0}, 1: {"a": 0.0}, 2: {"a": 0.0}}
    d = paired(after, before)
    assert d.n == 3 and d.mean == pytest.approx(2 / 3)
    assert d.high <= 1.0 and d.low >= 0.0


def test_a_clear_gain_has_an_interval_above_zero_and_no_gain_does_not() -> None:
    gain = paired({s: {str(t): 1.0 for t in range(10)} for s in range(3)},
                  {s: {str(t): float(t < 2) for t in range(10)} for s in range(3)})  # fmt: skip
    assert gain.low > 0.5
    none = paired({0: {"a": 1.0, "b": 0.0}}, {0: {"a": 0.0, "b": 1.0}})
    assert none.low < 0 < none.high


def test_blocks_partition_training_tasks_in_order() -> None:
    ts = [BenchmarkTask(str(i), "p", split="train") for i in range(5)]
    parts = blocks(ts, 2)
    assert [[t.id for t in b] for b in parts] == [["0", "1", "2"], ["3", "4"]]
    with pytest.raises(ValueError, match="iterations"):
        blocks(ts, 0)


def test_tasks_reject_bad_split_and_duplicate_ids() -> None:
    with pytest.raises(ValueError, match="unknown split"):
        BenchmarkTask("a", "p", split="dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate task ids: a"):
        tasks_for([BenchmarkTask("a", "p"), BenchmarkTask("a", "q")], 0)
    assert [t.id for t in tasks_for(lambda s: [BenchmarkTask(f"t{s}", "p")], 3)] == ["t3"]


def test_ledger_survives_a_torn_last_line_and_reloads(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    led = Ledger(path)
    k1, k2 = UnitKey("full", 0, 1, "test", "a"), UnitKey("full", 0, 1, "test", "b")
    led.record(k1, {"success": True})
    with path.open("a") as f:
        f.write('{"key": {"condition": "full", "seed": 0, "blo')  # killed mid-write
    again = Ledger(path)
    assert again.done(k1) and not again.done(k2) and len(again) == 1
    again.record(k2, {"success": False})
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.endswith("}")]
    assert [r["key"]["task"] for r in lines if "success" in r] == ["a", "b"]
