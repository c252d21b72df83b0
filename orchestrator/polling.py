"""Which prediction to ask about next. Pure functions and small learners, no I/O.

The status budget (50 requests per 10 s) is shared by every prediction in flight,
so polling each one at a fixed interval wastes most requests on predictions that
cannot have finished yet. Instead, learn how long each model's predictions take,
and share the budget by how fast each prediction is finishing now (its hazard).

With webhooks, polling is the net under them: what matters is how fast a prediction
is finishing *unannounced* (its hazard times the share of webhooks that get lost,
learned by `LossRate`), and each request has a price instead of a fixed budget to
fill, so a clean run spends few.
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
# Webhooks: until evidence says otherwise, one in ten is assumed lost (a Beta(1, 9) prior
# on the loss rate, which a clean run of a hundred jobs brings under 1 %).
LOSS_PRIOR = (1.0, 9.0)
# Webhooks: a status request costs this share of the interval at which the status budget
# refills (0.2 s at FASHN's 50 per 10 s), in seconds of detection delay. Polling each
# prediction at rate r with unannounced-finish hazard h costs h/(2r) + price·r per
# second, least at r = √(h / (2·price)).
NET_PRICE = 0.25
# The price when the status endpoint has no limit: as at FASHN's (50 per 10 s).
_UNLIMITED_INTERVAL = 0.2


@dataclass
class Candidate:
    """A prediction in flight, as the planner sees it (times in seconds)."""

    key: int
    model: str
    accepted_at: float
    last_polled_at: float | None = None  # None: never asked about
    busy: bool = False  # a status request for it is already under way
    not_before: float = 0.0  # backoff after an error
    unannounced: bool = False  # its webhook may have been missed (sent by an earlier run)

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


@dataclass
class LossRate:
    """How often webhooks are lost: the share of predictions that a poll found finished
    before any webhook said so, with the LOSS_PRIOR's pseudo-counts."""

    lost: int = 0
    announced: int = 0

    def found_by_poll(self) -> None:
        self.lost += 1

    def found_by_webhook(self) -> None:
        self.announced += 1

    def late_webhook(self) -> None:
        """A webhook came after a poll had found its prediction: delayed, not lost."""
        if self.lost:
            self.lost -= 1
            self.announced += 1

    @property
    def rate(self) -> float:
        a, b = LOSS_PRIOR
        return (self.lost + a) / (self.lost + self.announced + a + b)


def hazard(durations: Durations, model: str, age: float, loss: float = 1.0) -> float | None:
    """How fast a prediction of this age is finishing unseen (per second): density /
    survival, times the share `loss` of finishes that no webhook will announce (1 when
    only polls can see a finish).

    None when nothing has been observed yet.
    """
    dist = durations.distribution(model)
    if dist is None:
        return None
    survival = 1.0 - dist.cdf(age)
    if survival <= 1e-6 or age >= dist.end:
        # Older than anything seen: ask often, as often as the slowest kernel is narrow.
        # (With webhooks too: still unannounced this late, its webhook was surely lost.)
        return 1.0 / max(spread(dist.count) * dist.xs[-1], 1e-9)
    return loss * dist.density(age) / survival


def pick(
    candidates: Sequence[Candidate],
    durations: Durations,
    now: float,
    rate: float,
    *,
    eager: bool = False,
    loss: float | None = None,
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

    With webhooks, `loss` is the share of them lost (LossRate.rate): the hazard is that
    of finishing unannounced, and each prediction is polled at √(h / (2·price)) (see
    NET_PRICE), all of them together at most at `rate`.
    """
    weights: dict[int, float] = {}
    wake = float("inf")
    for cand in candidates:
        if cand.busy:
            continue
        if cand.not_before > now:
            wake = min(wake, cand.not_before)
            continue
        unseen = 1.0 if loss is None or cand.unannounced else loss
        h = hazard(durations, cand.model, cand.age(now), unseen)
        if h is None and loss is not None:
            # Nothing learned yet: as if finishing times were spread evenly on a log scale.
            h = unseen / max(cand.age(now), _interval(rate))
        if h is None:
            weights[cand.key] = 1.0  # nothing learned yet: round robin
        elif h > 0:
            weights[cand.key] = math.sqrt(h)
        else:
            wake = min(wake, earliest_chance(durations, cand, now))
    shares = _shares(weights, rate, net=loss is not None)
    best: Candidate | None = None
    best_due = float("inf")
    for cand in candidates:
        share = shares.get(cand.key)
        if not share:
            continue
        due = since(durations, cand) + 1.0 / share
        if due < best_due:
            best, best_due = cand, due
    if best is not None and (best_due <= now or eager):
        return best, now
    return None, min(wake, best_due)


def _interval(rate: float) -> float:
    """Seconds between status requests at the budget's sustained rate."""
    return 1.0 / rate if math.isfinite(rate) and rate > 0 else _UNLIMITED_INTERVAL


def _shares(weights: dict[int, float], rate: float, *, net: bool) -> dict[int, float]:
    """Each candidate's polling rate (per second), proportional to its weight: the whole
    budget shared out, or, as the net under webhooks, what the price of a request
    justifies (never more than the budget)."""
    total = sum(weights.values())
    if not total:
        return {}
    if not net:
        return {key: rate * w / total for key, w in weights.items()}
    scale = 1.0 / math.sqrt(2.0 * NET_PRICE * _interval(rate))
    if total * scale > rate:
        scale = rate / total
    return {key: w * scale for key, w in weights.items()}


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
