"""``Learning``: how an Orchestrator with a memory store learns (the default learning path of
``purpose_agent.loop.learning``), one frozen dataclass, and the validation tasks it accepts.
Importable from ``purpose_agent.loop.learning`` and ``purpose_agent``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from purpose_agent.core.environment import Environment
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop._fanout import Executor, check_executor
from purpose_agent.loop.replay import ReplayTask
from purpose_agent.models.base import Backend

ValidationItem = ReplayTask | tuple[str, Any] | str
#: what the default path learns from: the grounded sources of ``purpose_agent.memory.sources``
#: and the free-text distiller (written by the teacher)
SOURCES: tuple[str, ...] = ("examples", "procedures", "failures", "distiller")


def _check_item(item: Any) -> None:
    if isinstance(item, (ReplayTask, str)):
        if isinstance(item, str) and not item.strip():
            raise ConfigurationError("a validation purpose must not be empty")
        return
    pair = isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
    if pair and (isinstance(item[1], Environment) or callable(item[1])):
        return
    raise ConfigurationError(
        f"cannot use {item!r} as a validation task: pass a ReplayTask, a (purpose, environment "
        "factory) pair, or a purpose string (run on the orchestrator's own environment)"
    )


@dataclass(frozen=True)
class Learning:
    """How an Orchestrator with a memory store learns. Pass ``Orchestrator(..., memory=store,
    learning=Learning(...))``; ``memory=store`` alone means ``Learning()``.

    - ``validation``: tasks for the gate (see the module docstring); None: hold out earlier
      training tasks. An empty list is an error.
    - ``teacher``: the model (Backend or spec) that writes lessons; None: the actor's model.
    - ``train_attempts``: attempts per training task that ground truth says failed
      (``purpose_agent.loop.attempts``); ``attempt_temperature`` for attempts after the first.
    - ``holdout_every`` / ``max_validation``: which training runs are held out, and how many.
    - ``units_per_gate``: new paired units per candidate per gate, its cost cap: with 1, a
      candidate costs a gate one run with it plus at most one baseline run (shared by the
      gate's candidates), about the cost of one training run without critic calls;
      ``candidates_per_gate``: candidates replayed per gate (the rest wait).
    - ``alpha`` / ``noise``: the evidence rule (``purpose_agent.memory.evidence``).
    - ``seeds``: seeds per validation task (more than one only helps a model that samples).
    - ``replay_max_steps``: step limit of explicit validation purposes and pairs (held-out
      tasks keep their run's limit).
    - ``sources``: what candidates are written from (a non-empty subset of ``SOURCES``):
      ``"examples"`` (verified worked examples), ``"procedures"`` (induced from several),
      ``"failures"`` (failure and progress patterns grounded in transitions), ``"distiller"``
      (free-text lessons by the teacher). Default: all of them.
    - ``replay_executor``: where the gate's validation replays run: ``"local"`` (this process)
      or ``"ray"`` (each a Ray task, extra ``ray``; the same decisions), on the cluster at
      ``ray_address`` (None: $RAY_ADDRESS, else a local instance).
    """

    validation: Sequence[ValidationItem] | None = None
    teacher: Backend | str | None = None
    train_attempts: int = 1
    attempt_temperature: float = 0.7
    holdout_every: int = 2
    max_validation: int = 8
    units_per_gate: int = 1
    candidates_per_gate: int = 4
    alpha: float = 0.1
    noise: float = 0.05
    seeds: tuple[int, ...] = (0,)
    replay_max_steps: int = 10
    sources: tuple[str, ...] = SOURCES
    replay_executor: Executor = "local"
    ray_address: str | None = None

    def __post_init__(self) -> None:
        check_executor(self.replay_executor, "Learning.replay_executor")
        if isinstance(self.sources, str):
            raise ConfigurationError(f"Learning.sources must be a tuple of names from {list(SOURCES)}")
        object.__setattr__(self, "sources", tuple(dict.fromkeys(self.sources)))
        unknown = [s for s in self.sources if s not in SOURCES]
        if unknown or not self.sources:
            raise ConfigurationError(
                f"Learning.sources must be a non-empty subset of {list(SOURCES)}, got {list(self.sources)}"
            )
        if self.validation is not None:
            if isinstance(self.validation, (str, bytes)) or not isinstance(self.validation, Sequence):
                raise ConfigurationError("validation= must be a list of validation tasks")
            if len(self.validation) == 0:
                raise ConfigurationError(
                    "validation= is empty: pass validation tasks, or leave validation=None to hold "
                    "out some of your own training tasks"
                )
            for item in self.validation:
                _check_item(item)
            object.__setattr__(self, "validation", tuple(self.validation))
        if self.teacher is not None and not isinstance(self.teacher, (str, Backend)):
            raise ConfigurationError(
                f"teacher must be a model spec string or a Backend, got {type(self.teacher).__name__}"
            )
        for name in ("train_attempts", "holdout_every", "max_validation", "units_per_gate"):
            if int(getattr(self, name)) < 1:
                raise ConfigurationError(f"Learning.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.candidates_per_gate < 1 or self.replay_max_steps < 1:
            raise ConfigurationError("candidates_per_gate and replay_max_steps must be ≥ 1")
        if not 0.0 < self.alpha < 1.0 or self.noise < 0.0 or self.attempt_temperature < 0.0:
            raise ConfigurationError("alpha must be in (0, 1); noise and attempt_temperature ≥ 0")
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        if not self.seeds:
            raise ConfigurationError("Learning.seeds must not be empty")


def merge_teacher(learning: Learning | None, distiller_llm: Backend | str | None) -> Learning | None:
    """``Orchestrator(distiller_llm=x)`` is ``Learning(teacher=x)``; both at once must agree."""
    if distiller_llm is None:
        return learning
    if learning is None:
        return Learning(teacher=distiller_llm)
    if learning.teacher is not None and learning.teacher is not distiller_llm:
        raise ConfigurationError("give the teacher once: distiller_llm= or Learning(teacher=...), not both")
    return Learning(**{**learning.__dict__, "teacher": distiller_llm})
