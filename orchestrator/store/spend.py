"""What the money side reads and writes: the rates the ledger has recorded, the jobs
whose cost is still open (uncertain attempts, unfinished jobs), what a run recorded
between two readings of the balance, and those readings (`balance_checks`)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Float, Integer, bindparam, func, or_, select, update

from .. import schema as t
from ..models import AttemptState, JobState
from .connection import Database
from .dialect import adding, new_pk
from .statements import Prepared, Scoped, inserting

_j, _a, _o, _l, _b = t.jobs, t.attempts, t.outputs, t.ledger, t.balance_checks
_SINCE = bindparam("since", type_=Float)

# Credits per output of each completed, charged prediction, rounded up; the highest
# per model. Integer division on both sides: (c + n - 1) / n is the ceiling.
_outputs = select(_o.c.attempt_pk, func.count().label("n")).group_by(_o.c.attempt_pk).subquery()
_rate = (_a.c.credits + _outputs.c.n - 1) // _outputs.c.n
_RATES = Prepared(
    select(_j.c.model_name, func.max(_rate))
    .select_from(_a)
    .join(_outputs, _outputs.c.attempt_pk == _a.c.pk)
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.state == AttemptState.COMPLETED, _a.c.credits > 0)
    .group_by(_j.c.model_name)
)
_UNCERTAIN_JOBS = Scoped(
    select(_j.c.model_name, _j.c.inputs)
    .select_from(_a)
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.uncertain.is_(True))
)
_UNCERTAIN_SINCE = Prepared(
    select(_j.c.model_name, _j.c.inputs)
    .select_from(_a)
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.uncertain.is_(True), _a.c.sent_at >= _SINCE)
)
_UNFINISHED = Scoped(
    select(_j.c.model_name, _j.c.inputs).where(
        or_(_j.c.state == JobState.QUEUED, _j.c.state == JobState.RUNNING)
    )
)
_RECORDED_SINCE = Prepared(
    select(func.coalesce(func.sum(_l.c.credits), 0)).where(_l.c.at >= _SINCE)
)
_EARLIER_REFUNDS = Prepared(
    select(func.coalesce(-func.sum(_l.c.credits), 0))
    .select_from(_l)
    .join(_a, _a.c.pk == _l.c.attempt_pk)
    .where(_l.c.at >= _SINCE, _l.c.credits < 0, _a.c.accepted_at < _SINCE)
)
_START = adding(inserting(_b, "batches", "started_at", "balance_before"))
_FINISH = Prepared(
    update(_b)
    .where(_b.c.pk == bindparam("check", type_=Integer))
    .values(
        finished_at=bindparam("finished_at"),
        balance_after=bindparam("balance_after"),
        recorded=bindparam("recorded"),
        uncertain=bindparam("uncertain"),
        uncertain_credits=bindparam("uncertain_credits"),
        earlier_refunds=bindparam("earlier_refunds"),
    )
)
_FINISHED_CHECKS = Prepared(
    select(_b)
    .where(_b.c.finished_at.is_not(None))
    .order_by(_b.c.pk.desc())
    .limit(bindparam("limit", type_=Integer))
)


def _jobs(rows: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for model_name, inputs in rows:
        # Large data URIs are stored apart (blobs); the counts a cost reads are not.
        yield model_name, json.loads(inputs)


class Spend:
    """The store's money side, as `store.spend`."""

    def __init__(self, db: Database):
        self._db = db

    def learned_rates(self) -> dict[str, int]:
        """The highest credits per output the ledger recorded for each model."""
        with self._db.tx() as conn:
            rows = _RATES(conn).all()
        return {model: int(rate) for model, rate in rows if rate is not None}

    def uncertain_jobs(self, batches: Sequence[str] | None) -> list[tuple[str, Any]]:
        """(model, inputs) of each attempt whose `/run` answer was lost."""
        with self._db.tx() as conn:
            return list(_jobs(_UNCERTAIN_JOBS(conn, batches).all()))

    def uncertain_since(self, since: float) -> list[tuple[str, Any]]:
        """(model, inputs) of each attempt sent since `since` whose answer was lost."""
        with self._db.tx() as conn:
            return list(_jobs(_UNCERTAIN_SINCE(conn, since=since).all()))

    def unfinished_jobs(self, batches: Sequence[str] | None) -> Iterator[tuple[str, Any]]:
        """(model, inputs) of each job not yet predicted (queued, or being sent)."""
        with self._db.tx() as conn:
            yield from _jobs(_UNFINISHED(conn, batches))

    def recorded_since(self, since: float) -> tuple[int, int]:
        """The ledger's net since `since`, and the part of it that refunds predictions
        charged before `since` (which the account may have refunded before, too)."""
        with self._db.tx() as conn:
            recorded = int(_RECORDED_SINCE(conn, since=since).scalar_one())
            earlier = int(_EARLIER_REFUNDS(conn, since=since).scalar_one())
        return recorded, earlier

    def start_check(self, batches: Sequence[str] | None, balance: int) -> tuple[int, float]:
        """Record the balance read before a run; returns the check's pk and its time."""
        now = self._db.clock.wall()
        names = None if batches is None else json.dumps(list(batches))
        with self._db.tx() as conn:
            pk = new_pk(_START(conn, batches=names, started_at=now, balance_before=balance))
        return pk, now

    def finish_check(self, check: int, **values: int) -> None:
        """Record the balance read after the run (`balance_after`), with what the run
        recorded meanwhile (`recorded`, `uncertain`, `uncertain_credits`,
        `earlier_refunds`)."""
        with self._db.tx() as conn:
            _FINISH(conn, check=check, finished_at=self._db.clock.wall(), **values)

    def latest_check(self, batches: Sequence[str] | None) -> dict[str, Any] | None:
        """The newest finished check of a run that took in one of `batches` (of any
        run when None)."""
        wanted = None if batches is None else set(batches)
        with self._db.tx() as conn:
            rows = [dict(r) for r in _FINISHED_CHECKS(conn, limit=200).mappings()]
        for row in rows:
            ran = None if row["batches"] is None else set(json.loads(row["batches"]))
            if wanted is None or ran is None or ran & wanted:
                return row
        return None
