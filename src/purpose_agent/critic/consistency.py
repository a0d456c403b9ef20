"""Canonical state hashing and the consistency cache.

The key is a hash of (purpose, canonical state): strings are NFC-normalised, trailing
whitespace of every line and blank lines are dropped, dict keys are sorted, so a
resubmission that only adds whitespace is the same state. A re-score of a cached state is
not frozen: the cache keeps the latest score and the history of every score given to the
state; a re-score that moves more than the tolerance is a drift (an anomaly).

The cache is bounded: it keeps at most ``max_size`` states, evicting the least recently used
(a ``get`` or a ``record`` counts as a use), and at most ``max_history`` scores per state. An
evicted state that comes back starts a fresh history, so drift is detected against the
states seen recently, which is where a re-score or a probe looks.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from purpose_agent.core.types import Score, State, canonical_json
from purpose_agent.errors import ConfigurationError

DEFAULT_MAX_SIZE = 4096
DEFAULT_MAX_HISTORY = 32


def _canon(value: Any) -> Any:
    if isinstance(value, str):
        lines = [line.rstrip() for line in unicodedata.normalize("NFC", value).splitlines()]
        return "\n".join(line for line in lines if line)
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canon(v) for v in value]
    return value


def canonical_state(state: State) -> str:
    """The canonical text form of a state (see the module docstring)."""
    return canonical_json([_canon(dict(state.data)), _canon(state.summary)])


def state_key(purpose: str, state: State) -> str:
    """Canonical hash of (purpose, state): the consistency cache's key."""
    text = canonical_json([_canon(purpose), canonical_state(state)])
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    """The latest score of a state and every Φ it was given, oldest first."""

    score: Score
    history: tuple[float, ...]

    @property
    def spread(self) -> float:
        return max(self.history) - min(self.history) if self.history else 0.0


@dataclass(frozen=True)
class Drift:
    """A re-score that moved: the previous and the new Φ of the same state."""

    key: str
    previous: float
    current: float

    @property
    def delta(self) -> float:
        return self.current - self.previous


class ConsistencyCache:
    """Latest score per state key, with the history of scores; drifts are returned, not hidden.

    Bounded: at most ``max_size`` states (least recently used evicted first) and at most
    ``max_history`` scores per state (the latest kept)."""

    def __init__(
        self,
        tolerance: float = 1.0,
        max_size: int = DEFAULT_MAX_SIZE,
        max_history: int = DEFAULT_MAX_HISTORY,
    ) -> None:
        if max_size < 1:
            raise ConfigurationError(f"max_size must be at least 1, got {max_size}")
        if max_history < 1:
            raise ConfigurationError(f"max_history must be at least 1, got {max_history}")
        self.tolerance = tolerance
        self.max_size = max_size
        self.max_history = max_history
        self._entries: OrderedDict[str, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: str) -> CacheEntry | None:
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def record(self, key: str, score: Score) -> Drift | None:
        """Store ``score`` as the latest for ``key``; a move beyond the tolerance from the
        previous score is returned as a Drift."""
        old = self._entries.get(key)
        history = (*old.history, score.phi)[-self.max_history :] if old else (score.phi,)
        self._entries[key] = CacheEntry(score, history)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)
        if old is not None and abs(score.phi - old.score.phi) > self.tolerance:
            return Drift(key, old.score.phi, score.phi)
        return None

    def entries(self) -> dict[str, CacheEntry]:
        return dict(self._entries)
