"""The ideal schedule: what a zero-overhead client could have done with the same latencies.

The client it models sees every finish the instant it happens, refills a freed slot
at once, and sends each `/run` the first moment the limits allow it, starting the
jobs in a given order. Two limits bind it, as they bind the real client:

- at most `concurrency` predictions in flight;
- a `/run` may arrive at time t only if fewer than N runs arrived in (t - W, t].

Because the jobs start in order, start times never decrease, so the window rule
reduces to: job i may start no earlier than W after job i - N started. The ideal
makespan is the last finish, counted from the first start (t = 0).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

RunLimit = tuple[int, float]  # (N requests, W seconds)


def ideal_starts(
    latencies: Sequence[float], concurrency: int, run_limit: RunLimit | None = None
) -> list[float]:
    """Start time of each job, in the given order, under both limits."""
    if concurrency < 1:
        raise ValueError(f"concurrency must be >= 1, got {concurrency}")
    if run_limit is not None and (run_limit[0] < 1 or run_limit[1] <= 0):
        raise ValueError(f"run_limit must be (N >= 1, W > 0), got {run_limit}")
    starts: list[float] = []
    finishes: list[float] = []  # heap of the finish times of the jobs holding a slot
    t = 0.0
    for i, latency in enumerate(latencies):
        if latency < 0:
            raise ValueError(f"latency #{i} is negative: {latency}")
        if len(finishes) == concurrency:
            # Every slot is held: the earliest finish frees one.
            t = max(t, heapq.heappop(finishes))
        if run_limit is not None and i >= run_limit[0]:
            count, window = run_limit
            t = max(t, starts[i - count] + window)
        starts.append(t)
        heapq.heappush(finishes, t + latency)
    return starts


def ideal_makespan(
    latencies: Sequence[float], concurrency: int, run_limit: RunLimit | None = None
) -> float:
    """From the first start to the last finish, for jobs started in the given order."""
    starts = ideal_starts(latencies, concurrency, run_limit)
    return max((s + d for s, d in zip(starts, latencies, strict=True)), default=0.0)


__all__ = ["RunLimit", "ideal_makespan", "ideal_starts"]
