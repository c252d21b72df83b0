"""The sandbox's live account: pure logic behind an injected clock, and its inspection.

Each `handle_*` method takes what an HTTP request carried and returns an `Answer`;
app.py only translates. Nothing sleeps or does I/O, so tests drive it with a
hand-moved clock. The parts, one concept each:
    handlers.py     the four requests: run, status, credits, download
    predictions.py  the prediction record, its lifecycle, the book of predictions in flight
    account.py      the balance: charges and refunds
    admission.py    the rate windows and the in-flight cap
    faults.py       fault injection: seeded draws and a job's own markers
    cdn.py          output URLs and files;  validation.py  the /run body
    webhooks.py     the webhooks due, with their faults and retries (sent by webhook_sender.py)
    answers.py      the Answer and the API's error bodies
This module holds them behind one lock and answers what tests and /_sandbox ask.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .admission import max_in_window, retry_headers
from .answers import Answer
from .config import SandboxConfig
from .handlers import Clock, Handlers
from .predictions import PredictionRecord
from .validation import BadRequest, validate_run
from .webhooks import Delivery


class SandboxState:
    """The live account: call `handle_*` per request, read the rest to inspect."""

    def __init__(self, config: SandboxConfig, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._handlers = Handlers(config, clock)
        # Every account by its Authorization header: the first key's, then the others
        # (their own seeds, so that prediction ids never repeat across accounts).
        self._accounts = {f"Bearer {config.api_key}": self._handlers}
        for n, key in enumerate(config.extra_keys, 1):
            other = replace(config, api_key=key, extra_keys=(), seed=config.seed + 7919 * n)
            self._accounts[f"Bearer {key}"] = Handlers(other, clock)

    def account(self, key: str) -> SandboxState:
        """The same sandbox, inspected as the account of `key` (every method below
        reads that account's arrivals, predictions, balance and statistics)."""
        view = object.__new__(SandboxState)
        view.clock, view._lock, view._accounts = self.clock, self._lock, self._accounts
        view._handlers = self._accounts[f"Bearer {key}"]
        return view

    def _by_key(self, authorization: str | None) -> Handlers:
        """The account a request's key names; the first one (which answers 401) if none."""
        return self._accounts.get(authorization or "", self._handlers)

    def _holding(self, prediction_id: str) -> Handlers:
        for handlers in self._accounts.values():
            if prediction_id in handlers.book.by_id:
                return handlers
        return self._handlers

    def __repr__(self) -> str:
        parts = self._handlers
        return (
            f"<SandboxState predictions={len(parts.book)} in_flight={parts.book.in_flight}"
            f" balance={parts.account.balance} rejections={dict(parts.rejections)}>"
        )

    @property
    def config(self) -> SandboxConfig:
        return self._handlers.config

    @config.setter
    def config(self, config: SandboxConfig) -> None:
        with self._lock:
            self._handlers.config = config

    @property
    def public_url(self) -> str:
        """Where output URLs point; the server sets it once it knows its port."""
        return self._handlers.cdn.public_url

    @public_url.setter
    def public_url(self, url: str) -> None:
        for handlers in self._accounts.values():  # every account's webhooks carry it
            handlers.cdn.public_url = url

    # -- requests ---------------------------------------------------------------

    def handle_run(
        self, authorization: str | None, body: bytes, webhook_url: str | None = None
    ) -> Answer:
        with self._lock:
            return self._by_key(authorization).run(authorization, body, webhook_url)

    def handle_status(
        self, authorization: str | None, prediction_id: str, *, origin: str | None = None
    ) -> Answer:
        """`origin` (http://host:port, as the client dialled it) roots the output URLs;
        default: `public_url`."""
        with self._lock:
            return self._by_key(authorization).status(authorization, prediction_id, origin)

    def handle_credits(self, authorization: str | None) -> Answer:
        with self._lock:
            return self._by_key(authorization).credits(authorization)

    def handle_download(self, prediction_id: str, name: str) -> Answer:
        """An output file; no auth, like a signed CDN URL."""
        with self._lock:
            return self._holding(prediction_id).download(prediction_id, name)

    # -- webhooks (for the sender) ----------------------------------------------

    def on_webhook_scheduled(self, wake: Callable[[], None] | None) -> None:
        """`wake()` is called (under the lock) whenever a webhook is scheduled."""
        with self._lock:
            for handlers in self._accounts.values():
                handlers.outbox.on_scheduled = wake

    def next_webhook_due(self) -> float | None:
        with self._lock:
            due = [h.outbox.next_due() for h in self._accounts.values()]
            return min((d for d in due if d is not None), default=None)

    def due_webhooks(self) -> list[tuple[Delivery, bytes]]:
        with self._lock:
            return [d for h in self._accounts.values() for d in h.due_webhooks()]

    def webhook_answered(self, delivery: Delivery, ok: bool) -> None:
        with self._lock:
            self._holding(delivery.prediction_id).webhook_answered(delivery, ok)

    # -- inspection -------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def arrivals(self, endpoint: str) -> list[float]:
        """Times of every authenticated request to an API endpoint (every download for "cdn")."""
        with self._lock:
            return list(self._handlers.admission.arrivals[endpoint])

    def max_in_window(self, endpoint: str, window: float | None = None) -> int:
        """Most arrivals in any sliding window of `window` real seconds.

        Default: the endpoint's configured window, or FASHN's (scaled) when lifted.
        """
        with self._lock:
            return self._handlers.admission.max_in_window(endpoint, window)

    def max_in_flight(self) -> int:
        with self._lock:
            return self._handlers.book.max_in_flight

    def in_flight(self) -> int:
        with self._lock:
            self._handlers.advance()
            return self._handlers.book.in_flight

    @property
    def rejections(self) -> dict[str, int]:
        """Refusals by reason: Unauthorized, RateLimitExceeded, BadRequest,
        ConcurrencyLimitExceeded, OutOfCredits, NotFound, Expired."""
        with self._lock:
            return dict(self._handlers.rejections)

    @property
    def faults_injected(self) -> dict[str, int]:
        """Injected faults by kind: http_500, drop, slow, lost_answer."""
        with self._lock:
            return dict(self._handlers.faults.injected)

    @property
    def webhooks(self) -> dict[str, int]:
        """Webhook deliveries by outcome: scheduled, dropped, delayed, duplicated, sent,
        delivered, retried, abandoned."""
        with self._lock:
            return dict(self._handlers.outbox.counts)

    @property
    def balance(self) -> int:
        with self._lock:
            self._handlers.advance()
            return self._handlers.account.balance

    @property
    def credits_charged(self) -> int:
        """Credits taken so far, net of refunds for failed predictions."""
        with self._lock:
            self._handlers.advance()
            return self._handlers.account.charged

    def runs_by_fingerprint(self) -> dict[str, int]:
        """Accepted /run requests (lost answers included) per job fingerprint."""
        with self._lock:
            return dict(self._handlers.book.submissions)

    def predictions(self) -> list[PredictionRecord]:
        """Every prediction ever accepted, in acceptance order, expired ones included."""
        with self._lock:
            now = self._handlers.advance()
            cdn = self._handlers.cdn
            return [p.record(now, cdn.urls(p)) for p in self._handlers.book.by_id.values()]

    def prediction(self, prediction_id: str) -> PredictionRecord:
        with self._lock:
            now = self._handlers.advance()
            prediction = self._handlers.book.by_id[prediction_id]
            return prediction.record(now, self._handlers.cdn.urls(prediction))

    def output_bytes(self, prediction_id: str, index: int) -> bytes:
        """What the CDN serves for an output, whatever its expiry."""
        with self._lock:
            prediction = self._handlers.book.by_id[prediction_id]
            if not 0 <= index < prediction.outputs:
                raise IndexError(f"{prediction_id} has {prediction.outputs} output(s)")
            return self._handlers.cdn.file(prediction, index)

    def stats(self) -> dict[str, Any]:
        """The numbers /_sandbox/stats serves."""
        with self._lock:
            parts = self._handlers
            now = parts.advance()
            book, admission = parts.book, parts.admission
            statuses = Counter(p.status_at(now) for p in book.by_id.values())
            windows = {e: w for e, w in admission.windows.items() if w is not None}
            return {
                "now": now,
                "time_scale": parts.config.time_scale,
                "balance": parts.account.balance,
                "credits_charged": parts.account.charged,
                "in_flight": book.in_flight,
                "max_in_flight": book.max_in_flight,
                "arrivals": {e: len(a) for e, a in admission.arrivals.items()},
                "requests": {e: parts.received[e] for e in ("run", "status", "credits")},
                "windows": windows,
                "max_in_window": {
                    e: max_in_window(admission.arrivals[e], w) for e, w in windows.items()
                },
                "rejections": dict(parts.rejections),
                "faults": dict(parts.faults.injected),
                "webhooks": dict(parts.outbox.counts),
                "predictions": {"total": len(book), **statuses},
                "accepted_runs": sum(book.submissions.values()),
                "distinct_fingerprints": len(book.submissions),
            }


__all__ = [
    "Answer",
    "BadRequest",
    "Clock",
    "PredictionRecord",
    "SandboxState",
    "max_in_window",
    "retry_headers",
    "validate_run",
]
