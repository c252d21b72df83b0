"""The scheduler: submit, poll, download and record, within every limit, resumably.

Three kinds of task share one task group:
- the submitter fills free slots: a slot is a prediction in flight (or a `/run` on
  its way), at most `concurrency` of them, counting those recovered from a crash;
- the poller spends the status budget on the prediction most likely to have
  finished (see polling.py), one request at a time as the window allows;
- downloaders save each completed prediction's outputs.
Every state change is committed to the store before the next request depends on it.
"""

from __future__ import annotations

import logging
import math
import random
import signal
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import httpx

from . import policy
from .api import (
    BadRequest as ApiBadRequest,
)
from .api import (
    FashnClient,
    NotFound,
    OutOfCreditsError,
    RateLimited,
    Transient,
    Unauthorized,
)
from .config import Settings
from .errors import AuthError, Interrupted, OutOfCredits, StopRun
from .limits import SlidingWindow, Ticket
from .models import JobState, Progress
from .outputs import OutputError, save_output
from .polling import Candidate, Durations, pick
from .store import ClaimedJob, Flight, PendingOutput, Store

log = logging.getLogger("orchestrator")


@dataclass(frozen=True)
class RunOutcome:
    counts: dict[str, int]
    credits: int
    uncertain: int


@dataclass
class _Slot:
    """A prediction in flight, with what the poller knows of it."""

    flight: Flight
    cand: Candidate
    last_status: str = "starting"


@dataclass
class _Counters:
    jobs: Counter[str] = field(default_factory=Counter)
    credits: int = 0
    finished: int = 0

    def move(self, old: JobState, new: JobState) -> None:
        self.jobs[old] -= 1
        self.jobs[new] += 1
        if new.terminal:
            self.finished += 1


class Engine:
    """Runs the queued jobs of `batches` (all batches when None) to the end."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        batches: Sequence[str] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        progress_every: float = 1.0,
        handle_signals: bool = False,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ):
        self.store = store
        self.settings = settings
        self.batches = list(batches) if batches is not None else None
        self.on_progress = on_progress
        self.progress_every = progress_every
        self.handle_signals = handle_signals
        self.clock = clock
        self.rng = rng or random.Random()
        self.run_window = SlidingWindow(settings.run_limit, clock=clock)
        self.status_window = SlidingWindow(
            settings.status_limit, clock=clock, pace_burst=settings.status_burst
        )
        self.durations = Durations()
        self._slots: dict[int, _Slot] = {}  # by attempt pk
        self._sending = 0
        self._downloading = 0
        self._submitter_done = False
        self._stopping: str | None = None  # why no more jobs are submitted
        self._abort_error: StopRun | None = None
        self._hard_stop = False
        self._transport_failures = 0
        self._server_full_until = 0.0
        self._changed = anyio.Event()
        self._counters = _Counters()
        self._started = 0.0
        self._download_gate = anyio.Semaphore(settings.download_concurrency)
        self._tg: Any = None
        self._client: FashnClient | None = None
        self._cdn: httpx.AsyncClient | None = None

    # ------------------------------------------------------------------ public

    def request_stop(self, reason: str = "interrupted") -> None:
        """Stop submitting; the run ends once the `/run` requests under way are answered."""
        if self._stopping is None:
            self._stopping = reason
            log.warning("stopping: %s; predictions in flight are picked up by resume", reason)
        self._notify()

    async def run(self) -> RunOutcome:
        s = self.settings
        self._started = self.clock()
        recovery = self.store.recover()
        if recovery.lost:
            log.warning(
                "%d /run request(s) of an earlier run got no answer: their jobs are sent "
                "again and marked uncertain in the report",
                recovery.lost,
            )
        self._load_counters()
        self._seed_windows()
        timeout = httpx.Timeout(s.request_timeout, connect=min(10.0, s.request_timeout))
        # Few connections: httpcore scans its whole pool on every request, so a pool
        # larger than the requests that can usefully be under way costs CPU for nothing.
        connections = min(s.concurrency + 4, 12)
        api_limits = httpx.Limits(max_connections=connections)
        cdn_limits = httpx.Limits(max_connections=s.download_concurrency)
        tls = httpx.create_ssl_context()  # loading the CA bundle once is enough
        async with (
            httpx.AsyncClient(timeout=timeout, limits=api_limits, verify=tls) as api_http,
            httpx.AsyncClient(
                timeout=timeout, limits=cdn_limits, verify=tls, follow_redirects=True
            ) as cdn,
        ):
            self._client = FashnClient(api_http, s.base_url, s.api_key, connections=connections)
            self._cdn = cdn
            offset = time.time() - self.clock()
            for flight in recovery.flights:
                self._adopt(flight, flight.accepted_at - offset)
            async with anyio.create_task_group() as tg:
                self._tg = tg
                for job_pk in recovery.downloads:
                    self._start_download(job_pk)
                tg.start_soon(self._submitter)
                tg.start_soon(self._poller)
                if self.on_progress is not None:
                    tg.start_soon(self._reporter)
                if self.handle_signals:
                    tg.start_soon(self._signals)
                await self._until_done()
                tg.cancel_scope.cancel()
        self._emit_progress()
        if self._abort_error is not None:
            raise self._abort_error
        outcome = RunOutcome(
            counts=self.store.state_counts(self.batches),
            credits=self.store.credits_total(self.batches),
            uncertain=self.store.uncertain_count(self.batches),
        )
        if self._stopping == "out of credits":
            raise OutOfCredits(
                "the account ran out of credits: predictions in flight were finished and "
                "saved; add credits, then run `orchestrator resume`"
            )
        if self._stopping is not None:
            raise Interrupted(
                f"{self._stopping}: state recorded; run `orchestrator resume` to continue"
            )
        return outcome

    # ------------------------------------------------------------------ set-up

    def _load_counters(self) -> None:
        self._counters.jobs.update(self.store.state_counts(self.batches))
        self._counters.credits = self.store.credits_total(self.batches)

    def _seed_windows(self) -> None:
        """Count what an earlier process sent, so a quick restart cannot breach a window."""
        wall = time.time()
        offset = wall - self.clock()
        for endpoint, window in (("run", self.run_window), ("status", self.status_window)):
            if window.limit is None:
                continue
            since = wall - window.limit.seconds - self.settings.request_timeout
            rows = self.store.recent_requests(endpoint, since)
            answered = [done - offset for _sent, done in rows if done is not None]
            # Unanswered: it may have arrived at any moment until the process that sent
            # it stopped, which was before now.
            open_until = [wall - offset for _sent, done in rows if done is None]
            window.seed(answered, open_until)

    def _adopt(self, flight: Flight, accepted_mono: float) -> None:
        cand = Candidate(key=flight.attempt_pk, model=flight.model_name, accepted_at=accepted_mono)
        self._slots[flight.attempt_pk] = _Slot(flight, cand)

    # ------------------------------------------------------------------ coordination

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait_change(self, timeout: float | None = None) -> None:
        changed = self._changed
        if timeout is None:
            await changed.wait()
        else:
            with anyio.move_on_after(max(0.0, timeout)):
                await changed.wait()

    def _busy(self) -> bool:
        return bool(self._slots or self._sending or self._downloading)

    async def _until_done(self) -> None:
        while True:
            if self._hard_stop or (self._submitter_done and not self._busy()):
                return
            # Interrupted or aborted: wait only for `/run` answers, so that no attempt
            # is left without its prediction id; polling and downloads resume later.
            interrupted = self._stopping not in (None, "out of credits")
            if (interrupted or self._abort_error is not None) and not self._sending:
                return
            await self._wait_change()

    def _abort(self, error: StopRun) -> None:
        if self._abort_error is None:
            self._abort_error = error
        self._notify()

    def _transport_ok(self) -> None:
        self._transport_failures = 0

    def _transport_failed(self, what: str) -> None:
        self._transport_failures += 1
        limit = self.settings.max_transport_failures
        if self._transport_failures >= limit:
            self._abort(
                StopRun(
                    f"the API did not answer {limit} requests in a row (last: {what}); "
                    "check the network or FASHN_BASE_URL, then run `orchestrator resume`"
                )
            )

    def _backoff(self, tries: int) -> float:
        s = self.settings
        return policy.backoff(tries, base=s.backoff_base, cap=s.backoff_cap, rng=self.rng)

    # ------------------------------------------------------------------ submitting

    def _slots_used(self) -> int:
        return len(self._slots) + self._sending

    async def _submitter(self) -> None:
        try:
            await self._submit_loop()
        finally:
            self._submitter_done = True
            self._notify()

    async def _submit_loop(self) -> None:
        while not self._stopped():
            now = self.clock()
            if self._slots_used() >= self.settings.concurrency or now < self._server_full_until:
                wait = self._server_full_until - now if now < self._server_full_until else None
                await self._wait_change(wait)
                continue
            ticket = self.run_window.try_acquire()
            if ticket is None:
                # Look for work before waiting for the window: at the end of a batch
                # the window may stay full for a minute with nothing left to send.
                if not self.store.has_ready(self.batches):
                    if await self._wait_for_work():
                        continue
                    return
                ticket = await self.run_window.acquire()
                if self._stopped():
                    ticket.cancel()
                    return
            claimed = self.store.claim_next(
                self.batches, log_request=self.settings.run_limit is not None
            )
            if claimed is None:
                ticket.cancel()
                if await self._wait_for_work():
                    continue
                return
            self._counters.move(JobState.QUEUED, JobState.RUNNING)
            self._sending += 1
            self._tg.start_soon(self._send, claimed, ticket)

    async def _wait_for_work(self) -> bool:
        """Nothing is ready to send: wait for a backoff to end or a job to come back.
        False when nothing is queued and nothing in flight could requeue a job."""
        waiting, due = self.store.queue_state(self.batches)
        if waiting == 0 and not self._slots and not self._sending:
            return False
        await self._wait_change(None if due is None else max(0.0, due - time.time()))
        return True

    async def _send(self, claimed: ClaimedJob, ticket: Ticket) -> None:
        """One job's `/run`, repeated only when the API proves nothing was created (429)."""
        assert self._client is not None
        request_pk = claimed.request_pk
        try:
            while True:
                try:
                    accepted = await self._client.run(claimed.model_name, claimed.inputs)
                except RateLimited as exc:
                    ticket.done()
                    self._transport_ok()
                    if not await self._wait_out_429(exc):
                        # Stopping: a 429 proves nothing was created; the job waits.
                        error = "not sent: the run stopped"
                        self.store.record_rejected(claimed, request_pk, error=error, fail_job=False)
                        self._counters.move(JobState.RUNNING, JobState.QUEUED)
                        return
                    self.store.finish_request(request_pk)
                    ticket = await self.run_window.acquire()
                    request_pk = self.store.resend(
                        claimed.attempt_pk, log_request=self.settings.run_limit is not None
                    )
                    continue
                except ApiBadRequest as exc:
                    ticket.done()
                    self._transport_ok()
                    self.store.record_rejected(claimed, request_pk, error=str(exc), fail_job=True)
                    self._counters.move(JobState.RUNNING, JobState.FAILED)
                    log.error("job %s failed: %s", claimed.job_id, exc)
                except Unauthorized as exc:
                    ticket.done()
                    self.store.record_rejected(claimed, request_pk, error=str(exc), fail_job=False)
                    self._counters.move(JobState.RUNNING, JobState.QUEUED)
                    self._abort(
                        AuthError(
                            "the API refused the key (401 UnauthorizedAccess): set FASHN_API_KEY "
                            "to a valid key, then run `orchestrator resume`"
                        )
                    )
                except OutOfCreditsError:
                    ticket.done()
                    self._transport_ok()
                    self.store.record_rejected(
                        claimed, request_pk, error="out of credits", fail_job=False
                    )
                    self._counters.move(JobState.RUNNING, JobState.QUEUED)
                    self.request_stop("out of credits")
                except Transient as exc:
                    ticket.done()
                    self._transport_failed(str(exc))
                    delay = self._backoff(self._transport_failures)
                    self.store.record_lost(
                        claimed, request_pk, error=str(exc), not_before=time.time() + delay
                    )
                    self._counters.move(JobState.RUNNING, JobState.QUEUED)
                    log.warning("job %s: /run answer lost (%s); will resend", claimed.job_id, exc)
                else:
                    ticket.done()
                    self._transport_ok()
                    self._accepted(claimed, accepted.prediction_id, accepted.credits, request_pk)
                return
        finally:
            self._sending -= 1
            self._notify()

    async def _wait_out_429(self, exc: RateLimited) -> bool:
        """Wait as the server asked; False if the run stops meanwhile."""
        wait = exc.retry_after if exc.retry_after is not None else self._backoff(0)
        until = self.clock() + wait
        if exc.concurrency:
            # The account has more in flight than we know of (another client, or a
            # prediction whose /run answer was lost): hold off every submission.
            self._server_full_until = max(self._server_full_until, until)
        else:
            self.run_window.pause_until(until)
        while not self._stopped():
            if self.clock() >= until:
                return True
            await self._wait_change(until - self.clock())
        return False

    def _stopped(self) -> bool:
        return self._stopping is not None or self._abort_error is not None

    def _accepted(self, claimed: ClaimedJob, prediction_id: str, credits: int, req: int) -> None:
        flight = self.store.record_accepted(claimed, prediction_id, credits, req)
        self._counters.credits += credits
        self._adopt(flight, self.clock())

    # ------------------------------------------------------------------ polling

    async def _poller(self) -> None:
        while True:
            cand, wake = self._pick()
            if cand is None:
                await self._wait_change(None if math.isinf(wake) else wake - self.clock())
                continue
            ticket = await self.status_window.acquire()
            # The wait may have been long: choose again with what is known now, and
            # spend the request that was just paid for on the prediction due soonest.
            cand, _ = self._pick(eager=True)
            if cand is None:
                ticket.cancel()
                continue
            cand.busy = True
            self._tg.start_soon(self._poll, self._slots[cand.key], ticket)

    def _pick(self, *, eager: bool = False) -> tuple[Candidate | None, float]:
        limit = self.settings.status_limit
        rate = limit.count / limit.seconds if limit else math.inf
        now = self.clock()
        full_at = self.status_window.spare_full_at()
        cands = [s.cand for s in self._slots.values()]
        cand, wake = pick(cands, self.durations, now, rate, eager=eager or full_at <= now)
        if cand is None and math.isfinite(wake) and full_at > now:
            # Something is scheduled: look again when budget would start being lost.
            wake = min(wake, full_at)
        return cand, wake

    async def _poll(self, slot: _Slot, ticket: Ticket) -> None:
        assert self._client is not None
        flight, cand = slot.flight, slot.cand
        log_it = self.settings.status_limit is not None
        request_pk = self.store.log_request("status") if log_it else 0
        asked_at = self.clock()
        try:
            status = await self._client.status(flight.prediction_id)
        except RateLimited as exc:
            ticket.done()
            self._transport_ok()
            wait = exc.retry_after if exc.retry_after is not None else self._backoff(0)
            self.status_window.pause_until(self.clock() + wait)
            return
        except NotFound as exc:
            ticket.done()
            self._transport_ok()
            self._failed(slot, policy.LOST, str(exc), refund=False)
            return
        except Unauthorized:
            ticket.done()
            self._abort(
                AuthError(
                    "the API refused the key (401 UnauthorizedAccess) while polling: set "
                    "FASHN_API_KEY to a valid key, then run `orchestrator resume`"
                )
            )
            return
        except Transient as exc:
            ticket.done()
            self._transport_failed(str(exc))
            cand.not_before = self.clock() + self._backoff(self._transport_failures)
            return
        finally:
            cand.busy = False
            self.store.finish_request(request_pk)
            self._notify()
        ticket.done()
        self._transport_ok()
        if status.status == "completed":
            if self.settings.polling == "adaptive":
                self.durations.observe(flight.model_name, self._finish_age(cand, asked_at))
            self._completed(slot, status.outputs)
        elif status.terminal:
            name = status.error_name or ("PollingTimeout" if status.status == "time_out" else "")
            self._failed(slot, name or status.status, status.error_message or "", refund=True)
        else:
            cand.last_polled_at = asked_at
            if status.status != slot.last_status:
                slot.last_status = status.status
                self.store.record_status(flight.attempt_pk, status.status)
            if cand.age(self.clock()) > self.settings.prediction_timeout:
                message = f"not finished after {self.settings.prediction_timeout:g} s"
                self._failed(slot, policy.STUCK, message, refund=False)

    def _finish_age(self, cand: Candidate, seen_at: float) -> float:
        """When, in the prediction's life, it most likely finished.

        Somewhere after the last poll that found it running; but a prediction first
        polled late (young ones are not asked about) did not finish right after its
        start: assume at most one round-robin interval went by unseen.
        """
        seen = cand.age(seen_at)
        limit = self.settings.status_limit
        interval = len(self._slots) * limit.seconds / limit.count if limit else 0.0
        unseen = min(seen - cand.polled_age(), interval)
        return seen - unseen / 2

    def _release(self, slot: _Slot) -> None:
        self._slots.pop(slot.flight.attempt_pk, None)
        self._notify()

    def _completed(self, slot: _Slot, urls: list[str]) -> None:
        outputs = self.store.record_completed(slot.flight, urls)
        self._release(slot)
        if urls:
            self._counters.move(JobState.RUNNING, JobState.DOWNLOADING)
            self._start_download(slot.flight.job_pk, outputs)
        else:
            self._counters.move(JobState.RUNNING, JobState.COMPLETED)

    def _failed(self, slot: _Slot, name: str, message: str, *, refund: bool) -> None:
        flight = slot.flight
        retry = policy.should_retry(name, flight.failures, self.settings.max_attempts)
        not_before = time.time() + self._backoff(flight.failures) if retry else None
        self._counters.credits -= self.store.record_failed(
            flight, name=name, message=message, refund=refund, retry=retry, not_before=not_before
        )
        self._counters.move(JobState.RUNNING, JobState.QUEUED if retry else JobState.FAILED)
        verb = "will retry" if retry else "job failed"
        log.warning("job %s: prediction failed with %s (%s)", flight.job_id, name, verb)
        self._release(slot)

    # ------------------------------------------------------------------ downloads

    def _start_download(self, job_pk: int, outputs: list[PendingOutput] | None = None) -> None:
        self._downloading += 1
        self._tg.start_soon(self._download_job, job_pk, outputs)

    async def _download_job(self, job_pk: int, outputs: list[PendingOutput] | None) -> None:
        try:
            async with self._download_gate:
                for output in (
                    outputs if outputs is not None else self.store.pending_outputs(job_pk)
                ):
                    if not await self._download(output):
                        self._counters.move(JobState.DOWNLOADING, JobState.FAILED)
                        return
                self._counters.move(JobState.DOWNLOADING, JobState.COMPLETED)
        finally:
            self._downloading -= 1
            self._notify()

    async def _download(self, output: PendingOutput) -> bool:
        assert self._cdn is not None
        while True:
            try:
                saved = await save_output(
                    self._cdn,
                    output.url,
                    self.settings.out_dir,
                    output.batch_id,
                    output.job_id,
                    output.idx,
                )
            except OutputError as exc:
                final = not exc.retryable or output.tries + 1 >= self.settings.download_tries
                self.store.record_download_failed(output, str(exc), final=final)
                if final:
                    log.error("job %s: output %d not saved: %s", output.job_id, output.idx, exc)
                    return False
                await anyio.sleep(self._backoff(output.tries))
                output = replace(output, tries=output.tries + 1)
                continue
            self.store.record_saved(
                output, path=str(saved.path), sha256=saved.sha256, size=saved.size, url=saved.url
            )
            return True

    # ------------------------------------------------------------------ reporting

    def snapshot(self) -> Progress:
        return Progress(
            counts={k: v for k, v in self._counters.jobs.items() if v},
            in_flight=self._slots_used(),
            credits=self._counters.credits,
            elapsed=self.clock() - self._started,
            finished_this_run=self._counters.finished,
            stopping=self._stopping,
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
                if self._stopping is not None:
                    # Second signal: do not even wait for /run answers (their attempts
                    # become uncertain, and are resent on resume).
                    self._hard_stop = True
                    self._abort(Interrupted("stopped at once: run `orchestrator resume`"))
                    return
                self.request_stop(f"received {signal.Signals(signum).name}")
