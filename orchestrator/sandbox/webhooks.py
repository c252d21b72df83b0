"""Webhooks as FASHN sends them: when a `/run` carried `webhook_url`, the prediction's
terminal `{id, status, output, error}` is POSTed there when it completes or fails, and a
non-2xx answer (or none) is retried up to 5 times over about 5 minutes.

This is the outbox: which deliveries are due when, with the faults drawn at acceptance
(`webhook_drop`, `webhook_delay`, `webhook_duplicate`). Pure bookkeeping on the sandbox's
clock, under the state's lock; the sender (webhook_sender.py) does the HTTP.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .config import SandboxConfig
from .faults import draw
from .predictions import Prediction

# Seconds (unscaled) before each retry of a delivery that was not answered 2xx: five
# retries, the last about 5 minutes after the first try.
RETRY_DELAYS = (10.0, 30.0, 60.0, 90.0, 120.0)
MAX_URL = 2048


def url_problem(url: str) -> str | None:
    """Why `url` cannot be a webhook URL, or None when it can."""
    if len(url) > MAX_URL:
        return f"webhook_url is longer than {MAX_URL} characters"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "webhook_url must be an absolute http(s) URL"
    return None


def reroute(url: str, listeners: tuple[str, ...]) -> str:
    """`url` sent to the listener after the one it names (see SandboxConfig)."""
    parts = urlsplit(url)
    if parts.netloc not in listeners:
        return url
    after = listeners[(listeners.index(parts.netloc) + 1) % len(listeners)]
    return urlunsplit(parts._replace(netloc=after))


@dataclass(slots=True)
class Delivery:
    """One POST of a prediction's webhook, due at `due` (sandbox clock)."""

    prediction_id: str
    url: str
    due: float
    retries: int = 0  # retries made so far (0 on the first try)
    sent_at: float | None = None  # when it was taken out to be sent


class WebhookOutbox:
    """Deliveries by due time, and counts of what happened to them: scheduled, dropped,
    delayed, duplicated, sent, delivered, retried, abandoned."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config  # read live, like every part of the sandbox
        self.counts: Counter[str] = Counter()
        self.on_scheduled: Callable[[], None] | None = None  # wakes the sender
        self._heap: list[tuple[float, int, Delivery]] = []
        self._seq = 0

    def schedule(self, prediction: Prediction, url: str) -> None:
        """At acceptance: the webhook is due when the prediction finishes, its faults
        drawn from (seed, job fingerprint, n-th submission) like its fate."""
        faults, seed = self.config.faults, self.config.seed
        key = (prediction.fingerprint, prediction.submission)
        self.counts["scheduled"] += 1
        if draw(seed, "webhook_drop", *key) < faults.webhook_drop:
            self.counts["dropped"] += 1
            return
        url = reroute(url, self.config.webhook_reroute)
        due = prediction.finished_at
        if draw(seed, "webhook_delay", *key) < faults.webhook_delay:
            low, high = faults.webhook_delay_seconds
            due += self.config.scaled(low + (high - low) * draw(seed, "webhook_delay_for", *key))
            self.counts["delayed"] += 1
        self._push(Delivery(prediction.id, url, due))
        if draw(seed, "webhook_duplicate", *key) < faults.webhook_duplicate:
            self._push(Delivery(prediction.id, url, due))
            self.counts["duplicated"] += 1
        if self.on_scheduled is not None:
            self.on_scheduled()

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def take_due(self, now: float) -> list[Delivery]:
        """Every delivery due by `now`, taken out of the outbox."""
        due = []
        while self._heap and self._heap[0][0] <= now:
            delivery = heapq.heappop(self._heap)[2]
            delivery.sent_at = now
            due.append(delivery)
        self.counts["sent"] += len(due)
        return due

    def answered(self, delivery: Delivery, ok: bool, now: float) -> None:
        """A delivery's outcome: not 2xx (or no answer) is retried while retries remain."""
        if ok:
            self.counts["delivered"] += 1
        elif delivery.retries < len(RETRY_DELAYS):
            wait = self.config.scaled(RETRY_DELAYS[delivery.retries])
            self._push(
                Delivery(delivery.prediction_id, delivery.url, now + wait, delivery.retries + 1)
            )
            self.counts["retried"] += 1
            # The sender may be asleep with nothing due: the retry must wake it.
            if self.on_scheduled is not None:
                self.on_scheduled()
        else:
            self.counts["abandoned"] += 1

    def _push(self, delivery: Delivery) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (delivery.due, self._seq, delivery))
