"""What the HTML contact sheet reads beyond the job report: credits by model, every
prediction's recorded times (the timeline's bars), the journal's marks (429s, lost
answers, runs started and stopped) and the stored copies of local input images."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, select

from .. import schema as t
from .connection import Database
from .statements import Prepared, Scoped

_j, _a, _o, _e = t.jobs, t.attempts, t.outputs, t.events

# The journal's kinds that the timeline marks.
RUN_KINDS = ("run-start", "run-stop", "run-end")
JOB_KINDS = ("rate-limited", "uncertain")

_BY_MODEL = Scoped(
    select(_j.c.model_name, func.coalesce(func.sum(_j.c.credits), 0), func.count())
    .group_by(_j.c.model_name)
    .order_by(_j.c.model_name)
)
_saved = (
    select(_o.c.attempt_pk, func.max(_o.c.saved_at).label("saved_at"))
    .group_by(_o.c.attempt_pk)
    .subquery()
)
_PREDICTIONS = Scoped(
    select(
        _j.c.job_id,
        _j.c.model_name,
        _a.c.prediction_id,
        _a.c.state,
        _a.c.error_name,
        _a.c.accepted_at,
        _a.c.finished_at,
        _saved.c.saved_at,
    )
    .join(_j, _j.c.pk == _a.c.job_pk)
    .outerjoin(_saved, _saved.c.attempt_pk == _a.c.pk)
    .where(_a.c.prediction_id.is_not(None), _a.c.accepted_at.is_not(None))
    .order_by(_a.c.accepted_at, _a.c.pk)
)
_JOB_MARKS = Scoped(
    select(_e.c.at, _e.c.kind, _e.c.message, _j.c.job_id)
    .join(_j, _j.c.pk == _e.c.job_pk)
    .where(_e.c.kind.in_([bindparam(f"k{i}", k) for i, k in enumerate(JOB_KINDS)]))
    .order_by(_e.c.at)
)
_RUN_MARKS = Scoped(
    select(_e.c.at, _e.c.kind, _e.c.message)
    .where(
        _e.c.job_pk.is_(None),
        _e.c.kind.in_([bindparam(f"k{i}", k) for i, k in enumerate(RUN_KINDS)]),
    )
    .order_by(_e.c.at),
    column=_e.c.batch_id,
)
_BLOB = Prepared(select(t.blobs.c.data).where(t.blobs.c.sha256 == bindparam("digest")))


def credits_by_model(db: Database, batches: Sequence[str] | None) -> list[tuple[str, int, int]]:
    """(model, credits net of refunds, jobs) for each model, by name."""
    with db.tx() as conn:
        rows = _BY_MODEL(conn, batches).all()
    return [(str(m), int(c), int(n)) for m, c, n in rows]


def predictions(db: Database, batches: Sequence[str] | None) -> list[dict[str, Any]]:
    """Every accepted prediction with its recorded times, in order of acceptance:
    accepted_at, finished_at (None while in flight) and its last output's saved_at."""
    with db.tx() as conn:
        return [dict(row) for row in _PREDICTIONS(conn, batches).mappings()]


def marks(db: Database, batches: Sequence[str] | None) -> list[dict[str, Any]]:
    """The journal's 429s and lost answers of the batches' jobs, and their runs'
    starts and stops (one record per batch of a run: listed once), by time."""
    with db.tx() as conn:
        jobs = [dict(row) for row in _JOB_MARKS(conn, batches).mappings()]
        runs = [dict(row) for row in _RUN_MARKS(conn, batches).mappings()]
    unique = {(r["at"], r["kind"]): {**r, "job_id": None} for r in runs}
    return sorted([*jobs, *unique.values()], key=lambda m: m["at"])


def blob(db: Database, digest: str) -> str | None:
    """A stored data URI by its digest (inputs keep large ones as `{"$blob": digest}`).

    Read on a connection of its own: the contact sheet asks while the job report's
    scans hold the store's connection (a second reader is what SQLite's WAL allows)."""
    with db.engine.connect() as conn:
        value = _BLOB(conn, digest=digest).scalar()
    return None if value is None else str(value)


class SheetReads:
    """The contact sheet's reads, as `store.sheet`."""

    def __init__(self, db: Database):
        self._db = db

    def credits_by_model(self, batches: Sequence[str] | None) -> list[tuple[str, int, int]]:
        return credits_by_model(self._db, batches)

    def predictions(self, batches: Sequence[str] | None) -> list[dict[str, Any]]:
        """Every accepted prediction with its recorded times, by acceptance."""
        return predictions(self._db, batches)

    def marks(self, batches: Sequence[str] | None) -> list[dict[str, Any]]:
        """429s, lost answers, run starts and stops, by time."""
        return marks(self._db, batches)

    def blob(self, digest: str) -> str | None:
        return blob(self._db, digest)
