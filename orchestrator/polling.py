"""Which prediction to ask about next. Pure functions and a small learner, no I/O.

The status budget (50 requests per 10 s) is shared by every prediction in flight,
so polling each one at a fixed interval wastes most requests on predictions that
cannot have finished yet. Instead, learn how long each model's predictions take,
and share the budget by how fast each prediction is finishing now (its hazard).
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

# Each observed duration is spread over ±SPREAD of itself, so that a prediction a
# little faster than any seen so far is still found early.
SPREAD = 0.25
# Below this many observations of a model, borrow from all models together.
MIN_SAMPLES = 3
# How many recent observations the planner learns from, per model.
WINDOW = 200


@dataclass
class Candidate:
    """A prediction in flight, as the planner sees it (times in seconds)."""

    key: int
    model: str
    accepted_at: float
    last_polled_at: float | None = None  # None: never asked about
    busy: bool = False  # a status request for it is already under way
    not_before: float = 0.0  # backoff after an error

    def age(self, now: float) -> float:
        return max(0.0, now - self.accepted_at)

    def polled_age(self) -> float:
        return 0.0 if self.last_polled_at is None else self.last_polled_at - self.accepted_at


class Distribution:
    """A smoothed empirical distribution of durations, evaluated in O(log n).

    Each sample d counts as uniform over [d(1-s), d(1+s)], so the CDF is piecewise
    linear: it is built once per new observation, then read by bisection (the
    planner reads it for every prediction in flight, many times a second).
    """

    __slots__ = ("count", "end", "fs", "slopes", "xs")

    def __init__(self, samples: Sequence[float]):
        n = len(samples)
        s = spread(n)
        # Slope changes: each sample's ramp starts and ends.
        changes: dict[float, float] = {}
        for d in samples:
            width = max(2 * s * d, 1e-9)
            low, high = d * (1 - s), d * (1 - s) + width
            changes[low] = changes.get(low, 0.0) + 1.0 / (n * width)
            changes[high] = changes.get(high, 0.0) - 1.0 / (n * width)
        self.count = n
        self.xs = sorted(changes)
        self.fs: list[float] = []
        self.slopes: list[float] = []
        f = slope = 0.0
        for i, x in enumerate(self.xs):
            if i:
                f += slope * (x - self.xs[i - 1])
            slope += changes[x]
            self.fs.append(min(1.0, f))
            self.slopes.append(max(0.0, slope))
        # Where the CDF stops rising: past it, rounding may leave it a hair below 1.
        rising = [i for i, m in enumerate(self.slopes[:-1]) if m > 0]
        self.end = self.xs[rising[-1] + 1] if rising else self.xs[-1]

    @property
    def earliest(self) -> float:
        """The smallest duration with any probability."""
        return self.xs[0]

    def _segment(self, age: float) -> int:
        return bisect.bisect_right(self.xs, age) - 1

    def cdf(self, age: float) -> float:
        i = self._segment(age)
        if i < 0:
            return 0.0
        if i >= len(self.xs) - 1:
            return 1.0
        return min(1.0, self.fs[i] + self.slopes[i] * (age - self.xs[i]))

    def density(self, age: float) -> float:
        i = self._segment(age)
        return self.slopes[i] if 0 <= i < len(self.xs) - 1 else 0.0


@dataclass
class Durations:
    """Recently observed prediction durations, per model and overall.

    Only the last WINDOW observations count: the service's speed drifts over a
    night, and the planner should follow it.
    """

    by_model: dict[str, deque[float]] = field(default_factory=dict)
    overall: deque[float] = field(default_factory=lambda: deque(maxlen=WINDOW))
    _cache: dict[str, Distribution | None] = field(default_factory=dict)
    _unseen: int = 0  # observations not yet in the cached distributions

    def observe(self, model: str, seconds: float) -> None:
        self.by_model.setdefault(model, deque(maxlen=WINDOW)).append(seconds)
        self.overall.append(seconds)
        self._unseen += 1
        # Rebuilding costs O(n log n): do it when the news is a twentieth of what is
        # known (every observation while little is known, every tenth at the window).
        if self._unseen * 20 >= len(self.overall):
            self._cache.clear()
            self._unseen = 0

    def samples(self, model: str) -> list[float]:
        own = self.by_model.get(model, ())
        return sorted(own if len(own) >= MIN_SAMPLES else self.overall)

    def distribution(self, model: str) -> Distribution | None:
        """The model's distribution, or None when nothing has been observed yet."""
        if model not in self._cache:
            samples = self.samples(model)
            self._cache[model] = Distribution(samples) if samples else None
        return self._cache[model]


def spread(count: int) -> float:
    """How widely each sample is smeared: less as evidence accumulates (≈ n^-1/3)."""
    return SPREAD * min(1.0, float((MIN_SAMPLES / max(count, 1)) ** (1 / 3)))


def hazard(durations: Durations, model: str, age: float) -> float | None:
    """How fast a prediction of this age is finishing: density / survival (per second).

    None when nothing has been observed yet.
    """
    dist = durations.distribution(model)
    if dist is None:
        return None
    survival = 1.0 - dist.cdf(age)
    if survival <= 1e-6 or age >= dist.end:
        # Older than anything seen: ask often, as often as the slowest kernel is narrow.
        return 1.0 / max(spread(dist.count) * dist.xs[-1], 1e-9)
    return dist.density(age) / survival


def pick(
    candidates: Sequence[Candidate],
    durations: Durations,
    now: float,
    rate: float,
    *,
    eager: bool = False,
) -> tuple[Candidate | None, float]:
    """The candidate to poll now, or None and the time worth waking up to look again.

    `rate` is the status budget (requests per second). Each prediction gets a share of
    it proportional to the square root of its hazard: with polling rate r and finishing
    hazard h, the expected delay before a finish is seen is about 1/(2r), and spreading
    a fixed budget to minimise the sum of h/(2r) gives r ∝ √h. A young prediction that
    cannot have finished yet gets nothing; the budget goes where finishes are due.
    A prediction is due one share-interval after its last poll; until the first is
    due, the budget is saved (the window lets it be spent in a burst later). `eager`
    says saving more is impossible (the burst allowance is whole): then the
    prediction due soonest is asked about now rather than the request lost.
    """
    weights: dict[int, float] = {}
    wake = float("inf")
    for cand in candidates:
        if cand.busy:
            continue
        if cand.not_before > now:
            wake = min(wake, cand.not_before)
            continue
        h = hazard(durations, cand.model, cand.age(now))
        if h is None:
            weights[cand.key] = 1.0  # nothing learned yet: round robin
        elif h > 0:
            weights[cand.key] = math.sqrt(h)
        else:
            wake = min(wake, earliest_chance(durations, cand, now))
    total = sum(weights.values())
    best: Candidate | None = None
    best_due = float("inf")
    for cand in candidates:
        weight = weights.get(cand.key)
        if not weight:
            continue
        share = rate * weight / total
        due = since(durations, cand) + (1.0 / share if share > 0 else 0.0)
        if due < best_due:
            best, best_due = cand, due
    if best is not None and (best_due <= now or eager):
        return best, now
    return None, min(wake, best_due)


def since(durations: Durations, cand: Candidate) -> float:
    """Since when a prediction has gone unobserved while it could have finished:
    its last poll, or, if never polled, the earliest age at which any finished."""
    if cand.last_polled_at is not None:
        return cand.last_polled_at
    dist = durations.distribution(cand.model)
    return cand.accepted_at + (dist.earliest if dist else 0.0)


def earliest_chance(durations: Durations, cand: Candidate, now: float) -> float:
    """When the candidate's chance of having finished next starts to grow."""
    dist = durations.distribution(cand.model)
    if dist is None:
        return now
    age = cand.age(now)
    # The first breakpoint past this age where the density is positive.
    i = bisect.bisect_right(dist.xs, age)
    for j in range(max(i - 1, 0), len(dist.xs) - 1):
        if dist.slopes[j] > 0:
            return cand.accepted_at + max(age, dist.xs[j])
    return now
