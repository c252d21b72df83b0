"""An account's sliding window, shared by every worker of a fleet through the database.

It is a `SlidingWindow` (limits.py) whose count lives in the `requests` table: each
place is a request row of the account, taken in one transaction that counts the
others (store/fleet_limits.py), given back by its answer (`done`: it then holds the
window for one more window; the answer time is written with the worker's next place,
see store/fleet.py) or by never being sent (`cancel`). Pacing and the
server's Retry-After pauses stay local: they only spread one worker's requests out.
A worker cannot hear another's answers, so while the window is full of unanswered
requests it looks again every `poll` seconds.
"""

from __future__ import annotations

import math

from ..clock import Clock
from ..config import RateLimit
from ..limits import SlidingWindow, Ticket
from ..store import Store


class SharedTicket(Ticket):
    """One request's place in the shared window, as a row of `requests`."""

    __slots__ = ("_pk",)

    def __init__(self, window: SharedWindow, pk: int):
        super().__init__(window)
        self._pk = pk

    def done(self) -> None:
        if self._open:
            self._open = False
            assert isinstance(self._window, SharedWindow)
            self._window.released(self._pk, answered=True)

    def cancel(self) -> None:
        if self._open:
            self._open = False
            assert isinstance(self._window, SharedWindow)
            self._window.released(self._pk, answered=False)


class SharedWindow(SlidingWindow):
    """No window of `limit.seconds` holds more than `limit.count` of the account's
    requests, whichever worker sent them."""

    records_requests = True  # its places are the request log: none to write besides

    def __init__(
        self,
        store: Store,
        account: str,
        endpoint: str,
        limit: RateLimit | None,
        *,
        worker: str,
        clock: Clock,
        pace_burst: int | None = None,
    ):
        super().__init__(limit, clock=clock.monotonic, pace_burst=pace_burst)
        self.store = store
        self.account = account
        self.endpoint = endpoint
        self.worker = worker
        self._wall_clock = clock
        self._next_at = -math.inf  # monotonic: when the database said a place frees
        per_request = limit.seconds / limit.count if limit else 0.0
        self.poll = min(max(per_request / 2, 0.005), 0.25)

    def __repr__(self) -> str:
        return (
            f"<SharedWindow {self.account}/{self.endpoint} {self.limit} "
            f"next_at={self._next_at:.3f} paused_until={self._paused_until:.3f}>"
        )

    def ready_at(self) -> float:
        """When to look again: what the database said, or after `poll` while the
        window is full of unanswered requests (another worker's answer frees it)."""
        now = self._clock()
        at = max(now, self._paused_until, self._next_at)
        return now + self.poll if math.isinf(at) else at

    def try_acquire(self) -> Ticket | None:
        now = self._clock()
        if self._paused_until > now:
            return None
        if self.limit is None:
            self._outstanding += 1
            return Ticket(self)
        pk, at = self.store.fleet.acquire(self.account, self.endpoint, self.limit, self.worker)
        if pk is None:
            offset = self._wall_clock.wall() - now
            self._next_at = at - offset if math.isfinite(at) else math.inf
            return None
        self._next_at = -math.inf
        self._outstanding += 1
        return SharedTicket(self, pk)

    def released(self, pk: int, *, answered: bool) -> None:
        if answered:
            self.store.fleet.answered(pk)
        else:
            self.store.fleet.unsent(pk)
        self._release(answered=False)  # the local count: the database holds the window


__all__ = ["SharedTicket", "SharedWindow"]
