"""Which prediction to ask about next. Pure functions and a small learner, no I/O.

The status budget (50 requests per 10 s) is shared by every prediction in flight,
so polling each one at a fixed interval wastes most requests on predictions that
cannot have finished yet. Instead, learn how long each model's predictions take,
and share the budget by how fast each prediction is finishing now (its hazard).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

# Each observed duration is spread over ±SPREAD of itself, so that a prediction a
# little faster than any seen so far is still found early.
SPREAD = 0.25
# Below this many observations of a model, borrow from all models together.
MIN_SAMPLES = 3


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


@dataclass
class Durations:
    """Observed prediction durations, per model and overall (sorted lists)."""

    by_model: dict[str, list[float]] = field(default_factory=dict)
    overall: list[float] = field(default_factory=list)

    def observe(self, model: str, seconds: float) -> None:
        bisect.insort(self.by_model.setdefault(model, []), seconds)
        bisect.insort(self.overall, seconds)

    def samples(self, model: str) -> Sequence[float]:
        own = self.by_model.get(model, ())
        return own if len(own) >= MIN_SAMPLES else self.overall

    def cdf(self, model: str, age: float) -> float | None:
        """P(duration ≤ age), or None when nothing has been observed yet."""
        samples = self.samples(model)
        if not samples:
            return None
        return smoothed_cdf(samples, age)


def spread(count: int) -> float:
    """How widely each sample is smeared: less as evidence accumulates (≈ n^-1/3)."""
    return SPREAD * min(1.0, (MIN_SAMPLES / max(count, 1)) ** (1 / 3))


def smoothed_cdf(samples: Sequence[float], age: float) -> float:
    """Empirical CDF where each sample d is uniform over [d(1-s), d(1+s)], s = spread(n)."""
    s = spread(len(samples))
    if age <= samples[0] * (1 - s):
        return 0.0
    if age >= samples[-1] * (1 + s):
        return 1.0
    # Samples far below or above the age contribute 1 or 0 outright.
    lo = bisect.bisect_right(samples, age / (1 + s))
    hi = bisect.bisect_left(samples, age / (1 - s))
    total = float(lo)
    for d in samples[lo:hi]:
        low, high = d * (1 - s), d * (1 + s)
        total += min(1.0, max(0.0, (age - low) / (high - low)))
    return total / len(samples)


def density(samples: Sequence[float], age: float) -> float:
    """The smoothed density of durations at `age` (derivative of smoothed_cdf)."""
    s = spread(len(samples))
    lo = bisect.bisect_right(samples, age / (1 + s))
    hi = bisect.bisect_left(samples, age / (1 - s))
    return sum(1.0 / (2 * s * d) for d in samples[lo:hi]) / len(samples)


def hazard(durations: Durations, model: str, age: float) -> float | None:
    """How fast a prediction of this age is finishing: density / survival (per second).

    None when nothing has been observed yet.
    """
    samples = durations.samples(model)
    if not samples:
        return None
    survival = 1.0 - smoothed_cdf(samples, age)
    if survival <= 1e-6:
        # Older than anything seen: ask often, as often as the slowest kernel is narrow.
        return 1.0 / (spread(len(samples)) * samples[-1])
    return density(samples, age) / survival


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
    samples = durations.samples(cand.model)
    if not samples:
        return cand.accepted_at
    return cand.accepted_at + samples[0] * (1 - spread(len(samples)))


def earliest_chance(durations: Durations, cand: Candidate, now: float) -> float:
    """When the candidate's chance of having finished next starts to grow."""
    samples = durations.samples(cand.model)
    age = cand.age(now)
    s = spread(len(samples))
    # The first sample whose spread reaches past this age starts the next rise.
    i = bisect.bisect_right(samples, age / (1 + s))
    if not samples or i == len(samples):
        return now
    return cand.accepted_at + max(age, samples[i] * (1 - s))
