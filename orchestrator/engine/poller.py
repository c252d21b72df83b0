"""The poller: spends the status budget on the prediction most likely to have
finished (see polling.py), one request at a time as the window allows.

With webhooks (`net`), a webhook that names a prediction in flight is acted on like a
status answer (`announce`), and polling becomes the net under the webhooks: it asks
about the predictions most likely to have finished unannounced, learning how often
webhooks are lost, and spends few requests while none are."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from .. import policy
from ..api import ApiError, FashnClient, RateLimited, Status
from ..errors import AuthError
from ..limits import SlidingWindow, Ticket
from ..policy import StatusAction
from ..polling import Candidate, Durations, LossRate, pick
from ..store import Flight, PendingOutput, Store
from ..webhooks import Notice
from .failures import record_failed_prediction
from .notices import Notices, Unmatched
from .state import RunState, Slot

log = logging.getLogger("orchestrator")


class Poller:
    def __init__(
        self,
        state: RunState,
        store: Store,
        client: FashnClient,
        window: SlidingWindow,
        *,
        spawn: Callable[..., Any],
        on_completed: Callable[[int, list[PendingOutput]], None],
        net: bool = False,
        share: Callable[[int, float], float] | None = None,
    ):
        self.state = state
        self.store = store
        self.client = client
        self.window = window
        self.durations = Durations()
        self._spawn = spawn
        self._on_completed = on_completed
        self._log_requests = state.settings.status_limit is not None and not window.records_requests
        self.wakeups = 0  # times the loop looked for a prediction to ask about
        self.net = net
        # In a fleet: this worker's share of the account's status budget, given the
        # predictions it holds (the account's other workers poll theirs).
        self._share = share
        limit = state.settings.status_limit
        self._least_wait = limit.seconds / limit.count / 4 if limit else 0.0
        self.loss = LossRate()
        # A webhook may overtake its /run answer by the time a /run takes, at most.
        self.notices = Notices(state.clock.monotonic, state.settings.request_timeout)

    def adopt(
        self, flight: Flight, accepted_at: float | None = None, *, unannounced: bool = False
    ) -> None:
        """A prediction in flight (`accepted_at` on the monotonic clock; now if None).
        `unannounced`: sent by an earlier run, its webhook may have come and gone."""
        at = self.state.clock.monotonic() if accepted_at is None else accepted_at
        cand = Candidate(flight.attempt_pk, flight.model_name, at, unannounced=unannounced)
        self.state.slots[flight.attempt_pk] = Slot(flight, cand)
        self.state.notify()
        held = self.notices.take_held(flight.attempt_pk) if self.net else None
        if held is not None:
            self.announce(held)

    def announce(self, notice: Notice) -> None:
        """A webhook: acted on like a status answer if it is about a prediction in
        flight; else a duplicate, a late one, or one that overtook its /run answer."""
        slot = self.state.slots.get(notice.attempt_pk)
        if slot is None or slot.flight.prediction_id != notice.prediction_id:
            if self.notices.unmatched(notice) is Unmatched.LATE:
                self.loss.late_webhook()
            return
        if notice.status.terminal:
            self.counted_finish(notice.attempt_pk, by_poll=False)
            age = slot.cand.age(self.state.clock.monotonic())
            self._terminal(slot, notice.status, age, seen_by="webhook")

    async def run(self) -> None:
        state = self.state
        while True:
            cand, wake = self._pick()
            if cand is None:
                now = state.clock.monotonic()
                # A plan may say "now" with nothing to ask about yet (a prediction whose
                # chance of having finished only begins): look again a little later
                # rather than spin the loop.
                wait = None if math.isinf(wake) else max(wake - now, self._least_wait)
                await state.wait_change(wait)
                continue
            ticket = await self.window.acquire()
            # The wait may have been long: choose again with what is known now, and
            # spend the request that was just paid for on the prediction due soonest
            # (as the net under webhooks, a request is only sent when one is due).
            cand, _ = self._pick(eager=not self.net)
            if cand is None:
                ticket.cancel()
                continue
            cand.busy = True
            self._spawn(self._poll, state.slots[cand.key], ticket)

    def _pick(self, *, eager: bool = False) -> tuple[Candidate | None, float]:
        self.wakeups += 1
        limit = self.state.settings.status_limit
        rate = limit.count / limit.seconds if limit else math.inf
        now = self.state.clock.monotonic()
        if self._share is not None:
            rate *= self._share(len(self.state.slots), now)
        full_at = self.window.spare_full_at()
        cands = [s.cand for s in self.state.slots.values()]
        if self.net:
            return pick(cands, self.durations, now, rate, loss=self.loss.rate)
        cand, wake = pick(cands, self.durations, now, rate, eager=eager or full_at <= now)
        if cand is None and math.isfinite(wake) and full_at > now:
            # Something is scheduled: look again when budget would start being lost.
            wake = min(wake, full_at)
        return cand, wake

    async def _poll(self, slot: Slot, ticket: Ticket) -> None:
        state, cand = self.state, slot.cand
        request_pk = self.store.requests.log("status") if self._log_requests else 0
        asked_at = state.clock.monotonic()
        try:
            status = await self.client.status(slot.flight.prediction_id)
        except ApiError as exc:
            ticket.done()
            self._on_error(slot, exc)
            return
        finally:
            cand.busy = False
            self.store.requests.finish(request_pk)
            state.notify()
        ticket.done()
        state.transport_ok()
        if state.slots.get(slot.flight.attempt_pk) is slot:  # not announced meanwhile
            self._on_status(slot, status, asked_at)

    def _on_error(self, slot: Slot, exc: ApiError) -> None:
        """Act on a `/status` error (see policy.on_status_error)."""
        state = self.state
        action = policy.on_status_error(exc.status)
        if action is StatusAction.BACK_OFF:
            delay = state.transport_failed(str(exc))
            slot.cand.not_before = state.clock.monotonic() + delay
            return
        if action is StatusAction.STOP_BAD_KEY:
            state.abort(
                AuthError(
                    "the API refused the key (401 UnauthorizedAccess) while polling: set "
                    "FASHN_API_KEY to a valid key, then run `orchestrator resume`"
                )
            )
            return
        state.transport_ok()
        if action is StatusAction.PAUSE_POLLING:
            assert isinstance(exc, RateLimited)
            state.rate_limited += 1
            wait = exc.retry_after if exc.retry_after is not None else state.backoff(0)
            self.window.pause_until(state.clock.monotonic() + wait)
        else:  # StatusAction.PREDICTION_LOST
            self._failed(slot, policy.LOST, str(exc), refund=False)

    def _on_status(self, slot: Slot, status: Status, asked_at: float) -> None:
        flight, cand, settings = slot.flight, slot.cand, self.state.settings
        if status.terminal:
            if self.net:
                self._found_by_poll(flight.attempt_pk)
            self._terminal(slot, status, self._finish_age(cand, asked_at), seen_by="status")
        else:
            cand.last_polled_at = asked_at
            if status.status != slot.last_status:
                slot.last_status = status.status
                self.store.record_status(flight.attempt_pk, status.status)
            if cand.age(self.state.clock.monotonic()) > settings.prediction_timeout:
                message = f"not finished after {settings.prediction_timeout:g} s"
                self._failed(slot, policy.STUCK, message, refund=False)

    def _found_by_poll(self, attempt_pk: int) -> None:
        """A poll found a prediction finished before any webhook here said so: lost,
        unless (in a fleet) another worker's receiver recorded its webhook first."""
        by_poll = self._share is None or not self.store.relay.settled([attempt_pk])
        self.counted_finish(attempt_pk, by_poll=by_poll)

    def counted_finish(self, attempt_pk: int, *, by_poll: bool) -> None:
        """What the net learns of a finish: seen first by a poll (its webhook lost), or
        announced by a webhook, here or at another worker's receiver."""
        if not self.net:
            return
        if by_poll:
            self.loss.found_by_poll()
        else:
            self.loss.found_by_webhook()
        self.notices.finished(attempt_pk, by_poll=by_poll)

    def _terminal(self, slot: Slot, status: Status, age: float, *, seen_by: str) -> None:
        """A prediction seen terminal at `age` (or about then): save or fail it."""
        flight = slot.flight
        if status.status == "completed":
            if self.net or self.state.settings.polling == "adaptive":
                self.durations.observe(flight.model_name, age)
            outputs = self.store.record_completed(flight, status.outputs, seen_by=seen_by)
            self._release(slot)
            if outputs:
                self._on_completed(flight.job_pk, outputs)
            return
        name, message = status.failure()
        self._failed(slot, name, message, refund=True, seen_by=seen_by)

    def _finish_age(self, cand: Candidate, seen_at: float) -> float:
        """When, in the prediction's life, it most likely finished.

        Somewhere after the last poll that found it running; but a prediction first
        polled late (young ones are not asked about) did not finish right after its
        start: assume at most one round-robin interval went by unseen.
        """
        seen = cand.age(seen_at)
        limit = self.state.settings.status_limit
        interval = len(self.state.slots) * limit.seconds / limit.count if limit else 0.0
        unseen = min(seen - cand.polled_age(), interval)
        return seen - unseen / 2

    def _release(self, slot: Slot) -> None:
        self.state.slots.pop(slot.flight.attempt_pk, None)
        self.state.notify()

    def _failed(
        self, slot: Slot, name: str, message: str, *, refund: bool, seen_by: str | None = None
    ) -> None:
        state, flight = self.state, slot.flight
        retried = record_failed_prediction(
            self.store,
            flight,
            name,
            message,
            max_attempts=state.settings.max_attempts,
            retry_at=lambda: state.clock.wall() + state.backoff(flight.failures),
            refund=refund,
            seen_by=seen_by,
        )
        if retried:
            state.retries += 1
            log.warning("job %s: prediction failed with %s (will retry)", flight.job_id, name)
        self._release(slot)
