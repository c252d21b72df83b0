"""The poller: spends the status budget on the prediction most likely to have
finished (see polling.py), one request at a time as the window allows."""

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
from ..polling import Candidate, Durations, pick
from ..store import Flight, PendingOutput, Store
from .failures import log_failure
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
    ):
        self.state = state
        self.store = store
        self.client = client
        self.window = window
        self.durations = Durations()
        self._spawn = spawn
        self._on_completed = on_completed
        self._log_requests = state.settings.status_limit is not None
        self.wakeups = 0  # times the loop looked for a prediction to ask about

    def adopt(self, flight: Flight, accepted_at: float | None = None) -> None:
        """A prediction in flight (`accepted_at` on the monotonic clock; now if None)."""
        at = self.state.clock.monotonic() if accepted_at is None else accepted_at
        cand = Candidate(key=flight.attempt_pk, model=flight.model_name, accepted_at=at)
        self.state.slots[flight.attempt_pk] = Slot(flight, cand)
        self.state.notify()

    async def run(self) -> None:
        state = self.state
        while True:
            cand, wake = self._pick()
            if cand is None:
                now = state.clock.monotonic()
                await state.wait_change(None if math.isinf(wake) else wake - now)
                continue
            ticket = await self.window.acquire()
            # The wait may have been long: choose again with what is known now, and
            # spend the request that was just paid for on the prediction due soonest.
            cand, _ = self._pick(eager=True)
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
        full_at = self.window.spare_full_at()
        cands = [s.cand for s in self.state.slots.values()]
        cand, wake = pick(cands, self.durations, now, rate, eager=eager or full_at <= now)
        if cand is None and math.isfinite(wake) and full_at > now:
            # Something is scheduled: look again when budget would start being lost.
            wake = min(wake, full_at)
        return cand, wake

    async def _poll(self, slot: Slot, ticket: Ticket) -> None:
        state, cand = self.state, slot.cand
        request_pk = self.store.log_request("status") if self._log_requests else 0
        asked_at = state.clock.monotonic()
        try:
            status = await self.client.status(slot.flight.prediction_id)
        except ApiError as exc:
            ticket.done()
            self._on_error(slot, exc)
            return
        finally:
            cand.busy = False
            self.store.finish_request(request_pk)
            state.notify()
        ticket.done()
        state.transport_ok()
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
        if status.status == "completed":
            if settings.polling == "adaptive":
                self.durations.observe(flight.model_name, self._finish_age(cand, asked_at))
            outputs = self.store.record_completed(flight, status.outputs)
            self._release(slot)
            if outputs:
                self._on_completed(flight.job_pk, outputs)
        elif status.terminal:
            name = status.error_name or ("PollingTimeout" if status.status == "time_out" else "")
            self._failed(slot, name or status.status, status.error_message or "", refund=True)
        else:
            cand.last_polled_at = asked_at
            if status.status != slot.last_status:
                slot.last_status = status.status
                self.store.record_status(flight.attempt_pk, status.status)
            if cand.age(self.state.clock.monotonic()) > settings.prediction_timeout:
                message = f"not finished after {settings.prediction_timeout:g} s"
                self._failed(slot, policy.STUCK, message, refund=False)

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

    def _failed(self, slot: Slot, name: str, message: str, *, refund: bool) -> None:
        state, flight = self.state, slot.flight
        retry = policy.should_retry(name, flight.failures, state.settings.max_attempts)
        not_before = state.clock.wall() + state.backoff(flight.failures) if retry else None
        self.store.record_failed(
            flight, name=name, message=message, refund=refund, retry=retry, not_before=not_before
        )
        if retry:
            state.retries += 1
            log.warning("job %s: prediction failed with %s (will retry)", flight.job_id, name)
        else:
            log_failure(self.store, flight.job_pk, f"{name}: {message}" if message else name)
        self._release(slot)
