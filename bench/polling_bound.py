"""The least mean detection delay that polling by age alone can reach, at a given budget.

A poller that knows each prediction's exact latency distribution, and nothing about a
prediction but its age and whether a poll has shown it finished, picks for each
prediction a sequence of poll ages. With latencies uniform on [low, high], a schedule
costs, per prediction:
- delay: a finish in (a, b] between two polls is seen at b, on average
  (b - a)^2 / (2 (high - low)) summed over the gaps;
- requests: the poll at b is made only if the prediction outlived a, with
  probability S(a) = (high - a) / (high - low).

The schedule that minimises delay + price * requests is found by dynamic programming
over a grid of poll ages; sweeping the price traces the frontier of (requests, delay).
Averaged over predictions, any policy's mean delay at a mean of R requests per job
lies on or above that convex frontier at R (by Jensen's inequality), whatever the
policy does to share the budget between predictions: this is a lower bound for
every age-based poller, with zero network time. Poll ages are restricted to the grid,
which moves the figure by less than one grid step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

STEPS = 400  # grid points across [low, high]


@dataclass(frozen=True)
class Schedule:
    requests: float  # expected status requests per prediction
    delay: float  # expected detection delay per prediction, in the latencies' unit


def best_schedule(low: float, high: float, price: float, steps: int = STEPS) -> Schedule:
    """The schedule that minimises delay + price * requests, for latencies U(low, high)."""
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high, got {low}, {high}")
    width = high - low
    ages = [low + width * i / steps for i in range(steps + 1)]
    survival = [(high - a) / width for a in ages]
    # cost[i]: the least delay + price * requests still to come, from a poll at ages[i]
    # that found the prediction running; nxt[i]: the age index of the next poll.
    cost = [0.0] * (steps + 1)
    nxt = [steps] * (steps + 1)
    for i in range(steps - 1, -1, -1):
        here, best, best_j = ages[i], math.inf, steps
        for j in range(i + 1, steps + 1):
            gap = ages[j] - here
            total = gap * gap / (2 * width) + cost[j]
            if total < best:
                best, best_j = total, j
        cost[i] = price * survival[i] + best
        nxt[i] = best_j
    # Walk the schedule from `low` (nothing finishes earlier: no poll is needed there).
    requests = delay = 0.0
    i = 0
    while i < steps:
        j = nxt[i]
        requests += survival[i]
        gap = ages[j] - ages[i]
        delay += gap * gap / (2 * width)
        i = j
    return Schedule(requests, delay)


def least_delay(low: float, high: float, requests_per_job: float, steps: int = STEPS) -> float:
    """The least mean delay of any age-based poller using `requests_per_job` on average.

    Bisects the price between two schedules that bracket the budget, then interpolates
    along the frontier between them (a mix of two schedules is itself a policy).
    """
    if requests_per_job < 1:
        raise ValueError("at least one request per job is needed to see it finish")
    cheap_price, dear_price = 0.0, sparsest_price(low, high)
    dear = best_schedule(low, high, dear_price, steps)
    if dear.requests >= requests_per_job:
        return dear.delay  # the budget allows one poll per job, no more
    rich = best_schedule(low, high, 1e-9, steps)
    if rich.requests <= requests_per_job:
        return rich.delay
    cheap = rich
    for _ in range(40):
        price = (cheap_price + dear_price) / 2
        middle = best_schedule(low, high, price, steps)
        if middle.requests > requests_per_job:
            cheap_price, cheap = price, middle
        else:
            dear_price, dear = price, middle
        if cheap.requests - dear.requests < 1e-3:
            break
    if cheap.requests == dear.requests:
        return dear.delay
    share = (requests_per_job - dear.requests) / (cheap.requests - dear.requests)
    return dear.delay + share * (cheap.delay - dear.delay)


def sparsest_price(low: float, high: float) -> float:
    """A price at which one poll at `high` is the best schedule.

    A poll at age a inside a gap (x, y) of a schedule adds price * S(a) in requests
    (it is made from x on, and the poll at y now only from a on) and saves
    (a - x)(y - a) / (high - low) <= (a - low) S(a) of delay: never worth it once
    price >= high - low.
    """
    return high - low


__all__ = ["STEPS", "Schedule", "best_schedule", "least_delay", "sparsest_price"]
