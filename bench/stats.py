"""Small statistics for the bench: means, percentiles, ratios. Pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolated linearly between the closest ranks.

    The same definition as numpy's default, so figures can be checked with it.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; NaN when the denominator is not positive (nothing ran)."""
    return numerator / denominator if denominator > 0 else math.nan


def median(values: Sequence[float]) -> float:
    return percentile(values, 50)


def floor_to(value: float, decimals: int) -> float:
    """Rounded down: a ratio shown as 0.940 is never a 0.9397 that fails a 0.94 target."""
    if not math.isfinite(value):
        return value
    factor = 10.0**decimals
    return math.floor(round(value * factor, 6)) / factor


def delays(pairs: Sequence[tuple[float, float | None]], scale: float = 1.0) -> list[float]:
    """`seen - happened` for each pair where it was seen, divided by the time scale.

    Used for detection: (finished_at, first_seen_finished_at) in sandbox seconds, out in
    the real API's seconds. Pairs never seen (None) are left out.
    """
    if scale <= 0:
        raise ValueError(f"scale must be > 0, got {scale}")
    return [(seen - happened) / scale for happened, seen in pairs if seen is not None]


__all__ = ["delays", "floor_to", "mean", "median", "percentile", "ratio"]
