"""A failed prediction recorded (retried or not), and the one log line of a job that
failed for good: its batch, id, manifest file and line, model and error, as text and
(for JSON logs) as fields of the record."""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import policy
from ..logs import FIELDS
from ..store import Flight, Store

log = logging.getLogger("orchestrator")


def log_failure(store: Store, job_pk: int, error: str) -> None:
    """Log that a job failed for good (called once per failure, where it is decided)."""
    o = store.job_origin(job_pk)
    where = o.manifest if o.line is None else f"{o.manifest}:{o.line}"
    fields = {
        "event": "job_failed",
        "batch": o.batch_id,
        "job": o.job_id,
        "manifest": o.manifest,
        "line": o.line,
        "model": o.model_name,
        "error": error,
    }
    log.error(
        "job failed: batch %s, job %s (%s), model %s: %s",
        o.batch_id,
        o.job_id,
        where,
        o.model_name,
        error,
        extra={FIELDS: fields},
    )


def record_failed_prediction(
    store: Store,
    flight: Flight,
    name: str,
    message: str,
    *,
    max_attempts: int,
    retry_at: Callable[[], float],
    refund: bool,
    seen_by: str | None = None,
) -> bool:
    """Record that a prediction failed: its job sent again at `retry_at()` (wall time)
    when the failure allows another attempt, else failed for good and logged. Returns
    whether it is retried. (The poller's, and a fleet receiver's for another worker.)"""
    retry = policy.should_retry(name, flight.failures, max_attempts)
    store.record_failed(
        flight,
        name=name,
        message=message,
        refund=refund,
        retry=retry,
        not_before=retry_at() if retry else None,
        seen_by=seen_by,
    )
    if not retry:
        log_failure(store, flight.job_pk, f"{name}: {message}" if message else name)
    return retry
