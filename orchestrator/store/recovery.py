"""After a run that did not finish, and for `--retry-failed`: the queue put back in
order, and failed jobs given another chance (downloaded again when they can be)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from sqlalchemy import Connection, Float, Integer, bindparam, func, select, update

from .. import policy
from .. import schema as t
from ..models import AttemptState, JobState
from . import dialect, queue
from .connection import Database
from .outputs import of_current_attempt
from .records import Flight, Recovery, Requeued
from .statements import Prepared, Scoped

_j, _a, _o = t.jobs, t.attempts, t.outputs
_NOW = bindparam("now", type_=Float)

_DROP_UNSENT = Prepared(
    _a.delete().where(_a.c.state == AttemptState.PENDING, _a.c.sent_at.is_(None))
)
_UNANSWERED = Prepared(select(_a.c.pk, _a.c.job_pk).where(_a.c.state == AttemptState.PENDING))
# A running job whose attempt is not in flight has nothing to wait for.
_IDLE = Prepared(
    update(_j)
    .where(
        _j.c.state == JobState.RUNNING,
        _j.c.pk.not_in(select(_a.c.job_pk).where(_a.c.state == AttemptState.SUBMITTED)),
    )
    .values(state=JobState.QUEUED, updated_at=_NOW)
)
_in_flight_rows = (
    select(
        *(_a.c.pk, _a.c.job_pk, _a.c.prediction_id, _a.c.accepted_at),
        *(_j.c.batch_id, _j.c.job_id, _j.c.model_name, _j.c.failures),
    )
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.state == AttemptState.SUBMITTED)
    .order_by(_a.c.accepted_at)
)
_IN_FLIGHT = Prepared(_in_flight_rows)
_DOWNLOADING = Prepared(select(_j.c.pk).where(_j.c.state == JobState.DOWNLOADING))
_STOPPED = "the process stopped before the answer"

# One attempt at a time (takeover): its state, whether it was sent, its job's state.
_ATTEMPT = bindparam("attempt", type_=Integer)
_ATTEMPT_OF = Prepared(
    select(_a.c.state, _a.c.sent_at, _a.c.job_pk, _j.c.state)
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.pk == _ATTEMPT)
)
_DROP_ONE = Prepared(_a.delete().where(_a.c.pk == _ATTEMPT))
_REQUEUE_RUNNING = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job", type_=Integer), _j.c.state == JobState.RUNNING)
    .values(state=JobState.QUEUED, updated_at=_NOW)
)
_FLIGHT_OF = Prepared(_in_flight_rows.where(_a.c.pk == _ATTEMPT))

# Failed jobs whose current attempt completed but whose outputs were not all saved.
_undownloaded = (
    select(_j.c.pk)
    .distinct()
    .join(_o, _o.c.job_pk == _j.c.pk)
    .join(_a, _a.c.pk == _o.c.attempt_pk)
    .where(_j.c.state == JobState.FAILED, _o.c.state == "failed", of_current_attempt())
)
_UNDOWNLOADED = Prepared(_undownloaded)
_RETRY_OUTPUTS = Prepared(
    update(_o)
    .where(_o.c.job_pk == bindparam("job"), _o.c.state == "failed", of_current_attempt())
    .values(state="pending", tries=0, error=None)
)
_REDOWNLOAD = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job"))
    .values(state=JobState.DOWNLOADING, error=None, updated_at=_NOW)
)
_REQUEUE_ONE = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job"), _j.c.state == JobState.FAILED)
    .values(state=JobState.QUEUED, failures=0, error=None, not_before=None, updated_at=_NOW)
)
# Every failed job with its latest attempt (if any), and whether an output of that
# attempt failed to save: what a retry needs to decide, in one scan.
_newer = _a.alias("newer")
_latest = select(func.max(_newer.c.pk)).where(_newer.c.job_pk == _j.c.pk).scalar_subquery()
_undelivered = select(_o.c.pk).where(_o.c.attempt_pk == _a.c.pk, _o.c.state == "failed").exists()
_FAILED_JOBS = Scoped(
    select(
        *(_j.c.pk, _j.c.job_id, _a.c.state, _a.c.error_name, _a.c.accepted_at),
        _undelivered.label("undelivered"),
    )
    .select_from(_j.outerjoin(_a, _a.c.pk == _latest))
    .where(_j.c.state == JobState.FAILED)
    .order_by(_j.c.pk)
)

# Decides from (job id, failure name) whether a failed job runs again: True runs it,
# False leaves it failed and counts it as skipped, None leaves it out of the count.
Chooser = Callable[[str, str], bool | None]


def recover(db: Database) -> Recovery:
    """Put the queue back in order after a run that did not finish, if no other
    process runs it (PostgreSQL: see the store's docstring); either way, this
    process runs the queue from then on, until `Takeover.leave()`.

    Every batch is recovered: predictions of any batch hold account slots, so
    they are polled (and their outputs saved) whichever batch is being run.

    Attempts with a prediction id are polled, never resent. An attempt that was
    sent but has no id may or may not have created a prediction: its job is
    queued again and the attempt is marked uncertain, which the report shows.
    """
    now = db.clock.wall()
    with db.tx() as conn:
        alone = dialect.try_alone(conn)
    try:
        with db.tx() as conn:
            return _recover_all(conn, now) if alone else Recovery([], [], 0, 0, others=True)
    finally:
        with db.tx() as conn:
            db.attending += dialect.attend(conn, alone=alone)


def _recover_all(conn: Connection, now: float) -> Recovery:
    unsent = _DROP_UNSENT(conn).rowcount
    lost = _UNANSWERED(conn).all()
    for attempt_pk, job_pk in lost:
        queue.mark_lost(conn, now, attempt_pk, job_pk, _STOPPED)
    _IDLE(conn, now=now)
    flights = _in_flight(conn, now)
    downloads = list(_DOWNLOADING(conn).scalars())
    # Jobs whose downloads failed earlier get another chance without a new prediction.
    failed_downloads = redownload_failed(conn, now)
    return Recovery(flights, downloads + failed_downloads, len(lost), unsent)


class Takeover:
    """Recovery of named attempts, for processes sharing one PostgreSQL queue
    (`store.takeover`)."""

    def __init__(self, db: Database):
        self._db = db

    def attempts(self, attempt_pks: Iterable[int]) -> Recovery:
        """Recover these attempts, and nothing else: the caller knows that no live
        process holds them. Unsent ones are dropped and unanswered ones marked
        uncertain (their jobs queued again); those with a prediction id come back as
        flights to poll, and completed ones whose job is downloading as downloads."""
        now = self._db.clock.wall()
        flights: list[Flight] = []
        downloads: list[int] = []
        lost = unsent = 0
        with self._db.tx() as conn:
            for attempt_pk in attempt_pks:
                row = _ATTEMPT_OF(conn, attempt=attempt_pk).first()
                if row is None:
                    continue
                state, sent_at, job_pk, job_state = row
                if state == AttemptState.PENDING and sent_at is None:
                    _DROP_ONE(conn, attempt=attempt_pk)
                    _REQUEUE_RUNNING(conn, job=job_pk, now=now)
                    unsent += 1
                elif state == AttemptState.PENDING:
                    queue.mark_lost(conn, now, attempt_pk, job_pk, _STOPPED)
                    lost += 1
                elif state == AttemptState.SUBMITTED:
                    flights += _in_flight(conn, now, _FLIGHT_OF, attempt=attempt_pk)
                elif state == AttemptState.COMPLETED and job_state == JobState.DOWNLOADING:
                    downloads.append(job_pk)
        return Recovery(flights, downloads, lost, unsent)

    def attend(self) -> None:
        """Mark this process as running the queue without recovering anything (a
        process that claims jobs from a PostgreSQL queue calls this or `recover()`
        first, so that no other process's `recover()` takes its work for a dead
        run's); until `leave()`, or until the store closes."""
        with self._db.tx() as conn:
            self._db.attending += dialect.attend(conn, alone=False)

    def leave(self) -> None:
        """This process no longer runs the queue (the end of a run): `recover()` in
        another process may now find it alone. Nothing to do on SQLite."""
        if self._db.attending:
            with self._db.tx() as conn:
                dialect.leave(conn)
            self._db.attending -= 1


def _in_flight(
    conn: Connection, now: float, query: Prepared = _IN_FLIGHT, **params: int
) -> list[Flight]:
    return [
        Flight(
            job_pk=r.job_pk,
            batch_id=r.batch_id,
            job_id=r.job_id,
            model_name=r.model_name,
            attempt_pk=r.pk,
            prediction_id=r.prediction_id,
            accepted_at=r.accepted_at or now,
            failures=r.failures,
        )
        for r in query(conn, **params)
    ]


def requeue_failed(
    db: Database, batches: Sequence[str] | None, *, url_ttl: float, chosen: Chooser | None = None
) -> Requeued:
    """Give failed jobs another chance (`--retry-failed`, `orchestrator retry`).

    A job whose prediction completed and whose output URLs are surely still
    valid (accepted less than `url_ttl` seconds ago) is only downloaded again,
    never bought again; every other failed job gets a fresh set of attempts.
    `chosen(job_id, failure_name)` picks the jobs (default: every failed job); the
    others stay failed, and those it answers False for are counted by failure name
    (see policy.failure_name).
    """
    now = db.clock.wall()
    downloads = predictions = 0
    skipped: Counter[str] = Counter()
    with db.tx() as conn:
        for pk, job_id, state, error_name, accepted_at, undelivered in _FAILED_JOBS(
            conn, batches
        ).all():
            name = policy.failure_name(state, error_name, bool(undelivered))
            choice = True if chosen is None else chosen(job_id, name)
            if choice is None:
                continue
            if not choice:
                skipped[name] += 1
            elif undelivered and accepted_at is not None and accepted_at >= now - url_ttl:
                _RETRY_OUTPUTS(conn, job=pk)
                _REDOWNLOAD(conn, job=pk, now=now)
                downloads += 1
            else:
                _REQUEUE_ONE(conn, job=pk, now=now)
                predictions += 1
    return Requeued(downloads, predictions, dict(skipped))


def redownload_failed(conn: Connection, now: float) -> list[int]:
    """Failed jobs whose current attempt completed but whose outputs were not all
    saved go back to downloading (at recovery, whatever their age: the download
    says whether the URLs still work); returns their pks."""
    pks = [int(pk) for pk in _UNDOWNLOADED(conn).scalars()]
    for pk in pks:
        _RETRY_OUTPUTS(conn, job=pk)
        _REDOWNLOAD(conn, job=pk, now=now)
    return pks
