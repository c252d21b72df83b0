"""A completed prediction's outputs, saved one by one. Outputs belong to an attempt:
only those of the job's latest attempt are its own."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, Float, Integer, bindparam, func, select, update

from .. import schema as t
from ..models import JobState
from . import journal
from .connection import Database
from .dialect import adding, new_pk
from .records import Flight, PendingOutput
from .statements import Prepared, inserting

_o, _j = t.outputs, t.jobs
_OUTPUT = bindparam("output", type_=Integer)
_NOW = bindparam("now", type_=Float)


def of_current_attempt() -> ColumnElement[bool]:
    """Outputs (the `outputs` table of the enclosing query) of their job's latest attempt."""
    latest = t.attempts.alias("latest")
    newest = select(func.max(latest.c.pk)).where(latest.c.job_pk == _o.c.job_pk)
    return _o.c.attempt_pk == newest.correlate(_o).scalar_subquery()


_ADD = adding(inserting(_o, "job_pk", "attempt_pk", "idx", "url").values(state="pending", tries=0))
_source = _o.alias("source")
_PENDING = Prepared(
    select(_o.c.pk, _o.c.attempt_pk, _o.c.idx, _o.c.url, _o.c.tries, _j.c.batch_id, _j.c.job_id)
    .add_columns(_source.c.path, _source.c.sha256)
    .join(_j, _j.c.pk == _o.c.job_pk)
    .outerjoin(_source, _source.c.pk == _o.c.source_pk)
    .where(_o.c.job_pk == bindparam("job"), _o.c.state == "pending", of_current_attempt())
    .order_by(_o.c.idx)
)
_SAVED = Prepared(
    update(_o)
    .where(_o.c.pk == _OUTPUT)
    .values(
        state="saved",
        path=bindparam("path"),
        sha256=bindparam("sha256"),
        size=bindparam("size"),
        url=bindparam("url"),
        saved_at=_NOW,
        error=None,
    )
)
_UNSAVED = Prepared(
    select(func.count()).where(_o.c.attempt_pk == bindparam("attempt"), _o.c.state != "saved")
)
_JOB_DONE = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job"))
    .values(state=JobState.COMPLETED, error=None, updated_at=_NOW)
)
_TRIED = Prepared(
    update(_o)
    .where(_o.c.pk == _OUTPUT)
    .values(state=bindparam("state"), tries=_o.c.tries + 1, error=bindparam("error"))
)
_JOB_FAILED = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job"))
    .values(state=JobState.FAILED, error=bindparam("error"), updated_at=_NOW)
)


def add(conn: Connection, flight: Flight, urls: Sequence[str]) -> list[PendingOutput]:
    """The output URLs of a completed prediction, each to be saved."""
    pending = []
    for idx, url in enumerate(urls):
        result = _ADD(conn, job_pk=flight.job_pk, attempt_pk=flight.attempt_pk, idx=idx, url=url)
        pk = new_pk(result)
        pending.append(
            PendingOutput(
                pk, flight.job_pk, flight.attempt_pk, flight.batch_id, flight.job_id, idx, url, 0
            )
        )
    return pending


def pending_outputs(db: Database, job_pk: int) -> list[PendingOutput]:
    """The outputs still to save of the job's current (latest) attempt."""
    with db.tx() as conn:
        rows = _PENDING(conn, job=job_pk).all()
    return [
        PendingOutput(pk, job_pk, attempt_pk, b, j, idx, url, tries, src_path, src_sha)
        for pk, attempt_pk, idx, url, tries, b, j, src_path, src_sha in rows
    ]


def record_saved(
    db: Database, output: PendingOutput, *, path: str, sha256: str, size: int, url: str
) -> bool:
    """Record a saved output; returns True when it was its attempt's last one
    (outputs of earlier attempts of the job do not count)."""
    now = db.clock.wall()
    with db.tx() as conn:
        saved = {"path": path, "sha256": sha256, "size": size, "url": url}
        _SAVED(conn, output=output.output_pk, now=now, **saved)
        left = _UNSAVED(conn, attempt=output.attempt_pk).scalar_one()
        if left == 0:
            _JOB_DONE(conn, job=output.job_pk, now=now)
    return bool(left == 0)


def record_download_failed(db: Database, output: PendingOutput, error: str, *, final: bool) -> None:
    now = db.clock.wall()
    with db.tx() as conn:
        state = "failed" if final else "pending"
        _TRIED(conn, output=output.output_pk, state=state, error=error)
        if final:
            message = f"download of output {output.idx} failed: {error}"
            _JOB_FAILED(conn, job=output.job_pk, error=message, now=now)
            journal.event(conn, now, output.batch_id, output.job_pk, "failed", message)
