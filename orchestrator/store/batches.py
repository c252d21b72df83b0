"""Whole batches: the list of them, and canceling their queued jobs.

`cancel` runs while another process may be running the same queue (it does not
take the queue's lock): it only ever changes jobs that are still queued, each in
one UPDATE whose condition is the state itself, so a job that the running engine
claims at the same moment is either claimed (and runs) or canceled (and is never
sent), never both; the engine's claim is guarded the same way (see queue.py).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, Float, String, bindparam, func, select, update

from .. import schema as t
from ..errors import UsageError
from ..models import JobState
from . import journal, messages
from .connection import Database
from .records import BatchInfo, Canceled
from .statements import Prepared

_j, _b = t.jobs, t.batches
_NOW = bindparam("now", type_=Float)
_BATCH = bindparam("batch", type_=String)
_JOB = bindparam("job_id", type_=String)

_BATCHES = Prepared(
    select(_b.c.id, _b.c.manifest, _b.c.created_at, _b.c.updated_at).order_by(_b.c.created_at)
)
_BY_STATE = Prepared(
    select(
        _j.c.batch_id,
        _j.c.state,
        func.count(),
        func.coalesce(func.sum(_j.c.credits), 0),
        func.max(_j.c.updated_at),
    ).group_by(_j.c.batch_id, _j.c.state)
)
_queued_of_batch = (_j.c.batch_id == _BATCH, _j.c.state == JobState.QUEUED)
_CANCEL_BATCH = Prepared(
    update(_j).where(*_queued_of_batch).values(state=JobState.CANCELED, updated_at=_NOW)
)
_CANCEL_JOB = Prepared(
    update(_j)
    .where(*_queued_of_batch, _j.c.job_id == _JOB)
    .values(state=JobState.CANCELED, updated_at=_NOW)
)
_BATCH_STATES = Prepared(
    select(_j.c.state, func.count()).where(_j.c.batch_id == _BATCH).group_by(_j.c.state)
)
_JOB_STATE = Prepared(
    select(_j.c.pk, _j.c.state).where(_j.c.batch_id == _BATCH, _j.c.job_id == _JOB)
)


def list_batches(db: Database) -> list[BatchInfo]:
    """Every batch, oldest first, with its jobs counted by state."""
    with db.tx() as conn:
        batches = _BATCHES(conn).all()
        rows = _BY_STATE(conn).all()
    counts: dict[str, dict[str, int]] = {}
    credits: dict[str, int] = {}
    latest: dict[str, float] = {}
    for batch_id, state, n, spent, updated in rows:
        counts.setdefault(batch_id, {})[state] = int(n)
        credits[batch_id] = credits.get(batch_id, 0) + int(spent)
        latest[batch_id] = max(latest.get(batch_id, 0.0), float(updated))
    return [
        BatchInfo(
            id=batch_id,
            manifest=manifest,
            counts=counts.get(batch_id, {}),
            credits=credits.get(batch_id, 0),
            first_activity=float(created),
            last_activity=max(float(updated), latest.get(batch_id, 0.0)),
        )
        for batch_id, manifest, created, updated in batches
    ]


def job_states(db: Database, batch: str, job_ids: Sequence[str]) -> dict[str, str]:
    """The state of each named job of `batch`; ids it does not hold are left out."""
    with db.tx() as conn:
        found = {job_id: _JOB_STATE(conn, batch=batch, job_id=job_id).first() for job_id in job_ids}
    return {job_id: row[1] for job_id, row in found.items() if row is not None}


def cancel(db: Database, batch: str, job_ids: Sequence[str] | None) -> Canceled:
    """Cancel the queued jobs of `batch` (only those named, with `job_ids`) in one
    short transaction. Named ids the batch does not hold are a UsageError, and then
    nothing is changed."""
    now = db.clock.wall()
    with db.tx() as conn:
        # The first UPDATE begins the write transaction: the reads after it see
        # the queue as this transaction leaves it.
        if job_ids is None:
            canceled = _CANCEL_BATCH(conn, batch=batch, now=now).rowcount
            others = {s: int(n) for s, n in _BATCH_STATES(conn, batch=batch).all()}
            if canceled:
                what = f"{canceled} queued job(s) canceled"
                journal.event(conn, now, batch, None, "canceled", what)
        else:
            canceled, others = _cancel_named(conn, batch, job_ids, now)
    if others.get(JobState.CANCELED, 0) >= canceled:
        others[JobState.CANCELED] -= canceled
    return Canceled(canceled, {s: n for s, n in others.items() if n})


def _cancel_named(
    conn: Connection, batch: str, job_ids: Sequence[str], now: float
) -> tuple[int, dict[str, int]]:
    canceled, unknown = 0, []
    others: dict[str, int] = {}
    for job_id in dict.fromkeys(job_ids):  # each id once, in the order given
        flipped = _CANCEL_JOB(conn, batch=batch, job_id=job_id, now=now).rowcount
        row = _JOB_STATE(conn, batch=batch, job_id=job_id).first()
        if row is None:
            unknown.append(job_id)
            continue
        others[row.state] = others.get(row.state, 0) + 1
        if flipped:
            canceled += 1
            journal.event(conn, now, batch, row.pk, "canceled", "canceled before it was sent")
    if unknown:
        raise UsageError(messages.unknown_jobs(batch, unknown))
    return canceled, others


class Batches:
    """Whole batches, as `store.batches`."""

    def __init__(self, db: Database):
        self._db = db

    def list(self) -> list[BatchInfo]:
        """Every batch, oldest first, with its jobs counted by state and its credits."""
        return list_batches(self._db)

    def job_states(self, batch: str, job_ids: Sequence[str]) -> dict[str, str]:
        """The state of each named job of `batch` that exists."""
        return job_states(self._db, batch, job_ids)

    def cancel(self, batch: str, job_ids: Sequence[str] | None = None) -> Canceled:
        """Cancel the queued jobs of `batch` (or those of `job_ids`): safe while another
        process runs the queue, since only jobs still queued change."""
        return cancel(self._db, batch, job_ids)
