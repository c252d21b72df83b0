"""Who gets in: a sliding rate window per endpoint, the in-flight cap, and their 429s."""

from __future__ import annotations

import math
from collections import deque

from .answers import Answer, error
from .config import ENDPOINTS, Limits, SandboxConfig
from .predictions import PredictionBook


def max_in_window(times: list[float], window: float) -> int:
    """Most arrivals in any sliding window: a and b share one iff b - a < window."""
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def retry_headers(seconds: float, time_scale: float) -> dict[str, str]:
    """Retry-After in whole seconds, or in decimals when time is scaled (else it rounds to 0)."""
    # round() first: t + window - t can come out a hair above the window.
    ms = max(1, math.ceil(round(seconds * 1000, 6)))
    after = str(math.ceil(ms / 1000)) if time_scale == 1 else f"{ms / 1000:.3f}"
    return {"Retry-After": after, "retry-after-ms": str(ms)}


class Admission:
    """Every arrival by endpoint, the sliding logs behind the windows, and the cap."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config  # read live: a test may swap it on a running sandbox
        self.arrivals: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        self._logs: dict[str, deque[float]] = {e: deque() for e in ENDPOINTS}
        # Real seconds of each endpoint's window, for max_in_window's default.
        self.windows = {e: self._scaled_window(e) for e in ENDPOINTS}

    def _scaled_window(self, endpoint: str) -> float | None:
        window = self.config.limits.window(endpoint)
        if window is None:
            # Lifted limits still get FASHN's window for max_in_window's default.
            window = Limits().window(endpoint)
        return None if window is None else self.config.scaled(window[1])

    def arrive(self, endpoint: str, now: float) -> None:
        """Log an arrival that no window limits (a download)."""
        self.arrivals[endpoint].append(now)

    def admit(self, endpoint: str, now: float) -> Answer | None:
        """Log the arrival; 429 RateLimitExceeded if the sliding window already holds
        `count`."""
        self.arrive(endpoint, now)
        limit = self.config.limits.window(endpoint)
        if limit is None:
            return None
        count, span = limit[0], self.config.scaled(limit[1])
        log = self._logs[endpoint]
        while log and now - log[0] >= span:
            log.popleft()
        log.append(now)
        if len(log) <= count:
            return None
        # Refused arrivals count too, so a slot frees when the count-th newest leaves.
        wait = log[-count] + span - now
        message = f"At most {count} {endpoint} requests per {limit[1]:g} s."
        return error(429, "RateLimitExceeded", message, self.retry(wait))

    def cap(self, book: PredictionBook, now: float) -> Answer | None:
        """429 ConcurrencyLimitExceeded while the predictions in flight fill the cap;
        Retry-After: until the earliest of them finishes."""
        limit = self.config.limits.concurrency
        if limit is None or book.in_flight < limit:
            return None
        message = f"{book.in_flight} predictions in flight; the limit is {limit}."
        wait = book.next_finish() - now
        return error(429, "ConcurrencyLimitExceeded", message, self.retry(wait))

    def retry(self, seconds: float) -> dict[str, str]:
        return retry_headers(seconds, self.config.time_scale)

    def max_in_window(self, endpoint: str, window: float | None = None) -> int:
        """Most arrivals in any sliding window of `window` real seconds.

        Default: the endpoint's configured window, or FASHN's (scaled) when lifted.
        """
        span = window if window is not None else self.windows[endpoint]
        if span is None:
            raise ValueError(f"no rate window for {endpoint!r}: pass window=")
        return max_in_window(self.arrivals[endpoint], span)
