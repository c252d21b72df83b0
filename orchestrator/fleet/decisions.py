"""The fleet's decisions as pure functions of what the database holds: when an
account's window lets the next request go, whether a lease has run out, whether a
worker's limits agree with the account's, and whether a burst worker is done.

The window rule is the one-process rule (limits.py), counted over the whole fleet:
a request holds its account's window from the moment it is sent until one window
after its answer; one that is still unanswered holds it until its worker is known
dead (its requests are then closed at that moment, see store/fleet.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import RateLimit


def window_ready_at(
    limit: RateLimit | None,
    now: float,
    answered: Sequence[float],
    outstanding: int,
    paused_until: float = 0.0,
) -> float:
    """The earliest time the next request may be sent (inf: not before an answer).

    `answered`: answer times of the account's requests answered within the window
    before `now`, in order; `outstanding`: its requests sent and not yet answered.
    """
    at = max(now, paused_until)
    if limit is None:
        return at
    recent = [t for t in answered if t > now - limit.seconds]
    room = limit.count - outstanding
    if room <= 0:
        return math.inf
    excess = len(recent) - room
    if excess >= 0:
        at = max(at, recent[excess] + limit.seconds)
    return at


def lease_expired(heartbeat_at: float, lease_seconds: float, now: float) -> bool:
    """A worker that has not renewed its lease for `lease_seconds` is dead."""
    return now - heartbeat_at > lease_seconds


def heartbeat_every(lease_seconds: float) -> float:
    """How often a worker renews its lease: three renewals fit in one lease, so a
    slow transaction or a busy machine does not cost a live worker its jobs."""
    return lease_seconds / 3


@dataclass(frozen=True)
class AccountLimits:
    """An account's limits as the fleet shares them."""

    concurrency: int
    run_limit: RateLimit | None
    status_limit: RateLimit | None

    def row(self) -> tuple[int, str | None, str | None]:
        return (
            self.concurrency,
            None if self.run_limit is None else str(self.run_limit),
            None if self.status_limit is None else str(self.status_limit),
        )


def limits_conflict(account: str, recorded: AccountLimits, wanted: AccountLimits) -> str | None:
    """Why a worker may not run `account` with `wanted` limits, or None if it may."""
    if recorded.row() == wanted.row():
        return None
    concurrency, run, status = recorded.row()
    return (
        f"account {account!r} runs with --concurrency {concurrency} --run-limit "
        f"{run or 'none'} --status-limit {status or 'none'} in this database's fleet; "
        "start this worker with the same limits (or stop every worker first to change them)"
    )


def burst_done(waiting: int, held_elsewhere: int, busy: bool) -> bool:
    """A `--burst` worker stops when none of its account's jobs waits, none is held by
    another worker (whose death would hand it over), and it has nothing under way."""
    return waiting == 0 and held_elsewhere == 0 and not busy
