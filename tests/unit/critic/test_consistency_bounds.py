"""The consistency cache is bounded: least recently used states are evicted, each state's
history is capped, and drift detection still works for recent entries."""

from __future__ import annotations

import pytest

from purpose_agent.core.types import Score
from purpose_agent.critic.consistency import ConsistencyCache
from purpose_agent.errors import ConfigurationError


def test_the_cache_never_holds_more_than_max_size_states() -> None:
    cache = ConsistencyCache(max_size=3)
    for n in range(10):
        cache.record(f"k{n}", Score(float(n % 10)))
    assert len(cache) == 3
    assert list(cache.entries()) == ["k7", "k8", "k9"]
    assert "k0" not in cache


def test_the_default_cache_is_bounded() -> None:
    cache = ConsistencyCache()
    assert cache.max_size is not None and cache.max_size > 0
    for n in range(cache.max_size + 5):
        cache.record(f"k{n}", Score(5.0))
    assert len(cache) == cache.max_size


def test_eviction_is_least_recently_used_and_a_read_counts_as_use() -> None:
    cache = ConsistencyCache(max_size=2)
    cache.record("a", Score(1.0))
    cache.record("b", Score(2.0))
    assert cache.get("a") is not None  # "a" is now the most recent
    cache.record("c", Score(3.0))
    assert "a" in cache and "c" in cache and "b" not in cache


def test_drift_is_still_detected_for_a_recent_entry_after_evictions() -> None:
    cache = ConsistencyCache(tolerance=1.0, max_size=2)
    for n in range(5):
        cache.record(f"old{n}", Score(1.0))
    cache.record("recent", Score(2.0))
    drift = cache.record("recent", Score(8.0))
    assert drift is not None and (drift.previous, drift.current) == (2.0, 8.0)


def test_an_evicted_state_starts_a_fresh_history() -> None:
    cache = ConsistencyCache(tolerance=1.0, max_size=1)
    cache.record("a", Score(2.0))
    cache.record("b", Score(5.0))  # evicts "a"
    assert cache.record("a", Score(9.0)) is None
    entry = cache.get("a")
    assert entry is not None and entry.history == (9.0,)


def test_the_history_of_one_state_is_capped_to_the_latest_scores() -> None:
    cache = ConsistencyCache(max_size=4, max_history=3)
    for phi in range(8):
        cache.record("s", Score(float(phi)))
    entry = cache.get("s")
    assert entry is not None and entry.history == (5.0, 6.0, 7.0)
    assert entry.score.phi == 7.0


@pytest.mark.parametrize("kwargs", [{"max_size": 0}, {"max_size": -1}, {"max_history": 0}])
def test_a_non_positive_bound_is_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigurationError, match="max_"):
        ConsistencyCache(**kwargs)
