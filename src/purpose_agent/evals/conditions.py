"""The arms a learning benchmark compares: the floor, two baselines, the full system and its
ablations, each built the way a user writes it so they share the budget.

- The learning arms (``full``, ``critic_off`` and one ablation per learning source) are
  ``Orchestrator(llm, env, memory=MemoryStore(path), learning=Learning(validation=...,
  train_attempts=k, teacher=..., sources=...))``: the default path, gated by the memory
  hook's own gate after every training task.
- ``ungated`` is the same default path (same sources, teacher and attempts) with the gate
  replaced by promotion at once (ExpeL-insights-like: no validation).
- ``reflection`` keeps the last verbal self-reflections of the teacher in the prompt
  (Reflexion-like), with the same attempts per training task.
- ``no_memory`` runs the test tasks only.

Every test run is ``EVAL_TEST`` (the store opened read-only), with the same Purpose Function
in every arm (``OrchestratorSettings.test_critic``), so memory is the only difference.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.evals._pg_memory import PgMemory
from purpose_agent.evals.gate import PromoteAll
from purpose_agent.evals.ground_truth import GroundTruthPurposeFunction
from purpose_agent.evals.reflection import FileReflections, ReflectionLog, ReflectionMemory
from purpose_agent.evals.tasks import BenchmarkTask
from purpose_agent.loop._fanout import Executor
from purpose_agent.loop.hook import ACTOR_KINDS
from purpose_agent.loop.learning import SOURCES, Learning
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.loop.replay import ReplayTask
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings
from purpose_agent.memory.evidence import GateRule, Pair
from purpose_agent.memory.store import MemoryStore
from purpose_agent.memory.types import MemoryStatus
from purpose_agent.models.base import Backend

MemoryKindName = Literal["none", "ungated", "reflection", "learning", "given"]
CriticKind = Literal["llm", "ground_truth"]


@dataclass(frozen=True)
class Condition:
    """One arm: what memory it learns with, what scores its training steps, and (learning
    arms) which sources write its candidates."""

    name: str
    memory: MemoryKindName = "learning"
    critic: CriticKind = "llm"
    description: str = ""
    sources: tuple[str, ...] = SOURCES

    @property
    def learns(self) -> bool:
        return self.memory not in ("none",)

    @property
    def gated(self) -> bool:
        return self.memory == "learning"


NO_MEMORY = Condition("no_memory", "none", "llm", "no memory at all (the floor); test tasks only")
UNGATED = Condition(
    "ungated",
    "ungated",
    "llm",
    "default path, every candidate promoted at once, no validation (ExpeL-insights-like)",
)
REFLECTION = Condition(
    "reflection",
    "reflection",
    "llm",
    "last 3 verbal self-reflections of the teacher in the prompt (Reflexion-like)",
)
FULL = Condition(
    "full",
    "learning",
    "llm",
    "default path: examples + procedures + failure patterns + distiller, evidence gate per task",
)
CRITIC_OFF = Condition(
    "critic_off", "learning", "ground_truth", "full with Φ = 10·outcome in training: no critic calls"
)
EXAMPLES_ONLY = Condition(
    "examples_only", "learning", "llm", "full, verified worked examples only", ("examples",)
)
PROCEDURES_ONLY = Condition(
    "procedures_only", "learning", "llm", "full, induced procedures only", ("procedures",)
)
FAILURES_ONLY = Condition(
    "failures_only", "learning", "llm", "full, grounded failure / progress patterns only", ("failures",)
)
BASELINES: tuple[Condition, ...] = (NO_MEMORY, UNGATED, REFLECTION, FULL)
ABLATIONS: tuple[Condition, ...] = (CRITIC_OFF, EXAMPLES_ONLY, PROCEDURES_ONLY, FAILURES_ONLY)
STANDARD: tuple[Condition, ...] = BASELINES + ABLATIONS
BY_NAME = {c.name: c for c in STANDARD}


@dataclass(frozen=True)
class OrchestratorSettings:
    """What the benchmark varies of every Orchestrator and Learning it builds (the same for all
    arms). Each default is read from the settings dataclass users get
    (``purpose_agent.loop.settings``, ``Learning``), so an untouched field measures the system
    as shipped; the Orchestrator is built from ``actor()``, ``critic()``, ``trace_settings()``
    and ``ArmSetup.learning()``. Two fields are the benchmark's own choices: ``trace`` (off)
    and ``meta_reward`` (on for the full system). The fields stay flat so ``asdict`` (the
    run's config.json, checked on resume) keeps its shape."""

    actor_max_tokens: int = ActorSettings.max_tokens
    phi_threshold: float = CriticSettings.phi_threshold
    retry_repeats: bool = ActorSettings.retry_repeats
    #: the benchmark writes its own ledger; per-run JSONL traces are off
    trace: bool = False
    #: attempts per training task that ground truth says failed, in every learning arm
    train_attempts: int = Learning.train_attempts
    attempt_temperature: float = Learning.attempt_temperature
    #: the gate (``pa.Learning``): new paired units per candidate per gate, candidates per gate
    units_per_gate: int = Learning.units_per_gate
    candidates_per_gate: int = Learning.candidates_per_gate
    #: the full system calibrates its critic: training judgments checked against ground truth
    #: become ``critic_calibration`` memories (baselines and critic-off never do)
    meta_reward: bool = True
    #: what scores test steps, in every arm (ground truth: no critic call, the same Φ everywhere)
    test_critic: CriticKind = "ground_truth"

    def actor(self) -> ActorSettings:
        return ActorSettings(max_tokens=self.actor_max_tokens, retry_repeats=self.retry_repeats)

    def critic(self, *, meta_reward: bool = False) -> CriticSettings:
        return CriticSettings(phi_threshold=self.phi_threshold, meta_reward=meta_reward)

    def trace_settings(self) -> TraceSettings:
        return TraceSettings(enabled=self.trace)


def min_units_to_promote(alpha: float = Learning.alpha, noise: float = Learning.noise) -> int:
    """The fewest paired validation units with which the gate's rule can promote at all
    (every unit a win): 4 at the default alpha = 0.1 (p = 1/16; three wins give p = 1/8)."""
    rule = GateRule(alpha=alpha, noise=noise)
    n = 1
    while rule.verdict(rule.tally([Pair(None, 1.0, 0.0)] * n)) != "promote":
        n += 1
    return n


def validation_tasks(tasks: Sequence[BenchmarkTask], seed: int) -> list[ReplayTask]:
    """The benchmark's validation split as the gate's validation set (one unit per task)."""
    out = []
    for t in tasks:
        if t.make_env is None:
            raise ValueError(f"validation task {t.id!r} has no make_env")
        out.append(ReplayTask(t.purpose, _at_seed(t.make_env, seed), t.initial_state, t.max_steps, key=t.id))
    return out


def _at_seed(factory: Callable[[int], Environment], seed: int) -> Callable[[int], Environment]:
    """The benchmark seed's environment, whatever seed the replay asks for."""
    return lambda _replay_seed: factory(seed)


def _backup(src: Path, dst: Path) -> None:
    """A consistent copy of a SQLite file (WAL included) through the backup API."""
    tmp = dst.with_name(dst.name + ".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(src) as a, sqlite3.connect(tmp) as b:
        a.backup(b)
    a.close()
    b.close()
    tmp.replace(dst)


def _remove_db(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


class ArmSetup:
    """One (arm, seed): its memory file, and the Orchestrator of each unit, built through the
    public API. Training units can be checkpointed and restored, so a resumed benchmark
    starts each arm from exactly the state its last recorded unit left."""

    def __init__(
        self,
        condition: Condition,
        llm: Backend,
        workdir: Path,
        seed: int,
        validation: Sequence[BenchmarkTask],
        *,
        teacher: Backend | None = None,
        settings: OrchestratorSettings = OrchestratorSettings(),
        replay_executor: Executor = "local",
        ray_address: str | None = None,
        pg: PgMemory | None = None,
    ) -> None:
        self.condition = condition
        #: the arm's memory on PostgreSQL (one schema per arm and seed); None: ``store_path``
        self.pg = pg
        #: where the gate's validation replays run (``Learning.replay_executor``); not part of the
        #: benchmark's configuration: a resume may change it
        self.replay_executor: Executor = replay_executor
        self.ray_address = ray_address
        self.llm = llm
        self.teacher = teacher if teacher is not None else llm
        self.seed = seed
        self.settings = settings
        self.workdir = workdir
        stem = f"{condition.name}-s{seed}"
        self.store_path = workdir / f"{stem}.sqlite"
        self.reflections_path = workdir / f"{stem}.reflections.json"
        self.ckpt_dir = workdir / "checkpoints"
        self.stem = stem
        self.validation = validation_tasks(validation, seed) if validation else []
        if condition.memory in ("ungated", "learning") and not self.validation:
            raise ValueError(f"arm {condition.name!r} needs validation tasks (split='validation')")
        need = min_units_to_promote()
        if condition.memory == "learning" and len(self.validation) < need:
            raise ValueError(
                f"arm {condition.name!r}: {len(self.validation)} validation task(s), but the gate promotes "
                f"only on ≥ {need} paired wins with no loss (sign test, alpha={Learning.alpha}), so it "
                f"could never promote anything: give at least {need} validation tasks"
            )
        if condition.learns:
            workdir.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ the public path
    def learning(self) -> Learning:
        s, c = self.settings, self.condition
        return Learning(
            validation=self.validation,
            teacher=self.teacher,
            train_attempts=s.train_attempts,
            attempt_temperature=s.attempt_temperature,
            units_per_gate=s.units_per_gate,
            candidates_per_gate=s.candidates_per_gate,
            sources=c.sources if c.memory == "learning" else SOURCES,
            replay_executor=self.replay_executor,
            ray_address=self.ray_address,
        )

    def orchestrator(self, task: BenchmarkTask, mode: RunMode) -> Orchestrator:
        """The Orchestrator of one unit, as a user writes it: ``memory=MemoryStore(path)`` and
        ``learning=Learning(...)`` in training, the store opened read-only in ``EVAL_TEST``."""
        if task.make_env is None:
            raise ValueError(f"task {task.id!r} has no make_env")
        env = task.make_env(self.seed)
        s, c = self.settings, self.condition
        test = mode is RunMode.EVAL_TEST
        critic = s.test_critic if test else c.critic
        pf = GroundTruthPurposeFunction(env) if critic == "ground_truth" else None

        def make(memory: Any, learning: Learning | None = None, meta_reward: bool = False) -> Orchestrator:
            return Orchestrator(
                self.llm,
                env,
                memory=memory,
                mode=mode,
                purpose_function=pf,
                actor=s.actor(),
                critic=s.critic(meta_reward=meta_reward),
                trace=s.trace_settings(),
                learning=learning,
            )

        if c.memory == "reflection":
            return make(self.reflection_memory())
        if c.memory not in ("ungated", "learning"):
            if not test:
                raise ValueError(f"arm {c.name!r} does not train")
            return make(None)
        if test:
            return make(self._store(RunMode.EVAL_TEST))
        orch = make(
            self._store(RunMode.LEARNING_TRAIN),
            learning=self.learning(),
            meta_reward=s.meta_reward and c.memory == "learning" and c.critic == "llm",
        )
        if c.memory == "ungated":  # the same path, the gate replaced by promotion at once
            hook = orch.memory
            hook.ci = PromoteAll(hook.store)  # type: ignore[union-attr]
        return orch

    def _store(self, mode: RunMode, **kwargs: Any) -> MemoryStore:
        if self.pg is not None:
            return self.pg.store(self.stem, mode, **kwargs)
        return MemoryStore(self.store_path, mode=mode, **kwargs)

    def reflection_memory(self) -> ReflectionMemory:
        attempts = Learning(
            train_attempts=self.settings.train_attempts,
            attempt_temperature=self.settings.attempt_temperature,
        )
        return ReflectionMemory(self.teacher, self.reflection_log(), learning=attempts)

    def reflection_log(self) -> ReflectionLog:
        """Where the ``reflection`` arm keeps its reflections: a table of its PostgreSQL schema
        (every worker and a resume read it there), else a JSON file beside its memory."""
        if self.pg is not None:
            return self.pg.reflections(self.stem)
        return FileReflections(self.reflections_path)

    def prompt_memory_empty(self) -> bool:
        """True when nothing this arm learned can reach the actor's prompt (no promoted
        memory of an actor kind, no reflection): its test runs are then exactly the
        no-memory runs (the same prompts, seeds and settings)."""
        c = self.condition
        if c.memory == "reflection":
            return not self.reflection_memory().reflections()
        if c.memory not in ("ungated", "learning"):
            return True
        if not (self.pg.has_store(self.stem) if self.pg is not None else self.store_path.exists()):
            return True
        with self._store(RunMode.EVAL_TEST, embedder=None) as store:
            return not any(m.kind in ACTOR_KINDS for m in store.list(status=MemoryStatus.PROMOTED))

    # ------------------------------------------------------------------ checkpoints
    def _ckpt(self, done: int) -> Path:
        return self.ckpt_dir / f"{self.stem}.after-{done}"

    def checkpoint(self, done: int) -> None:
        """Save the arm's memory as it is after ``done`` training units."""
        if self.condition.memory not in ("ungated", "learning", "reflection"):
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        base = self._ckpt(done)
        if self.pg is not None:
            if self.condition.memory == "reflection":
                self.pg.reflections(self.stem).ensure()  # a checkpoint even before a first reflection
            self.pg.checkpoint(self.stem, done)  # the store, or the reflections, in the arm's schema
        elif self.store_path.exists():
            _backup(self.store_path, base.with_suffix(".sqlite"))
        if self.pg is None and self.reflections_path.exists():
            tmp = base.with_suffix(".json.tmp")
            tmp.write_bytes(self.reflections_path.read_bytes())
            tmp.replace(base.with_suffix(".json"))
        for old in self.ckpt_dir.glob(f"{self.stem}.after-*"):
            n = old.name.split(".after-", 1)[1].split(".", 1)[0]
            if n.isdigit() and int(n) < done - 1:
                old.unlink(missing_ok=True)

    def restore(self, done: int) -> None:
        """Put the arm's memory back to its state after ``done`` training units (0: empty)."""
        if self.condition.memory not in ("ungated", "learning", "reflection"):
            return
        in_pg = False  # the checkpoint schema was found (the arm's memory on PostgreSQL)
        if self.pg is not None:
            in_pg = done > 0 and self.pg.restore(self.stem, done)
            if not in_pg:
                self.pg.drop(self.stem)
        else:
            _remove_db(self.store_path)
        self.reflections_path.unlink(missing_ok=True)
        if done == 0:
            return
        base = self._ckpt(done)
        db, refl = base.with_suffix(".sqlite"), base.with_suffix(".json")
        if not in_pg and not db.exists() and not refl.exists():
            where = f"schema {self.pg.schema(self.stem)}_c{done}" if self.pg is not None else self.ckpt_dir
            raise RuntimeError(
                f"cannot resume arm {self.stem}: no checkpoint after {done} training units ({where})"
            )
        if self.pg is None and db.exists():
            _backup(db, self.store_path)
        if self.pg is None and refl.exists():
            self.reflections_path.write_bytes(refl.read_bytes())
