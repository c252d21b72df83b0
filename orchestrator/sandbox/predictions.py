"""Predictions and their lifecycle: when each one is in which status, what a failed one
reports, and the book of every prediction with a heap of finish times for those in flight.

Lifecycles are computed lazily from the clock: a prediction is in flight from its
acceptance to its finish time whether or not anyone asks about it, and the heap keeps
that bookkeeping O(log n).
"""

from __future__ import annotations

import hashlib
import heapq
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

# The share of a prediction's life spent in "starting", then up to "in_queue".
_STARTING, _QUEUED = 0.1, 0.3

# What a failed prediction's `error.message` says, by name (other names: a generic text).
ERROR_MESSAGES = {
    "ImageLoadError": "Unable to load an image from the provided inputs.",
    "ContentModerationError": "Prohibited content detected in an input image.",
    "PoseError": "Unable to detect a body pose in the model or garment image.",
    "InputValidationError": "Invalid parameter combination.",
    "PipelineError": "Unexpected pipeline error. Retry; failures are not charged.",
    "ThirdPartyError": "A third-party processor refused the inputs.",
    "3rdPartyProviderError": "An external provider failed. Retry.",
    "InternalServerError": "General server error. Retry.",
    "PollingTimeout": "The prediction timed out before completion.",
}


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the sandbox saw it; times are in `time.monotonic()` seconds."""

    id: str
    model_name: str
    fingerprint: str
    submission: int  # 0 for the first accepted /run of this fingerprint, then 1, 2, ...
    accepted_at: float
    finished_at: float
    status: str  # as of the moment the record was taken
    error: str | None  # the failure's name, set from acceptance when it will fail
    cost: int  # the x-fashn-credits-used this prediction announced
    credits: int  # charged net of the refund: 0 once a failure is refunded
    first_seen_finished_at: float | None  # first status answer that reported it terminal
    output_urls: tuple[str, ...]  # CDN URLs (empty for base64 outputs)
    base64: bool
    lost_answer: bool  # created and charged, but the /run answer was lost
    expires_at: float  # after this the API forgets it
    webhook: bool = False  # its /run asked for a webhook
    # The first webhook delivery that was answered 2xx: when it was sent (the moment the
    # news left, as first_seen_finished_at is for a status answer), when answered.
    first_notified_at: float | None = None
    notice_acknowledged_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class Prediction:
    """One accepted prediction, its fate fixed at acceptance; mutable bookkeeping."""

    id: str
    model_name: str
    fingerprint: str
    submission: int
    accepted_at: float
    finished_at: float
    error_name: str | None
    error_as_string: bool
    cost: int
    outputs: int
    base64: bool
    mime: str
    lost_answer: bool
    expires_at: float
    refunded: bool = False
    first_seen_finished_at: float | None = None
    webhook: bool = False
    first_notified_at: float | None = None
    notice_acknowledged_at: float | None = None

    def status_at(self, now: float) -> str:
        if now >= self.finished_at:
            return "failed" if self.error_name else "completed"
        elapsed = (now - self.accepted_at) / (self.finished_at - self.accepted_at)
        if elapsed < _STARTING:
            return "starting"
        return "in_queue" if elapsed < _QUEUED else "processing"

    def error_body(self) -> dict[str, str] | str:
        """The status answer's `error`: {"name", "message"}, or the spec's "Name: message"."""
        name = self.error_name or "InternalServerError"
        message = ERROR_MESSAGES.get(name, f"The prediction failed ({name}).")
        if self.error_as_string:
            return f"{name}: {message}"
        return {"name": name, "message": message}

    def record(self, now: float, output_urls: tuple[str, ...]) -> PredictionRecord:
        return PredictionRecord(
            id=self.id,
            model_name=self.model_name,
            fingerprint=self.fingerprint,
            submission=self.submission,
            accepted_at=self.accepted_at,
            finished_at=self.finished_at,
            status=self.status_at(now),
            error=self.error_name,
            cost=self.cost,
            credits=0 if self.refunded else self.cost,
            first_seen_finished_at=self.first_seen_finished_at,
            output_urls=output_urls,
            base64=self.base64,
            lost_answer=self.lost_answer,
            expires_at=self.expires_at,
            webhook=self.webhook,
            first_notified_at=self.first_notified_at,
            notice_acknowledged_at=self.notice_acknowledged_at,
        )


class PredictionBook:
    """Every prediction ever accepted, by id in acceptance order, and those in flight."""

    def __init__(self) -> None:
        self.by_id: dict[str, Prediction] = {}
        self.submissions: Counter[str] = Counter()  # accepted runs per job fingerprint
        self.in_flight = 0
        self.max_in_flight = 0
        self._finishing: list[tuple[float, int, Prediction]] = []  # heap of finish times

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, prediction_id: str) -> Prediction | None:
        return self.by_id.get(prediction_id)

    def next_submission(self, key: str) -> int:
        """Count one more accepted run of the job fingerprint `key`; its 0-based number."""
        n = self.submissions[key]
        self.submissions[key] = n + 1
        return n

    def new_id(self, seed: int, key: str, n: int) -> str:
        """An id like the API's (uuid-shaped, then "-u1"), fixed by (seed, job, n)."""
        text = f"{seed}|id|{key}|{n}"
        h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        base = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        suffix = 1
        while f"{base}-u{suffix}" in self.by_id:
            suffix += 1
        return f"{base}-u{suffix}"

    def add(self, prediction: Prediction) -> None:
        self.by_id[prediction.id] = prediction
        heapq.heappush(self._finishing, (prediction.finished_at, len(self.by_id), prediction))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def retire(self, now: float) -> list[Prediction]:
        """Take every prediction finished by `now` out of flight; they are returned."""
        done = []
        heap = self._finishing
        while heap and heap[0][0] <= now:
            done.append(heapq.heappop(heap)[2])
            self.in_flight -= 1
        return done

    def next_finish(self) -> float:
        """When the earliest prediction in flight finishes (some must be in flight)."""
        return self._finishing[0][0]
