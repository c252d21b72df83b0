"""Ids that would share an output folder: used twice, or differing only in letter case
(one folder on case-insensitive file systems, as macOS's), within the manifest or
against a job already queued in the batch. Found with SQL over the staged rows."""

from __future__ import annotations

from sqlalchemy import Connection, String, and_, bindparam, func, select

from .. import schema as t
from ..errors import Problem
from . import messages, staging
from .staging import staging as s
from .statements import Prepared

CAP = 1000  # problems listed of each kind; the rest are only counted

_folded = func.lower(s.c.job_id)
_repeated = select(_folded).group_by(_folded).having(func.count() > 1).limit(CAP)
# Each group's rows, its first use first (a refused job staged without a line last).
_REPEATS = Prepared(
    select(s.c.job_id, s.c.line)
    .where(_folded.in_(_repeated))
    .order_by(_folded, s.c.line.is_(None), s.c.line, s.c.seq)
)
_REPEATS_TOTAL = Prepared(select(func.count() - func.count(_folded.distinct())).select_from(s))

# From the batch's jobs (its index) into staging (the folded index).
_j = t.jobs
_clash = and_(_folded == func.lower(_j.c.job_id), s.c.job_id != _j.c.job_id)
_in_batch = _j.c.batch_id == bindparam("batch", type_=String())
_CLASHES = Prepared(
    select(s.c.job_id, s.c.line, _j.c.job_id.label("other"))
    .select_from(_j)
    .join(s, _clash)
    .where(_in_batch)
    .order_by(s.c.line)
    .limit(CAP)
)
_CLASHES_TOTAL = Prepared(select(func.count()).select_from(_j).join(s, _clash).where(_in_batch))


def find(conn: Connection, manifest: str, batch_id: str) -> tuple[list[Problem], int]:
    """The first CAP problems of each kind, and how many there are in all."""
    staging.fold_index(conn, present=True)
    try:
        problems, total = _within(conn, manifest)
        queued, queued_total = _against_queued(conn, manifest, batch_id)
    finally:
        staging.fold_index(conn, present=False)
    return problems + queued, total + queued_total


def _within(conn: Connection, manifest: str) -> tuple[list[Problem], int]:
    """Ids repeated within the manifest, each group's first use the reference."""
    problems: list[Problem] = []
    group = ""
    first: tuple[str, int | None] = ("", None)
    spellings: dict[str, int | None] = {}
    rows = _REPEATS(conn)
    try:
        for job_id, line in rows:
            if job_id.lower() != group:
                group, first, spellings = job_id.lower(), (job_id, line), {job_id: line}
                continue
            if job_id in spellings:
                message = messages.duplicate_id(job_id, spellings[job_id])
            else:
                spellings[job_id] = line
                message = messages.case_twins(job_id, line, *first)
            problems.append(Problem(manifest, line, "id", message))
            if len(problems) == CAP:
                break
    finally:
        rows.close()  # before the index it reads is dropped
    total = len(problems)
    if total == CAP:  # every row past the first of its group is one problem
        total = int(_REPEATS_TOTAL(conn).scalar_one())
    return problems, total


def _against_queued(conn: Connection, manifest: str, batch_id: str) -> tuple[list[Problem], int]:
    """Ids differing only in case from a job already queued in the batch."""
    queued = _CLASHES(conn, batch=batch_id).all()
    problems = [
        Problem(manifest, line, "id", messages.case_twin_queued(job_id, other, batch_id))
        for job_id, line, other in queued
    ]
    total = len(queued)
    if total == CAP:
        total = int(_CLASHES_TOTAL(conn, batch=batch_id).scalar_one())
    return problems, total
