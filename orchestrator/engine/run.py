"""One run of the queue: the submitter, the poller and the downloads in one task
group, until every job of the run's batches is finished or the run must stop.

Every state change is committed to the store before the next request depends on it;
progress is read back from the store, so there is no second count to drift.
"""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import anyio
import httpx

from .. import connections
from ..api import FashnClient
from ..clock import SYSTEM, Clock
from ..config import Settings
from ..errors import Interrupted, OutOfCredits, OutputsUnwritable
from ..limits import SlidingWindow
from ..logs import Redactor
from ..models import SUCCESSFUL_STATES, JobState, Progress
from ..outputs import BlockingRunner
from ..store import Recovery, Store
from .balance import BalanceCheck
from .budget import Budget
from .downloader import Downloader
from .poller import Poller
from .state import RunState, StopReason
from .submitter import Submitter

if TYPE_CHECKING:
    from ..fleet.member import FleetMember
    from ..webhooks.endpoint import Webhooks
    from ..webhooks.fleet import AccountWebhooks

log = logging.getLogger("orchestrator")


@dataclass(frozen=True)
class RunOutcome:
    counts: dict[str, int]
    credits: int
    uncertain: int

    @property
    def succeeded(self) -> bool:
        """Every job completed, but those canceled."""
        return set(self.counts) <= SUCCESSFUL_STATES


class Engine:
    """Runs the queued jobs of `batches` (all batches when None) to the end.

    `clock`, `transport` (httpx, for the API and the output URLs alike) and
    `blocking` (how file writes leave the event loop) are what the virtual-time
    tests replace; see testing.py. With `fleet`, it runs one account as a worker of a
    fleet (orchestrator/fleet/): its limits are shared through the database.
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        batches: Sequence[str] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 1.0,
        handle_signals: bool = False,
        clock: Clock = SYSTEM,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        blocking: BlockingRunner = anyio.to_thread.run_sync,
        fleet: FleetMember | None = None,
        webhooks: AccountWebhooks | None = None,
    ):
        self.store = store
        self.fleet = fleet
        self.settings = settings
        self.batches = list(batches) if batches is not None else None
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.handle_signals = handle_signals
        self.clock = clock
        self.state = RunState(settings, clock, rng or random.Random())
        self.run_window, self.status_window = _windows(settings, clock, fleet)
        self._transport = transport
        # Few connections: httpcore scans its whole pool on every request, so a pool
        # larger than the requests that can usefully be under way costs CPU for nothing.
        self._connections = min(settings.concurrency + 4, 12)
        self._blocking = blocking
        self._started = 0.0
        self._finished_before = 0  # jobs of `batches` already terminal when the run began
        self._start_progress: tuple[dict[str, int], int] | None = None
        self.poller: Poller | None = None
        self.budget: Budget | None = None  # --max-credits
        self.balance: BalanceCheck | None = None  # the balance before and after
        # Webhooks (--webhook-url): the receiver's app exists from here on.
        # In a fleet, the worker's (one receiver for all its engines: webhooks/fleet.py).
        self.webhooks: Webhooks | AccountWebhooks | None = webhooks
        if settings.webhook_url and webhooks is None:
            from ..webhooks.endpoint import Webhooks  # starlette, uvicorn: only for webhooks

            self.webhooks = Webhooks(settings, Redactor(settings.api_key))

    def __repr__(self) -> str:
        return f"<Engine batches={self.batches} {self.state!r}>"

    def request_stop(
        self, detail: str = "interrupted", reason: StopReason = StopReason.INTERRUPTED
    ) -> None:
        """Stop submitting; see RunState.request_stop."""
        self.state.request_stop(detail, reason)

    async def run(self) -> RunOutcome:
        self._started = self.clock.monotonic()
        if self.webhooks is not None:
            self.webhooks.open(self.store)  # the port is ours before anything is sent
        recovery = recover(self.store, self.fleet)
        # The first progress line reuses this count: on a large queue each is a scan.
        self._start_progress = self.store.progress(self.batches)
        counts = self._start_progress[0]
        self._finished_before = sum(n for s, n in counts.items() if JobState(s).terminal)
        if self.fleet is None:  # a fleet's windows are the database's own
            windows = (self.run_window, self.status_window)
            seed_windows(self.store, self.clock, self.settings, windows)
        api_http, cdn = self._clients()
        self.store.record_run("run-start", self.batches, "run started")
        try:
            async with api_http, cdn:
                await self._run_with_balance(recovery, api_http, cdn)
        finally:
            self.store.takeover.leave()  # another process may now recover the queue
            if self.webhooks is not None:
                self.webhooks.close()
        self._emit_progress()
        return self._outcome()

    # -- set-up -------------------------------------------------------------------

    def _clients(self) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        """The API client (it carries the key) and the outputs client (it never does)."""
        s = self.settings
        timeout = httpx.Timeout(s.request_timeout, connect=min(10.0, s.request_timeout))
        api_limits = httpx.Limits(max_connections=self._connections)
        cdn_limits = httpx.Limits(max_connections=s.download_concurrency)
        if self._transport is not None:
            api_transport = cdn_transport = self._transport
        else:
            verify = httpx.create_ssl_context()  # load the CA bundle once
            api_transport = connections.transport(limits=api_limits, verify=verify)
            cdn_transport = connections.transport(limits=cdn_limits, verify=verify)
        api = httpx.AsyncClient(timeout=timeout, transport=api_transport)
        cdn = httpx.AsyncClient(timeout=timeout, transport=cdn_transport, follow_redirects=True)
        return api, cdn

    # -- the run ------------------------------------------------------------------

    async def _run_with_balance(
        self, recovery: Recovery, api_http: httpx.AsyncClient, cdn: httpx.AsyncClient
    ) -> None:
        """The run between two readings of the balance; journalled as it starts and ends."""
        s = self.settings
        client = FashnClient(api_http, s.base_url, s.api_key, connections=self._connections)
        self.balance = BalanceCheck(
            self.store, client, self.batches, self.state, shared=self.fleet is not None
        )
        try:
            await self.balance.before()  # a wrong key stops the run here
            await self._run_parts(recovery, client, cdn)
            await self.balance.after()
        finally:
            early = self.state.stopping is not None
            kind, why = ("run-stop", self.state.stop_detail) if early else ("run-end", "")
            self.store.record_run(kind, self.batches, why or "run finished")

    async def _run_parts(
        self, recovery: Recovery, client: FashnClient, cdn: httpx.AsyncClient
    ) -> None:
        state = self.state
        self.budget = Budget.for_run(self.store, self.settings.max_credits, self.batches)
        async with anyio.create_task_group() as tg:
            downloader = Downloader(
                state, self.store, cdn, spawn=tg.start_soon, blocking=self._blocking
            )
            poller = Poller(
                state,
                self.store,
                client,
                self.status_window,
                spawn=tg.start_soon,
                on_completed=downloader.start,
                net=self.webhooks is not None,
                share=self.fleet.status_share if self.fleet is not None else None,
            )
            self.poller = poller
            submitter = Submitter(
                state,
                self.store,
                client,
                self.run_window,
                self.batches,
                spawn=tg.start_soon,
                on_accepted=poller.adopt,
                budget=self.budget,
                webhook_url=self.webhooks.url_for if self.webhooks else None,
                fleet=self.fleet,
            )
            offset = self.clock.wall() - self.clock.monotonic()
            for flight in recovery.flights:
                poller.adopt(flight, flight.accepted_at - offset, unannounced=True)
            if self.webhooks is not None:
                self.webhooks.attach(poller.announce)
                tg.start_soon(self.webhooks.serve)
                tg.start_soon(self.webhooks.follow, poller, downloader.start)
            for job_pk in recovery.downloads:
                downloader.start(job_pk)
            tg.start_soon(submitter.run)
            tg.start_soon(poller.run)
            if self.fleet is not None:
                adopt = partial(poller.adopt, unannounced=True)
                tg.start_soon(self.fleet.watch, state, adopt, downloader.start)
            if self.on_progress is not None:
                tg.start_soon(self._reporter)
            if self.handle_signals:
                tg.start_soon(self._signals)
            while not state.finished():
                await state.wait_change()
            if self.webhooks is not None:
                self.webhooks.detach()
            tg.cancel_scope.cancel()

    def _outcome(self) -> RunOutcome:
        state = self.state
        if state.abort_error is not None:
            raise state.abort_error
        counts, credits = self.store.progress(self.batches)
        outcome = RunOutcome(counts, credits, self.store.uncertain_count(self.batches))
        if state.stopping is StopReason.BUDGET and self.budget is not None:
            raise self.budget.reached()
        if state.stopping is StopReason.OUT_OF_CREDITS:
            raise OutOfCredits(
                "the account ran out of credits: predictions in flight were finished and "
                "saved; add credits, then run `orchestrator resume`"
            )
        if state.stopping is StopReason.OUTPUTS_UNWRITABLE:
            raise OutputsUnwritable(
                f"{state.stop_detail}; no more jobs were submitted and the predictions in "
                "flight were finished. Free space in (or fix the permissions of) "
                f"{self.settings.out_dir}, then run `orchestrator resume`: the outputs "
                "still to save are downloaded again, never bought again"
            )
        if state.stopping is not None:
            raise Interrupted(
                f"{state.stop_detail}: state recorded; run `orchestrator resume` to continue"
            )
        return outcome

    # -- progress and signals -----------------------------------------------------

    def snapshot(self) -> Progress:
        """Where the run stands, as the store records it (one indexed query)."""
        start, self._start_progress = self._start_progress, None
        counts, credits = start or self.store.progress(self.batches)
        finished = sum(n for s, n in counts.items() if JobState(s).terminal)
        state = self.state
        return Progress(
            counts=counts,
            in_flight=state.slots_used(),
            credits=credits,
            elapsed=self.clock.monotonic() - self._started,
            finished_this_run=finished - self._finished_before,
            stopping=state.stop_detail if state.stopping is not None else None,
            rate_limited=state.rate_limited,
            retries=state.retries,
        )

    def _emit_progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(self.snapshot())

    async def _reporter(self) -> None:
        while True:
            self._emit_progress()
            await anyio.sleep(self.progress_every)

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.state.stopping is not None:
                    # Second signal: do not even wait for /run answers (their attempts
                    # become uncertain, and are resent on resume).
                    self.state.hard_stop = True
                    self.state.abort(Interrupted("stopped at once: run `orchestrator resume`"))
                    return
                self.request_stop(f"received {signal.Signals(signum).name}")


def _windows(
    settings: Settings, clock: Clock, fleet: FleetMember | None
) -> tuple[SlidingWindow, SlidingWindow]:
    """The run and status windows: this process's own, or the fleet's account's."""
    if fleet is not None:
        return fleet.windows(settings, clock)
    run = SlidingWindow(settings.run_limit, clock=clock.monotonic)
    status = SlidingWindow(
        settings.status_limit, clock=clock.monotonic, pace_burst=settings.status_burst
    )
    return run, status


def seed_windows(
    store: Store, clock: Clock, settings: Settings, windows: tuple[SlidingWindow, SlidingWindow]
) -> None:
    """Count what an earlier process sent (run and status windows), so a quick restart
    cannot breach a window."""
    wall = clock.wall()
    offset = wall - clock.monotonic()
    for endpoint, window in zip(("run", "status"), windows, strict=True):
        if window.limit is None:
            continue
        since = wall - window.limit.seconds - settings.request_timeout
        rows = store.requests.recent(endpoint, since)
        answered = [done - offset for _sent, done in rows if done is not None]
        # Unanswered: it may have arrived at any moment until the process that sent
        # it stopped, which was before now.
        open_until = [wall - offset for _sent, done in rows if done is None]
        window.seed(answered, open_until)


def recover(store: Store, fleet: FleetMember | None) -> Recovery:
    """Put the queue back in order before a run: all of it (one process alone on the
    queue), or, in a fleet, only what dead workers held."""
    if fleet is not None:
        store.takeover.attend()  # so that a `resume` does not recover what we hold
        return fleet.take_over()
    recovery = store.recover()
    if recovery.unsent:
        log.info("%d job(s) of an earlier run were never sent: queued again", recovery.unsent)
    if recovery.others:
        log.info("another process runs this queue: what it holds is left to it")
    if recovery.lost:
        log.warning(
            "%d /run request(s) of an earlier run got no answer: their jobs are sent "
            "again and marked uncertain in the report",
            recovery.lost,
        )
    return recovery
