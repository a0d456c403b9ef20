"""``BenchmarkRunner(concurrency=N)``: a block's test episodes N at a time in threads, on one
model that decodes concurrent calls together. The ledger is the one a sequential run writes,
each episode keeps its own sampling seed (a fork of the model), and the runner's meters count
every episode's calls."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import _toy
import pytest

from purpose_agent.errors import ConfigurationError
from purpose_agent.evals import FULL
from purpose_agent.models.base import Message
from purpose_agent.models.testing import FunctionModel


class SlotModel(FunctionModel):
    """The toy actor on a model with a per-handle seed and ``fork`` (as a llama-server backend
    has): every call logs the seed of the handle that made it and the task it was made for."""

    def __init__(self, log: list[tuple[str, int]], gauge: dict[str, int], seed: int = 0) -> None:
        super().__init__(self._reply)
        self.seed, self.log, self.gauge = seed, log, gauge
        self._lock = threading.Lock()

    def _reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
        text = "\n".join(m.content for m in messages)
        with self._lock:
            self.gauge["now"] += 1
            self.gauge["most"] = max(self.gauge["most"], self.gauge["now"])
        time.sleep(0.01)  # long enough for the episodes of a block to overlap
        with self._lock:
            self.gauge["now"] -= 1
        box = next((w for w in text.split() if w.startswith("box")), "")
        task = text.split("secret number of box ", 1)[-1].split(".", 1)[0] if box else "?"
        self.log.append((task, self.seed))
        return _toy.reply(messages, schema)

    def reseed(self, seed: int) -> None:
        self.seed = seed

    def fork(self) -> SlotModel:
        return SlotModel(self.log, self.gauge, self.seed)


def _timeless(value: Any) -> Any:
    """A ledger record without its timings (wall and model seconds, the gate's seconds) and ids."""
    if isinstance(value, dict):
        drop = ("wall_s", "model_time_s", "seconds", "id")  # memory ids are random
        return {k: _timeless(v) for k, v in value.items() if k not in drop}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return value


def _rows(path: Path) -> list[dict[str, Any]]:
    return [_timeless(json.loads(line)) for line in path.read_text().splitlines()]


def test_concurrent_test_episodes_write_the_sequential_ledger_each_with_its_own_seed(tmp_path: Path) -> None:
    runs = {}
    for n in (1, 3):
        log: list[tuple[str, int]] = []
        gauge = {"now": 0, "most": 0}
        model = SlotModel(log, gauge)
        runner = _toy.runner(tmp_path / str(n), model=model, conditions=(FULL,), seeds=(0,), concurrency=n)
        result = runner.run(lambda s: _toy.tasks(s, test=6), 1, "c")
        runs[n] = (result, _rows(tmp_path / str(n) / "c" / "ledger.jsonl"), sorted(log), gauge["most"])
    (seq, seq_rows, seq_log, seq_most), (par, par_rows, par_log, par_most) = runs[1], runs[3]
    assert seq_most == 1 and par_most > 1  # the second run's test episodes did overlap
    assert par_rows == seq_rows  # the same records, in the same order
    assert par.conditions["full"]["curve"] == seq.conditions["full"]["curve"]
    assert par_log == seq_log  # every call was made with the seed its episode has when run alone
    tests = [r for r in par_rows if r["key"]["phase"] == "test" and "shared_from" not in r]
    assert len(tests) >= 6


def test_the_runners_meter_counts_the_calls_of_every_concurrent_episode(tmp_path: Path) -> None:
    totals = []
    for n in (1, 4):
        model = SlotModel([], {"now": 0, "most": 0})
        runner = _toy.runner(tmp_path / str(n), model=model, conditions=(), seeds=(0,), concurrency=n)
        runner.run(lambda s: _toy.tasks(s, test=8), 1, "m")
        rows = _rows(tmp_path / str(n) / "m" / "ledger.jsonl")
        assert runner.llm.meter.calls == sum(r["calls"] for r in rows) > 0
        totals.append(runner.llm.meter.calls)
    assert totals[0] == totals[1]


def test_an_episode_that_fails_leaves_the_others_recorded_and_the_resume_runs_it(tmp_path: Path) -> None:
    from purpose_agent.models._llama_errors import LlamaServerError

    class Flaky(SlotModel):
        down: ClassVar[set[str]] = {"box 2."}

        def _reply(self, messages: Sequence[Message], schema: Mapping[str, Any] | None) -> Any:
            if any(d in m.content for m in messages for d in self.down):
                raise LlamaServerError("llama-server exited with code -9")
            return super()._reply(messages, schema)

        def fork(self) -> Flaky:
            return Flaky(self.log, self.gauge, self.seed)

    model = Flaky([], {"now": 0, "most": 0})
    with pytest.raises(LlamaServerError, match="code -9"):
        _toy.runner(tmp_path, model=model, conditions=(), seeds=(0,), concurrency=3).run(
            lambda s: _toy.tasks(s, test=5), 1, "f"
        )
    rows = _rows(tmp_path / "f" / "ledger.jsonl")
    assert sorted(r["key"]["task"] for r in rows) == ["test-0-0", "test-0-1", "test-0-3", "test-0-4"]
    Flaky.down = set()
    _toy.runner(tmp_path, model=model, conditions=(), seeds=(0,), concurrency=3).run(
        lambda s: _toy.tasks(s, test=5), 1, "f"
    )
    assert len(_rows(tmp_path / "f" / "ledger.jsonl")) == 5


def test_concurrency_that_cannot_be_honoured_is_a_clear_error(tmp_path: Path) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ConfigurationError, match="at least 1"):
            _toy.runner(tmp_path, concurrency=bad)

    class OneSeed(FunctionModel):  # an in-process model: one seed for every call, no fork
        def reseed(self, seed: int) -> None:
            pass

    with pytest.raises(ConfigurationError, match="local-server"):
        _toy.runner(tmp_path, model=OneSeed(_toy.reply), concurrency=2)
    _toy.runner(tmp_path, model=OneSeed(_toy.reply), concurrency=1)  # one at a time is fine
