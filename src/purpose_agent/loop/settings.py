"""The Orchestrator's configuration, apart from its execution: a few frozen dataclasses,
grouped by concern, each with the defaults users get. The benchmark
(``purpose_agent.evals.conditions.OrchestratorSettings``) is built from the same classes, so
it measures the system users run. Learning after a task is configured by
``purpose_agent.loop.learning.Learning``, the fourth group.

    Orchestrator(llm, env, actor=ActorSettings(max_tokens=256),
                 critic=CriticSettings(ground_truth_phi=True), trace=TraceSettings(enabled=False))

The Orchestrator's older flat keywords (``actor_max_tokens=``, ``phi_threshold=``, ...) map
onto these fields (``LEGACY_KEYWORDS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from purpose_agent.critic.anomalies import AnomalyPolicy
from purpose_agent.errors import ConfigurationError
from purpose_agent.loop.actor import Layout


@dataclass(frozen=True)
class ActorSettings:
    """How the actor acts.

    - ``max_tokens``: reply budget of one actor call; ``layout``: the prompt layout
      (``"prefix"`` keeps a stable prefix for KV-cache reuse).
    - Loops: a step brings nothing new when the same action already led to the same state or
      observation in this run. An action about to be taken again from a state (or after an
      observation) it was already taken from is resampled once at ``repeat_temperature``
      (``retry_repeats``); after ``loop_patience`` steps in a row that bring nothing new the
      run stops with stop reason ``loop`` (None: never).
    - ``tool_top_k``: Tool RAG, with more tools than this each run offers only the most
      relevant ones (None: all).
    """

    max_tokens: int = 384
    layout: Layout = "prefix"
    retry_repeats: bool = True
    repeat_temperature: float = 0.7
    loop_patience: int | None = 3
    tool_top_k: int | None = 5

    def __post_init__(self) -> None:
        patience = self.loop_patience
        if patience is not None and (isinstance(patience, bool) or patience < 1):
            raise ConfigurationError(f"loop_patience must be None or at least 1, got {patience!r}")


@dataclass(frozen=True)
class CriticSettings:
    """How steps are scored and success decided.

    - ``phi_threshold``: without ground truth, a trusted Φ at or above it is success;
      ``success_outcome``: the ground-truth outcome that counts as success.
    - ``ground_truth_phi``: Φ = 10·outcome instead of a critic call when the environment
      reports an outcome (the call saved is counted); ``rescore_unchanged``: ask the critic
      about a state the action did not change (a consistency check).
    - ``anomaly_policy``: the anomaly checks and the down-weighting of flagged steps.
    - ``meta_reward``: judgments checked against ground truth become calibration examples
      after each task (``LEARNING_TRAIN`` with a memory store).
    """

    phi_threshold: float = 9.0
    success_outcome: float = 1.0
    ground_truth_phi: bool = False
    rescore_unchanged: bool = False
    anomaly_policy: AnomalyPolicy = field(default_factory=AnomalyPolicy)
    meta_reward: bool = False


@dataclass(frozen=True)
class TraceSettings:
    """The JSONL trace, one append-only file per run: ``enabled``, in ``directory`` (None:
    ``purpose_agent.core.events.default_trace_dir()``)."""

    enabled: bool = True
    directory: Path | None = None

    def __post_init__(self) -> None:
        if self.directory is not None and not isinstance(self.directory, Path):
            object.__setattr__(self, "directory", Path(self.directory))


#: the Orchestrator's flat keywords -> (settings group, field)
LEGACY_KEYWORDS: Mapping[str, tuple[str, str]] = {
    "actor_max_tokens": ("actor", "max_tokens"),
    "layout": ("actor", "layout"),
    "retry_repeats": ("actor", "retry_repeats"),
    "repeat_temperature": ("actor", "repeat_temperature"),
    "loop_patience": ("actor", "loop_patience"),
    "tool_top_k": ("actor", "tool_top_k"),
    "phi_threshold": ("critic", "phi_threshold"),
    "success_outcome": ("critic", "success_outcome"),
    "ground_truth_phi": ("critic", "ground_truth_phi"),
    "rescore_unchanged": ("critic", "rescore_unchanged"),
    "anomaly_policy": ("critic", "anomaly_policy"),
    "meta_reward": ("critic", "meta_reward"),
    "trace_dir": ("trace", "directory"),
}

_S = TypeVar("_S", ActorSettings, CriticSettings, TraceSettings)


def _with(base: _S, changes: dict[str, Any]) -> _S:
    return replace(base, **changes) if changes else base


def from_keywords(
    keywords: Mapping[str, Any],
    *,
    actor: ActorSettings | None = None,
    critic: CriticSettings | None = None,
    trace: TraceSettings | bool | None = None,
    owner: str = "Orchestrator",
) -> tuple[ActorSettings, CriticSettings, TraceSettings]:
    """The three settings groups from settings objects and flat keywords (a keyword overrides
    the field of the object it maps to); an unknown keyword is a TypeError, as in a call."""
    groups: dict[str, dict[str, Any]] = {"actor": {}, "critic": {}, "trace": {}}
    for key, value in keywords.items():
        if key not in LEGACY_KEYWORDS:
            raise TypeError(f"{owner}() got an unexpected keyword argument {key!r}")
        group, name = LEGACY_KEYWORDS[key]
        if key == "anomaly_policy" and value is None:
            value = AnomalyPolicy()
        if key == "trace_dir" and value is not None:
            value = Path(value)
        groups[group][name] = value
    if isinstance(trace, bool):
        trace = TraceSettings(enabled=trace)
    return (
        _with(actor or ActorSettings(), groups["actor"]),
        _with(critic or CriticSettings(), groups["critic"]),
        _with(trace or TraceSettings(), groups["trace"]),
    )


class SettingsView:
    """The engine's settings fields as read-only attributes (``engine.phi_threshold`` is
    ``engine.critic_settings.phi_threshold``)."""

    actor_settings: ActorSettings
    critic_settings: CriticSettings
    trace_settings: TraceSettings

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
