"""Webhooks in a fleet: one receiver per worker process, and any worker's receiver takes
any prediction's webhook.

A worker binds `--webhook-listen` once and serves every engine (account) it runs
(`FleetWebhooks`); each engine sees it through an `AccountWebhooks`. A webhook whose
token the database issued (any worker's: the receiver looks tokens up in the database
when it meets one it does not know) is routed by its attempt:
- held by this worker: to the poller of its account's engine, as in one process
  (in flight, early, or a duplicate: the poller knows which);
- held by another worker (live, or dead and about to be taken over): recorded in the
  database as a poll would record it (completed with its outputs, or failed), before
  the 200 goes. Completion and failure are recorded once (store/queue.py: whichever of
  the holder's poll and a webhook commits first; the other changes nothing), so
  duplicates and races are harmless on either database. The holder sees the attempt
  finished at its next look at its flights (`follow`, a few times a second) and starts
  the downloads; downloads are only ever started by the attempt's holder.
A webhook that overtook another worker's `/run` answer (its attempt has no prediction
yet) is answered 503: FASHN sends it again, and polling stays the net.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio

from .. import policy
from ..api import Status
from ..clock import SYSTEM, Clock
from ..config import Settings
from ..engine.failures import record_failed_prediction
from ..models import AttemptState
from ..store import Holding, Store
from .endpoint import Webhooks
from .inbox import Notice

if TYPE_CHECKING:
    from ..engine.poller import Poller


# How often a worker looks for tokens it does not know (at most), and how often each
# engine looks whether another worker's receiver finished one of its flights.
REFRESH_EVERY = 0.05
FOLLOW_EVERY = 0.1


class FleetWebhooks(Webhooks):
    """One worker's webhooks: its token, the receiver bound once, routes by account."""

    def __init__(
        self,
        settings: Settings,
        redact: Callable[[str], str],
        store: Store,
        worker: str,
        *,
        clock: Clock = SYSTEM,
        follow_every: float = FOLLOW_EVERY,
    ):
        super().__init__(settings, redact)
        self.store = store
        self.worker = worker
        self.settings = settings
        self.clock = clock
        self.follow_every = follow_every
        self.routes: dict[str, Callable[[Notice], None]] = {}  # account -> its poller's
        self.counts: Counter[str] = Counter()  # local, recorded, duplicate, early, ...
        self._opened = False
        self._refreshed = -float("inf")
        self.inbox.lookup = self._lookup
        self.receiver.on_notice = self.route

    def __repr__(self) -> str:
        return f"<FleetWebhooks {self.worker} routes={sorted(self.routes)} {dict(self.counts)}>"

    def open(self, store: Store) -> None:
        """Once per worker: the token recorded, the tokens known, the port bound."""
        if not self._opened:
            super().open(store)
            self._opened = True

    def for_account(self, account: str) -> AccountWebhooks:
        return AccountWebhooks(self, account)

    def _lookup(self, token_digest: str) -> bool:
        """A token not known here: another worker's, started since? (At most one look
        in the database every REFRESH_EVERY seconds, whatever strangers send.)"""
        now = self.clock.monotonic()
        if now - self._refreshed < REFRESH_EVERY:
            return False
        self._refreshed = now
        for valid in self.store.relay.digests():
            self.inbox.trust(valid)
        return self.inbox.knows(token_digest)

    def route(self, notice: Notice) -> int | None:
        """Where a webhook goes (see the module's doc); the HTTP status to answer."""
        holding = self.store.relay.holding(notice.attempt_pk)
        if holding is None:
            self.counts["unknown attempt"] += 1
            return 404
        announce = self.routes.get(holding.account)
        if holding.worker == self.worker and announce is not None:
            self.counts["local"] += 1
            _after_answer(announce, notice)
            return None
        if holding.state != AttemptState.SUBMITTED:
            if holding.state == AttemptState.PENDING:  # it overtook its /run answer
                self.counts["early"] += 1
                return 503
            self.counts["duplicate"] += 1  # or an attempt given up (its job sent again)
            return None
        if holding.prediction_id != notice.prediction_id:
            self.counts["other prediction"] += 1
            return 404
        if notice.status.terminal:
            self._record(holding, notice.status)
        return None

    def _record(self, holding: Holding, status: Status) -> None:
        """A webhook for another worker's prediction: recorded as a poll would."""
        flight, store = holding.flight, self.store
        self.counts["recorded"] += 1
        if status.status == "completed":
            store.record_completed(flight, status.outputs, seen_by="webhook")
            return
        name, message = status.failure()
        s = self.settings
        record_failed_prediction(
            store,
            flight,
            name,
            message,
            max_attempts=s.max_attempts,
            retry_at=lambda: (
                self.clock.wall()
                + policy.backoff(flight.failures, base=s.backoff_base, cap=s.backoff_cap)
            ),
            refund=True,
            seen_by="webhook",
        )


class AccountWebhooks:
    """What one engine of a worker sees of the worker's webhooks (the interface of
    `Webhooks` that `Engine` uses): the worker's token in its URLs, its poller as the
    account's route, and `follow`, which hands it the flights other receivers finished."""

    def __init__(self, shared: FleetWebhooks, account: str):
        self.shared = shared
        self.account = account

    def __repr__(self) -> str:
        return f"<AccountWebhooks {self.account} of {self.shared!r}>"

    def open(self, store: Store) -> None:
        self.shared.open(store)

    def url_for(self, attempt_pk: int) -> str:
        return self.shared.url_for(attempt_pk)

    def attach(self, announce: Callable[[Notice], None]) -> None:
        self.shared.routes[self.account] = announce

    def detach(self) -> None:
        self.shared.routes.pop(self.account, None)

    async def serve(self) -> None:
        """The worker serves the receiver; an engine has nothing to serve."""

    def close(self) -> None:
        """The worker closes the receiver."""

    async def follow(self, poller: Poller, download: Callable[[int], None]) -> None:
        """Until cancelled: the poller's flights that another worker's receiver recorded
        finished leave the poller, and those completed are downloaded at once."""
        store, slots = self.shared.store, poller.state.slots
        while True:
            await anyio.sleep(self.shared.follow_every)
            if not slots:
                continue
            for attempt_pk, state in store.relay.settled(list(slots)).items():
                slot = slots.pop(attempt_pk, None)
                if slot is None:
                    continue
                poller.counted_finish(attempt_pk, by_poll=False)
                if state == AttemptState.COMPLETED:
                    download(slot.flight.job_pk)
                poller.state.notify()


def _after_answer(announce: Callable[[Notice], None], notice: Notice) -> None:
    """Act on the webhook just after its answer has gone (as `Webhooks.attach` does)."""
    asyncio.get_running_loop().call_soon(announce, notice)


__all__ = ["AccountWebhooks", "FleetWebhooks"]
