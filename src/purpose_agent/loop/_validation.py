"""The validation runs of the default learning path (``purpose_agent.loop.learning``): the
Orchestrator a validation run runs on (``replica_factory``), factories of fresh environments, and
the held-out training tasks of one store file in this process (``_Pool``)."""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from purpose_agent.core.environment import Environment
from purpose_agent.core.modes import RunMode
from purpose_agent.loop.engine import Engine
from purpose_agent.loop.replay import NoCriticPurposeFunction, OrchestratorFactory, ReplayTask
from purpose_agent.loop.settings import ActorSettings, CriticSettings, TraceSettings
from purpose_agent.memory.store import MemoryStore


def replica_factory(orch: Engine) -> OrchestratorFactory:
    """Validation runs like ``orch``'s runs (model, actions, tools, settings), in
    ``LEARNING_VALIDATION``, scored from ground truth with no critic call, untraced, on a
    plain ``Engine`` (a validation run does not learn)."""
    actions = [*orch.tools.values(), *(s for s in orch.specs if s.name not in orch.tools)]
    a, c = orch.actor_settings, orch.critic_settings
    actor = ActorSettings(
        max_tokens=orch.actor.max_tokens,
        layout=orch.actor.layout,
        retry_repeats=a.retry_repeats,
        repeat_temperature=a.repeat_temperature,
        tool_top_k=a.tool_top_k,
    )
    critic = CriticSettings(
        phi_threshold=c.phi_threshold,
        success_outcome=c.success_outcome,
        ground_truth_phi=True,
        anomaly_policy=c.anomaly_policy,
    )
    llm, critic_llm = orch.llm, orch.critic_llm

    def make(env: Environment, hook: Any) -> Engine:
        return Engine(
            llm,
            env,
            actions or None,
            critic_llm,
            hook,
            RunMode.LEARNING_VALIDATION,
            actor=actor,
            critic=critic,
            trace=TraceSettings(enabled=False),
            purpose_function=NoCriticPurposeFunction(),
        )

    return make


def _copies(env: Environment) -> Callable[[int], Environment]:
    """A factory of fresh deep copies of ``env`` (the seed is not used)."""
    return lambda seed: copy.deepcopy(env)


def _env_factory(obj: Any) -> Callable[[int], Environment]:
    if isinstance(obj, Environment):
        return _copies(obj)
    try:
        takes_seed = any(
            p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
            for p in inspect.signature(obj).parameters.values()
        )
    except (TypeError, ValueError):
        takes_seed = True
    return (lambda seed: obj(seed)) if takes_seed else (lambda seed: obj())


@dataclass
class _Snapshot:
    env: Environment
    max_steps: int
    factory: OrchestratorFactory


@dataclass
class _Pool:
    """Held-out tasks of one store file in this process."""

    tasks: list[ReplayTask] = field(default_factory=list)
    started: int = 0
    snapshots: dict[str, _Snapshot] = field(default_factory=dict)
    no_ground_truth: int = 0
    copy_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


_POOLS: dict[str, _Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(store: MemoryStore) -> _Pool:
    key = str(store.path.resolve())
    with _POOLS_LOCK:
        return _POOLS.setdefault(key, _Pool())
