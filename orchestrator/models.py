"""Job, attempt and status types. No I/O here."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class JobState(enum.StrEnum):
    QUEUED = "queued"  # waiting for a slot (first time or for a retry)
    RUNNING = "running"  # an attempt is being sent or is in flight
    DOWNLOADING = "downloading"  # the prediction completed; outputs are being saved
    COMPLETED = "completed"  # every output is on disk
    FAILED = "failed"  # permanently failed; `error` says why
    CANCELED = "canceled"  # taken out of the queue before it was sent (`orchestrator cancel`)

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.FAILED, JobState.CANCELED)


# A run succeeded when every job of its batches ended in one of these states.
SUCCESSFUL_STATES = frozenset({JobState.COMPLETED, JobState.CANCELED})


class AttemptState(enum.StrEnum):
    PENDING = "pending"  # row committed; POST /run may or may not have reached the API
    SUBMITTED = "submitted"  # the API returned a prediction id
    COMPLETED = "completed"
    FAILED = "failed"  # the prediction failed (runtime error, timeout, 404)
    REJECTED = "rejected"  # the API answered /run with an error: nothing was created
    REUSED = "reused"  # no prediction: the outputs of an earlier, identical job (--reuse)


# Statuses the API reports; the SDK also knows canceled and time_out.
TERMINAL_STATUSES = frozenset({"completed", "failed", "canceled", "time_out"})


@dataclass(frozen=True)
class Location:
    """Where a job came from in its manifest."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


# One encoder for every call: json.dumps builds a new one each time, which a
# million-row manifest notices. The same settings give the same text.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def canonical_json(value: Any) -> str:
    return _encode(value)


def content_token(uri: str) -> str:
    """What stands for a data URI in a fingerprint: its sha256."""
    return "sha256:" + hashlib.sha256(uri.encode()).hexdigest()


def fingerprint(
    model_name: str, inputs: Mapping[str, Any], tokens: Mapping[str, str] | None = None
) -> str:
    """The one hash of what a job asks for: same model and inputs, same fingerprint.

    Each data URI counts as its content token, so the fingerprint follows image
    content, however the image was written, and hashing it costs nothing per row
    when `tokens` (input name -> token, as the manifest reader made them) are given;
    without them, they are computed here. A manifest's derived job ids are its first
    hex digits; the queue compares it to tell a changed job, and to find one to reuse.
    """
    if tokens is None:
        tokens = {
            key: content_token(value)
            for key, value in inputs.items()
            if isinstance(value, str) and value.startswith("data:")
        }
    basis = {**inputs, **tokens} if tokens else inputs
    return fingerprint_of_json(model_name, _encode(basis))


def fingerprint_of_json(model_name: str, inputs_json: str) -> str:
    """`fingerprint` from the canonical JSON of the inputs, data URIs already tokens:
    the text hashed is that of [model_name, inputs]. Ingest, which has made that JSON
    already, calls it directly for jobs without data URIs."""
    return hashlib.sha256(f"[{_name_json(model_name)},{inputs_json}]".encode()).hexdigest()


@functools.lru_cache(maxsize=256)
def _name_json(name: str) -> str:
    """A model's name as JSON: a catalog has few models, and a million rows."""
    return _encode(name)


@dataclass(frozen=True)
class JobSpec:
    """One validated job from a manifest, ready to queue."""

    id: str
    model_name: str
    inputs: Mapping[str, Any]
    priority: int = 0
    location: Location | None = field(default=None, compare=False)
    # The content tokens of the inputs that are data URIs, when the reader has them.
    tokens: Mapping[str, str] | None = field(default=None, compare=False, repr=False)
    # The catalog's own data (SKU, product page): kept and reported, never sent to
    # the API and not part of the fingerprint.
    meta: Mapping[str, Any] | None = None
    # Whose API key runs it (see orchestrator/fleet/accounts.py); not in the fingerprint.
    account: str = "default"

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.model_name, self.inputs, self.tokens)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a run, for whoever displays it."""

    counts: dict[str, int]
    in_flight: int
    credits: int
    elapsed: float
    finished_this_run: int
    stopping: str | None
    rate_limited: int = 0  # 429 answers this run (each one waited out, never a failure)
    retries: int = 0  # predictions and downloads tried again after a failure, this run

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def finished(self) -> int:
        """Jobs of the run's batches in a terminal state."""
        return sum(n for state, n in self.counts.items() if JobState(state).terminal)

    @property
    def rate(self) -> float:
        """Jobs finished per second in this run."""
        return self.finished_this_run / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        left = self.counts.get(JobState.QUEUED, 0) + self.counts.get(JobState.RUNNING, 0)
        left += self.counts.get(JobState.DOWNLOADING, 0)
        return left / self.rate if self.rate > 0 else None
