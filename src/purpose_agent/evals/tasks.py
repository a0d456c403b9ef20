"""Benchmark tasks: a purpose, an environment factory, and the split the task belongs to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from purpose_agent.core.environment import Environment
from purpose_agent.core.types import State

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")


@dataclass(frozen=True)
class BenchmarkTask:
    """One task of a benchmark.

    ``make_env(seed)`` builds a fresh environment for a run (None: the orchestrator's own).
    ``split`` says where the task is used: ``train`` runs learn, ``validation`` runs gate
    candidate lessons, ``test`` runs are only ever evaluated in ``EVAL_TEST``.
    """

    id: str
    purpose: str
    initial_state: State | None = None
    make_env: Callable[[int], Environment] | None = None
    split: Split = "test"
    max_steps: int = 10
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"unknown split {self.split!r}; use one of {', '.join(SPLITS)}")
        if not self.id:
            raise ValueError("a benchmark task needs an id")


#: a fixed task list, or a function of the seed (each seed samples its own tasks)
TaskSource = Sequence[BenchmarkTask] | Callable[[int], Sequence[BenchmarkTask]]


def tasks_for(source: TaskSource, seed: int) -> list[BenchmarkTask]:
    """The tasks of ``source`` for ``seed``; ids must be unique."""
    tasks = list(source(seed) if callable(source) else source)
    ids = [t.id for t in tasks]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ValueError(f"duplicate task ids: {', '.join(dupes)}")
    return tasks


def by_split(tasks: Sequence[BenchmarkTask], split: Split) -> list[BenchmarkTask]:
    return [t for t in tasks if t.split == split]


def blocks(tasks: Sequence[BenchmarkTask], n: int) -> list[list[BenchmarkTask]]:
    """Split the training tasks into ``n`` consecutive blocks of near-equal size."""
    if n < 1:
        raise ValueError("iterations must be ≥ 1")
    size, extra = divmod(len(tasks), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(list(tasks[start:end]))
        start = end
    return out
