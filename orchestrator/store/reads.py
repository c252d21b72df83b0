"""What `status`, `report` and a run's progress read: counts, credits, reasons, and
every job with its attempts and outputs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Integer, bindparam, func, literal, select, true

from .. import schema as t
from ..errors import UsageError
from ..models import JobState
from . import dialect, messages
from .connection import Database
from .outputs import of_current_attempt
from .records import JobOrigin
from .statements import Prepared, Scoped

_j, _a, _o, _l = t.jobs, t.attempts, t.outputs, t.ledger

_BATCH_IDS = Prepared(select(t.batches.c.id).order_by(t.batches.c.created_at))
_STATES = Scoped(select(_j.c.state, func.count()).group_by(_j.c.state))
_credits = select(func.coalesce(func.sum(_l.c.credits), 0))
_CREDITS = Scoped(_credits, some=_credits.join(_j, _j.c.pk == _l.c.job_pk))
_uncertain = select(func.count()).select_from(_a).where(_a.c.uncertain.is_(True))
_UNCERTAIN = Scoped(_uncertain, some=_uncertain.join(_j, _j.c.pk == _a.c.job_pk))
_n = func.count().label("n")
_FAILURES = Scoped(
    select(_j.c.error, _n)
    .where(_j.c.state == JobState.FAILED)
    .group_by(_j.c.error)
    .order_by(_n.desc())
    .limit(bindparam("limit", type_=Integer))
)
_ORIGIN = Prepared(
    select(_j.c.batch_id, _j.c.job_id, _j.c.model_name, t.batches.c.manifest, _j.c.line)
    .join(t.batches, t.batches.c.id == _j.c.batch_id)
    .where(_j.c.pk == bindparam("job", type_=Integer))
)
# Three scans in job order, merged as they go (see iter_report). A job's outputs are
# reported once its prediction completed, and only those of its latest attempt.
_reported = [literal(s) for s in (JobState.DOWNLOADING, JobState.COMPLETED, JobState.FAILED)]
_src = _j.alias("src")
_JOBS = Scoped(
    select(_j, t.batches.c.manifest, _src.c.batch_id.label("reused_batch"))
    .add_columns(_src.c.job_id.label("reused_id"))
    .join(t.batches, t.batches.c.id == _j.c.batch_id)
    .outerjoin(_src, _src.c.pk == _j.c.reused_from)
    .order_by(_j.c.pk)
)


def _key_names(column: Any) -> Scoped[Any]:
    """The distinct keys of a JSON object column over the jobs (NULLs skipped)."""
    key = dialect.json_keys(column)
    return Scoped(
        select(key.c.key)
        .distinct()
        .select_from(_j)
        .join(key, true())
        .where(column.is_not(None))
        .order_by(key.c.key)
    )


# The input names and meta names the jobs use: the CSV report's columns.
_INPUT_NAMES = _key_names(_j.c.inputs)
_META_NAMES = _key_names(_j.c.meta)
_ATTEMPTS = Scoped(select(_a).join(_j, _j.c.pk == _a.c.job_pk).order_by(_a.c.job_pk, _a.c.pk))
_OUTPUTS = Scoped(
    select(_o)
    .join(_j, _j.c.pk == _o.c.job_pk)
    .where(_j.c.state.in_(_reported), of_current_attempt())
    .order_by(_o.c.job_pk, _o.c.idx)
)


def batch_ids(db: Database) -> list[str]:
    with db.tx() as conn:
        return list(_BATCH_IDS(conn).scalars())


def resolve_batches(db: Database, batch: str | None) -> list[str]:
    """The named batch (checked to exist), or every batch when none is named."""
    known = batch_ids(db)
    if batch is None:
        return known
    if batch not in known:
        raise UsageError(messages.unknown_batch(batch, db.location, known))
    return [batch]


def state_counts(db: Database, batches: Sequence[str] | None) -> dict[str, int]:
    with db.tx() as conn:
        return {state: int(n) for state, n in _STATES(conn, batches).all()}


def progress(db: Database, batches: Sequence[str] | None) -> tuple[dict[str, int], int]:
    """Jobs by state, and credits spent net of refunds. The states are counted in an
    index that holds them (ix_jobs_queue, or ix_jobs_batch_state for named batches),
    never in the rows of `jobs`; the credits are the ledger's, which only sent jobs
    have (the sum of jobs.credits, without reading a million queued rows for it)."""
    with db.tx() as conn:
        counts = {state: int(n) for state, n in _STATES(conn, batches).all()}
        credits = int(_CREDITS(conn, batches).scalar_one())
    return counts, credits


def credits_total(db: Database, batches: Sequence[str] | None) -> int:
    with db.tx() as conn:
        return int(_CREDITS(conn, batches).scalar_one())


def uncertain_count(db: Database, batches: Sequence[str] | None) -> int:
    with db.tx() as conn:
        return int(_UNCERTAIN(conn, batches).scalar_one())


def failure_reasons(
    db: Database, batches: Sequence[str] | None, limit: int = 10
) -> list[tuple[str, int]]:
    with db.tx() as conn:
        rows = _FAILURES(conn, batches, limit=limit).all()
    return [(str(e), int(n)) for e, n in rows]


def job_origin(db: Database, job_pk: int) -> JobOrigin:
    with db.tx() as conn:
        batch_id, job_id, model_name, manifest, line = _ORIGIN(conn, job=job_pk).one()
    return JobOrigin(batch_id, job_id, model_name, manifest, line)


def report_names(db: Database, batches: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The input names and the meta names that the jobs of `batches` use, sorted by
    code point (as SQLite sorts them, whatever PostgreSQL's collation)."""
    with db.tx() as conn:
        inputs = sorted(str(k) for k in _INPUT_NAMES(conn, batches).scalars())
        meta = sorted(str(k) for k in _META_NAMES(conn, batches).scalars())
    return inputs, meta


def iter_report(db: Database, batches: Sequence[str] | None) -> Iterator[dict[str, Any]]:
    """One dict per job, with its attempts and outputs, in queue order.

    Three ordered scans merged as they go: a million-job report costs three
    queries, not two per job, and holds one job in memory at a time.
    """
    with db.tx() as conn:
        jobs = (dict(row) for row in _JOBS(conn, batches).mappings())
        attempts = _Lookahead(dict(row) for row in _ATTEMPTS(conn, batches).mappings())
        outputs = _Lookahead(dict(row) for row in _OUTPUTS(conn, batches).mappings())
        for job in jobs:
            yield {
                "job": job,
                "attempts": attempts.take_while(job["pk"]),
                "outputs": outputs.take_while(job["pk"]),
            }


class _Lookahead:
    """Rows ordered by job_pk, handed out one job's worth at a time."""

    def __init__(self, rows: Iterator[dict[str, Any]]):
        self._rows = rows
        self._next = next(rows, None)

    def take_while(self, job_pk: int) -> list[dict[str, Any]]:
        taken = []
        while self._next is not None and self._next["job_pk"] <= job_pk:
            if self._next["job_pk"] == job_pk:
                taken.append(self._next)
            self._next = next(self._rows, None)
        return taken
