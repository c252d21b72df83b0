"""Webhooks that the poller cannot act on the moment they arrive.

A webhook names an attempt. If that attempt is in flight, the poller acts on it at
once; otherwise it is one of these:
- a duplicate (FASHN may send twice), or a webhook arriving after a poll already
  found its prediction finished: then the webhook was late, not lost, which the loss
  rate learns;
- early: it overtook the `/run` answer that makes the attempt a flight. It is held
  (a few, briefly) and acted on when the flight is adopted.
Everything here is bounded: a flood of webhooks for attempts never seen costs memory
for HELD of them at most.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from enum import Enum

from ..webhooks import Notice

# Attempts remembered as finished (to recognise duplicates), and notices held early.
RECENT = 4096
HELD = 64


class Unmatched(Enum):
    DUPLICATE = "duplicate"  # its attempt was finished by an earlier webhook
    LATE = "late"  # its attempt was finished by a poll first: the webhook was late
    HELD = "held"  # its attempt is not in flight (yet): kept for `take_held`


class Notices:
    """Recently finished attempts (and how), and notices held for attempts not yet
    in flight (each for at most `hold_seconds` on `clock`)."""

    def __init__(self, clock: Callable[[], float], hold_seconds: float):
        self._clock = clock
        self._hold_seconds = hold_seconds
        self._finished: OrderedDict[int, bool] = OrderedDict()  # attempt pk -> by a poll
        self._held: OrderedDict[int, tuple[float, Notice]] = OrderedDict()

    def __repr__(self) -> str:
        return f"<Notices finished={len(self._finished)} held={len(self._held)}>"

    def finished(self, attempt_pk: int, *, by_poll: bool) -> None:
        self._finished[attempt_pk] = by_poll
        if len(self._finished) > RECENT:
            self._finished.popitem(last=False)

    def unmatched(self, notice: Notice) -> Unmatched:
        """What to make of a notice whose attempt is not in flight."""
        by_poll = self._finished.get(notice.attempt_pk)
        if by_poll is not None:
            self._finished[notice.attempt_pk] = False  # a second copy is a duplicate
            return Unmatched.LATE if by_poll else Unmatched.DUPLICATE
        self._expire()
        self._held[notice.attempt_pk] = (self._clock() + self._hold_seconds, notice)
        if len(self._held) > HELD:
            self._held.popitem(last=False)
        return Unmatched.HELD

    def take_held(self, attempt_pk: int) -> Notice | None:
        """The notice held for an attempt that has just become a flight, if any."""
        self._expire()
        entry = self._held.pop(attempt_pk, None)
        return entry[1] if entry else None

    def _expire(self) -> None:
        now = self._clock()
        while self._held:
            key, (until, _) = next(iter(self._held.items()))
            if until > now:
                break
            del self._held[key]
