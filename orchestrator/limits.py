"""Rate windows that hold as the server counts them.

The API counts request *arrivals* in a sliding window. The client cannot see an
arrival, only that it happened after the request was sent and before its answer
came back. So a request occupies the window from the moment it is sent until one
window-length after its answer (or for ever, while it is still outstanding): a new
request may go only when fewer than N requests occupy the window. That bound is
exact for any network delay, and needs no safety margin that would have to be
tuned when the limits are scaled.

`aiolimiter.AsyncLimiter` is a leaky bucket: on its own it admits a burst of N on
top of what drains during the period, up to about 2N in one window. Here it only
paces (spreads requests out at the sustained rate, with a bounded burst); the
window above is what guarantees the limit.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable

import anyio
from aiolimiter import AsyncLimiter

from .config import RateLimit

Clock = Callable[[], float]


class Ticket:
    """One request's hold on a window; `done()` when its answer has arrived."""

    __slots__ = ("_open", "_window")

    def __init__(self, window: SlidingWindow):
        self._window = window
        self._open = True

    def done(self) -> None:
        """The answer arrived: the request holds the window until one length later."""
        if self._open:
            self._open = False
            self._window._release(answered=True)

    def cancel(self) -> None:
        """The request was never sent: give the place back."""
        if self._open:
            self._open = False
            self._window._release(answered=False)


class SlidingWindow:
    """No window of `limit.seconds` ever holds more than `limit.count` arrivals."""

    # Whether its places are themselves rows of the request log (a fleet's shared
    # window): then the submitter and the poller log nothing of their own.
    records_requests = False

    def __init__(
        self,
        limit: RateLimit | None,
        *,
        clock: Clock = time.monotonic,
        pace_burst: int | None = None,
    ):
        self.limit = limit
        self._clock = clock
        self._answered: deque[float] = deque()  # answer times, in order
        self._outstanding = 0
        self._paused_until = 0.0
        self._changed = anyio.Event()
        self._turn = anyio.Lock()  # waiters are served in arrival order
        self._pacer = (
            AsyncLimiter(pace_burst, limit.seconds * pace_burst / limit.count)
            if limit and pace_burst
            else None
        )

    def __repr__(self) -> str:
        return (
            f"<SlidingWindow {self.limit} answered={len(self._answered)} "
            f"outstanding={self._outstanding} paused_until={self._paused_until:.3f}>"
        )

    def seed(self, answered: Iterable[float], outstanding_until: Iterable[float] = ()) -> None:
        """Count requests an earlier process sent, as times on this window's clock.

        `answered` are answer times; `outstanding_until` are the latest moments at
        which requests that never got an answer could still have arrived.
        """
        times = sorted([*answered, *outstanding_until])
        self._answered = deque(sorted([*self._answered, *times]))

    def pause_until(self, when: float) -> None:
        """The server said to wait (Retry-After): send nothing before `when`."""
        self._paused_until = max(self._paused_until, when)

    def ready_at(self) -> float:
        """The earliest time a request could be sent, ignoring those still outstanding."""
        now = self._clock()
        at = max(now, self._paused_until)
        if self.limit is None:
            return at
        self._prune(now)
        room = self.limit.count - self._outstanding
        if room <= 0:
            return math.inf
        excess = len(self._answered) - room
        if excess >= 0:
            at = max(at, self._answered[excess] + self.limit.seconds)
        return at

    def spare_full_at(self) -> float:
        """When the pacer's burst allowance will be whole again: from then on, budget
        left unused is lost. (Never, without a pacer.)"""
        pacer = self._pacer
        if pacer is None or self.limit is None:
            return math.inf
        rate = self.limit.count / self.limit.seconds
        # The bucket's level, read through its public has_capacity(): the largest
        # amount it would still admit is max_rate - level (bisected to 1e-6).
        room_low, room_high = 0.0, float(pacer.max_rate)
        if pacer.has_capacity(room_high):
            return self._clock()
        while room_high - room_low > 1e-6:
            mid = (room_low + room_high) / 2
            if pacer.has_capacity(mid):
                room_low = mid
            else:
                room_high = mid
        return self._clock() + (pacer.max_rate - room_low) / rate

    def try_acquire(self) -> Ticket | None:
        """A place in the window if a request may be sent right now, else None."""
        if self.ready_at() > self._clock():
            return None
        self._outstanding += 1
        return Ticket(self)

    async def acquire(self) -> Ticket:
        """Wait until a request may be sent, and hold a place for it."""
        async with self._turn:
            if self._pacer is not None:
                await self._pacer.acquire()
            while (ticket := self.try_acquire()) is None:
                at, changed = self.ready_at(), self._changed
                wait = at - self._clock() if math.isfinite(at) else None
                with anyio.move_on_after(wait):
                    await changed.wait()
            return ticket

    def _release(self, *, answered: bool) -> None:
        self._outstanding -= 1
        if answered:
            self._answered.append(self._clock())
        self._changed.set()
        self._changed = anyio.Event()

    def _prune(self, now: float) -> None:
        assert self.limit is not None
        horizon = now - self.limit.seconds
        while self._answered and self._answered[0] <= horizon:
            self._answered.popleft()
