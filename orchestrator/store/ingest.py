"""Queueing a manifest: its jobs staged, checked (duplicate ids, changed inputs), then
written in one set-based step; all of them, or (on any problem) nothing."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Float,
    String,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.schema import CreateIndex, DropIndex

from .. import schema as t
from ..errors import MAX_LISTED, ChangedJobError, ManifestError, Problem, ProblemList, RefusedJob
from ..models import JobSpec, JobState, canonical_json, fingerprint_of_json
from ..naming import NameTemplate
from . import blobs, dialect, duplicates, journal, messages, names, reuse, staging
from .connection import Database
from .records import IngestResult
from .staging import staging as s
from .statements import Prepared

_INGEST_CHUNK = 5_000  # staged rows per executemany

_j = t.jobs
_BATCH = bindparam("batch", type_=String)
_NOW = bindparam("now", type_=Float)
_CHANGED = Prepared(
    select(s.c.job_id, s.c.line, _j.c.state)
    .join(_j, and_(_j.c.batch_id == _BATCH, _j.c.job_id == s.c.job_id))
    .where(_j.c.fingerprint != s.c.fingerprint)
    .order_by(s.c.seq)
)
_ADD_BATCH = dialect.insert_or_ignore(t.batches, "id", "manifest", "created_at", "updated_at")
_TOUCH_BATCH = Prepared(
    update(t.batches)
    .where(t.batches.c.id == _BATCH)
    .values(manifest=bindparam("manifest"), updated_at=_NOW)
)
# Changed jobs (--replace) start over with the new inputs.
_REPLACE = Prepared(
    update(_j)
    .where(_j.c.batch_id == _BATCH, _j.c.job_id == s.c.job_id, _j.c.fingerprint != s.c.fingerprint)
    .values(
        model_name=s.c.model_name,
        inputs=s.c.inputs,
        fingerprint=s.c.fingerprint,
        priority=s.c.priority,
        line=s.c.line,
        meta=s.c.meta,
        account=s.c.account,
        reused_from=None,
        state=JobState.QUEUED,
        failures=0,
        not_before=None,
        error=None,
        updated_at=_NOW,
    )
)
# New jobs, in manifest order: their pks break ties between equal priorities.
_queued = t.jobs.alias("j")
_new_jobs = (
    select(
        _BATCH,
        s.c.job_id,
        s.c.priority,
        s.c.model_name,
        s.c.inputs,
        s.c.fingerprint,
        s.c.line,
        s.c.meta,
        s.c.account,
        literal(JobState.QUEUED.value),
        literal(0),
        literal(0),
        _NOW,
        _NOW,
    )
    .where(~exists().where(_queued.c.batch_id == _BATCH, _queued.c.job_id == s.c.job_id))
    .order_by(s.c.seq)
)
_ADD_JOBS = Prepared(
    insert(_j).from_select(
        ["batch_id", "job_id", "priority", "model_name", "inputs", "fingerprint", "line", "meta"]
        + ["account", "state"]
        + ["failures", "credits", "created_at", "updated_at"],
        _new_jobs,
    )
)
# A job's account is not part of what it asks for: an unchanged job that still waits
# to be sent takes the account the manifest now gives it.
_REASSIGN = Prepared(
    update(_j)
    .where(
        _j.c.batch_id == _BATCH,
        _j.c.job_id == s.c.job_id,
        _j.c.state == JobState.QUEUED,
        _j.c.account != s.c.account,
    )
    .values(account=s.c.account)
)
_STAGED = Prepared(select(func.count()).select_from(s))
_ANY_JOB = Prepared(select(literal(1)).select_from(_j).limit(1))


def ingest(
    db: Database,
    batch_id: str,
    manifest: str,
    entries: Iterable[JobSpec | Problem | RefusedJob],
    *,
    replace: bool = False,
    reuse_outputs: bool = False,
    template: NameTemplate | None = None,
) -> IngestResult:
    """Queue a manifest's jobs in one transaction: all of them, or nothing.

    `entries` is what the manifest reader yields (manifest.Manifest.entries()): jobs
    are staged as they come, problems listed (past MAX_LISTED, only counted), and
    the ids of refused jobs kept, so that their duplicates are reported in the same
    run. Duplicate ids are found here, with SQL, so memory does not grow with the file.

    `template` (None: keep the batch's) is stored with the batch, and the batch's
    template checked against its jobs (names.check). With `reuse_outputs`, queued
    jobs that an earlier job can stand for take its outputs (reuse.py), in the same
    transaction: none of them can be claimed, and so sent, before.
    """
    now = db.clock.wall()
    with db.tx() as conn:
        problems = _stage(conn, entries)
        _refuse_problems(conn, manifest, batch_id, problems)
        replaced = _check_changed(conn, manifest, batch_id, replace=replace)
        added, total = _write(conn, batch_id, manifest, now)
        if template is not None:
            names.set_template(conn, batch_id, template)
        names.check(conn, [batch_id])
        reused = reuse.reuse_queued(conn, batch_id, now) if reuse_outputs else 0
        message = f"{added} added, {replaced} replaced"
        journal.event(conn, db.clock.wall(), batch_id, None, "submit", message)
    return IngestResult(batch_id, added, total - added - replaced, replaced, reused)


class _Rollback(Exception):
    """Ends a check's transaction: what it staged is thrown away."""


def check(
    db: Database,
    batch_id: str,
    manifest: str,
    entries: Iterable[JobSpec | Problem | RefusedJob],
    *,
    replace: bool = False,
) -> None:
    """Every check `ingest` makes, writing nothing: the rows go only to the
    connection's TEMP staging table (blobs only by digest), and are rolled back."""
    try:
        with db.tx() as conn:
            problems = _stage(conn, entries, store_blobs=False)
            _refuse_problems(conn, manifest, batch_id, problems)
            _check_changed(conn, manifest, batch_id, replace=replace)
            raise _Rollback
    except _Rollback:
        pass


def _stage(
    conn: Connection,
    entries: Iterable[JobSpec | Problem | RefusedJob],
    *,
    store_blobs: bool = True,
) -> ProblemList:
    """Every job into staging, in chunks (inputs slimmed of blobs); the problems and
    refused ids aside."""
    staging.open_staging(conn)
    problems = ProblemList(limit=MAX_LISTED)
    digests: dict[str, str] = {}
    chunk: list[tuple[Any, ...]] = []
    for entry in entries:
        if isinstance(entry, JobSpec):  # the common case first
            inputs = blobs.slim(conn, entry.inputs, digests, store=store_blobs)
            line = entry.location.line if entry.location else None
            meta = canonical_json(entry.meta) if entry.meta else None
            fingerprint = _fingerprint(entry, inputs)
            priority = entry.priority
            account = entry.account
            row = (entry.id, entry.model_name, inputs, fingerprint, priority, line, meta, account)
            chunk.append(row)
            if len(chunk) >= _INGEST_CHUNK:
                staging.stage(conn, chunk)
                chunk.clear()
        elif isinstance(entry, Problem):
            problems.add(entry)
        else:
            problems.add_rejected(entry.id, entry.line)
    if chunk:
        staging.stage(conn, chunk)
    return problems


def _fingerprint(entry: JobSpec, inputs: str) -> str:
    """The job's fingerprint; from the JSON of its inputs when no input is a data URI
    (no tokens) and none went to `blobs` (the JSON is then the inputs' own)."""
    if entry.tokens is not None and not entry.tokens and blobs.BLOB_KEY not in inputs:
        return fingerprint_of_json(entry.model_name, inputs)
    return entry.fingerprint


def _refuse_problems(conn: Connection, manifest: str, batch_id: str, problems: ProblemList) -> None:
    """ManifestError (the transaction rolls back) if the reader or the ids found any."""
    if problems.rejected:
        # Only ever with problems, so rolled back below: never queued.
        staging.stage_refused(conn, problems.rejected)
    clashes, clash_total = duplicates.find(conn, manifest, batch_id)
    total = problems.total + clash_total
    if total:
        listed = sorted([*problems, *clashes], key=lambda p: p.line or 0)
        raise ManifestError(listed, total)


def _check_changed(conn: Connection, manifest: str, batch_id: str, *, replace: bool) -> int:
    """How many staged jobs are queued with other inputs; ChangedJobError unless they
    may be replaced (with --replace, and none of them in flight)."""
    changed = _CHANGED(conn, batch=batch_id).all()
    if changed and not replace:
        raise ChangedJobError(messages.changed_jobs(manifest, batch_id, changed))
    busy = [c for c in changed if c.state in (JobState.RUNNING, JobState.DOWNLOADING)]
    if busy:
        raise ChangedJobError(messages.jobs_in_flight([c.job_id for c in busy[:10]]))
    return len(changed)


def _write(conn: Connection, batch_id: str, manifest: str, now: float) -> tuple[int, int]:
    """The batch, the replaced jobs and the new ones; returns (added, staged)."""
    _ADD_BATCH(conn, id=batch_id, manifest=manifest, created_at=now, updated_at=now)
    _TOUCH_BATCH(conn, batch=batch_id, manifest=manifest, now=now)
    _REPLACE(conn, batch=batch_id, now=now)
    _REASSIGN(conn, batch=batch_id, now=now)
    with _indexes_built_after(conn):
        added = _ADD_JOBS(conn, batch=batch_id, now=now).rowcount
    staged = _STAGED(conn).scalar_one()
    staging.clear_staging(conn)
    return int(added), int(staged)


@contextmanager
def _indexes_built_after(conn: Connection) -> Iterator[None]:
    """Into an empty SQLite `jobs`, the rows go first and the secondary indexes are
    built after, from sorted keys: some times cheaper than maintaining each index row
    by row. In the same transaction, so nothing ever sees `jobs` without them; a queue
    with jobs keeps its indexes as they are. Not on PostgreSQL, where two first
    ingests at once would deadlock on the dropped indexes (SQLite's writers take turns)."""
    if conn.dialect.name != "sqlite" or _ANY_JOB(conn).first() is not None:
        yield
        return
    indexes = sorted(_j.indexes, key=lambda index: str(index.name))
    for index in indexes:
        conn.execute(DropIndex(index))
    yield
    for index in indexes:
        conn.execute(CreateIndex(index))
