"""What the parts of one run share: the slots, why it stops, and the wake-ups.

A slot is a prediction in flight (or a `/run` on its way): at most `concurrency`
of them, counting those recovered from a crash. The submitter, the poller and the
downloads change this state and call `notify()`; whoever waits on a change wakes.
"""

from __future__ import annotations

import enum
import logging
import random
from dataclasses import dataclass

import anyio

from .. import policy
from ..clock import Clock
from ..config import Settings
from ..errors import StopRun
from ..polling import Candidate
from ..store import Flight

log = logging.getLogger("orchestrator")


class StopReason(enum.Enum):
    """Why a run stops submitting before its queue is empty."""

    INTERRUPTED = "interrupted"  # Ctrl-C, SIGTERM, request_stop()
    OUT_OF_CREDITS = "out of credits"
    BUDGET = "credit cap reached"  # --max-credits
    OUTPUTS_UNWRITABLE = "outputs cannot be written"

    @property
    def drains(self) -> bool:
        """Whether predictions in flight are still polled and saved before the run
        ends (they are paid for); an interrupted run waits only for `/run` answers."""
        return self is not StopReason.INTERRUPTED


@dataclass
class Slot:
    """A prediction in flight, with what the poller knows of it."""

    flight: Flight
    cand: Candidate
    last_status: str = "starting"


class RunState:
    """The shared state of one run; every change is followed by `notify()`."""

    def __init__(self, settings: Settings, clock: Clock, rng: random.Random):
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.slots: dict[int, Slot] = {}  # by attempt pk
        self.sending = 0  # `/run` requests under way
        self.downloading = 0  # jobs whose outputs are being saved
        self.submitter_done = False
        self.stopping: StopReason | None = None
        self.stop_detail = ""
        self.abort_error: StopRun | None = None  # stop at once, and raise this
        self.hard_stop = False  # a second signal: do not even wait for /run answers
        # Shown on the progress bar: 429 answers (waited out), and predictions or
        # downloads tried again after a failure.
        self.rate_limited = 0
        self.retries = 0
        self._transport_failures = 0
        self._changed = anyio.Event()

    def __repr__(self) -> str:
        return (
            f"<RunState slots={len(self.slots)} sending={self.sending}"
            f" downloading={self.downloading} stopping={self.stopping}>"
        )

    # -- wake-ups -----------------------------------------------------------------

    def notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_change(self, timeout: float | None = None) -> None:
        """Until the next `notify()`, or at most `timeout` seconds."""
        changed = self._changed
        if timeout is None:
            await changed.wait()
            return
        with anyio.move_on_after(max(0.0, timeout)):
            await changed.wait()

    # -- stopping -----------------------------------------------------------------

    def request_stop(
        self, detail: str = "interrupted", reason: StopReason = StopReason.INTERRUPTED
    ) -> None:
        """Stop submitting. An interrupted run ends once the `/run` requests under way
        are answered; other reasons let the predictions in flight finish first."""
        if self.stopping is None:
            self.stopping, self.stop_detail = reason, detail
            later = "are finished first" if reason.drains else "are picked up by resume"
            log.warning("stopping: %s; predictions in flight %s", detail, later)
        self.notify()

    def abort(self, error: StopRun) -> None:
        if self.abort_error is None:
            self.abort_error = error
        self.notify()

    def stopped(self) -> bool:
        """No more jobs are to be submitted."""
        return self.stopping is not None or self.abort_error is not None

    def finished(self) -> bool:
        """Whether the run can end now."""
        if self.hard_stop or (self.submitter_done and not self.busy()):
            return True
        # Interrupted or aborted: wait only for `/run` answers, so that no attempt is
        # left without its prediction id; polling and downloads resume later.
        interrupted = self.stopping is not None and not self.stopping.drains
        return (interrupted or self.abort_error is not None) and not self.sending

    def busy(self) -> bool:
        return bool(self.slots or self.sending or self.downloading)

    def slots_used(self) -> int:
        return len(self.slots) + self.sending

    # -- the API's health ---------------------------------------------------------

    def transport_ok(self) -> None:
        self._transport_failures = 0

    def transport_failed(self, what: str) -> float:
        """One more request without an answer; returns the backoff before the next.
        Too many in a row stop the run."""
        self._transport_failures += 1
        limit = self.settings.max_transport_failures
        if self._transport_failures >= limit:
            self.abort(
                StopRun(
                    f"the API did not answer {limit} requests in a row (last: {what}); "
                    "check the network or FASHN_BASE_URL, then run `orchestrator resume`"
                )
            )
        return self.backoff(self._transport_failures)

    def backoff(self, tries: int) -> float:
        s = self.settings
        return policy.backoff(tries, base=s.backoff_base, cap=s.backoff_cap, rng=self.rng)
