"""Time as an input: one clock, read for wall time (stored) and monotonic time (waits).

Everything that reads time takes a `Clock`, so that the unit tests can run the whole
scheduler in virtual time (see testing.py). `SYSTEM` is the real one.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def wall(self) -> float:
        """Seconds since the epoch: what the database records."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never jumps: what waits and windows are measured on.
        It must be the event loop's own clock, which times every `anyio.sleep`."""
        ...


class SystemClock:
    """The machine's clocks; asyncio's loop runs on `time.monotonic` too."""

    def wall(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def __repr__(self) -> str:
        return "<SystemClock>"


SYSTEM: Clock = SystemClock()
