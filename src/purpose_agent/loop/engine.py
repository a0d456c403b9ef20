"""The loop: act -> execute -> score -> record -> stop?, then learn after the task.

The loop is explicit steps (``astart`` / ``astep`` / ``finish``) so a test can drive it one
step at a time; ``run_task`` runs them to the end. ``Engine`` is the loop; the public
``Orchestrator`` (``purpose_agent.loop.orchestrator``) adds the default learning path.
"""

from __future__ import annotations

import asyncio
import copy
import math
import numbers
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, NoReturn, cast

from purpose_agent.core import events as ev
from purpose_agent.core.environment import (
    DONE_SPEC,
    ActionSpec,
    Environment,
    GroundTruthError,
    to_action_specs,
)
from purpose_agent.core.modes import RunMode
from purpose_agent.core.types import DONE, Action, Score, State, Step, TaskResult, canonical_json
from purpose_agent.critic import anomalies as anom
from purpose_agent.critic.anomalies import AnomalyPolicy
from purpose_agent.critic.events import ScoreOverridden
from purpose_agent.critic.override import apply_override, target_state
from purpose_agent.critic.purpose_function import PurposeFunction, ground_truth_score
from purpose_agent.errors import RunFailedError
from purpose_agent.loop import _steps
from purpose_agent.loop._run import MemoryHook, Run, ToolLike
from purpose_agent.loop.actor import Actor
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings
from purpose_agent.models.base import Backend, Completion, TokenChunk, Usage, run_sync, stream_tokens
from purpose_agent.models.pricing import price_call
from purpose_agent.models.registry import resolve_backend


class Engine:
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

    # ------------------------------------------------------------------------------ settings
    @property
    def trace_enabled(self) -> bool:
        return self.trace_settings.enabled

    @property
    def tool_top_k(self) -> int | None:
        return self.actor_settings.tool_top_k

    @property
    def retry_repeats(self) -> bool:
        return self.actor_settings.retry_repeats

    @property
    def repeat_temperature(self) -> float:
        return self.actor_settings.repeat_temperature

    @property
    def loop_patience(self) -> int | None:
        return self.actor_settings.loop_patience

    @property
    def phi_threshold(self) -> float:
        return self.critic_settings.phi_threshold

    @property
    def success_outcome(self) -> float:
        return self.critic_settings.success_outcome

    @property
    def ground_truth_phi(self) -> bool:
        return self.critic_settings.ground_truth_phi

    @property
    def rescore_unchanged(self) -> bool:
        return self.critic_settings.rescore_unchanged

    @property
    def anomaly_policy(self) -> AnomalyPolicy:
        return self.critic_settings.anomaly_policy

    @property
    def meta_reward(self) -> bool:
        return self.critic_settings.meta_reward

    # ------------------------------------------------------------------------------ helpers
    def _emit(self, run: Run, event: ev.Event) -> None:
        object.__setattr__(event, "run_id", run.run_id)
        # the run's own file: only its events, whatever else runs; tokens are left out (the
        # action and score events record the replies)
        if run.trace is not None and not isinstance(event, ev.TokenStreamed):
            try:
                run.trace(event)
            except Exception as exc:  # a full disk must not sink the run
                self.bus.record_error(run.trace, exc)
        self.bus.emit(event)
        listener = self._run_listeners.get(run.run_id)
        if listener is not None:
            try:
                listener(event)
            except Exception as exc:
                self.bus.record_error(listener, exc)

    def _tokens(self, run: Run, step: int, role: str) -> AbstractContextManager[None]:
        """Model calls stream while a run has a streaming listener (``run_task_stream``): its
        chunks become ``TokenStreamed`` events when the listener wants tokens, and a streamed
        call stops at the next token when the run is cancelled."""
        listener = self._run_listeners.get(run.run_id)
        if listener is None:
            return nullcontext()
        wants = bool(getattr(listener, "tokens", False))

        def sink(chunk: TokenChunk) -> None:
            if wants:
                self._emit(
                    run,
                    ev.TokenStreamed(
                        text=chunk.text, step=step, role=role, model=chunk.model, attempt=chunk.attempt
                    ),
                )

        return stream_tokens(sink)

    def _abort(self, run: Run, exc: BaseException) -> None:
        """A run cancelled (or interrupted) mid-way: record its end, close its trace."""
        reason = (
            "cancelled" if isinstance(exc, asyncio.CancelledError) else f"interrupted: {type(exc).__name__}"
        )
        try:
            self._emit(
                run,
                ev.TaskEnded(
                    success=False,
                    final_phi=run.phi,
                    steps=len(run.steps),
                    outcome=run.outcome,
                    stop_reason=reason,
                    wall_time_s=time.perf_counter() - run.started,
                ),
            )
        finally:
            self._run_listeners.pop(run.run_id, None)
            if run.trace is not None:
                run.trace.close()

    def _action_specs(self, state: State, offered: frozenset[str] | None = None) -> list[ActionSpec]:
        specs = list(self.environment.actions(state) or self.specs)
        if offered is not None:
            specs = [s for s in specs if s.name not in self.tools or s.name in offered]
        if not any(s.name == DONE for s in specs):
            specs.append(DONE_SPEC)
        return specs

    def _account(self, run: Run, role: str, completion: Completion | None, step: int = 0) -> Usage:
        if completion is None:
            return Usage(calls=0)
        run.usage = run.usage + completion.usage
        price = price_call(
            completion.model,
            completion.usage.prompt_tokens,
            completion.usage.completion_tokens,
            backend=self.llm if role == "actor" else self.critic_llm,
        )
        self._emit(
            run,
            ev.CostIncurred(
                role=role,
                model=completion.model,
                step=step,
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                processed_prompt_tokens=completion.usage.processed_prompt_tokens,
                latency_s=completion.latency_s,
                usd=price.usd,
                price_source=price.source,
            ),
        )
        return completion.usage

    def _outcome(self, run: Run, state: State) -> float | None:
        """Ground truth of ``state``. A check that raises or returns a non-number is recorded
        (an ``error`` event) and raises ``GroundTruthError``: it is never taken for "unknown"."""
        cause: Exception | None = None
        try:
            value = self.environment.outcome(state)
        except Exception as exc:
            problem, cause = f"environment.outcome raised {type(exc).__name__}: {exc}", exc
        else:
            if value is None:
                return None
            if isinstance(value, numbers.Real) and not math.isnan(value):
                return float(value)
            problem = f"environment.outcome returned {value!r}, not a number or None"
        self._emit(run, ev.ErrorRaised(where="environment.outcome", message=problem[:2000]))
        raise GroundTruthError(
            f"{problem}; the ground truth is unknown, so the run cannot be judged"
        ) from cause

    def _calibration_store(self) -> Any:
        """The memory store behind the memory hook, if any (for calibration memories)."""
        store = getattr(self.memory, "store", None)
        return store if store is not None and hasattr(store, "add") and hasattr(store, "retrieve") else None

    def _count_ground_truth(self) -> None:
        counter = getattr(self.purpose_function, "count_ground_truth", None)
        if callable(counter):
            counter()

    async def _score(
        self, purpose: str, state: State, previous: State | None, action: Action | None, outcome: float | None
    ) -> tuple[Score, Completion | None]:
        """Φ of a new state: from ground truth when allowed and known, else from the critic."""
        if self.ground_truth_phi and outcome is not None:
            self._count_ground_truth()
            return ground_truth_score(outcome), None
        if previous is None:
            call = await self.purpose_function.ascore(purpose, state)
        else:
            call = await self.purpose_function.ascore(purpose, state, previous, action)
        return call.score, call.completion

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
        found: tuple[str, ...] = ()
        if stale and not action.is_done:
            observation += "\nNOTE: you did this before and it brought nothing new. Do something different."
        elif unchanged and decision.valid and not action.is_done:
            observation += "\nNOTE: this action changed nothing. Do something different."
        if unchanged and not self.rescore_unchanged:
            phi_after, evidence, confidence = run.phi, "state unchanged", 1.0
            source = run.source if run.source in ("ground_truth", "human") else "unchanged"
        else:
            with self._tokens(run, index, "critic"):
                if unchanged and not (self.ground_truth_phi and outcome is not None):
                    call = await self.purpose_function.ascore(
                        run.purpose, after, before, action, rescore=True
                    )
                    score, completion = call.score, call.completion
                else:
                    score, completion = await self._score(run.purpose, after, before, action, outcome)
            usage = usage + self._account(run, "critic", completion, index)
            model_time += completion.latency_s if completion else 0.0
            phi_after, evidence, confidence = score.phi, score.evidence, score.confidence
            source, found = score.source, score.anomalies
        anomalies = anom.detect(
            self.anomaly_policy,
            history=[*run.history, (after_hash, phi_after)],
            unchanged=unchanged,
            phi_before=run.phi,
            phi_after=phi_after,
            outcome=outcome,
            source=source,
            found=found,
        )
        weight = self.anomaly_policy.weight(confidence, anomalies)
        if source == "unchanged":
            weight = min(weight, run.weight * self.anomaly_policy.penalty ** len(anomalies))
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
        """The new state, the observation, and what the action brought (for loop detection:
        the observation, or a tool's own result, since a tool's state keeps growing)."""
        if not valid:
            text = f"Your reply was not a usable action: {problem}. Reply with one JSON action."
            return before, text, text
        tool = self.tools.get(action.name)
        try:
            if tool is not None:
                result = await tool.arun(**dict(action.params))
                after = _steps.apply_tool_result(self.environment, action, result, before)
                brought = canonical_json(
                    [
                        getattr(result, "ok", True),
                        str(getattr(result, "output", "")),
                        str(getattr(result, "error", "")),
                    ]
                )
            else:
                after = await asyncio.to_thread(self.environment.execute, action, before)
                brought = ""
        except Exception as exc:  # an environment bug must not lose the run
            self._emit(run, ev.ErrorRaised(where=f"execute:{action.name}", message=repr(exc)))
            text = f"The action {action.name} failed: {type(exc).__name__}: {exc}"
            return before, text, text
        if not isinstance(after, State):
            self._emit(run, ev.ErrorRaised(where="execute", message=f"returned {type(after).__name__}"))
            return before, "The environment returned no state.", "no state"
        observation = after.describe()
        return after, observation, brought or observation

    def _stop_reason(self, run: Run, action: Action, state: State, outcome: float | None) -> str:
        if action.is_done:
            return "done"
        if self.environment.is_terminal(state):
            return "terminal"
        if outcome is not None and outcome >= self.success_outcome:
            return "solved"
        if outcome is None and self._phi_success(run.phi, run.weight):
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
        """The result of ``run``: success from ground truth when known, else from a trusted Φ;
        a run that ended in an error never succeeds."""
        outcome = run.outcome
        if run.stop_reason.startswith("error"):
            success = False
        elif outcome is not None:
            success = outcome >= self.success_outcome
        else:
            success = self._phi_success(run.phi, run.weight)
        agreement = _steps.critic_agreement(run.steps, self.phi_threshold, self.success_outcome)
        result = TaskResult(
            purpose=run.purpose,
            success=success,
            final_phi=run.phi,
            steps=list(run.steps),
            final_state=run.state,
            outcome=outcome,
            stop_reason=run.stop_reason or "stopped",
            usage=run.usage,
            wall_time_s=time.perf_counter() - run.started,
            run_id=run.run_id,
            trace_path=str(run.trace.path) if run.trace else None,
            memory_ids=tuple(run.memory_ids),
            critic_agreement=agreement,
            final_weight=run.weight,
        )
        self._runs += 1
        self._successes += int(success)
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
        """Judgments checked against ground truth become calibration examples (see
        ``critic.calibration``); only when the run mode writes and a store is attached."""
        store = self._calibration_store()
        if result.outcome is None or store is None or not self.mode.can_write:
            return
        from purpose_agent.critic.calibration import harvest_examples, store_examples

        try:
            for mid in store_examples(store, harvest_examples(result)):
                self._emit(
                    run,
                    ev.MemoryDecided(
                        kind="promoted", memory_id=mid, reason="critic calibration from ground truth"
                    ),
                )
        except Exception as exc:
            self._emit(run, ev.ErrorRaised(where="critic.calibrate", message=repr(exc)))

    # ------------------------------------------------------------------------------ human override
    def override_score(
        self, run_or_result: Run | TaskResult, step_index: int, phi: float, note: str = ""
    ) -> list[Step]:
        """A person's score replaces Φ of the state step ``step_index`` reached (0 = the
        initial state) wherever the run was in that state; rewards follow. The score is
        remembered by the critic, recorded as a ``score_override`` event, and stored as a
        promoted ``critic_calibration`` memory when a store is attached and the run mode
        writes. Returns the steps that changed."""
        if isinstance(phi, bool) or not 0.0 <= float(phi) <= 10.0:
            raise ValueError(f"an override score must be in [0, 10], got {phi!r}")
        phi = float(phi)
        is_run = isinstance(run_or_result, Run)
        initial = run_or_result.initial_state if isinstance(run_or_result, Run) else run_or_result.final_state
        target = target_state(run_or_result.steps, step_index, initial)
        fp = target.fingerprint()
        old = next(
            (s.phi_after for s in run_or_result.steps if s.state_after.fingerprint() == fp),
            next((s.phi_before for s in run_or_result.steps if s.state_before.fingerprint() == fp), None),
        )
        if old is None:
            old = run_or_result.phi if isinstance(run_or_result, Run) else run_or_result.final_phi
        new_steps, changed = apply_override(run_or_result.steps, target, phi, note)
        run_or_result.steps[:] = new_steps
        if isinstance(run_or_result, Run):
            if run_or_result.state.fingerprint() == fp:
                run_or_result.phi, run_or_result.weight, run_or_result.source = phi, 1.0, "human"
            run_or_result.history = [(h, phi if h == fp else p) for h, p in run_or_result.history]
        else:
            res = run_or_result
            if res.final_state.fingerprint() == fp:
                res.final_phi, res.final_weight = phi, 1.0
                if res.outcome is None:
                    res.success = self._phi_success(res.final_phi, res.final_weight)
            res.critic_agreement = _steps.critic_agreement(
                res.steps, self.phi_threshold, self.success_outcome
            )
        purpose = run_or_result.purpose
        remember = getattr(self.purpose_function, "remember", None)
        if callable(remember):
            remember(
                purpose, target, Score(phi, note or "human override", "human override", 1.0, False, "human")
            )
        mid, status = self._teach_calibration(purpose, target, phi, note)
        event = ScoreOverridden(
            step=step_index,
            old_phi=float(old),
            phi=phi,
            note=note[:500],
            steps_changed=changed,
            memory_id=mid,
            memory_status=status,
        )
        if is_run:
            self._emit(cast(Run, run_or_result), event)
        else:
            self._emit_after(cast(TaskResult, run_or_result), event)
        return [s for s in run_or_result.steps if s.index in changed]

    def _teach_calibration(self, purpose: str, state: State, phi: float, note: str) -> tuple[str | None, str]:
        store = self._calibration_store()
        if store is None:
            return None, "not stored: no memory store attached"
        if not self.mode.can_write:
            return None, f"not stored: run mode {self.mode.value} does not write memories"
        from purpose_agent.critic.calibration import calibration_text, label_key
        from purpose_agent.memory.ci import MemoryCI

        why = f"(a person's score{': ' + ' '.join(note.split())[:200] if note else ''})"
        try:
            decision = MemoryCI(store, replay=None).teach(
                calibration_text(purpose, state, phi, why),
                kind="critic_calibration",
                scope_key=label_key(phi),
            )
        except Exception as exc:
            return None, f"not stored: {type(exc).__name__}: {exc}"
        return decision.memory_id, decision.action

    def _emit_after(self, result: TaskResult, event: ev.Event) -> None:
        """An event about a finished run: to the listeners and appended to its trace."""
        object.__setattr__(event, "run_id", result.run_id)
        self.bus.emit(event)
        if result.trace_path and Path(result.trace_path).exists():
            trace = ev.JsonlTrace(Path(result.trace_path))
            try:
                trace(event)
            finally:
                trace.close()

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
