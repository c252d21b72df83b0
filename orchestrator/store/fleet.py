"""`store.fleet`: what workers share through the database (fleet_limits.py: each
account's limits, slots and windows; leases.py: the workers and their leases)."""

from __future__ import annotations

from collections.abc import Sequence

from ..config import RateLimit
from ..fleet.decisions import AccountLimits
from . import fleet_limits, leases
from .connection import Database
from .fleet_limits import Gate
from .records import Recovery

# How long a worker may keep an answer time before writing it: until then the request
# counts as unanswered for the other workers (which only holds their windows longer).
ANSWERS_KEPT = 0.1


class Fleet:
    """The fleet's side of the store, as `store.fleet`.

    Answer times are kept in memory (`answered`) and written with the next place a
    window gives this worker, or within `ANSWERS_KEPT` seconds: one write transaction
    per request instead of two."""

    def __init__(self, db: Database):
        self._db = db
        self._answers: dict[int, float] = {}  # request pk -> answered at (wall), unwritten

    # -- workers and leases -------------------------------------------------------

    def register(self, worker: str, lease_seconds: float) -> None:
        leases.register(self._db, worker, lease_seconds)

    def renew(self, worker: str) -> bool:
        """False when the lease was lost: the worker must stop at once."""
        return leases.renew(self._db, worker)

    def stop(self, worker: str) -> None:
        self.write_answers()
        leases.stop(self._db, worker)

    def others_live(self, worker: str = "") -> bool:
        """Whether a worker other than `worker` (any, by default) holds a live lease."""
        return leases.others_live(self._db, worker)

    def expire(self, keep_requests: float = 3600.0) -> list[str]:
        """Declare dead the workers whose lease ran out; returns their ids."""
        return leases.expire(self._db, keep_requests)

    def take_over(self, worker: str, account: str) -> Recovery:
        return leases.take_over(self._db, worker, account)

    # -- limits ---------------------------------------------------------------------

    def record_limits(
        self, account: str, wanted: AccountLimits, *, others_live: bool
    ) -> AccountLimits:
        return fleet_limits.record_limits(self._db, account, wanted, others_live=others_live)

    def acquire(
        self,
        account: str,
        endpoint: str,
        limit: RateLimit | None,
        worker: str,
        paused_until: float = 0.0,
    ) -> tuple[int | None, float]:
        """A place in the account's window now (request pk, now), or (None, when)."""
        answers = dict(self._answers)
        taken = fleet_limits.acquire(
            self._db, account, endpoint, limit, worker, paused_until, answers
        )
        if taken[0] is not None:  # the answers were written with the place
            self._forget(answers)
        return taken

    def answered(self, request_pk: int) -> None:
        """The request was answered now: written soon (see the class)."""
        now = self._db.clock.wall()
        self._answers[request_pk] = now
        if now - next(iter(self._answers.values())) >= ANSWERS_KEPT:  # the oldest
            self.write_answers()

    def write_answers(self) -> None:
        """Write the answer times kept in memory."""
        if self._answers:
            answers = dict(self._answers)
            fleet_limits.answered(self._db, answers)
            self._forget(answers)

    def _forget(self, written: dict[int, float]) -> None:
        """Drop the answer times just written (not those kept since the copy)."""
        for pk in written:
            self._answers.pop(pk, None)

    def slots_used(self, account: str) -> int:
        """The account's slots in use, as last committed (read without a lock)."""
        return fleet_limits.slots_used(self._db, account)

    def unsent(self, request_pk: int) -> None:
        fleet_limits.unsent(self._db, request_pk)

    # -- the account's queue ----------------------------------------------------------

    def queue_state(
        self, account: str, batches: Sequence[str] | None, worker: str
    ) -> tuple[int, float | None, int]:
        """(jobs waiting, when the earliest backed-off one is due, jobs held elsewhere)."""
        return fleet_limits.queue_state(self._db, account, batches, worker)

    def accounts(self, batches: Sequence[str] | None) -> list[str]:
        """Accounts with jobs of `batches` still to run or save."""
        return fleet_limits.accounts(self._db, batches)

    def has_ready(self, account: str, batches: Sequence[str] | None) -> bool:
        return fleet_limits.has_ready(self._db, account, batches)


__all__ = ["Fleet", "Gate"]
