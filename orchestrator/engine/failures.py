"""The one log line of a job that failed for good: its batch, id, manifest file and
line, model and error, as text and (for JSON logs) as fields of the record."""

from __future__ import annotations

import logging

from ..logs import FIELDS
from ..store import Store

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
