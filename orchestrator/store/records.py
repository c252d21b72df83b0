"""What the store hands out: frozen records, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    added: int
    unchanged: int
    replaced: int
    reused: int = 0  # jobs that took an earlier job's outputs (--reuse)


@dataclass(frozen=True)
class ClaimedJob:
    """A job taken from the queue with the attempt row created for it."""

    job_pk: int
    batch_id: str
    job_id: str
    model_name: str
    inputs: dict[str, Any]
    failures: int
    attempt_pk: int
    request_pk: int


@dataclass(frozen=True)
class Flight:
    """A prediction that has an id and was not yet seen terminal."""

    job_pk: int
    batch_id: str
    job_id: str
    model_name: str
    attempt_pk: int
    prediction_id: str
    accepted_at: float
    failures: int


@dataclass(frozen=True)
class PendingOutput:
    output_pk: int
    job_pk: int
    attempt_pk: int
    batch_id: str
    job_id: str
    idx: int
    url: str
    tries: int
    # A reused output (--reuse): the saved file it takes, and that file's sha256.
    source_path: str | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class Recovery:
    """What an earlier, interrupted run left behind."""

    flights: list[Flight]
    downloads: list[int]  # job pks with outputs still to save
    lost: int  # attempts sent without an answer: resubmitted, marked uncertain
    unsent: int  # attempts created but never sent: dropped
