"""Which prediction to ask about next. Pure functions and a small learner, no I/O.

The status budget (50 requests per 10 s) is shared by every prediction in flight,
so polling each one at a fixed interval wastes most requests on predictions that
cannot have finished yet. Instead, learn how long each model's predictions take,
and spend each request on the prediction most likely to have finished since it
was last asked about: P(finished by now | not finished when last polled).
"""

from __future__ import annotations

import bisect
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


def smoothed_cdf(samples: Sequence[float], age: float) -> float:
    """Empirical CDF where each sample d is uniform over [d(1-SPREAD), d(1+SPREAD)]."""
    if age <= samples[0] * (1 - SPREAD):
        return 0.0
    if age >= samples[-1] * (1 + SPREAD):
        return 1.0
    # Samples far below or above the age contribute 1 or 0 outright.
    lo = bisect.bisect_right(samples, age / (1 + SPREAD))
    hi = bisect.bisect_left(samples, age / (1 - SPREAD))
    total = float(lo)
    for d in samples[lo:hi]:
        low, high = d * (1 - SPREAD), d * (1 + SPREAD)
        total += min(1.0, max(0.0, (age - low) / (high - low)))
    return total / len(samples)


def finish_chance(durations: Durations, cand: Candidate, now: float) -> float:
    """P(the prediction finished since it was last polled | it had not then)."""
    before = cand.polled_age()
    after = cand.age(now)
    f_after = durations.cdf(cand.model, after)
    if f_after is None:
        # Nothing learned yet: favour whatever has waited longest since its last poll.
        return 1.0 - 1.0 / (1.0 + (after - before))
    f_before = durations.cdf(cand.model, before) or 0.0
    if f_before >= 1.0:
        return 1.0  # older than anything seen: keep asking
    return max(0.0, (f_after - f_before) / (1.0 - f_before))


def pick(
    candidates: Sequence[Candidate], durations: Durations, now: float
) -> tuple[Candidate | None, float]:
    """The candidate to poll now, or None and the time worth waking up to look again."""
    best: Candidate | None = None
    best_score = 0.0
    wake = float("inf")
    for cand in candidates:
        if cand.busy:
            continue
        if cand.not_before > now:
            wake = min(wake, cand.not_before)
            continue
        score = finish_chance(durations, cand, now)
        if score > best_score:
            best, best_score = cand, score
        elif score <= 0.0:
            wake = min(wake, earliest_chance(durations, cand, now))
    return best, wake


def earliest_chance(durations: Durations, cand: Candidate, now: float) -> float:
    """When the candidate's chance of having finished next starts to grow."""
    samples = durations.samples(cand.model)
    age = cand.age(now)
    # The first sample whose spread reaches past this age starts the next rise.
    i = bisect.bisect_right(samples, age / (1 + SPREAD))
    if not samples or i == len(samples):
        return now
    return cand.accepted_at + max(age, samples[i] * (1 - SPREAD))
