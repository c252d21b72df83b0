"""The fleet's shared limits: each account's limits, its in-flight slots and its
sliding windows, counted in the database so that any number of workers keep them
together (see orchestrator/fleet/ for the rules, decisions.py for the arithmetic).

Every admission (a place in a window, a slot for a `/run`) is decided in one write
transaction that begins by touching the account's row in `accounts`: on PostgreSQL
that row lock orders the account's admissions across the fleet; on SQLite the first
write takes the database's write lock. Either way no two workers decide on the same
count.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Float, String, and_, bindparam, delete, func, or_, select, update

from .. import schema as t
from ..config import RateLimit
from ..fleet.decisions import AccountLimits, window_ready_at
from ..models import JobState
from .connection import Database
from .dialect import adding, insert_or_ignore, new_pk
from .statements import Prepared, Scoped, inserting

_j, _r, _acc = t.jobs, t.requests, t.accounts
_NOW = bindparam("now", type_=Float)
_ACCOUNT = bindparam("account", type_=String)

_LOCK = Prepared(update(_acc).where(_acc.c.name == _ACCOUNT).values(touched_at=_NOW))
_ADD_ACCOUNT = insert_or_ignore(
    _acc, "name", "concurrency", "run_limit", "status_limit", "touched_at"
)
_LIMITS = Prepared(
    select(_acc.c.concurrency, _acc.c.run_limit, _acc.c.status_limit).where(_acc.c.name == _ACCOUNT)
)
_SET_LIMITS = Prepared(
    update(_acc)
    .where(_acc.c.name == _ACCOUNT)
    .values(
        concurrency=bindparam("concurrency"),
        run_limit=bindparam("run_limit"),
        status_limit=bindparam("status_limit"),
        touched_at=_NOW,
    )
)
# A window's holders: requests unanswered, or answered less than a window ago.
_HOLDERS = Prepared(
    select(_r.c.pk, _r.c.done_at)
    .where(
        _r.c.account == _ACCOUNT,
        _r.c.endpoint == bindparam("endpoint"),
        or_(_r.c.done_at.is_(None), _r.c.done_at > bindparam("horizon", type_=Float)),
    )
    .order_by(_r.c.done_at)
)
_SEND = adding(inserting(_r, "endpoint", "sent_at", "account", "worker"))
_ANSWERED = Prepared(
    update(_r).where(_r.c.pk == bindparam("request")).values(done_at=bindparam("done_at"))
)
_UNSENT = Prepared(delete(_r).where(_r.c.pk == bindparam("request")))
# The account's slots: its jobs with a `/run` on its way or a prediction in flight.
_SLOTS_USED = Prepared(
    select(func.count()).where(_j.c.account == _ACCOUNT, _j.c.state == JobState.RUNNING)
)
_of_account = _j.c.account == _ACCOUNT
_ready = and_(
    _of_account,
    _j.c.state == JobState.QUEUED,
    or_(_j.c.not_before.is_(None), _j.c.not_before <= _NOW),
)
_NEXT = Scoped(
    select(_j.c.pk, _j.c.batch_id, _j.c.job_id, _j.c.model_name, _j.c.inputs, _j.c.failures)
    .where(_ready)
    .order_by(_j.c.priority.desc(), _j.c.pk)
    .limit(1)
    .with_for_update(skip_locked=True)  # PostgreSQL: another worker's claim is skipped
)
_START = Prepared(
    update(_j)
    .where(_j.c.pk == bindparam("job"), _j.c.state == JobState.QUEUED)
    .values(state=JobState.RUNNING, not_before=None, worker=bindparam("worker"), updated_at=_NOW)
)
_WAITING = Scoped(
    select(func.count(), func.min(_j.c.not_before)).where(
        _of_account, _j.c.state == JobState.QUEUED
    )
)
# Accounts with jobs still to run or save: those a worker without --account runs.
_ACCOUNTS = Scoped(
    select(_j.c.account)
    .distinct()
    .where(or_(*(_j.c.state == s for s in JobState if not s.terminal)))
    .order_by(_j.c.account)
)
_ANY_READY = Scoped(select(_j.c.pk).where(_ready).limit(1))
# Jobs of the account that another worker holds (running or downloading).
_HELD_ELSEWHERE = Scoped(
    select(func.count()).where(
        _of_account,
        or_(_j.c.state == JobState.RUNNING, _j.c.state == JobState.DOWNLOADING),
        or_(_j.c.worker.is_(None), _j.c.worker != bindparam("worker")),
    )
)


def lock(conn: Connection, account: str, now: float) -> None:
    """Order the account's admissions: see the module's docstring."""
    _LOCK(conn, account=account, now=now)


@dataclass
class Gate:
    """A claim's admission for one account of a fleet: its slots are taken in the
    claim's own transaction. `full` is set by each claim: True when the account had
    no free slot (the claim then returns None)."""

    account: str
    slots: int
    worker: str
    full: bool = False

    def opens(self, conn: Connection, now: float) -> bool:
        lock(conn, self.account, now)
        used = _SLOTS_USED(conn, account=self.account).scalar_one()
        self.full = int(used) >= self.slots
        return not self.full

    def next_job(self, conn: Connection, batches: Sequence[str] | None, now: float) -> Any:
        return _NEXT(conn, batches, account=self.account, now=now).first()

    def start(self, conn: Connection, job_pk: int, now: float) -> bool:
        return _START(conn, job=job_pk, worker=self.worker, now=now).rowcount == 1


def record_limits(
    db: Database, account: str, wanted: AccountLimits, *, others_live: bool
) -> AccountLimits:
    """Record the account's limits if none are, or if no other worker lives (the fleet
    is stopped: the limits may change); returns the limits now recorded."""
    concurrency, run, status = wanted.row()
    values = {"concurrency": concurrency, "run_limit": run, "status_limit": status}
    now = db.clock.wall()
    with db.tx() as conn:
        _ADD_ACCOUNT(conn, name=account, touched_at=now, **values)
        if not others_live:
            _SET_LIMITS(conn, account=account, now=now, **values)
        row = _LIMITS(conn, account=account).one()
    return AccountLimits(
        int(row[0]),
        None if row[1] is None else RateLimit.parse(row[1]),
        None if row[2] is None else RateLimit.parse(row[2]),
    )


def acquire(
    db: Database,
    account: str,
    endpoint: str,
    limit: RateLimit | None,
    worker: str,
    paused_until: float = 0.0,
    answers: Mapping[int, float] | None = None,
) -> tuple[int | None, float]:
    """A place in the account's window for one request sent now: (its request pk,
    now), or (None, the wall time it could go; inf until an answer).

    `answers`: answer times (by request pk) this worker has not written yet; they are
    written in the transaction that takes the place. A read (no lock) decides first
    whether the place is there, so a full window costs no write transaction."""
    answers = answers or {}
    now = db.clock.wall()
    with db.tx() as conn:
        at = _ready_at(conn, account, endpoint, limit, now, paused_until, answers)
    if at > now:
        return None, at
    with db.tx() as conn:
        lock(conn, account, now)
        write_answers(conn, answers)
        at = _ready_at(conn, account, endpoint, limit, now, paused_until, answers)
        if at > now:
            return None, at
        pk = new_pk(_SEND(conn, endpoint=endpoint, sent_at=now, account=account, worker=worker))
    return pk, now


def _ready_at(
    conn: Connection,
    account: str,
    endpoint: str,
    limit: RateLimit | None,
    now: float,
    paused_until: float,
    answers: Mapping[int, float],
) -> float:
    """When the account's window lets the next request go, as the database holds it
    and with this worker's answers not yet written."""
    horizon = now - (limit.seconds if limit else 0.0)
    held = [
        done if done is not None else answers.get(pk)
        for pk, done in _HOLDERS(conn, account=account, endpoint=endpoint, horizon=horizon)
    ]
    answered = sorted(d for d in held if d is not None)
    return window_ready_at(limit, now, answered, len(held) - len(answered), paused_until)


def write_answers(conn: Connection, answers: Mapping[int, float]) -> None:
    """Record when requests were answered (each then holds its window one more window)."""
    for pk, done_at in answers.items():
        _ANSWERED(conn, request=pk, done_at=done_at)


def answered(db: Database, answers: Mapping[int, float]) -> None:
    with db.tx() as conn:
        write_answers(conn, answers)


def unsent(db: Database, request_pk: int) -> None:
    with db.tx() as conn:
        _UNSENT(conn, request=request_pk)


def queue_state(
    db: Database, account: str, batches: Sequence[str] | None, worker: str
) -> tuple[int, float | None, int]:
    """The account's jobs waiting (and when the earliest backed-off one is due), and
    those another worker holds."""
    with db.tx() as conn:
        count, due = _WAITING(conn, batches, account=account).one()
        held = _HELD_ELSEWHERE(conn, batches, account=account, worker=worker).scalar_one()
    return int(count), due, int(held)


def slots_used(db: Database, account: str) -> int:
    """The account's slots in use, as last committed (a read: no lock)."""
    with db.tx() as conn:
        return int(_SLOTS_USED(conn, account=account).scalar_one())


def has_ready(db: Database, account: str, batches: Sequence[str] | None) -> bool:
    with db.tx() as conn:
        row = _ANY_READY(conn, batches, account=account, now=db.clock.wall()).first()
    return row is not None


def accounts(db: Database, batches: Sequence[str] | None) -> list[str]:
    with db.tx() as conn:
        return [str(a) for (a,) in _ACCOUNTS(conn, batches)]
