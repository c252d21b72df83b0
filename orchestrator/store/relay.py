"""`store.relay`: what a fleet's webhook receivers read, so that any worker may take any
prediction's webhook: the tokens the database issued, who holds an attempt, and which
of a worker's flights another worker's receiver has recorded finished meanwhile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Integer, bindparam, select

from .. import schema as t
from ..models import AttemptState
from .connection import Database
from .records import Flight
from .statements import Prepared
from .webhooks import valid_digests

_j, _a = t.jobs, t.attempts
_HOLDING = Prepared(
    select(
        *(_a.c.state, _a.c.prediction_id, _a.c.accepted_at),
        *(_j.c.worker, _j.c.account, _j.c.pk, _j.c.batch_id, _j.c.job_id, _j.c.model_name),
        _j.c.failures,
    )
    .join(_j, _j.c.pk == _a.c.job_pk)
    .where(_a.c.pk == bindparam("attempt", type_=Integer))
)


@dataclass(frozen=True)
class Holding:
    """An attempt as the database has it: its state, its prediction (None before the
    `/run` answer), the worker whose job it is, its account, and as a Flight."""

    state: str
    prediction_id: str | None
    worker: str | None
    account: str
    flight: Flight


class Relay:
    def __init__(self, db: Database):
        self._db = db

    def digests(self) -> list[str]:
        """The webhook token digests still valid (every worker's, every run's)."""
        with self._db.tx() as conn:
            return valid_digests(conn, self._db.clock.wall())

    def holding(self, attempt_pk: int) -> Holding | None:
        with self._db.tx() as conn:
            row = _HOLDING(conn, attempt=attempt_pk).first()
        if row is None:
            return None
        state, prediction_id, accepted_at, worker, account, job_pk, batch, job, model, fails = row
        flight = Flight(
            job_pk=int(job_pk),
            batch_id=str(batch),
            job_id=str(job),
            model_name=str(model),
            attempt_pk=attempt_pk,
            prediction_id=str(prediction_id or ""),
            accepted_at=float(accepted_at or 0.0),
            failures=int(fails),
        )
        return Holding(str(state), prediction_id, worker, str(account), flight)

    def settled(self, attempt_pks: Sequence[int]) -> dict[int, str]:
        """Of these attempts, those recorded finished: attempt pk -> state."""
        if not attempt_pks:
            return {}
        with self._db.tx() as conn:
            query = select(_a.c.pk, _a.c.state).where(
                _a.c.pk.in_([int(pk) for pk in attempt_pks]),
                _a.c.state.in_([AttemptState.COMPLETED, AttemptState.FAILED]),
            )
            return {int(pk): str(st) for pk, st in conn.execute(query)}


__all__ = ["Holding", "Relay"]
