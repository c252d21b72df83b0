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
    # Another process runs the queue (PostgreSQL): nothing was recovered, since what
    # looks interrupted may be that process's work.
    others: bool = False


@dataclass(frozen=True)
class BatchInfo:
    """One batch as `orchestrator list` shows it; times are wall-clock seconds."""

    id: str
    manifest: str
    counts: dict[str, int]  # jobs by state
    credits: int  # spent, net of refunds
    first_activity: float  # when it was first queued
    last_activity: float  # the latest change to it or to one of its jobs

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Canceled:
    """What `orchestrator cancel` did: the queued jobs it canceled, and the others it
    was asked about (every job of the batch, or those named), by state."""

    canceled: int
    others: dict[str, int]  # by state; "canceled" counts those canceled before


@dataclass(frozen=True)
class Requeued:
    """Failed jobs given another chance: downloaded again (their prediction completed
    and its URLs are still valid) or predicted again; the others left failed, by the
    name of their failure."""

    downloads: int
    predictions: int
    skipped: dict[str, int]

    @property
    def total(self) -> int:
        return self.downloads + self.predictions


@dataclass(frozen=True)
class JobOrigin:
    """Where a job came from: its batch, id, model, and manifest file and line."""

    batch_id: str
    job_id: str
    model_name: str
    manifest: str
    line: int | None  # None for jobs queued before lines were kept
