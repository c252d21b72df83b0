"""`orchestrator worker`: one process of a fleet. It holds a lease (renewed every
third of `lease_seconds`), runs one engine per account it has a key for, and stops
when told (SIGINT, SIGTERM), when its lease is lost, or with `burst` when nothing is
left. On the way out it marks itself stopped, so that other workers take over at once
what it still held (predictions in flight after an interrupt)."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

import anyio

from ..accounts import account_key
from ..clock import SYSTEM, Clock
from ..config import Settings
from ..engine import Engine, RunOutcome
from ..errors import Interrupted, StopRun, UsageError
from ..logs import Redactor
from ..store import Store
from .decisions import AccountLimits, heartbeat_every, limits_conflict
from .member import FleetMember

if TYPE_CHECKING:
    from ..webhooks.fleet import FleetWebhooks

log = logging.getLogger("orchestrator")


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class Worker:
    """Runs the queued jobs of `batches` (None: every batch) for `accounts` (None:
    every account with unfinished jobs whose key is set)."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        batches: Sequence[str] | None = None,
        accounts: Sequence[str] | None = None,
        burst: bool = False,
        lease_seconds: float = 30.0,
        idle_poll: float = 1.0,
        clock: Clock = SYSTEM,
        environ: Mapping[str, str] | None = None,
        keys: Mapping[str, str] | None = None,
    ):
        self.store = store
        self.settings = settings
        self.batches = list(batches) if batches is not None else None
        self.named = list(accounts) if accounts else None
        self.burst = burst
        self.lease_seconds = lease_seconds
        self.idle_poll = idle_poll
        self.clock = clock
        self.id = new_worker_id()
        self._environ = environ
        self._keys = dict(keys or {})  # account -> key, given (the sandbox's): not read
        self.engines: dict[str, Engine] = {}
        self.outcomes: dict[str, RunOutcome] = {}
        self.errors: list[StopRun] = []
        self._stopping = False
        # One webhook receiver for the whole process, whatever its accounts.
        self.webhooks: FleetWebhooks | None = None
        if settings.webhook_url:
            from ..webhooks.fleet import FleetWebhooks  # starlette, uvicorn: only for webhooks

            redact = Redactor(settings.api_key or "")
            self.webhooks = FleetWebhooks(settings, redact, store, self.id, clock=clock)

    def __repr__(self) -> str:
        return f"<Worker {self.id} accounts={sorted(self.engines)} burst={self.burst}>"

    @property
    def limits(self) -> AccountLimits:
        s = self.settings
        return AccountLimits(s.concurrency, s.run_limit, s.status_limit)

    def prepare(self) -> list[str]:
        """Before anything is sent: the accounts to run, each with its key and limits
        (UsageError when a named account has no key, or its limits differ from the
        fleet's); then the lease. Returns the accounts."""
        accounts = self._accounts(self.named or self.store.fleet.accounts(self.batches))
        if self.webhooks is not None:
            self.webhooks.open(self.store)  # the port is ours before anything is sent
        self.store.fleet.register(self.id, self.lease_seconds)
        log.info("worker %s: accounts %s", self.id, ", ".join(accounts) or "none yet")
        return accounts

    def _accounts(self, candidates: Sequence[str]) -> list[str]:
        ready = []
        others_live = self.store.fleet.others_live(self.id)
        for account in candidates:
            if account in self.engines or account in self._keys:
                ready.append(account)
                continue
            try:
                key = account_key(account, self._environ)
            except UsageError:
                if self.named:
                    raise
                log.warning(
                    "account %s: its key is not set here; other workers may run it", account
                )
                continue
            recorded = self.store.fleet.record_limits(account, self.limits, others_live=others_live)
            problem = limits_conflict(account, recorded, self.limits)
            if problem:
                raise UsageError(problem)
            self._keys[account] = key
            ready.append(account)
        return ready

    async def run(self) -> dict[str, RunOutcome]:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._heartbeat, tg.cancel_scope)
                tg.start_soon(self._signals)
                if self.webhooks is not None:
                    tg.start_soon(self.webhooks.serve)
                async with anyio.create_task_group() as engines:
                    for account in list(self._keys):
                        engines.start_soon(self._run_account, account)
                    while not self.burst and not self._stopping:
                        await anyio.sleep(self.idle_poll)
                        for account in self._discover():
                            engines.start_soon(self._run_account, account)
                tg.cancel_scope.cancel()
        finally:
            if self.webhooks is not None:
                self.webhooks.close()
            with anyio.CancelScope(shield=True):
                self.store.fleet.stop(self.id)
        interrupted = [e for e in self.errors if isinstance(e, Interrupted)]
        others = [e for e in self.errors if not isinstance(e, Interrupted)]
        if others:
            raise others[0]
        if interrupted and not self._stopping:
            raise interrupted[0]
        return self.outcomes

    def _discover(self) -> list[str]:
        """Accounts whose jobs appeared since (a worker that is not `burst`)."""
        try:
            found = self._accounts(self.named or self.store.fleet.accounts(self.batches))
        except UsageError as exc:
            log.error("%s", exc)
            return []
        return [a for a in found if a not in self.engines]

    async def _run_account(self, account: str) -> None:
        settings = replace(self.settings, api_key=self._keys[account])
        member = FleetMember(
            self.store,
            worker=self.id,
            account=account,
            settings=settings,
            lease_seconds=self.lease_seconds,
            burst=self.burst,
            idle_poll=self.idle_poll,
        )
        hooks = self.webhooks.for_account(account) if self.webhooks is not None else None
        engine = Engine(
            self.store,
            settings,
            batches=self.batches,
            clock=self.clock,
            fleet=member,
            webhooks=hooks,
        )
        self.engines[account] = engine
        try:
            self.outcomes[account] = await engine.run()
        except StopRun as exc:
            self.errors.append(exc)

    async def _heartbeat(self, scope: anyio.CancelScope) -> None:
        while True:
            await anyio.sleep(heartbeat_every(self.lease_seconds))
            if not self.store.fleet.renew(self.id):
                self.errors.append(
                    StopRun(
                        f"worker {self.id} lost its lease (it was stalled for more than "
                        f"{self.lease_seconds:g} s): other workers took over its jobs"
                    )
                )
                scope.cancel()
                return

    async def _signals(self) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                for engine in self.engines.values():
                    if self._stopping:
                        engine.state.hard_stop = True
                        engine.state.notify()
                    else:
                        engine.request_stop(f"received {name}")
                self._stopping = True


__all__ = ["Worker", "new_worker_id"]
