"""The submitter: fills free slots with queued jobs, one `POST /run` each.

An attempt row is committed before each `/run` (store.claim_next), so a crash can
never hide a request that may have been charged. A `/run` is sent again only when
the API proves that nothing was created (429).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from .. import policy
from ..api import ApiError, FashnClient, RateLimited
from ..errors import AuthError
from ..limits import SlidingWindow, Ticket
from ..policy import RunAction
from ..store import ClaimedJob, Flight, Store
from .budget import Budget
from .failures import log_failure
from .state import RunState, StopReason

if TYPE_CHECKING:
    from ..fleet.member import FleetMember

log = logging.getLogger("orchestrator")


class Submitter:
    def __init__(
        self,
        state: RunState,
        store: Store,
        client: FashnClient,
        window: SlidingWindow,
        batches: Sequence[str] | None,
        *,
        spawn: Callable[..., Any],
        on_accepted: Callable[[Flight], None],
        budget: Budget | None = None,
        webhook_url: Callable[[int], str] | None = None,
        fleet: FleetMember | None = None,
    ):
        self.state = state
        self.store = store
        self.client = client
        self.window = window
        self.batches = batches
        self._spawn = spawn  # starts a task in the run's task group
        self._on_accepted = on_accepted
        self._webhook_url = webhook_url  # attempt pk -> the webhook URL for its /run
        self._server_full_until = 0.0  # monotonic: the account has no free slot
        self._log_requests = state.settings.run_limit is not None and not window.records_requests
        self.budget = budget  # --max-credits: None when there is no cap
        self.fleet = fleet  # a fleet's worker: one account, its slots shared

    async def run(self) -> None:
        try:
            await self._loop()
        finally:
            self.state.submitter_done = True
            self.state.notify()

    async def _loop(self) -> None:
        state, clock = self.state, self.state.clock
        while not state.stopped():
            now = clock.monotonic()
            if state.slots_used() >= state.settings.concurrency:
                await state.wait_change()
                continue
            if now < self._server_full_until:
                await state.wait_change(self._server_full_until - now)
                continue
            if self.fleet is not None and not self.fleet.slot_free(now):
                await state.wait_change(self.fleet.poll)  # the fleet fills the account's slots
                continue
            ticket = self.window.try_acquire()
            if ticket is None:
                # Look for work before waiting for the window: at the end of a batch
                # the window may stay full for a minute with nothing left to send.
                if not self._has_ready():
                    if await self._wait_for_work():
                        continue
                    return
                ticket = await self.window.acquire()
                if state.stopped():
                    ticket.cancel()
                    return
            budget = self.budget
            admit = None
            if budget is not None:
                budget.held, admit = None, budget.admits  # held: set only by this claim
            gate = self.fleet.gate if self.fleet is not None else None
            claimed = self.store.claim_next(
                self.batches, log_request=self._log_requests, admit=admit, gate=gate
            )
            if claimed is None:
                ticket.cancel()
                if gate is not None and gate.full:  # the fleet fills the account's slots
                    await state.wait_change(self.fleet.poll if self.fleet else None)
                    continue
                if budget is not None and budget.held is not None:
                    if await self._wait_for_budget(budget):
                        continue
                    return
                if await self._wait_for_work():
                    continue
                return
            if budget is not None:
                budget.sending(claimed)
            state.sending += 1
            self._spawn(self._send, claimed, ticket)

    def _has_ready(self) -> bool:
        if self.fleet is not None:
            return self.fleet.has_ready(self.batches)
        return self.store.has_ready(self.batches)

    async def _wait_for_work(self) -> bool:
        """Nothing is ready to send: wait for a backoff to end or a job to come back.
        False when nothing is queued and nothing in flight could requeue a job (a
        reused output that is gone requeues its job: downloads count)."""
        state = self.state
        if self.fleet is not None:
            return await self.fleet.wait_for_work(state, self.batches)
        waiting, due = self.store.queue_state(self.batches)
        if waiting == 0 and not state.busy():
            return False
        await state.wait_change(None if due is None else due - state.clock.wall())
        return True

    async def _wait_for_budget(self, budget: Budget) -> bool:
        """The next job does not fit the cap. While `/run` answers are awaited, wait
        (a refused one frees its reservation); then read the spend again (refunds may
        have come in). True to try again; False when submitting stops for good."""
        state = self.state
        if state.sending:
            await state.wait_change()
            return True
        if budget.refresh():
            return True
        state.request_stop(budget.detail(), StopReason.BUDGET)
        return False

    async def _send(self, claimed: ClaimedJob, ticket: Ticket) -> None:
        """One job's `/run`, repeated only when the API proves nothing was created (429)."""
        request_pk = claimed.request_pk
        hook = self._webhook_url(claimed.attempt_pk) if self._webhook_url else None
        try:
            while True:
                try:
                    accepted = await self.client.run(claimed.model_name, claimed.inputs, hook)
                except ApiError as exc:
                    ticket.done()
                    if not await self._on_error(claimed, request_pk, exc):
                        return
                    ticket = await self.window.acquire()
                    request_pk = self.store.resend(
                        claimed.attempt_pk, log_request=self._log_requests
                    )
                    continue
                ticket.done()
                self.state.transport_ok()
                flight = self.store.record_accepted(
                    claimed, accepted.prediction_id, accepted.credits, request_pk
                )
                if self.budget is not None:
                    self.budget.accepted(claimed.attempt_pk, accepted.credits)
                self._on_accepted(flight)
                return
        finally:
            if self.budget is not None:
                self.budget.released(claimed.attempt_pk)  # if neither charged nor lost
            self.state.sending -= 1
            self.state.notify()

    async def _on_error(self, claimed: ClaimedJob, request_pk: int, exc: ApiError) -> bool:
        """Act on a `/run` error (see policy.on_run_error); True to send it again."""
        state, store = self.state, self.store
        action = policy.on_run_error(exc.status, exc.name)
        if action is RunAction.REQUEUE_UNCERTAIN:
            delay = state.transport_failed(str(exc))
            not_before = state.clock.wall() + delay
            store.record_lost(claimed, request_pk, error=str(exc), not_before=not_before)
            if self.budget is not None:
                self.budget.lost(claimed.attempt_pk)
            log.warning("job %s: /run answer lost (%s); will resend", claimed.job_id, exc)
            state.retries += 1
            return False
        if action is not RunAction.STOP_BAD_KEY:
            state.transport_ok()
        if action in (RunAction.WAIT_AND_RESEND, RunAction.HOLD_SUBMISSIONS):
            assert isinstance(exc, RateLimited)
            state.rate_limited += 1
            # A 429 proves nothing was created: until it is resent the attempt counts
            # as never sent, so a crash meanwhile leaves no doubt about a charge.
            store.record_refused(claimed.attempt_pk, request_pk, exc.name or "429")
            if await self._wait_out_429(exc, hold_all=action is RunAction.HOLD_SUBMISSIONS):
                return True
            error = "not sent: the run stopped"
            store.record_rejected(claimed, 0, error=error, fail_job=False)
        elif action is RunAction.FAIL_JOB:
            store.record_rejected(claimed, request_pk, error=str(exc), fail_job=True)
            log_failure(store, claimed.job_pk, str(exc))
        elif action is RunAction.STOP_BAD_KEY:
            store.record_rejected(claimed, request_pk, error=str(exc), fail_job=False)
            state.abort(
                AuthError(
                    "the API refused the key (401 UnauthorizedAccess): set FASHN_API_KEY "
                    "to a valid key, then run `orchestrator resume`"
                )
            )
        else:  # RunAction.STOP_NO_CREDITS
            store.record_rejected(claimed, request_pk, error="out of credits", fail_job=False)
            state.request_stop("out of credits", StopReason.OUT_OF_CREDITS)
        return False

    async def _wait_out_429(self, exc: RateLimited, *, hold_all: bool) -> bool:
        """Wait as the server asked; False if the run stops meanwhile."""
        state, clock = self.state, self.state.clock
        wait = exc.retry_after if exc.retry_after is not None else state.backoff(0)
        until = clock.monotonic() + wait
        if hold_all:
            # The account has more in flight than we know of (another client, or a
            # prediction whose /run answer was lost): hold off every submission.
            self._server_full_until = max(self._server_full_until, until)
        else:
            self.window.pause_until(until)
        while not state.stopped():
            if clock.monotonic() >= until:
                return True
            await state.wait_change(until - clock.monotonic())
        return False
