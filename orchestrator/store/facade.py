"""The facade `Store` and what it hands out (see the package's docstring): every
module of the store is imported here, and so only when a command opens a queue."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Engine

from ..clock import SYSTEM, Clock
from ..errors import OrchestratorError, Problem, RefusedJob
from ..models import JobSpec
from ..naming import NameTemplate
from . import (
    journal,
    messages,
    outputs,
    queue,
    reads,
    recovery,
    webhooks,
)
from .batches import Batches
from .blobs import BLOB_THRESHOLD
from .connection import (
    Database,
    NoQueue,
    _current_revision,
    _migrations_dir,
    _newest_revision,
    check_exists,
    discard,
)
from .fleet import Fleet, Gate
from .location import DbLocation
from .names import Naming
from .records import (
    BatchInfo,
    Canceled,
    ClaimedJob,
    Flight,
    IngestResult,
    JobOrigin,
    PendingOutput,
    Recovery,
    Requeued,
)
from .recovery import Chooser, Takeover
from .relay import Holding, Relay
from .requests import RequestLog
from .sheet import SheetReads
from .spend import Spend

_changed_message = messages.changed_jobs  # its name in the single-module store


# ingest (with duplicates, staging, names' checks) and reuse are imported when a
# command queues jobs or reuses outputs: `status` and a run's start never do.
def _ingest(
    db: Database, batch_id: str, manifest: str, entries: Iterable[Any], **options: Any
) -> IngestResult:
    from . import ingest

    return ingest.ingest(db, batch_id, manifest, entries, **options)


def _check(
    db: Database, batch_id: str, manifest: str, entries: Iterable[Any], **options: Any
) -> None:
    from . import ingest

    ingest.check(db, batch_id, manifest, entries, **options)


def _reuse_failed(db: Database, output: PendingOutput, error: str) -> None:
    from . import reuse

    reuse.reuse_failed(db, output, error)


class Store:
    """All persistence behind one class; migrates the database when it opens it."""

    def __init__(
        self,
        location: str | os.PathLike[str] | DbLocation,
        *,
        durable: bool = True,
        create: bool = True,
        clock: Clock = SYSTEM,
    ):
        """Open (and migrate) the queue at `location` (a SQLite path, or what
        DbLocation.of reads); with create=False, a missing queue is a UsageError and
        nothing is created. Every time the database records is `clock`'s wall time;
        durable=False skips SQLite's disk sync before `POST /run`."""
        self.location = DbLocation.of(location)
        self.path = self.location.path  # the SQLite file; None on PostgreSQL
        self._db = Database(self.location, durable=durable, clock=clock, create=create)
        self.spend = Spend(self._db)  # rates, open costs, balance checks
        self.naming = Naming(self._db)  # where outputs go
        self.requests = RequestLog(self._db)  # /run and /status requests sent
        self.batches = Batches(self._db)  # the list of batches, cancel
        self.sheet = SheetReads(self._db)  # what the contact sheet reads
        self.takeover = Takeover(self._db)  # recovery of given attempts (many processes)
        self.fleet = Fleet(self._db)  # workers, leases, and each account's shared limits
        self.relay = Relay(self._db)  # a fleet's webhooks: tokens, who holds an attempt

    @property
    def engine(self) -> Engine:
        return self._db.engine

    @property
    def _conn(self) -> Connection | None:
        """The store's own connection, once a transaction has opened it."""
        return self._db.conn

    def close(self) -> None:
        self._db.close()

    @staticmethod
    def check_exists(location: str | os.PathLike[str] | DbLocation) -> None:
        check_exists(DbLocation.of(location))

    def discard(self) -> None:
        """Close and delete a SQLite database that this process has just created (a
        PostgreSQL database stays, with the queue's empty tables)."""
        self.close()
        discard(self.location)

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        batch_id: str,
        manifest: str,
        entries: Iterable[JobSpec | Problem | RefusedJob],
        *,
        replace: bool = False,
        reuse: bool = False,
        template: NameTemplate | None = None,
    ) -> IngestResult:
        """Queue a manifest's jobs (what Manifest.entries() yields) in one transaction:
        all of them, or, on any problem, none (ManifestError lists them). `template`
        (None: the batch's own) must name every output (NameTemplateError); with
        `reuse`, jobs whose outputs an earlier job made take them (see reuse.py)."""
        return _ingest(
            self._db,
            batch_id,
            manifest,
            entries,
            replace=replace,
            reuse_outputs=reuse,
            template=template,
        )

    def check_manifest(
        self,
        batch_id: str,
        manifest: str,
        entries: Iterable[JobSpec | Problem | RefusedJob],
        *,
        replace: bool = False,
    ) -> None:
        """Every check `ingest` makes (the same errors), writing nothing."""
        _check(self._db, batch_id, manifest, entries, replace=replace)

    # ------------------------------------------------------------------ recovery

    def retry_failed(
        self, batches: Sequence[str] | None, *, url_ttl: float, chosen: Chooser | None = None
    ) -> Requeued:
        """Failed jobs picked by `chosen(job_id, failure_name)` (None: all) run again,
        downloaded again when they can be; the others are counted by failure name."""
        return recovery.requeue_failed(self._db, batches, url_ttl=url_ttl, chosen=chosen)

    def recover(self) -> Recovery:
        """Put the queue back in order after a run that did not finish, if no other
        process runs it (see recovery.recover); from then on, this process runs it."""
        return recovery.recover(self._db)

    # ------------------------------------------------------------------ submit

    def claim_next(
        self,
        batches: Sequence[str] | None,
        *,
        log_request: bool = True,
        admit: Callable[[str, dict[str, Any]], bool] | None = None,
        gate: Gate | None = None,
    ) -> ClaimedJob | None:
        """Take the next ready job and commit an attempt row for the `/run` about to go;
        None when no job is ready, or `admit(model, inputs)` refuses the next one, or
        the `gate` (a fleet's account) has no free slot."""
        return queue.claim_next(self._db, batches, log_request=log_request, admit=admit, gate=gate)

    def has_ready(self, batches: Sequence[str] | None) -> bool:
        return queue.has_ready(self._db, batches)

    def queue_state(self, batches: Sequence[str] | None) -> tuple[int, float | None]:
        return queue.queue_state(self._db, batches)

    def record_refused(self, attempt_pk: int, request_pk: int, reason: str = "429") -> None:
        queue.record_refused(self._db, attempt_pk, request_pk, reason)

    def resend(self, attempt_pk: int, *, log_request: bool = True) -> int:
        return queue.resend(self._db, attempt_pk, log_request=log_request)

    def record_accepted(
        self, claimed: ClaimedJob, prediction_id: str, credits: int, request_pk: int
    ) -> Flight:
        return queue.record_accepted(self._db, claimed, prediction_id, credits, request_pk)

    def record_rejected(
        self,
        claimed: ClaimedJob,
        request_pk: int,
        *,
        error: str,
        fail_job: bool,
        not_before: float | None = None,
    ) -> None:
        queue.record_rejected(
            self._db, claimed, request_pk, error=error, fail_job=fail_job, not_before=not_before
        )

    def record_lost(
        self, claimed: ClaimedJob, request_pk: int, *, error: str, not_before: float | None
    ) -> None:
        queue.record_lost(self._db, claimed, request_pk, error=error, not_before=not_before)

    # ------------------------------------------------------------------ poll

    def record_status(self, attempt_pk: int, status: str) -> None:
        queue.record_status(self._db, attempt_pk, status)

    def record_completed(
        self, flight: Flight, urls: Sequence[str], *, seen_by: str | None = None
    ) -> list[PendingOutput]:
        return queue.record_completed(self._db, flight, urls, seen_by=seen_by)

    def record_failed(
        self,
        flight: Flight,
        *,
        name: str,
        message: str,
        refund: bool,
        retry: bool,
        not_before: float | None = None,
        seen_by: str | None = None,
    ) -> int:
        """A prediction failed: its charge is refunded. Returns the credits refunded."""
        return queue.record_failed(
            self._db,
            flight,
            name=name,
            message=message,
            refund=refund,
            retry=retry,
            not_before=not_before,
            seen_by=seen_by,
        )

    # ------------------------------------------------------------------ download

    def pending_outputs(self, job_pk: int) -> list[PendingOutput]:
        return outputs.pending_outputs(self._db, job_pk)

    def record_saved(
        self, output: PendingOutput, *, path: str, sha256: str, size: int, url: str
    ) -> bool:
        """Record a saved output; True when it was its attempt's last one."""
        return outputs.record_saved(self._db, output, path=path, sha256=sha256, size=size, url=url)

    def record_download_failed(self, output: PendingOutput, error: str, *, final: bool) -> None:
        outputs.record_download_failed(self._db, output, error, final=final)

    def record_reuse_failed(self, output: PendingOutput, error: str) -> None:
        """A reused output cannot be taken: its job is queued for a prediction."""
        _reuse_failed(self._db, output, error)

    # ------------------------------------------------------------------ webhooks

    def add_webhook_token(self, digest: str) -> list[str]:
        """Record a run's webhook token by its digest; returns every digest still valid."""
        return webhooks.add_token(self._db, digest)

    # ------------------------------------------------------------------ reading

    def batch_ids(self) -> list[str]:
        return reads.batch_ids(self._db)

    def resolve_batches(self, batch: str | None) -> list[str]:
        """The named batch (checked to exist), or every batch when none is named."""
        return reads.resolve_batches(self._db, batch)

    def state_counts(self, batches: Sequence[str] | None) -> dict[str, int]:
        return reads.state_counts(self._db, batches)

    def progress(self, batches: Sequence[str] | None) -> tuple[dict[str, int], int]:
        return reads.progress(self._db, batches)

    def credits_total(self, batches: Sequence[str] | None) -> int:
        return reads.credits_total(self._db, batches)

    def uncertain_count(self, batches: Sequence[str] | None) -> int:
        return reads.uncertain_count(self._db, batches)

    def failure_reasons(
        self, batches: Sequence[str] | None, limit: int = 10
    ) -> list[tuple[str, int]]:
        return reads.failure_reasons(self._db, batches, limit)

    def job_origin(self, job_pk: int) -> JobOrigin:
        """A job's batch, id, model, and manifest file and line (for its log lines)."""
        return reads.job_origin(self._db, job_pk)

    def report_names(self, batches: Sequence[str] | None) -> tuple[list[str], list[str]]:
        """The input names and meta names the jobs use: the CSV report's columns."""
        return reads.report_names(self._db, batches)

    def iter_report(self, batches: Sequence[str] | None) -> Iterator[dict[str, Any]]:
        """One dict per job, with its attempts and outputs, in queue order."""
        return reads.iter_report(self._db, batches)

    # ------------------------------------------------------------------ journal

    def record_run(self, kind: str, batches: Sequence[str] | None, message: str) -> None:
        """A run started ("run-start"), finished ("run-end") or stopped early ("run-stop")."""
        journal.record_run(self._db, kind, batches, message)


__all__ = [
    "BLOB_THRESHOLD",
    "BatchInfo",
    "Canceled",
    "Chooser",
    "ClaimedJob",
    "DbLocation",
    "Fleet",
    "Flight",
    "Gate",
    "Holding",
    "IngestResult",
    "JobOrigin",
    "NoQueue",
    "OrchestratorError",
    "PendingOutput",
    "Recovery",
    "Relay",
    "Requeued",
    "Spend",
    "Store",
    "Takeover",
    "_changed_message",
    "_current_revision",
    "_migrations_dir",
    "_newest_revision",
]
