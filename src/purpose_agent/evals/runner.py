"""BenchmarkRunner: test success after learning, for the floor, the baselines and the ablations.

For each (seed, arm), seeds in order and arms inside: each training block runs its training
tasks in ``LEARNING_TRAIN`` through the arm's Orchestrator (the default path: after every
task the memory hook writes candidates and its own gate replays them on the validation
split), then evaluates the test split in ``EVAL_TEST`` (the store opened read-only). The
no-memory floor runs the test split only; it is block 0 of every arm's curve (every arm starts
from an empty memory, and test runs are configured alike in every arm).

Each finished unit is one fsynced line of an append-only ledger. After a training unit the
arm's memory is checkpointed before its line is written, so an interrupted benchmark resumes
at the first unfinished unit with the memory exactly as the last recorded unit left it.

``concurrency=N`` runs each block's test episodes N at a time in threads of this process, on
one model that decodes concurrent calls together (a ``local-server:`` model's slots). Each
episode gets its own fork of the model (``fork``: the same server, its own seed and meter), so it
runs with the seed and settings it has alone, and the ledger gets its lines in the same order as
one by one. On a real llama-server, decoding beside other requests can still change a model's
output (BENCHMARKS.md: 7 of 8 cookingworld episodes ended differently 4 at a time).

``executor="ray"`` (extra ``ray``) runs each block's test episodes (independent ``EVAL_TEST``
runs that write nothing) as Ray tasks, and the learning arms' gate replays too
(``Learning(replay_executor="ray")``); training runs stay in this process, in order. Each
episode runs on its worker exactly as it runs here (``_episode``: same unit seed, a copy of the
models, the arm's memory reopened read-only from its path, so the workers must see
``out_dir``: one machine, or a shared filesystem; or ``memory_url=``, below). The driver
writes the ledger, in plan order, the same lines as locally (wall and model times aside);
units already in the ledger are not run again. A worker that dies is retried once; an episode
lost on the retry is not recorded: the others of its block are, then a ``WorkerLostError``
names it, and the same command resumes with it.

``memory_url="postgresql://..."`` keeps the arms' memories in that database instead of SQLite
files under ``out_dir`` (``evals/_pg_memory.py``): one schema per (arm, seed), checkpoints as
schemas, so workers on several machines share it and only the driver needs the results folder.
The ``reflection`` baseline's reflections are there too: a table of its arm's schema.
Both together (``executor="ray"`` and ``memory_url=``): every worker reads the arms' memories
from the database, and the gate's replays on workers reopen the arm's schema from its URL.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from purpose_agent.core.modes import RunMode
from purpose_agent.errors import ConfigurationError
from purpose_agent.evals._episode import _Done as _Done
from purpose_agent.evals._episode import _episode as _episode
from purpose_agent.evals._episode import _gate_record as _gate_record
from purpose_agent.evals._episode import _remote_test as _remote_test
from purpose_agent.evals._episode import _result_record as _result_record
from purpose_agent.evals._episode import _total as _total
from purpose_agent.evals._pg_memory import PgMemory
from purpose_agent.evals.conditions import (
    NO_MEMORY,
    STANDARD,
    ArmSetup,
    Condition,
    OrchestratorSettings,
)
from purpose_agent.evals.ledger import Ledger, UnitKey
from purpose_agent.evals.meter import Meter, MeteredBackend
from purpose_agent.evals.progress import Progress, make_progress
from purpose_agent.evals.report import BenchmarkResult, summarize
from purpose_agent.evals.tasks import BenchmarkTask, TaskSource, blocks, by_split, tasks_for
from purpose_agent.loop._fanout import Executor, LostRun, check_executor, fan_out, refuse_local_model
from purpose_agent.loop.hook import StoreMemoryHook
from purpose_agent.loop.orchestrator import Orchestrator
from purpose_agent.loop.settings import CriticSettings, TraceSettings
from purpose_agent.models.base import Backend


def _check_concurrency(
    concurrency: object, executor: str, orchestrator: object, models: Sequence[Backend | None]
) -> None:
    """Clear errors for a ``concurrency=`` the runner cannot honour."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be an integer of at least 1, got {concurrency!r}")
    if concurrency == 1:
        return
    if executor != "local":
        raise ConfigurationError(
            "concurrency= runs test episodes in threads here; Ray runs each as its own task"
        )
    if orchestrator is not None:
        raise ConfigurationError(
            "concurrency= runs the arms the runner builds (BenchmarkRunner(llm=...)); a given "
            "orchestrator runs one episode at a time"
        )
    for model in models:
        if (
            model is not None
            and callable(getattr(model, "reseed", None))
            and not callable(getattr(model, "fork", None))
        ):
            raise ConfigurationError(
                f"concurrency={concurrency}: the model {getattr(model, 'name', model)!r} has one sampling "
                "seed for every call and decodes one call at a time; serve it with slots "
                "('local-server:<name>', which decodes concurrent calls together) or give an endpoint"
            )


def _fork(model: MeteredBackend | None) -> MeteredBackend | None:
    """A metered copy of ``model`` for one of several episodes at once: a fork of it (its own
    seed; the same server) when it has ``fork``, else the model itself (a stateless endpoint),
    with a meter of its own."""
    if model is None:
        return None
    fork = getattr(model.inner, "fork", None)
    return MeteredBackend(fork() if callable(fork) else model.inner)


@dataclass(frozen=True)
class BenchmarkConfig:
    """What a benchmark compares and how big it is. Saved beside the ledger: a resume with
    other shared settings (seeds, settings, tasks, iterations, models) is refused, and so is
    an arm name redefined; new arms may be added to an existing benchmark."""

    conditions: tuple[Condition, ...] = STANDARD
    seeds: tuple[int, ...] = (0,)
    settings: OrchestratorSettings = field(default_factory=OrchestratorSettings)

    def fingerprint(self) -> dict[str, Any]:
        return {"seeds": list(self.seeds), "settings": asdict(self.settings)}


def _task_print(t: BenchmarkTask) -> str:
    meta = f":{json.dumps(dict(t.meta), sort_keys=True, default=str)}" if t.meta else ""
    return f"{t.split}:{t.id}:{t.max_steps}{meta}"


class BenchmarkRunner:
    """Learning benchmarks.

    ``BenchmarkRunner(orchestrator).run(tasks, iterations, name)`` measures one system as it is
    configured (its model, critic and memory). ``BenchmarkRunner(llm=..., config=...,
    teacher=...)`` compares the arms of ``config`` (default: ``STANDARD``; the no-memory floor
    is always run), each from a fresh memory, on the same tasks, seeds and attempt budget.

    ``executor="ray"`` fans the test episodes and the gate's replays out over a Ray cluster
    (``ray_address``; None: $RAY_ADDRESS, else a local instance), see the module docstring; it
    needs ``llm=`` (a given orchestrator runs in this process) and models that can be sent to a
    worker (an OpenAI-compatible endpoint, not an in-process local model).

    ``concurrency=N`` runs a block's test episodes N at a time in this process (module
    docstring); a model with one seed for every call and no ``fork`` (the in-process local
    model) is refused with the fix.

    ``memory_url="postgresql://..."`` keeps each arm's memory in that database (a schema per arm
    and seed) instead of a SQLite file under ``out_dir``; a resume must give it again.
    """

    def __init__(
        self,
        orchestrator: Orchestrator | None = None,
        *,
        llm: Backend | None = None,
        critic_llm: Backend | None = None,
        teacher: Backend | None = None,
        config: BenchmarkConfig | None = None,
        out_dir: str | Path = "bench_results",
        progress: bool | Progress = False,
        on_unit: Callable[[UnitKey, dict[str, Any]], None] | None = None,
        executor: Executor = "local",
        ray_address: str | None = None,
        memory_url: str | None = None,
        concurrency: int = 1,
    ) -> None:
        if orchestrator is None and llm is None:
            raise ValueError("give an orchestrator or an llm")
        _check_concurrency(concurrency, executor, orchestrator, (llm, critic_llm, teacher))
        if memory_url is not None and orchestrator is not None:
            raise ConfigurationError(
                "memory_url= is where the arms the runner builds keep their memory; "
                "a given orchestrator has its own"
            )
        check_executor(executor, purpose="BenchmarkRunner(executor='ray')")
        if ray_address is not None and executor != "ray":
            raise ConfigurationError("ray_address= is the Ray cluster of executor='ray'; pass both")
        if executor == "ray":
            if orchestrator is not None:
                raise ConfigurationError(
                    "executor='ray' fans out the arms the runner builds (BenchmarkRunner(llm=...)); "
                    "a given orchestrator runs in this process"
                )
            for model in (llm, critic_llm, teacher):
                refuse_local_model(model)
        self.executor = executor
        self.ray_address = ray_address
        self.orchestrator = orchestrator
        base = llm if llm is not None else orchestrator.llm  # type: ignore[union-attr]
        self.llm = MeteredBackend(base)
        critic = critic_llm if critic_llm is not None else getattr(orchestrator, "critic_llm", None)
        self.critic_llm = MeteredBackend(critic) if critic is not None and critic is not base else None
        self.teacher = MeteredBackend(teacher) if teacher is not None and teacher is not base else None
        if config is None:
            config = BenchmarkConfig(conditions=STANDARD) if orchestrator is None else BenchmarkConfig(())
        self.config = config
        self.out_dir = Path(out_dir)
        self.progress = progress
        self.on_unit = on_unit
        self.memory_url = memory_url
        self.concurrency = concurrency
        self._pg: PgMemory | None = None

    # ------------------------------------------------------------------ costs
    def _meter(self) -> Meter:
        return _total((self.llm, self.critic_llm, self.teacher))

    # ------------------------------------------------------------------ public
    def conditions(self) -> list[Condition]:
        """The arms this runner runs, the floor first."""
        if self.orchestrator is not None:
            return [self._given_condition()]
        arms = [c for c in self.config.conditions if c.memory != "none"]
        return [NO_MEMORY, *arms]

    def run(self, tasks: TaskSource, iterations: int = 1, name: str = "benchmark") -> BenchmarkResult:
        """Run (or resume) the benchmark; returns the summary, also written to ``results.json``."""
        root = self.out_dir / name
        root.mkdir(parents=True, exist_ok=True)
        plan = {s: tasks_for(tasks, s) for s in self.config.seeds}
        conditions = self.conditions()
        for seed, ts in plan.items():
            if not by_split(ts, "test"):
                raise ValueError(f"seed {seed}: no test tasks (split='test')")
            if len(conditions) > 1 and not by_split(ts, "train"):
                raise ValueError(f"seed {seed}: no training tasks (split='train')")
        if self.memory_url is not None:  # the server is reached before anything is written
            self._pg = PgMemory.for_benchmark(self.memory_url, root, name)
        all_conditions = self._check_config(root, iterations, plan, conditions)
        ledger = Ledger(root / "ledger.jsonl")
        planned = {
            k.as_str() for c in conditions for s, ts in plan.items() for k in self._plan(c, s, ts, iterations)
        }
        bar = self.progress if isinstance(self.progress, Progress) else make_progress(self.progress)
        started = time.time()
        with bar:
            bar.start(
                name,
                len(planned),
                already=sum(1 for r in ledger.records() if UnitKey(**r["key"]).as_str() in planned),
            )
            for seed, ts in plan.items():  # seed by seed: an interrupted table has whole paired seeds
                for cond in conditions:
                    self._run_arm(root, ledger, cond, seed, ts, iterations, bar)
        result = summarize(ledger.records(), all_conditions, self.config.seeds, iterations, name)
        result.meta.update(
            {
                "model": self.llm.name,
                "teacher": (self.teacher or self.llm).name,
                "settings": asdict(self.config.settings),
                "wall_s_this_session": round(time.time() - started, 1),
            }
        )
        result.write(root)
        return result

    # ------------------------------------------------------------------ internals
    def _given_condition(self) -> Condition:
        orch = self.orchestrator
        assert orch is not None
        return Condition(
            "system", "given" if orch.memory is not None else "none", "llm", "the given orchestrator"
        )

    def _check_config(
        self,
        root: Path,
        iterations: int,
        plan: dict[int, list[BenchmarkTask]],
        conditions: Sequence[Condition],
    ) -> list[Condition]:
        """Refuse a resume with another configuration; returns every arm of the benchmark (the
        ones recorded earlier included), in order."""
        tasks = {str(s): [_task_print(t) for t in ts] for s, ts in plan.items()}
        shared = {
            **self.config.fingerprint(),
            "iterations": iterations,
            "tasks": tasks,
            "model": self.llm.name,
            "teacher": (self.teacher or self.llm).name,
        }
        if self.memory_url is not None:  # a resume keeps the memories where they are
            shared["memory"] = "postgresql"
        shared = json.loads(json.dumps(shared))
        arms = {c.name: json.loads(json.dumps(asdict(c))) for c in conditions}
        path = root / "config.json"
        old_arms: dict[str, Any] = {}
        if path.exists():
            old = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(old, dict) or old.get("shared") != shared:
                raise ValueError(
                    f"{root} holds a benchmark with another configuration; use another name or out_dir "
                    f"(old: {old.get('shared', old) if isinstance(old, dict) else old}, new: {shared})"
                )
            old_arms = old.get("conditions") or {}
            for n, a in arms.items():
                if n in old_arms and old_arms[n] != a:
                    raise ValueError(
                        f"{root} holds a benchmark with another configuration of arm {n!r}; use another "
                        f"name or out_dir (old: {old_arms[n]}, new: {a})"
                    )
        merged = {**old_arms, **arms}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"shared": shared, "conditions": merged}, indent=2), encoding="utf-8")
        tmp.replace(path)
        known = {c.name: c for c in conditions}
        for n, a in old_arms.items():
            if n not in known:
                a = dict(a)
                a["sources"] = tuple(a.get("sources") or ())
                known[n] = Condition(**a)
        order = [c.name for c in STANDARD]
        return sorted(known.values(), key=lambda c: order.index(c.name) if c.name in order else len(order))

    def _plan(
        self, cond: Condition, seed: int, ts: Sequence[BenchmarkTask], iterations: int
    ) -> list[UnitKey]:
        test = by_split(ts, "test")
        given = self.orchestrator is not None
        if not cond.learns or given:
            keys = [UnitKey(cond.name, seed, 0, "test", t.id) for t in test]
            if not cond.learns:
                return keys
        else:
            keys = []
        for b, block in enumerate(blocks(by_split(ts, "train"), iterations), start=1):
            keys += [UnitKey(cond.name, seed, b, "train", t.id) for t in block]
            keys += [UnitKey(cond.name, seed, b, "test", t.id) for t in test]
        return keys

    def _run_arm(
        self, root: Path, ledger: Ledger, cond: Condition, seed: int, ts: list[BenchmarkTask], iterations: int,
        bar: Progress,
    ) -> None:  # fmt: skip
        test = by_split(ts, "test")
        if self.orchestrator is not None:
            self._run_given(ledger, cond, seed, ts, iterations, bar)
            return
        if not cond.learns:
            setup = ArmSetup(
                cond, self.llm, root / "memory", seed, [], settings=self.config.settings, pg=self._pg
            )
            self._test_block(
                ledger, [UnitKey(cond.name, seed, 0, "test", t.id) for t in test], setup, test, bar
            )
            return
        setup = ArmSetup(
            cond, self.llm, root / "memory", seed, by_split(ts, "validation"),
            teacher=self.teacher, settings=self.config.settings,
            replay_executor=self.executor, ray_address=self.ray_address, pg=self._pg,
        )  # fmt: skip
        train_blocks = blocks(by_split(ts, "train"), iterations)
        train_keys = [
            UnitKey(cond.name, seed, b, "train", t.id)
            for b, block in enumerate(train_blocks, 1)
            for t in block
        ]
        done = 0
        while done < len(train_keys) and ledger.done(train_keys[done]):
            done += 1
        if any(ledger.done(k) for k in train_keys[done:]):
            raise RuntimeError(f"{cond.name} seed {seed}: the ledger has training units out of order")
        if done < len(train_keys):
            setup.restore(done)  # the memory exactly as the last recorded training unit left it
        i = 0
        for b, block in enumerate(train_blocks, start=1):
            for t in block:
                key = train_keys[i]
                i += 1
                if not ledger.done(key):
                    self._train_unit(ledger, key, setup, t, i, bar)
            block_tests = [UnitKey(cond.name, seed, b, "test", t.id) for t in test]
            if b < len(train_blocks) and not all(ledger.done(k) for k in block_tests) and i < done:
                raise RuntimeError(
                    f"{cond.name} seed {seed}: block {b}'s test runs are missing but later training "
                    "units are recorded; the memory has moved on, so they cannot be run any more"
                )
            self._test_block(ledger, block_tests, setup, test, bar)

    def _run_given(
        self,
        ledger: Ledger,
        cond: Condition,
        seed: int,
        ts: list[BenchmarkTask],
        iterations: int,
        bar: Progress,
    ) -> None:
        test = by_split(ts, "test")
        for t in test:
            self._given_unit(ledger, UnitKey(cond.name, seed, 0, "test", t.id), t, RunMode.EVAL_TEST, bar)
        if not cond.learns:
            return
        for b, block in enumerate(blocks(by_split(ts, "train"), iterations), start=1):
            for t in block:
                self._given_unit(
                    ledger, UnitKey(cond.name, seed, b, "train", t.id), t, RunMode.LEARNING_TRAIN, bar
                )
            for t in test:
                self._given_unit(ledger, UnitKey(cond.name, seed, b, "test", t.id), t, RunMode.EVAL_TEST, bar)

    def _given_orchestrator(self, task: BenchmarkTask, mode: RunMode, seed: int) -> Orchestrator:
        given = self.orchestrator
        assert given is not None
        env = task.make_env(seed) if task.make_env is not None else given.environment
        hook: Any = given.memory
        learning = None
        if isinstance(hook, StoreMemoryHook) and hook.learning is not None:
            # the default path: the same learning (its held-out tasks are shared by store file)
            teacher = None if hook.llm is given.llm or hook.llm is None else hook.llm
            hook, learning = hook.store.with_mode(mode), replace(hook.learning, teacher=teacher)
        elif isinstance(hook, StoreMemoryHook):
            hook = StoreMemoryHook(hook.store.with_mode(mode), llm=self.llm, distill=hook.distill, ci=hook.ci)
        return Orchestrator(
            self.llm, env, critic_llm=self.critic_llm, memory=hook, mode=mode,
            purpose_function=given.purpose_function if given.purpose_function.llm is not given.llm else None,
            critic=CriticSettings(phi_threshold=given.phi_threshold, success_outcome=given.success_outcome),
            trace=TraceSettings(enabled=given.trace_enabled), learning=learning,
        )  # fmt: skip

    def _given_unit(
        self, ledger: Ledger, key: UnitKey, task: BenchmarkTask, mode: RunMode, bar: Progress
    ) -> None:
        if ledger.done(key):
            return
        self._execute(ledger, key, task, lambda: self._given_orchestrator(task, mode, key.seed), bar)

    def _test_block(
        self, ledger: Ledger, keys: Sequence[UnitKey], setup: ArmSetup, tasks: Sequence[BenchmarkTask],
        bar: Progress,
    ) -> None:  # fmt: skip
        """One block's test units: one by one here, ``concurrency`` at a time in threads here, or
        as Ray tasks; recorded in the same order every way."""
        if self.executor == "local" and self.concurrency == 1:
            for key, task in zip(keys, tasks, strict=True):
                self._test_unit(ledger, key, setup, task, bar)
            return
        plan = [
            (k, t, self._shared(ledger, k, setup, t))
            for k, t in zip(keys, tasks, strict=True)
            if not ledger.done(k)
        ]
        todo = [(k, t) for k, t, shared in plan if shared is None]
        if todo:
            first = todo[0][0]
            where = "on ray" if self.executor == "ray" else f"{min(self.concurrency, len(todo))} at once"
            bar.describe(f"{first.condition} s{first.seed} b{first.block} test ×{len(todo)} {where}")
        if self.executor == "ray":
            values = fan_out(
                _remote_test,
                [(k, t, setup, self.llm, self.critic_llm, self.teacher) for k, t in todo],
                [f"test episode {k.as_str()!r}" for k, _ in todo],
                address=self.ray_address,
                purpose="BenchmarkRunner(executor='ray')",
                hint="give tasks, environments and models that pickle (models by endpoint)",
            )
            ran: dict[str, Any] = {k.as_str(): v for (k, _), v in zip(todo, values, strict=True)}
        else:
            ran = self._threaded(todo, setup)
        lost: list[LostRun] = []
        for key, _task, shared in plan:  # in plan order, as locally; a lost episode is not recorded
            rec = shared if shared is not None else ran[key.as_str()]
            if isinstance(rec, LostRun):
                lost.append(rec)
                continue
            self._record(ledger, key, rec, bar)
        if lost:
            raise lost[0].exception()

    def _threaded(self, todo: Sequence[tuple[UnitKey, BenchmarkTask]], setup: ArmSetup) -> dict[str, Any]:
        """Test episodes ``concurrency`` at a time in threads of this process, on one model that
        decodes concurrent calls together. Each episode has its own forks of the models (its
        own seed and meter; the same server), so no episode changes another's seed; what the forks spent
        is added to this runner's meters. An episode that raised is a ``LostRun`` with the
        error, after the others have finished."""

        def one(key: UnitKey, task: BenchmarkTask) -> dict[str, Any]:
            llm, critic, teacher = (_fork(m) for m in (self.llm, self.critic_llm, self.teacher))
            assert llm is not None
            twin = copy.copy(setup)
            twin.llm = llm
            twin.teacher = teacher if teacher is not None else llm
            try:
                return _remote_test((key, task, twin, llm, critic, teacher))
            finally:
                for mine, ours in ((llm, self.llm), (critic, self.critic_llm), (teacher, self.teacher)):
                    if mine is not None and ours is not None:
                        ours.absorb(mine.meter)

        out: dict[str, Any] = {}
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="episode") as pool:
            futures = [(k, pool.submit(one, k, t)) for k, t in todo]
            for key, future in futures:
                exc = future.exception()
                out[key.as_str()] = (
                    future.result()
                    if exc is None
                    else LostRun(f"test episode {key.as_str()!r}", "raised", exc)
                )
        return out

    def _shared(
        self, ledger: Ledger, key: UnitKey, setup: ArmSetup, task: BenchmarkTask
    ) -> dict[str, Any] | None:
        """The no-memory run's record when this test unit would be the same run, else None."""
        floor = ledger.get(UnitKey(NO_MEMORY.name, key.seed, 0, "test", task.id))
        if key.condition != NO_MEMORY.name and floor is not None and setup.prompt_memory_empty():
            # nothing learned can reach the prompt: the run is the no-memory run, not run twice
            rec = {k: v for k, v in floor.items() if k != "key"}
            rec["shared_from"] = NO_MEMORY.name
            return rec
        return None

    def _test_unit(
        self, ledger: Ledger, key: UnitKey, setup: ArmSetup, task: BenchmarkTask, bar: Progress
    ) -> None:
        if ledger.done(key):
            return
        shared = self._shared(ledger, key, setup, task)
        if shared is not None:
            self._record(ledger, key, shared, bar)
            return
        self._execute(ledger, key, task, lambda: setup.orchestrator(task, RunMode.EVAL_TEST), bar)

    def _record(self, ledger: Ledger, key: UnitKey, rec: dict[str, Any], bar: Progress) -> None:
        ledger.record(key, rec)
        bar.advance()
        if self.on_unit is not None:
            self.on_unit(key, rec)

    def _train_unit(
        self,
        ledger: Ledger,
        key: UnitKey,
        setup: ArmSetup,
        task: BenchmarkTask,
        done_after: int,
        bar: Progress,
    ) -> None:
        self._execute(
            ledger, key, task, lambda: setup.orchestrator(task, RunMode.LEARNING_TRAIN), bar,
            before_record=lambda: setup.checkpoint(done_after),
        )  # fmt: skip

    def _execute(
        self,
        ledger: Ledger,
        key: UnitKey,
        task: BenchmarkTask,
        build: Callable[[], Orchestrator],
        bar: Progress,
        before_record: Callable[[], None] | None = None,
    ) -> None:
        bar.describe(f"{key.condition} s{key.seed} b{key.block} {key.phase} {task.id}")
        meters = (self.llm, self.critic_llm, self.teacher)
        rec = _episode(key, task, build, self.llm, self.teacher, meters, self.orchestrator is None)
        if before_record is not None:
            before_record()
        self._record(ledger, key, rec, bar)
