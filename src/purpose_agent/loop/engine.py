"""The loop: act -> execute -> score -> record -> stop?, then learn after the task.

The loop is explicit steps (``astart`` / ``astep`` / ``finish``) so a test can drive it one
step at a time; ``run_task`` runs them to the end. ``Engine`` is the loop; the public
``Orchestrator`` (``purpose_agent.loop.orchestrator``) adds the default learning path.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NoReturn, cast

from purpose_agent.core import events as ev
from purpose_agent.core.environment import (
    DONE_SPEC,
    ActionSpec,
    Environment,
    to_action_specs,
)
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import DONE, Action, Score, State, Step, TaskResult
from purpose_agent.critic.purpose_function import PurposeFunction
from purpose_agent.errors import RunFailedError
from purpose_agent.loop import _override, _scoring, _steps
from purpose_agent.loop._record import Recording
from purpose_agent.loop._run import MemoryHook, Run, ToolLike
from purpose_agent.loop.actor import Actor
from purpose_agent.loop.settings import ActorSettings, CriticSettings, SettingsView, TraceSettings
from purpose_agent.models.base import Backend, Completion, Usage, run_sync
from purpose_agent.models.registry import resolve_backend


class Engine(SettingsView, Recording):
    """Runs an actor toward a purpose in an environment, scored by a separate critic: the
    loop itself, configured by ``ActorSettings``, ``CriticSettings`` and ``TraceSettings``
    (``purpose_agent.loop.settings``), with an optional memory hook. ``Orchestrator`` is this
    loop with the default learning path (``memory=MemoryStore(path)``) and training attempts;
    validation replays run on a plain Engine.

    Ground truth: when ``Environment.outcome`` raises or returns something that is not a number,
    the run fails (``RunFailedError`` caused by a ``GroundTruthError``, with an ``error`` event):
    a broken check is never read as "unknown", so Φ can never turn it into a success.

    Concurrent runs (``asyncio.gather`` of ``arun_task``) may share one engine: each run
    writes only its own events to its own trace; ``listeners`` see the events of every run,
    told apart by ``run_id``. A caller's objects are not changed: a purpose function that
    should read calibration memories is copied, not edited.
    """

    def __init__(
        self,
        llm: Backend | str | None,
        environment: Environment,
        available_actions: Iterable[Any] | dict[str, str] | None = None,
        critic_llm: Backend | str | None = None,
        memory: MemoryHook | None = None,
        mode: RunMode = RunMode.LEARNING_TRAIN,
        *,
        actor: ActorSettings | None = None,
        critic: CriticSettings | None = None,
        trace: TraceSettings | None = None,
        purpose_function: PurposeFunction | None = None,
        listeners: Sequence[ev.Listener] = (),
        actor_cls: type[Actor] = Actor,
    ) -> None:
        self.actor_settings = actor or ActorSettings()
        self.critic_settings = critic or CriticSettings()
        self.trace_settings = trace or TraceSettings()
        self.llm = resolve_backend(llm)
        self.environment = environment
        tools: list[ToolLike] = []
        if available_actions is not None and not isinstance(available_actions, dict):
            tools = [cast(ToolLike, a) for a in available_actions if hasattr(a, "arun")]
        self.tools: dict[str, ToolLike] = {t.name: t for t in tools}
        self.specs = to_action_specs(available_actions)
        self.critic_llm = resolve_backend(critic_llm) if critic_llm is not None else self.llm
        self.mode = mode
        self.memory: MemoryHook | None = memory
        self.purpose_function = purpose_function or PurposeFunction(self.critic_llm)
        store = self._calibration_store()
        if store is not None and getattr(self.purpose_function, "memory", False) is None:
            if purpose_function is not None:  # the caller's object stays as it was given
                self.purpose_function = copy.copy(purpose_function)
            self.purpose_function.memory = store  # calibration examples reach the critic
        a = self.actor_settings
        self.actor = actor_cls(self.llm, layout=a.layout, max_tokens=a.max_tokens)
        self.trace_dir = self.trace_settings.directory or ev.default_trace_dir()
        self.bus = ev.EventBus()
        # per-run listeners claimed from ``ev.listen_to_next_run`` (run_task_stream), by run id
        self._run_listeners: dict[str, ev.Listener] = {}
        self._runs = 0
        self._successes = 0
        self._usage = Usage(calls=0)
        for listener in listeners:
            self.bus.subscribe(listener)
        attach = getattr(self.memory, "attach", None)
        if callable(attach):
            attach(self)  # the memory builds its validation runs like this engine's runs

    # ------------------------------------------------------------------------------ helpers
    def _action_specs(self, state: State, offered: frozenset[str] | None = None) -> list[ActionSpec]:
        specs = list(self.environment.actions(state) or self.specs)
        if offered is not None:
            specs = [s for s in specs if s.name not in self.tools or s.name in offered]
        if not any(s.name == DONE for s in specs):
            specs.append(DONE_SPEC)
        return specs

    def _account(self, run: Run, role: str, completion: Completion | None, step: int = 0) -> Usage:
        return _scoring.account(self, run, role, completion, step)

    def _outcome(self, run: Run, state: State) -> float | None:
        """Ground truth of ``state`` (``GroundTruthError`` when the check is broken)."""
        return _scoring.outcome(self, run, state)

    def _calibration_store(self) -> Any:
        """The memory store behind the memory hook, if any (for calibration memories)."""
        store = getattr(self.memory, "store", None)
        return store if store is not None and hasattr(store, "add") and hasattr(store, "retrieve") else None

    async def _score(
        self, purpose: str, state: State, previous: State | None, action: Action | None, outcome: float | None
    ) -> tuple[Score, Completion | None]:
        """Φ of a new state: from ground truth when allowed and known, else from the critic."""
        return await _scoring.score(self, purpose, state, previous, action, outcome)

    # ------------------------------------------------------------------------------ the loop
    async def astart(self, purpose: str, initial_state: State | None = None, max_steps: int = 20) -> Run:
        """Open a run: its trace, the memories for its prompt, Φ of the initial state. A failure
        here ends it like a failed step: ``RunFailedError`` with the result, the trace closed."""
        state = initial_state if initial_state is not None else self.environment.reset()
        run = Run(uuid.uuid4().hex[:12], purpose, state, state, max_steps)
        run.context = _steps.digest(state.describe())
        if self.trace_enabled:
            run.trace = ev.JsonlTrace(self.trace_dir / f"{run.run_id}.jsonl")
        listener = ev.claim_run_listener()
        if listener is not None:
            self._run_listeners[run.run_id] = listener
        self._emit(
            run,
            ev.TaskStarted(
                purpose=purpose,
                mode=self.mode.value,
                actor_model=self.llm.name,
                critic_model=self.critic_llm.name,
                max_steps=max_steps,
            ),
        )
        try:
            await self._open(run)
        except Exception as exc:
            await self._afail(run, "start", exc)
        except BaseException as exc:  # cancelled: record it, leave no file open
            self._abort(run, exc)
            raise
        return run

    async def _open(self, run: Run) -> None:
        purpose, state = run.purpose, run.state
        if self.tool_top_k is not None and len(self.tools) > self.tool_top_k:
            from purpose_agent.tools.registry import ToolRegistry

            registry = ToolRegistry(list(self.tools.values()))  # type: ignore[arg-type]
            relevant = registry.get_relevant_tools(f"{purpose}\n{state.describe(500)}", self.tool_top_k)
            run.offered_tools = frozenset(t.name for t in relevant)
        if self.memory is not None:
            try:
                run.memory_text, ids = self.memory.compile_for(purpose, state.describe(1000))
                run.memory_ids = list(ids)
            except Exception as exc:
                self._emit(run, ev.ErrorRaised(where="memory.retrieve", message=repr(exc)))
            if run.memory_ids:
                self._emit(run, ev.MemoryIncluded(step=0, ids=tuple(run.memory_ids)))
        run.outcome = self._outcome(run, state)
        with self._tokens(run, 0, "critic"):
            score, completion = await self._score(purpose, state, None, None, run.outcome)
        self._account(run, "critic", completion, 0)
        run.phi = score.phi
        run.weight = self.anomaly_policy.weight(score.confidence, score.anomalies)
        run.source = score.source
        run.history.append((state.fingerprint(), run.phi))

    def _fail(self, run: Run, where: str, exc: Exception) -> NoReturn:
        """End ``run`` after ``exc``: an error event, the partial result, a closed trace."""
        run.stop_reason = f"error: {type(exc).__name__}"
        self._emit(run, ev.ErrorRaised(where=where, message=repr(exc)))
        result = self.finish(run)
        raise RunFailedError(result, exc) from exc

    async def _afail(self, run: Run, where: str, exc: Exception) -> NoReturn:
        """:meth:`_fail` with the learning awaited (:meth:`afinish`)."""
        run.stop_reason = f"error: {type(exc).__name__}"
        self._emit(run, ev.ErrorRaised(where=where, message=repr(exc)))
        result = await self.afinish(run)
        raise RunFailedError(result, exc) from exc

    async def astep(self, run: Run) -> Step:
        if run.done:
            raise RuntimeError(f"run {run.run_id} has stopped ({run.stop_reason})")
        t0 = time.perf_counter()
        index = len(run.steps) + 1
        before = run.state
        specs = self._action_specs(before, run.offered_tools)
        names = tuple(s.name for s in specs)
        if not run.first_actions:
            run.first_actions = names
        elif names != run.first_actions:
            run.catalogue_last = True  # for the rest of the run: the prompt prefix stays put
        with self._tokens(run, index, "actor"):
            decision = await self.actor.decide(
                run.purpose, run.initial_state, run.steps, specs, run.memory_text, before,
                catalogue_last=run.catalogue_last,
            )  # fmt: skip
        usage = self._account(run, "actor", decision.completion, index)
        model_time = decision.completion.latency_s
        if self.retry_repeats and _steps.would_repeat(run, decision.action, before):
            # a greedy small model tends to repeat what it did here before: sample once more,
            # without the choices that can only bring back what they brought (see _fresh_specs)
            with self._tokens(run, index, "actor"):
                retry = await self.actor.decide(
                    run.purpose,
                    run.initial_state,
                    run.steps,
                    _steps.fresh_specs(run, specs, before, decision.action),
                    run.memory_text,
                    before,
                    temperature=self.repeat_temperature,
                    catalogue_last=run.catalogue_last,
                )
            usage = usage + self._account(run, "actor", retry.completion, index)
            model_time += retry.completion.latency_s
            if retry.valid or not decision.valid:  # an unusable resample keeps the first reply
                decision = retry
        action = decision.action
        self._emit(
            run,
            ev.ActionChosen(
                step=index,
                name=action.name,
                params=dict(action.params),
                thought=action.thought,
                valid=decision.valid,
            ),
        )
        t_env = time.perf_counter()
        after, observation, novelty = await self._execute(
            run, decision.valid, decision.problem, action, before, specs
        )
        env_time = time.perf_counter() - t_env
        after_hash = after.fingerprint()
        self._emit(run, ev.Observed(step=index, observation=observation[:2000], state_hash=after_hash))
        outcome = self._outcome(run, after)
        unchanged = after_hash == before.fingerprint()
        stale = _steps.record_novelty(run, action, before, after_hash, novelty)
        if stale and not action.is_done:
            observation += "\nNOTE: you did this before and it brought nothing new. Do something different."
        elif unchanged and decision.valid and not action.is_done:
            observation += "\nNOTE: this action changed nothing. Do something different."
        judged = await _scoring.judge_step(self, run, index, action, before, after, after_hash, outcome)
        usage, model_time = usage + judged.usage, model_time + judged.model_time_s
        phi_after, evidence, confidence, weight = (
            judged.phi,
            judged.evidence,
            judged.confidence,
            judged.weight,
        )
        source, anomalies = judged.source, judged.anomalies
        if run.pending_lessons:
            observation += "\n\n" + run.pending_lessons
            run.pending_lessons = ""
        step = Step(
            index,
            action,
            before,
            after,
            run.phi,
            phi_after,
            observation,
            evidence,
            confidence,
            tuple(anomalies),
            usage,
            model_time,
            time.perf_counter() - t0,
            outcome=outcome,
            env_time_s=env_time,
            weight=weight,
            phi_source=source,
        )
        self._emit(
            run,
            ev.Scored(
                step=index,
                phi_before=step.phi_before,
                phi_after=phi_after,
                delta=step.delta,
                evidence=evidence[:500],
                confidence=confidence,
                source=source,
                outcome=outcome,
                anomalies=step.anomalies,
                weight=weight,
            ),
        )
        run.steps.append(step)
        run.state = after
        run.outcome = outcome
        run.phi = phi_after
        run.weight = weight
        run.source = source
        run.history.append((after_hash, phi_after))
        run.stop_reason = self._stop_reason(run, action, after, outcome)
        if not run.stop_reason and self.memory is not None:
            self._refresh_memories(run, index, observation)
        return step

    def _refresh_memories(self, run: Run, index: int, observation: str) -> None:
        """Routed lessons relevant to what just happened, appended (never rewriting the prefix)."""
        try:
            text, ids = self.memory.compile_for(run.purpose, observation[-800:], exclude=run.memory_ids)  # type: ignore[union-attr]
        except Exception as exc:
            self._emit(run, ev.ErrorRaised(where="memory.retrieve", message=repr(exc)))
            return
        new = [i for i in ids if i not in run.memory_ids]
        if new and text:
            run.memory_ids.extend(new)
            run.pending_lessons = text
            self._emit(run, ev.MemoryIncluded(step=index, ids=tuple(new)))

    async def _execute(
        self, run: Run, valid: bool, problem: str, action: Action, before: State, specs: Sequence[ActionSpec]
    ) -> tuple[State, str, str]:
        """The new state, the observation, and what the action brought (``_steps.execute``)."""
        if not valid:
            text = f"Your reply was not a usable action: {problem}. Reply with one JSON action."
            return before, text, text
        return await _steps.execute(
            self.environment, self.tools.get(action.name), action, before, lambda e: self._emit(run, e)
        )

    def _stop_reason(self, run: Run, action: Action, state: State, outcome: float | None) -> str:
        if action.is_done:
            return "done"
        if self.environment.is_terminal(state):
            return "terminal"
        if outcome is not None and outcome >= self.success_outcome:
            return "solved"
        if (
            outcome is None
            and self._phi_success(run.phi, run.weight)
            and not self.environment.answer_ends_run
        ):
            return "phi_threshold"
        if self.loop_patience is not None and run.stale_streak >= self.loop_patience:
            return "loop"
        if len(run.steps) >= run.max_steps:
            return "max_steps"
        return ""

    def _phi_success(self, phi: float, weight: float) -> bool:
        """Without ground truth, Φ decides success only when it is trusted enough."""
        return phi >= self.phi_threshold and weight >= self.anomaly_policy.min_phi_weight

    def _result(self, run: Run) -> TaskResult:
        """The result of ``run`` (``_scoring.result``), counted in ``status()``."""
        result = _scoring.result(run, self._phi_success, self.success_outcome, self.phi_threshold)
        self._runs += 1
        self._successes += int(result.success)
        self._usage = self._usage + run.usage
        return result

    def _end(self, run: Run, result: TaskResult) -> TaskResult:
        """After learning: calibration from ground truth, ``task_end``, the trace closed."""
        if self.meta_reward:
            self._meta_reward(run, result)
        self._emit(
            run,
            ev.TaskEnded(
                success=result.success,
                final_phi=run.phi,
                steps=len(run.steps),
                outcome=result.outcome,
                stop_reason=result.stop_reason,
                wall_time_s=result.wall_time_s,
            ),
        )
        self._run_listeners.pop(run.run_id, None)
        if run.trace is not None:
            run.trace.close()
        return result

    async def afinish(self, run: Run) -> TaskResult:
        """The result of ``run`` (see :meth:`_result`). Learns (the memory hook's
        ``aafter_task`` is awaited: the event loop runs on while the distiller and the gate
        do), records ``task_end``, closes the trace."""
        result = self._result(run)
        if self.memory is not None:
            learn = getattr(self.memory, "aafter_task", None)
            try:
                if callable(learn):
                    events = await learn(result, self.mode)
                else:  # a hook with only the sync method
                    events = self.memory.after_task(result, self.mode)
                for event in events:
                    self._emit(run, event)
            except Exception as exc:
                self._emit(run, ev.ErrorRaised(where="memory.learn", message=repr(exc)))
            except BaseException as exc:  # cancelled while learning: record it, leave no file open
                self._abort(run, exc)
                raise
        return self._end(run, result)

    def finish(self, run: Run) -> TaskResult:
        """Sync form of :meth:`afinish` (the memory hook's ``after_task``), for callers that
        drive the steps themselves."""
        result = self._result(run)
        if self.memory is not None:
            try:
                for event in self.memory.after_task(result, self.mode):
                    self._emit(run, event)
            except Exception as exc:
                self._emit(run, ev.ErrorRaised(where="memory.learn", message=repr(exc)))
        return self._end(run, result)

    def _meta_reward(self, run: Run, result: TaskResult) -> None:
        _scoring.meta_reward(self, run, result)

    # ------------------------------------------------------------------------------ human override
    def override_score(
        self, run_or_result: Run | TaskResult, step_index: int, phi: float, note: str = ""
    ) -> list[Step]:
        """A person's score replaces Φ of the state step ``step_index`` reached (0 = the
        initial state) wherever the run was in that state; rewards follow. The score is
        remembered by the critic, recorded as a ``score_override`` event, and stored as a
        promoted ``critic_calibration`` memory when a store is attached and the run mode
        writes. Returns the steps that changed."""
        return _override.override_score(self, run_or_result, step_index, phi, note)

    def review_scores(self, run_or_result: Run | TaskResult, reviewer: Callable[[Step], Any]) -> list[Step]:
        """Show each step to ``reviewer``; a score it returns (or (score, note)) overrides it."""
        from purpose_agent.critic.override import review_scores

        return review_scores(self, run_or_result, reviewer)

    def status(self) -> dict[str, Any]:
        """What this orchestrator has done and learned: runs, success rate, cost, and the memory
        report (memories by kind/status, promoted ones with utilities, rejected ones with reasons)."""
        report: dict[str, Any] = {
            "mode": self.mode.value,
            "runs": self._runs,
            "successes": self._successes,
            "success_rate": self._successes / self._runs if self._runs else None,
            "model_calls": self._usage.calls,
            "tokens": self._usage.total_tokens,
        }
        memory_report = getattr(self.memory, "status_report", None)
        report["memory"] = memory_report() if callable(memory_report) else None
        return report

    async def arun_task(
        self, purpose: str, initial_state: State | None = None, max_steps: int = 20
    ) -> TaskResult:
        run = await self.astart(purpose, initial_state, max_steps)  # fails like a step (RunFailedError)
        try:
            while not run.done:
                await self.astep(run)
        except Exception as exc:
            # a backend failure ends the run with what was done so far; nothing is lost
            await self._afail(run, "step", exc)
        except BaseException as exc:  # cancelled: record it, leave no file open
            self._abort(run, exc)
            raise
        return await self.afinish(run)

    def run_task(self, purpose: str, initial_state: State | None = None, max_steps: int = 20) -> TaskResult:
        return run_sync(lambda: self.arun_task(purpose, initial_state, max_steps))
