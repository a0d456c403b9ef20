"""Statistics for learning curves: means with 95% bootstrap confidence intervals, paired
differences resampled within seeds (a stratified bootstrap)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _np() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise ImportError("bootstrap intervals need numpy: pip install 'purpose-agent[bench]'") from exc
    return numpy


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% bootstrap interval and the number of observations."""

    mean: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}

    def pct(self) -> str:
        """``+12.5 [+3.1, +21.0]`` in points (×100)."""
        return f"{100 * self.mean:+.1f} [{100 * self.low:+.1f}, {100 * self.high:+.1f}]"

    def rate(self) -> str:
        """``45.0% [30.0, 60.0]``."""
        return f"{100 * self.mean:.1f}% [{100 * self.low:.1f}, {100 * self.high:.1f}]"


def bootstrap(
    groups: Mapping[int, Sequence[float]] | Sequence[float],
    *,
    resamples: int = 4000,
    level: float = 0.95,
    seed: int = 0,
) -> Estimate:
    """Mean and percentile bootstrap CI. ``groups`` maps seed → values: values are resampled
    within each seed (stratified), so every resample keeps the seeds' weights."""
    np = _np()
    strata = [
        np.asarray(v, dtype=float) for v in (groups.values() if isinstance(groups, Mapping) else [groups])
    ]
    strata = [s for s in strata if s.size]
    n = sum(s.size for s in strata)
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    mean = float(np.concatenate(strata).mean())
    rng = np.random.default_rng(seed)
    totals = np.zeros(resamples)
    for s in strata:
        idx = rng.integers(0, s.size, size=(resamples, s.size))
        totals += s[idx].sum(axis=1)
    means = totals / n
    alpha = (1.0 - level) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return Estimate(mean, float(low), float(high), n)


def paired(
    after: Mapping[int, Mapping[str, float]], before: Mapping[int, Mapping[str, float]], **kw: float
) -> Estimate:
    """after − before on the (seed, task) pairs present in both, bootstrapped within seeds."""
    diffs: dict[int, list[float]] = {}
    for seed, a in after.items():
        b = before.get(seed, {})
        vals = [a[t] - b[t] for t in a if t in b]
        if vals:
            diffs[seed] = vals
    return bootstrap(diffs, **kw)  # type: ignore[arg-type]
