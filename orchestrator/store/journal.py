"""The append-only records: events (what happened to jobs) and the credit ledger."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, select

from .. import schema as t
from .connection import Database
from .statements import Prepared, inserting

_EVENT = Prepared(inserting(t.events, "at", "batch_id", "job_pk", "kind", "message"))
_BATCHES = Prepared(select(t.batches.c.id))
_LEDGER = Prepared(
    inserting(t.ledger, "job_pk", "attempt_pk", "prediction_id", "credits", "kind", "at")
)


def event(
    conn: Connection, at: float, batch_id: str | None, job_pk: int | None, kind: str, message: str
) -> None:
    _EVENT(conn, at=at, batch_id=batch_id, job_pk=job_pk, kind=kind, message=message)


def ledger(
    conn: Connection, job_pk: int, attempt_pk: int, prediction_id: str, credits: int, at: float
) -> None:
    """One credit movement: a charge (positive) or a refund (negative)."""
    kind = "charge" if credits > 0 else "refund"
    _LEDGER(
        conn,
        job_pk=job_pk,
        attempt_pk=attempt_pk,
        prediction_id=prediction_id,
        credits=credits,
        kind=kind,
        at=at,
    )


def record_run(db: Database, kind: str, batches: Sequence[str] | None, message: str) -> None:
    """A run started or stopped: one record per batch it runs (every batch when None),
    none tied to a job. The contact sheet's timeline marks them."""
    now = db.clock.wall()
    with db.tx() as conn:
        for batch_id in batches if batches is not None else _BATCHES(conn).scalars().all():
            event(conn, now, batch_id, None, kind, message)
