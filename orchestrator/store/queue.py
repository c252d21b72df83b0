"""Claims and transitions: a job taken from the queue, its attempt sent, answered,
polled and finished. The attempt row is committed (durably) before `/run` goes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    Integer,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    update,
)

from .. import schema as t
from ..models import AttemptState, JobState
from . import blobs, journal, outputs, requests
from .connection import Database
from .dialect import adding, new_pk
from .fleet_limits import Gate
from .records import ClaimedJob, Flight, PendingOutput
from .statements import Prepared, Scoped, inserting

_j, _a = t.jobs, t.attempts
_NOW = bindparam("now", type_=Float)
_job = update(_j).where(_j.c.pk == bindparam("job", type_=Integer))
_attempt = update(_a).where(_a.c.pk == bindparam("attempt", type_=Integer))

_ready = and_(
    _j.c.state == JobState.QUEUED, or_(_j.c.not_before.is_(None), _j.c.not_before <= _NOW)
)
# Highest priority first, then manifest order: one probe of ix_jobs_(batch_)queue.
# On PostgreSQL the row is locked until the claim commits, and a row another claim
# holds is passed over: processes claiming at once take different jobs. (SQLite
# renders no FOR UPDATE: its claims are serialized by its one writer.)
_NEXT = Scoped(
    select(_j.c.pk, _j.c.batch_id, _j.c.job_id, _j.c.model_name, _j.c.inputs, _j.c.failures)
    .where(_ready)
    .order_by(_j.c.priority.desc(), _j.c.pk)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_ANY_READY = Scoped(select(literal(1)).select_from(_j).where(_ready).limit(1))
_WAITING = Scoped(
    select(func.count(), func.min(_j.c.not_before)).where(_j.c.state == JobState.QUEUED)
)
_JOB_OF = Prepared(
    select(_j.c.pk, _j.c.batch_id)
    .join(_a, _a.c.job_pk == _j.c.pk)
    .where(_a.c.pk == bindparam("attempt", type_=Integer))
)
# Only a job still queued is taken: another process (`orchestrator cancel`) may have
# changed it since the read, which the driver runs before the transaction begins.
_START = Prepared(
    _job.where(_j.c.state == JobState.QUEUED).values(
        state=JobState.RUNNING, not_before=None, updated_at=_NOW
    )
)
_NEW_ATTEMPT = adding(
    inserting(_a, "job_pk", "sent_at").values(state=AttemptState.PENDING, uncertain=False)
)
_SENT = Prepared(_attempt.values(sent_at=bindparam("sent_at")))
_ACCEPT = Prepared(
    _attempt.values(
        state=AttemptState.SUBMITTED,
        prediction_id=bindparam("prediction_id"),
        credits=bindparam("credits"),
        status="starting",
        accepted_at=_NOW,
    )
)
_CHARGE = Prepared(_job.values(credits=_j.c.credits + bindparam("charged", type_=Integer)))
_REJECT = Prepared(
    _attempt.values(
        state=AttemptState.REJECTED, error_message=bindparam("error_message"), finished_at=_NOW
    )
)
_AFTER_REJECT = Prepared(
    _job.values(
        state=bindparam("state"),
        error=bindparam("error"),
        not_before=bindparam("not_before"),
        updated_at=_NOW,
    )
)
_LOSE = Prepared(
    _attempt.values(
        state=AttemptState.REJECTED,
        uncertain=True,
        error_name="AnswerLost",
        error_message=bindparam("error_message"),
        finished_at=_NOW,
    )
)
_REQUEUE = Prepared(
    _job.values(state=JobState.QUEUED, not_before=bindparam("not_before"), updated_at=_NOW)
)
_STATUS = Prepared(_attempt.values(status=bindparam("status")))
# Completion and failure are recorded once: by a poll or by a webhook (which another
# worker of a fleet may have received), whichever commits first; the other changes nothing.
_in_flight = _a.c.state == AttemptState.SUBMITTED
_COMPLETE = Prepared(
    _attempt.where(_in_flight).values(
        state=AttemptState.COMPLETED,
        status="completed",
        finished_at=_NOW,
        seen_by=bindparam("seen_by"),
    )
)
_JOB_STATE = Prepared(_job.values(state=bindparam("state"), updated_at=_NOW))
_CHARGED = Prepared(select(_a.c.credits).where(_a.c.pk == bindparam("attempt", type_=Integer)))
_FAIL = Prepared(
    _attempt.where(_in_flight).values(
        state=AttemptState.FAILED,
        status="failed",
        error_name=bindparam("error_name"),
        error_message=bindparam("error_message"),
        finished_at=_NOW,
        seen_by=bindparam("seen_by"),
    )
)
_AFTER_FAILURE = Prepared(
    _job.values(
        state=bindparam("state"),
        failures=_j.c.failures + 1,
        credits=_j.c.credits - bindparam("refunded", type_=Integer),
        error=bindparam("error"),
        not_before=bindparam("not_before"),
        updated_at=_NOW,
    )
)


def claim_next(
    db: Database,
    batches: Sequence[str] | None,
    *,
    log_request: bool = True,
    admit: Callable[[str, dict[str, Any]], bool] | None = None,
    gate: Gate | None = None,
) -> ClaimedJob | None:
    """Take the next ready job and commit an attempt row for the `/run` about to go.
    None when no job is ready, or when `admit(model, inputs)` refuses the next one
    (which then stays queued, untouched). With a `gate` (a fleet's worker), only the
    gate's account's jobs, and only when the account has a free slot (`gate.full`)."""
    now = db.clock.wall()
    with db.tx(durable=True) as conn:
        if gate is not None and not gate.opens(conn, now):
            return None
        while True:
            if gate is None:
                row = _NEXT(conn, batches, now=now).first()
            else:
                row = gate.next_job(conn, batches, now)
            if row is None:
                return None
            job_pk, batch_id, job_id, model_name, inputs, failures = row
            if admit is not None and not admit(model_name, json.loads(inputs)):
                return None
            # Zero rows: the job was canceled meanwhile (SQLite). The UPDATE began the
            # write transaction, so the next read sees the queue as it now stands.
            if gate is not None:
                if gate.start(conn, job_pk, now):
                    break
            elif _START(conn, job=job_pk, now=now).rowcount == 1:
                break
        attempt_pk = new_pk(_NEW_ATTEMPT(conn, job_pk=job_pk, sent_at=now))
        request_pk = requests.add(conn, "run", now) if log_request else 0
        return ClaimedJob(
            job_pk=job_pk,
            batch_id=batch_id,
            job_id=job_id,
            model_name=model_name,
            inputs=blobs.inflate(conn, inputs),
            failures=failures,
            attempt_pk=attempt_pk,
            request_pk=request_pk,
        )


def has_ready(db: Database, batches: Sequence[str] | None) -> bool:
    """Whether a queued job could be sent now (one index probe)."""
    with db.tx() as conn:
        row = _ANY_READY(conn, batches, now=db.clock.wall()).first()
    return row is not None


def queue_state(db: Database, batches: Sequence[str] | None) -> tuple[int, float | None]:
    """How many jobs wait in the queue, and when the earliest backed-off one is due."""
    with db.tx() as conn:
        count, due = _WAITING(conn, batches).one()
    return int(count), due


def record_refused(db: Database, attempt_pk: int, request_pk: int, reason: str = "429") -> None:
    """`/run` answered 429, which proves nothing was created: until the attempt is
    sent again it counts as never sent, so a crash meanwhile leaves no doubt. The
    journal keeps the refusal (the contact sheet's timeline marks it)."""
    now = db.clock.wall()
    with db.tx() as conn:
        _SENT(conn, attempt=attempt_pk, sent_at=None)
        requests.finish(conn, request_pk, now)
        job_pk, batch_id = _JOB_OF(conn, attempt=attempt_pk).one()
        journal.event(conn, now, batch_id, job_pk, "rate-limited", f"/run refused: {reason}")


def resend(db: Database, attempt_pk: int, *, log_request: bool = True) -> int:
    """The same attempt goes again after a 429 (which proves nothing was created)."""
    now = db.clock.wall()
    with db.tx(durable=True) as conn:
        _SENT(conn, attempt=attempt_pk, sent_at=now)
        return requests.add(conn, "run", now) if log_request else 0


def record_accepted(
    db: Database, claimed: ClaimedJob, prediction_id: str, credits: int, request_pk: int
) -> Flight:
    """The API accepted the job's `/run`: its prediction is now in flight."""
    now = db.clock.wall()
    job_pk, attempt_pk = claimed.job_pk, claimed.attempt_pk
    with db.tx() as conn:
        _ACCEPT(conn, attempt=attempt_pk, prediction_id=prediction_id, credits=credits, now=now)
        if credits:
            journal.ledger(conn, job_pk, attempt_pk, prediction_id, credits, now)
            _CHARGE(conn, job=job_pk, charged=credits)
        requests.finish(conn, request_pk, now)
    return Flight(
        job_pk=job_pk,
        batch_id=claimed.batch_id,
        job_id=claimed.job_id,
        model_name=claimed.model_name,
        attempt_pk=attempt_pk,
        prediction_id=prediction_id,
        accepted_at=now,
        failures=claimed.failures,
    )


def record_rejected(
    db: Database,
    claimed: ClaimedJob,
    request_pk: int,
    *,
    error: str,
    fail_job: bool,
    not_before: float | None = None,
) -> None:
    """The API answered `/run` with an error: no prediction exists."""
    now = db.clock.wall()
    with db.tx() as conn:
        _REJECT(conn, attempt=claimed.attempt_pk, error_message=error, now=now)
        _AFTER_REJECT(
            conn,
            job=claimed.job_pk,
            state=(JobState.FAILED if fail_job else JobState.QUEUED).value,
            error=error if fail_job else None,
            not_before=not_before,
            now=now,
        )
        requests.finish(conn, request_pk, now)
        if fail_job:
            journal.event(conn, now, claimed.batch_id, claimed.job_pk, "failed", error)


def record_lost(
    db: Database, claimed: ClaimedJob, request_pk: int, *, error: str, not_before: float | None
) -> None:
    """`/run` got no usable answer: a prediction may exist. Queue the job again."""
    now = db.clock.wall()
    with db.tx() as conn:
        mark_lost(conn, now, claimed.attempt_pk, claimed.job_pk, error, not_before)
        requests.finish(conn, request_pk, now)


def mark_lost(
    conn: Connection,
    now: float,
    attempt_pk: int,
    job_pk: int,
    error: str,
    not_before: float | None = None,
) -> None:
    """The attempt may have created a prediction: uncertain, and its job queued again."""
    _LOSE(conn, attempt=attempt_pk, error_message=error, now=now)
    _REQUEUE(conn, job=job_pk, not_before=not_before, now=now)
    journal.event(conn, now, None, job_pk, "uncertain", f"/run answer lost: {error}")


def record_status(db: Database, attempt_pk: int, status: str) -> None:
    with db.tx() as conn:
        _STATUS(conn, attempt=attempt_pk, status=status)


def record_completed(
    db: Database, flight: Flight, urls: Sequence[str], *, seen_by: str | None = None
) -> list[PendingOutput]:
    """Completion and its output URLs in one transaction; the downloads follow.
    `seen_by`: what showed it completed, "status" or "webhook".

    When the attempt was already recorded finished (a webhook that another worker
    took), nothing changes and its outputs still to save are returned."""
    now = db.clock.wall()
    with db.tx() as conn:
        if _COMPLETE(conn, attempt=flight.attempt_pk, now=now, seen_by=seen_by).rowcount == 1:
            state = (JobState.DOWNLOADING if urls else JobState.COMPLETED).value
            _JOB_STATE(conn, job=flight.job_pk, state=state, now=now)
            return outputs.add(conn, flight, urls)
    pending = outputs.pending_outputs(db, flight.job_pk)
    return [o for o in pending if o.attempt_pk == flight.attempt_pk]


def record_failed(
    db: Database,
    flight: Flight,
    *,
    name: str,
    message: str,
    refund: bool,
    retry: bool,
    not_before: float | None = None,
    seen_by: str | None = None,
) -> int:
    """A prediction failed. Failed predictions are not charged: the charge is refunded.

    Returns the credits refunded."""
    now = db.clock.wall()
    attempt_pk, job_pk = flight.attempt_pk, flight.job_pk
    with db.tx() as conn:
        charged = _CHARGED(conn, attempt=attempt_pk).scalar_one()
        refunded = int(charged or 0) if refund else 0
        failed = _FAIL(
            conn,
            attempt=attempt_pk,
            error_name=name,
            error_message=message,
            now=now,
            seen_by=seen_by,
        )
        if failed.rowcount != 1:  # already recorded finished (see _COMPLETE)
            return 0
        if refunded:
            journal.ledger(conn, job_pk, attempt_pk, flight.prediction_id, -refunded, now)
        error = f"{name}: {message}" if message else name
        _AFTER_FAILURE(
            conn,
            job=job_pk,
            state=(JobState.QUEUED if retry else JobState.FAILED).value,
            refunded=refunded,
            error=None if retry else error,
            not_before=not_before if retry else None,
            now=now,
        )
        kind = "retry" if retry else "failed"
        journal.event(conn, now, flight.batch_id, job_pk, kind, error)
    return refunded
