"""The request log: every request to a limited endpoint, so that a restarted process
can seed its sliding windows with what the previous one sent."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, or_, select, update

from .. import schema as t
from .connection import Database
from .dialect import adding, new_pk
from .statements import Prepared, inserting

_r = t.requests
_LOG = adding(inserting(_r, "endpoint", "sent_at"))
_FINISH = Prepared(
    update(_r).where(_r.c.pk == bindparam("request")).values(done_at=bindparam("now"))
)
_FORGET = Prepared(delete(_r).where(_r.c.sent_at < bindparam("before")))
_RECENT = Prepared(
    select(_r.c.sent_at, _r.c.done_at)
    .where(
        _r.c.endpoint == bindparam("endpoint"),
        or_(
            _r.c.sent_at >= bindparam("since"),
            _r.c.done_at >= bindparam("since"),
            _r.c.done_at.is_(None),
        ),
    )
    .order_by(_r.c.sent_at)
)


def add(conn: Connection, endpoint: str, now: float) -> int:
    """Log a request as sent; returns its pk."""
    return new_pk(_LOG(conn, endpoint=endpoint, sent_at=now))


def finish(conn: Connection, request_pk: int, now: float) -> None:
    """Mark a request answered (0: a request that was not logged)."""
    if request_pk:
        _FINISH(conn, request=request_pk, now=now)


def log_request(db: Database, endpoint: str) -> int:
    with db.tx() as conn:
        return add(conn, endpoint, db.clock.wall())


def finish_request(db: Database, request_pk: int) -> None:
    if request_pk:
        with db.tx() as conn:
            finish(conn, request_pk, db.clock.wall())


def recent_requests(db: Database, endpoint: str, since: float) -> list[tuple[float, float | None]]:
    """(sent, answered) wall times of the requests an earlier run sent lately: those
    sent or answered since `since`, and those never answered (within the hour)."""
    with db.tx() as conn:
        _FORGET(conn, before=since - 3600)
        rows = _RECENT(conn, endpoint=endpoint, since=since).all()
    return [(sent, done) for sent, done in rows]


class RequestLog:
    """Every request to a limited endpoint, as `store.requests`: what a restarted
    process seeds its sliding windows with."""

    def __init__(self, db: Database):
        self._db = db

    def log(self, endpoint: str) -> int:
        return log_request(self._db, endpoint)

    def finish(self, request_pk: int) -> None:
        finish_request(self._db, request_pk)

    def recent(self, endpoint: str, since: float) -> list[tuple[float, float | None]]:
        return recent_requests(self._db, endpoint, since)
