"""--reuse: a queued job that asks for what an earlier job already made (the same
fingerprint: model and inputs) takes that job's outputs instead of a prediction.

It happens in the transaction that queues the jobs, so no claim can ever see such a
job as queued (and send its `/run`): it goes straight to `downloading`, with an
attempt of its own (state `reused`, no prediction, 0 credits) whose pending outputs
point at the saved outputs they copy (`outputs.source_pk`). The downloader then
links (or copies) each file and checks its sha256 against the one recorded; like a
download, that is redone after a crash until it is recorded. A source file that is
gone or changed sends the job back to the queue for a prediction of its own.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    FromClause,
    Integer,
    String,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)

from .. import schema as t
from ..models import AttemptState, JobState
from . import journal
from .connection import Database
from .dialect import adding, new_pk
from .records import PendingOutput
from .statements import Prepared, inserting

_j, _a, _o = t.jobs, t.attempts, t.outputs
_NOW = bindparam("now", type_=Float)
_JOB = bindparam("job", type_=Integer)
_ATTEMPT = bindparam("attempt", type_=Integer)


def _latest(job_pk: Any, correlate: FromClause | None = None) -> Any:
    """The pk of a job's latest attempt (its outputs are the job's own)."""
    latest = _a.alias("latest")
    newest = select(func.max(latest.c.pk)).where(latest.c.job_pk == job_pk)
    return (newest.correlate(correlate) if correlate is not None else newest).scalar_subquery()


# A completed job of any batch with the same fingerprint, every output of its
# current attempt saved: the first such job is the source.
_src = _j.alias("src")
_src_out = _o.alias("src_out")
_saved = exists().where(
    _src_out.c.job_pk == _src.c.pk,
    _src_out.c.attempt_pk == _latest(_src_out.c.job_pk, _src_out),
    _src_out.c.state == "saved",
)
_unsaved = exists().where(
    _src_out.c.job_pk == _src.c.pk,
    _src_out.c.attempt_pk == _latest(_src_out.c.job_pk, _src_out),
    _src_out.c.state != "saved",
)
_source = (
    select(func.min(_src.c.pk))
    .where(
        _src.c.fingerprint == _j.c.fingerprint,
        _src.c.state == JobState.COMPLETED,
        _src.c.pk != _j.c.pk,
        _saved,
        ~_unsaved,
    )
    .scalar_subquery()
)
_REUSABLE = Prepared(
    select(_j.c.pk, _source).where(
        _j.c.batch_id == bindparam("batch", type_=String), _j.c.state == JobState.QUEUED
    )
)
_ATTEMPT_ROW = adding(
    inserting(_a, "job_pk").values(
        state=AttemptState.REUSED,
        status="reused",
        credits=0,
        uncertain=False,
        sent_at=_NOW,
        accepted_at=_NOW,
        finished_at=_NOW,
    )
)
_copies = _o.alias("copied")
_OUTPUT_ROWS = Prepared(
    insert(_o).from_select(
        ["job_pk", "attempt_pk", "idx", "url", "state", "tries", "source_pk"],
        select(_JOB, _ATTEMPT, _copies.c.idx, _copies.c.url, literal("pending"), literal(0))
        .add_columns(_copies.c.pk)
        .where(
            _copies.c.job_pk == bindparam("source", type_=Integer),
            _copies.c.attempt_pk == _latest(bindparam("source", type_=Integer)),
        )
        .order_by(_copies.c.idx),
    )
)
_TAKE = Prepared(
    update(_j)
    .where(_j.c.pk == _JOB)
    .values(
        state=JobState.DOWNLOADING,
        reused_from=bindparam("source"),
        not_before=None,
        error=None,
        updated_at=_NOW,
    )
)
_GIVE_UP = Prepared(
    update(_a)
    .where(_a.c.pk == _ATTEMPT)
    .values(
        state=AttemptState.FAILED,
        status="failed",
        error_name="ReuseFailed",
        error_message=bindparam("error"),
        finished_at=_NOW,
    )
)
_DROP_OUTPUTS = Prepared(
    update(_o)
    .where(_o.c.attempt_pk == _ATTEMPT, _o.c.state != "saved")
    .values(state="failed", error=bindparam("error"))
)
_REQUEUE = Prepared(
    update(_j)
    .where(_j.c.pk == _JOB)
    .values(state=JobState.QUEUED, reused_from=None, updated_at=_NOW)
)


def reuse_queued(conn: Connection, batch_id: str, now: float) -> int:
    """Every queued job of the batch that an earlier job can stand for takes its
    outputs (pending, to be linked by the downloader); returns how many."""
    found = [(pk, source) for pk, source in _REUSABLE(conn, batch=batch_id) if source is not None]
    for job_pk, source in found:
        attempt_pk = new_pk(_ATTEMPT_ROW(conn, job_pk=job_pk, now=now))
        _OUTPUT_ROWS(conn, job=job_pk, attempt=attempt_pk, source=source)
        _TAKE(conn, job=job_pk, source=source, now=now)
    if found:
        journal.event(conn, now, batch_id, None, "reuse", f"{len(found)} job(s) reused")
    return len(found)


def reuse_failed(db: Database, output: PendingOutput, error: str) -> None:
    """A reused output's file is gone or changed: the job goes back to the queue, to
    be predicted; the reuse attempt stays, failed, in its history."""
    now = db.clock.wall()
    with db.tx() as conn:
        _GIVE_UP(conn, attempt=output.attempt_pk, error=error, now=now)
        _DROP_OUTPUTS(conn, attempt=output.attempt_pk, error=error)
        _REQUEUE(conn, job=output.job_pk, now=now)
        message = f"cannot reuse output {output.idx}: {error}; queued for a prediction"
        journal.event(conn, now, output.batch_id, output.job_pk, "retry", message)
