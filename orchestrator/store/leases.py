"""Workers and their leases. A worker renews its lease while it lives; one whose lease
ran out (killed, its host gone) or that stopped is dead, and the first worker of an
account to notice takes over that account's jobs it held: predictions in flight are
polled (never sent again), interrupted downloads redone, and `/run` requests it sent
without an answer marked uncertain (their jobs queued again), as `resume` does.

A dead worker's unanswered requests are closed at the moment it is declared dead: an
arrival they made was before then, so from there on each holds its window for one
window, like any answered request.
"""

from __future__ import annotations

from sqlalchemy import Float, String, and_, bindparam, delete, or_, select, update

from .. import schema as t
from ..models import AttemptState, JobState
from . import queue
from .connection import Database
from .fleet_limits import lock
from .records import Flight, Recovery
from .statements import Prepared, inserting

_w, _j, _a, _r = t.workers, t.jobs, t.attempts, t.requests
_NOW = bindparam("now", type_=Float)
_ME = bindparam("me", type_=String)

_REGISTER = Prepared(
    inserting(_w, "id", "started_at", "heartbeat_at", "lease_seconds").values(state="live")
)
_RENEW = Prepared(update(_w).where(_w.c.id == _ME, _w.c.state == "live").values(heartbeat_at=_NOW))
_STOP = Prepared(update(_w).where(_w.c.id == _ME, _w.c.state == "live").values(state="stopped"))
_EXPIRED = Prepared(
    select(_w.c.id).where(_w.c.state == "live", _w.c.heartbeat_at + _w.c.lease_seconds < _NOW)
)
_DECLARE_DEAD = Prepared(
    update(_w).where(_w.c.id == bindparam("dead"), _w.c.state == "live").values(state="dead")
)
_CLOSE_REQUESTS = Prepared(
    update(_r).where(_r.c.worker == bindparam("dead"), _r.c.done_at.is_(None)).values(done_at=_NOW)
)
_OTHERS_LIVE = Prepared(
    select(_w.c.id).where(
        _w.c.state == "live", _w.c.id != _ME, _w.c.heartbeat_at + _w.c.lease_seconds >= _NOW
    )
)
_gone = select(_w.c.id).where(or_(_w.c.state == "dead", _w.c.state == "stopped"))
_orphan = and_(
    _j.c.account == bindparam("account"),
    _j.c.worker.in_(_gone),
    or_(_j.c.state == JobState.RUNNING, _j.c.state == JobState.DOWNLOADING),
)
# The orphans' current attempts: in flight, never sent, or sent without an answer.
_ORPHAN_ATTEMPTS = Prepared(
    select(
        *(_a.c.pk, _a.c.state, _a.c.sent_at, _a.c.prediction_id, _a.c.accepted_at),
        *(_j.c.pk, _j.c.batch_id, _j.c.job_id, _j.c.model_name, _j.c.failures),
    )
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(
        _orphan,
        _j.c.state == JobState.RUNNING,
        or_(_a.c.state == AttemptState.PENDING, _a.c.state == AttemptState.SUBMITTED),
    )
    .order_by(_a.c.pk)
)
_ORPHAN_DOWNLOADS = Prepared(select(_j.c.pk).where(_orphan, _j.c.state == JobState.DOWNLOADING))
_DROP_ATTEMPT = Prepared(delete(_a).where(_a.c.pk == bindparam("attempt")))
_REQUEUE = Prepared(
    update(_j).where(_j.c.pk == bindparam("job")).values(state=JobState.QUEUED, updated_at=_NOW)
)
_ADOPT = Prepared(update(_j).where(_j.c.pk == bindparam("job")).values(worker=_ME))
_FORGET = Prepared(delete(_r).where(_r.c.done_at < bindparam("before")))


def register(db: Database, me: str, lease_seconds: float) -> None:
    now = db.clock.wall()
    with db.tx() as conn:
        _REGISTER(conn, id=me, started_at=now, heartbeat_at=now, lease_seconds=lease_seconds)


def renew(db: Database, me: str) -> bool:
    """Renew the lease; False when it was lost (another worker declared this one dead)."""
    with db.tx() as conn:
        return _RENEW(conn, me=me, now=db.clock.wall()).rowcount == 1


def stop(db: Database, me: str) -> None:
    """A worker that stops hands what it still holds to the others at once."""
    with db.tx() as conn:
        _STOP(conn, me=me)


def others_live(db: Database, me: str) -> bool:
    with db.tx() as conn:
        return _OTHERS_LIVE(conn, me=me, now=db.clock.wall()).first() is not None


def expire(db: Database, keep_requests: float) -> list[str]:
    """Declare dead every worker whose lease ran out, closing its open requests; forget
    requests answered more than `keep_requests` seconds ago. Returns who died."""
    now = db.clock.wall()
    dead = []
    with db.tx() as conn:
        for (worker,) in _EXPIRED(conn, now=now).all():
            if _DECLARE_DEAD(conn, dead=worker).rowcount == 1:
                _CLOSE_REQUESTS(conn, dead=worker, now=now)
                dead.append(worker)
        _FORGET(conn, before=now - keep_requests)
    return dead


def take_over(db: Database, me: str, account: str) -> Recovery:
    """The account's jobs that dead or stopped workers held, now this worker's."""
    now = db.clock.wall()
    flights: list[Flight] = []
    lost = unsent = 0
    with db.tx() as conn:
        # The account's row first: two workers never take over the same jobs.
        lock(conn, account, now)
        for row in _ORPHAN_ATTEMPTS(conn, account=account).all():
            if row[1] == AttemptState.SUBMITTED:
                flights.append(_flight(row, now))
                _ADOPT(conn, job=row[5], me=me)
            elif row[2] is None:  # refused with a 429 and not sent again: nothing exists
                _DROP_ATTEMPT(conn, attempt=row[0])
                _REQUEUE(conn, job=row[5], now=now)
                unsent += 1
            else:
                queue.mark_lost(conn, now, row[0], row[5], "its worker died before the answer")
                lost += 1
        downloads = [int(pk) for pk in _ORPHAN_DOWNLOADS(conn, account=account).scalars()]
        for pk in downloads:
            _ADOPT(conn, job=pk, me=me)
    return Recovery(flights, downloads, lost, unsent)


def _flight(row: tuple[object, ...], now: float) -> Flight:
    pk, _state, _sent, prediction_id, accepted_at, job_pk, batch_id, job_id, model, failures = row
    return Flight(
        job_pk=int(job_pk),  # type: ignore[call-overload]
        batch_id=str(batch_id),
        job_id=str(job_id),
        model_name=str(model),
        attempt_pk=int(pk),  # type: ignore[call-overload]
        prediction_id=str(prediction_id),
        accepted_at=float(accepted_at) if accepted_at is not None else now,  # type: ignore[arg-type]
        failures=int(failures),  # type: ignore[call-overload]
    )
