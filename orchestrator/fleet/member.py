"""One account's share of a worker: what makes an `Engine` a member of the fleet.

The engine runs as in one process, but with the account's windows shared through the
database (windows.py), its claims gated by the account's slots (store.fleet_limits),
and, instead of one recovery at the start, a watch that takes over whatever a dead
worker held for this account, whenever one dies (store.leases).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import anyio

from ..clock import Clock
from ..config import Settings
from ..engine.state import RunState
from ..store import Flight, Gate, Recovery, Store
from .decisions import burst_done, heartbeat_every
from .windows import SharedWindow

log = logging.getLogger("orchestrator")

SHARE_FRESH = 0.1  # seconds: how old the count of the account's slots in use may be


class FleetMember:
    """What an engine of worker `worker` needs to run `account` in a fleet."""

    def __init__(
        self,
        store: Store,
        *,
        worker: str,
        account: str,
        settings: Settings,
        lease_seconds: float,
        burst: bool,
        idle_poll: float = 1.0,
    ):
        self.store = store
        self.worker = worker
        self.account = account
        self.lease_seconds = lease_seconds
        self.burst = burst
        self.idle_poll = idle_poll  # how often an idle worker looks for new jobs
        self.gate = Gate(account, settings.concurrency, worker)
        self._used, self._used_at = 0, -math.inf  # the account's slots in use, read at
        run = settings.run_limit
        # How often to look again while another worker's predictions fill the slots.
        self.poll = min(run.seconds / run.count / 2, 0.25) if run else 0.05

    def __repr__(self) -> str:
        return f"<FleetMember {self.worker} account={self.account} burst={self.burst}>"

    def windows(self, settings: Settings, clock: Clock) -> tuple[SharedWindow, SharedWindow]:
        """The account's run and status windows, shared by the fleet."""
        store, account, worker = self.store, self.account, self.worker
        run = SharedWindow(store, account, "run", settings.run_limit, worker=worker, clock=clock)
        status = SharedWindow(
            store,
            account,
            "status",
            settings.status_limit,
            worker=worker,
            clock=clock,
            pace_burst=settings.status_burst,
        )
        return run, status

    def take_over(self) -> Recovery:
        """Declare dead the workers whose lease ran out; take this account's jobs that
        dead or stopped workers held."""
        dead = self.store.fleet.expire()
        if dead:
            log.warning("worker(s) %s stopped renewing their lease: declared dead", ", ".join(dead))
        recovery = self.store.fleet.take_over(self.worker, self.account)
        taken = len(recovery.flights) + len(recovery.downloads)
        if taken or recovery.lost:
            log.warning(
                "account %s: took over %d prediction(s) in flight and %d download(s) of "
                "workers that stopped; %d /run request(s) of theirs got no answer (sent "
                "again, marked uncertain)",
                self.account,
                len(recovery.flights),
                len(recovery.downloads),
                recovery.lost,
            )
        return recovery

    async def watch(
        self,
        state: RunState,
        adopt: Callable[[Flight, float], None],
        download: Callable[[int], None],
    ) -> None:
        """Take over what dead workers held, at every heartbeat, for as long as the run."""
        every = heartbeat_every(self.lease_seconds)
        while True:
            await anyio.sleep(every)
            if state.stopped():
                return
            self.store.fleet.write_answers()
            recovery = self.take_over()
            offset = state.clock.wall() - state.clock.monotonic()
            for flight in recovery.flights:
                adopt(flight, flight.accepted_at - offset)
            for job_pk in recovery.downloads:
                download(job_pk)
            state.notify()

    def slot_free(self, now: float) -> bool:
        """Whether the account has a free slot, as last committed (the claim decides)."""
        return self._slots_used(now) < self.gate.slots

    def status_share(self, mine: int, now: float) -> float:
        """This worker's share of the account's status budget: its part of the
        account's predictions in flight (the others' pollers take theirs)."""
        if mine == 0:
            return 1.0
        return mine / max(self._slots_used(now, fresh=SHARE_FRESH), mine)

    def _slots_used(self, now: float, fresh: float = 0.0) -> int:
        """The account's slots in use, read again if older than `fresh` seconds
        (`now`: monotonic)."""
        if now - self._used_at > fresh:
            self._used, self._used_at = self.store.fleet.slots_used(self.account), now
        return self._used

    def has_ready(self, batches: Sequence[str] | None) -> bool:
        return self.store.fleet.has_ready(self.account, batches)

    async def wait_for_work(self, state: RunState, batches: Sequence[str] | None) -> bool:
        """Nothing of the account is ready to send: wait for a job (new, backed off,
        or given up by a dead worker). False when a `--burst` worker is done."""
        waiting, due, held = self.store.fleet.queue_state(self.account, batches, self.worker)
        if self.burst and burst_done(waiting, held, state.busy()):
            return False
        self.store.fleet.write_answers()  # nothing may be sent for a while
        wait = self.idle_poll
        if due is not None:
            wait = min(wait, max(0.0, due - state.clock.wall()))
        if held and not waiting:
            # Only other workers' jobs remain: their death would hand them over.
            wait = min(wait, heartbeat_every(self.lease_seconds))
        await state.wait_change(wait if math.isfinite(wait) else None)
        return True


__all__ = ["FleetMember"]
