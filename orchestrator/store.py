"""The SQLite queue. Every query the orchestrator makes lives in this module.

Durability rules the engine relies on:
- an attempt row (and its request log entry) is committed before `POST /run` is sent;
- the prediction id and its credits are committed in the transaction that reads the answer;
- a prediction's output URLs are committed with its completion, so a crash before the
  download only means downloading later, never predicting again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, func, select, text

from . import schema as t
from .clock import SYSTEM, Clock
from .errors import ChangedJobError, ManifestError, OrchestratorError, Problem, UsageError
from .locking import queue_lock
from .models import AttemptState, JobSpec, JobState, canonical_json

# Data URIs longer than this are stored once in `blobs` and referenced from jobs,
# so a catalog that puts one local photo into 5,000 jobs stores it once.
BLOB_THRESHOLD = 512
_BLOB_KEY = "$blob"
_INGEST_CHUNK = 5_000


def _migrations_dir() -> Path:
    """The alembic scripts: in a checkout beside the package, installed inside it
    (as `orchestrator.migrations`)."""
    package = Path(__file__).resolve().parent
    for candidate in (package.parent / "migrations", package / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    spec = importlib.util.find_spec("orchestrator.migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "env.py").exists():
            return Path(location)
    raise OrchestratorError("the database migrations are not installed; reinstall the package")


def _newest_revision(scripts: Path) -> str:
    """Migrations are named `NNNN_what.py` with revision id `NNNN`, in order."""
    names = sorted(p.name for p in (scripts / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1][:4] if names else ""


def _current_revision(conn: Connection) -> str | None:
    exists = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).scalar()
    if not exists:  # a new database
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


@dataclass(frozen=True)
class IngestResult:
    batch_id: str
    added: int
    unchanged: int
    replaced: int


@dataclass(frozen=True)
class ClaimedJob:
    """A job taken from the queue with the attempt row created for it."""

    job_pk: int
    batch_id: str
    job_id: str
    model_name: str
    inputs: dict[str, Any]
    failures: int
    attempt_pk: int
    request_pk: int


@dataclass(frozen=True)
class Flight:
    """A prediction that has an id and was not yet seen terminal."""

    job_pk: int
    batch_id: str
    job_id: str
    model_name: str
    attempt_pk: int
    prediction_id: str
    accepted_at: float
    failures: int


@dataclass(frozen=True)
class PendingOutput:
    output_pk: int
    job_pk: int
    attempt_pk: int
    batch_id: str
    job_id: str
    idx: int
    url: str
    tries: int


@dataclass(frozen=True)
class Recovery:
    """What an earlier, interrupted run left behind."""

    flights: list[Flight]
    downloads: list[int]  # job pks with outputs still to save
    lost: int  # attempts sent without an answer: resubmitted, marked uncertain
    unsent: int  # attempts created but never sent: dropped


class Store:
    """All persistence behind one class; migrates the database when it opens it."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durable: bool = True,
        create: bool = True,
        clock: Clock = SYSTEM,
    ):
        """Open (and migrate) the queue at `path`; with create=False, a missing file
        is a UsageError and nothing is created."""
        self.path = Path(path)
        self._clock = clock  # every time the database records is this clock's wall time
        if not create:
            self.check_exists(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{self.path}")
        self._conn: Connection | None = None
        self._sync_durable = durable

        @event.listens_for(self.engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

        self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to the newest migration; a no-op costs one query."""
        scripts = _migrations_dir()
        with self.engine.begin() as conn:
            if _current_revision(conn) == _newest_revision(scripts):
                return
            # Imported here: alembic takes longer to import than `status` takes to run.
            from alembic import command
            from alembic.config import Config

            cfg = Config()
            cfg.set_main_option("script_location", str(scripts))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    @contextmanager
    def _tx(self, *, durable: bool = False) -> Iterator[Connection]:
        """One transaction on the store's own connection (kept open: the scheduler
        commits several times per job, and a pool checkout each time costs more
        than the statements).

        `durable` transactions are synced to disk before they return, so that they
        survive a power cut. Only the attempt row written before `POST /run` needs
        that: losing it would hide a possible double charge. Losing any later write
        to a power cut (never to a crash) only means asking or downloading again.
        """
        if self._conn is None:
            self._conn = self.engine.connect()
        raw = self._conn.connection.dbapi_connection
        assert raw is not None
        if durable and self._sync_durable:
            raw.execute("PRAGMA synchronous=FULL")
        try:
            with self._conn.begin():
                yield self._conn
        finally:
            if durable and self._sync_durable:
                raw.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()

    # ------------------------------------------------------------------ locking

    @staticmethod
    def check_exists(path: Path) -> None:
        if not path.is_file():
            raise UsageError(
                f"no queue at {path}: check --db (or ORCHESTRATOR_DB), or queue jobs "
                "there first with `orchestrator submit MANIFEST`"
            )

    def run_lock(self) -> AbstractContextManager[None]:
        """Only one process may run the queue of a database at a time."""
        return queue_lock(self.path)

    def discard(self) -> None:
        """Close and delete a database that this process has just created."""
        self.close()
        for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    # ------------------------------------------------------------------ ingest

    def ingest(
        self,
        batch_id: str,
        manifest: str,
        specs: Iterable[JobSpec],
        problems: list[Problem],
        *,
        replace: bool = False,
    ) -> IngestResult:
        """Queue a manifest's jobs in one transaction: all of them, or nothing.

        `problems` is the manifest reader's list, filled while `specs` is consumed;
        duplicate ids are found here, with SQL, so memory does not grow with the file.
        A reader's ProblemList also says how many problems it did not list, and the
        ids of the jobs it refused, whose duplicates are then reported in this run too.
        """
        from .errors import ProblemList

        now = self._clock.wall()
        with self._tx() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            cur = raw.cursor()
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS staging (job_id TEXT, model_name TEXT,"
                " inputs TEXT, fingerprint TEXT, priority INTEGER, line INTEGER)"
            )
            cur.execute("DELETE FROM staging")
            blob_digests: dict[str, str] = {}
            chunk: list[tuple[Any, ...]] = []
            for spec in specs:
                inputs = self._store_blobs(cur, spec.inputs, blob_digests)
                # Hashing the slim inputs (blobs by digest) identifies the job as well as
                # the full ones, without rehashing a shared photo for every row.
                fingerprint = hashlib.sha256(f"{spec.model_name}\n{inputs}".encode()).hexdigest()
                line = spec.location.line if spec.location else None
                chunk.append((spec.id, spec.model_name, inputs, fingerprint, spec.priority, line))
                if len(chunk) >= _INGEST_CHUNK:
                    cur.executemany("INSERT INTO staging VALUES (?,?,?,?,?,?)", chunk)
                    chunk.clear()
            if chunk:
                cur.executemany("INSERT INTO staging VALUES (?,?,?,?,?,?)", chunk)

            report = problems if isinstance(problems, ProblemList) else None
            if report is not None and report.rejected:
                # Only ever with problems, so rolled back below: never queued.
                cur.executemany("INSERT INTO staging (job_id, line) VALUES (?, ?)", report.rejected)
            clashes, clash_total = self._duplicate_problems(cur, manifest, batch_id)
            total = (len(problems) if report is None else report.total) + clash_total
            if total:
                cur.execute("DELETE FROM staging")
                conn.rollback()
                listed = sorted([*problems, *clashes], key=lambda p: p.line or 0)
                raise ManifestError(listed, total)

            changed = cur.execute(
                "SELECT s.job_id, s.line, j.state FROM staging s JOIN jobs j"
                " ON j.batch_id = ? AND j.job_id = s.job_id WHERE j.fingerprint != s.fingerprint"
                " ORDER BY s.rowid",
                (batch_id,),
            ).fetchall()
            if changed and not replace:
                conn.rollback()
                raise ChangedJobError(_changed_message(manifest, batch_id, changed))
            busy = [c for c in changed if c[2] in (JobState.RUNNING, JobState.DOWNLOADING)]
            if busy:
                conn.rollback()
                ids = ", ".join(c[0] for c in busy[:10])
                raise ChangedJobError(
                    f"cannot replace jobs with a prediction in flight ({ids}); "
                    "run `orchestrator resume` until they finish, then submit again"
                )

            cur.execute(
                "INSERT OR IGNORE INTO batches (id, manifest, created_at, updated_at)"
                " VALUES (?,?,?,?)",
                (batch_id, manifest, now, now),
            )
            cur.execute(
                "UPDATE batches SET manifest = ?, updated_at = ? WHERE id = ?",
                (manifest, now, batch_id),
            )
            cur.execute(
                "UPDATE jobs SET model_name = s.model_name, inputs = s.inputs,"
                " fingerprint = s.fingerprint, priority = s.priority, state = 'queued',"
                " failures = 0, not_before = NULL, error = NULL, updated_at = ?"
                " FROM staging s WHERE jobs.batch_id = ? AND jobs.job_id = s.job_id"
                " AND jobs.fingerprint != s.fingerprint",
                (now, batch_id),
            )
            replaced = len(changed)
            cur.execute(
                "INSERT INTO jobs (batch_id, job_id, priority, model_name, inputs, fingerprint,"
                " state, failures, credits, created_at, updated_at)"
                " SELECT ?, s.job_id, s.priority, s.model_name, s.inputs, s.fingerprint,"
                " 'queued', 0, 0, ?, ? FROM staging s WHERE NOT EXISTS"
                " (SELECT 1 FROM jobs j WHERE j.batch_id = ? AND j.job_id = s.job_id)"
                " ORDER BY s.rowid",
                (batch_id, now, now, batch_id),
            )
            added = cur.rowcount
            total = cur.execute("SELECT count(*) FROM staging").fetchone()[0]
            cur.execute("DELETE FROM staging")
            self._event(conn, batch_id, None, "submit", f"{added} added, {replaced} replaced")
        return IngestResult(batch_id, added, total - added - replaced, replaced)

    @staticmethod
    def _store_blobs(cur: Any, inputs: Any, digests: dict[str, str]) -> str:
        """Canonical JSON of `inputs`, with large data URIs moved to `blobs`.

        `digests` remembers URIs already stored; rows that share a photo share one
        string object, so the lookup costs no rehash of the photo.
        """
        slim: dict[str, Any] = {}
        for key, value in inputs.items():
            if isinstance(value, str) and len(value) > BLOB_THRESHOLD and value.startswith("data:"):
                digest = digests.get(value)
                if digest is None:
                    digest = hashlib.sha256(value.encode()).hexdigest()
                    cur.execute(
                        "INSERT OR IGNORE INTO blobs (sha256, data) VALUES (?, ?)", (digest, value)
                    )
                    digests[value] = digest
                slim[key] = {_BLOB_KEY: digest}
            else:
                slim[key] = value
        return canonical_json(slim)

    @staticmethod
    def _duplicate_problems(cur: Any, manifest: str, batch_id: str) -> tuple[list[Problem], int]:
        """Ids in staging that would share an output folder: used twice, or differing
        only in letter case (one folder on case-insensitive file systems, as macOS's),
        within the manifest or from a job already queued in the batch. Returns the
        first 1000 problems of each kind and how many there are in all.

        Ids are ASCII (the manifest's rule), which SQLite's lower() folds. An index on
        lower(job_id), built once the rows are in, serves both checks; it is dropped
        again so that the next manifest's inserts do not maintain it.
        """
        cap = 1000

        def on(line: int | None) -> str:
            return "an earlier job" if line is None else f"line {line}"

        problems: list[Problem] = []
        cur.execute("CREATE INDEX IF NOT EXISTS temp.staging_folded ON staging (lower(job_id))")
        try:
            rows = cur.execute(
                "SELECT job_id, line FROM staging WHERE lower(job_id) IN (SELECT lower(job_id)"
                " FROM staging GROUP BY lower(job_id) HAVING count(*) > 1 LIMIT ?)"
                " ORDER BY lower(job_id), line IS NULL, line, rowid",
                (cap,),
            )
            group, first, spellings = "", ("", None), {}
            for job_id, line in rows:
                if job_id.lower() != group:  # the group's first use is the reference
                    group, first, spellings = job_id.lower(), (job_id, line), {job_id: line}
                    continue
                if job_id in spellings:
                    message = (
                        f"duplicate job id {job_id!r} (first used on {on(spellings[job_id])}); "
                        "give each job its own id or drop the repeated one"
                    )
                else:
                    spellings[job_id] = line
                    message = (
                        f"id {job_id!r} ({on(line)}) and id {first[0]!r} ({on(first[1])}) "
                        "differ only in case: they would share one output folder on "
                        "case-insensitive file systems; rename one"
                    )
                problems.append(Problem(manifest, line, "id", message))
                if len(problems) == cap:
                    break
            total = len(problems)
            if total == cap:  # every row past the first of its group is one problem
                total = cur.execute(
                    "SELECT count(*) - count(DISTINCT lower(job_id)) FROM staging"
                ).fetchone()[0]

            # From the batch's jobs (its index) into staging (the folded index).
            clash = (
                " FROM jobs j CROSS JOIN staging s ON lower(s.job_id) = lower(j.job_id)"
                " AND s.job_id != j.job_id WHERE j.batch_id = ?"
            )
            queued = cur.execute(
                f"SELECT s.job_id, s.line, j.job_id{clash} ORDER BY s.line LIMIT ?",
                (batch_id, cap),
            ).fetchall()
            for job_id, line, other in queued:
                problems.append(
                    Problem(
                        manifest,
                        line,
                        "id",
                        f"id {job_id!r} differs only in case from id {other!r}, already queued "
                        f"in batch {batch_id!r}: they would share one output folder on "
                        "case-insensitive file systems; rename it",
                    )
                )
            total += len(queued)
            if len(queued) == cap:
                total += cur.execute(f"SELECT count(*){clash}", (batch_id,)).fetchone()[0] - cap
        finally:
            cur.execute("DROP INDEX IF EXISTS temp.staging_folded")
        return problems, total

    def _inflate(self, conn: Connection, raw_inputs: str) -> dict[str, Any]:
        inputs: dict[str, Any] = json.loads(raw_inputs)
        for key, value in inputs.items():
            if isinstance(value, dict) and _BLOB_KEY in value:
                inputs[key] = conn.execute(
                    select(t.blobs.c.data).where(t.blobs.c.sha256 == value[_BLOB_KEY])
                ).scalar_one()
        return inputs

    def requeue_failed(self, batches: Sequence[str] | None, *, url_ttl: float) -> int:
        """Give failed jobs another chance (`--retry-failed`); returns how many.

        A job whose prediction completed and whose output URLs are surely still
        valid (accepted less than `url_ttl` seconds ago) is only downloaded again,
        never bought again; every other failed job gets a fresh set of attempts.
        """
        now = self._clock.wall()
        with self._tx() as conn:
            downloads = self._redownload_failed(conn, batches, now - url_ttl, now)
            stmt = (
                t.jobs.update()
                .where(t.jobs.c.state == JobState.FAILED)
                .values(state=JobState.QUEUED, failures=0, error=None, not_before=None)
            )
            if batches is not None:
                stmt = stmt.where(t.jobs.c.batch_id.in_(batches))
            return len(downloads) + int(conn.execute(stmt).rowcount)

    # ------------------------------------------------------------------ resume

    def recover(self) -> Recovery:
        """Put the queue back in order after a run that did not finish.

        Every batch is recovered: predictions of any batch hold account slots, so
        they are polled (and their outputs saved) whichever batch is being run.

        Attempts with a prediction id are polled, never resent. An attempt that was
        sent but has no id may or may not have created a prediction: its job is
        queued again and the attempt is marked uncertain, which the report shows.
        """
        now = self._clock.wall()
        with self._tx() as conn:
            unsent = conn.execute(
                t.attempts.delete().where(
                    t.attempts.c.state == AttemptState.PENDING, t.attempts.c.sent_at.is_(None)
                )
            ).rowcount
            lost_rows = conn.execute(
                select(t.attempts.c.pk, t.attempts.c.job_pk).where(
                    t.attempts.c.state == AttemptState.PENDING
                )
            ).all()
            for attempt_pk, job_pk in lost_rows:
                self._mark_lost(conn, attempt_pk, job_pk, "the process stopped before the answer")
            # A running job whose attempt is not in flight has nothing to wait for.
            in_flight = select(t.attempts.c.job_pk).where(
                t.attempts.c.state == AttemptState.SUBMITTED
            )
            conn.execute(
                t.jobs.update()
                .where(t.jobs.c.state == JobState.RUNNING, t.jobs.c.pk.not_in(in_flight))
                .values(state=JobState.QUEUED, updated_at=now)
            )
            flights = [
                Flight(
                    job_pk=r.job_pk,
                    batch_id=r.batch_id,
                    job_id=r.job_id,
                    model_name=r.model_name,
                    attempt_pk=r.pk,
                    prediction_id=r.prediction_id,
                    accepted_at=r.accepted_at or now,
                    failures=r.failures,
                )
                for r in conn.execute(
                    select(
                        t.attempts.c.pk,
                        t.attempts.c.job_pk,
                        t.attempts.c.prediction_id,
                        t.attempts.c.accepted_at,
                        t.jobs.c.batch_id,
                        t.jobs.c.job_id,
                        t.jobs.c.model_name,
                        t.jobs.c.failures,
                    )
                    .join(t.jobs, t.jobs.c.pk == t.attempts.c.job_pk)
                    .where(t.attempts.c.state == AttemptState.SUBMITTED)
                    .order_by(t.attempts.c.accepted_at)
                )
            ]
            downloads = list(
                conn.execute(
                    select(t.jobs.c.pk).where(t.jobs.c.state == JobState.DOWNLOADING)
                ).scalars()
            )
            # Jobs whose downloads failed earlier get another chance without a new prediction.
            failed_dl = self._redownload_failed(conn, None, None, now)
        return Recovery(flights, downloads + failed_dl, len(lost_rows), unsent)

    @staticmethod
    def _redownload_failed(
        conn: Connection, batches: Sequence[str] | None, accepted_since: float | None, now: float
    ) -> list[int]:
        """Failed jobs whose current attempt completed but whose outputs were not all
        saved go back to downloading; returns their pks. With `accepted_since`, only
        predictions accepted since then: older URLs may have expired."""
        where, params = _batch_filter(batches, "j.batch_id")
        fresh = " AND a.accepted_at >= ?" if accepted_since is not None else ""
        pks = [
            int(pk)
            for (pk,) in conn.exec_driver_sql(
                "SELECT DISTINCT j.pk FROM jobs j JOIN outputs o ON o.job_pk = j.pk"
                " JOIN attempts a ON a.pk = o.attempt_pk"
                f" WHERE j.state = 'failed' AND o.state = 'failed' AND {_CURRENT_ATTEMPT}"
                f"{fresh}{where}",
                (*([accepted_since] if accepted_since is not None else []), *params),
            ).all()
        ]
        for pk in pks:
            conn.exec_driver_sql(
                "UPDATE outputs SET state = 'pending', tries = 0, error = NULL"
                f" WHERE job_pk = ? AND state = 'failed' AND attempt_pk = ({_LATEST_ATTEMPT})",
                (pk, pk),
            )
            conn.exec_driver_sql(
                "UPDATE jobs SET state = 'downloading', error = NULL, updated_at = ? WHERE pk = ?",
                (now, pk),
            )
        return pks

    # ------------------------------------------------------------------ submit

    def claim_next(
        self, batches: Sequence[str] | None, *, log_request: bool = True
    ) -> ClaimedJob | None:
        """Take the next ready job and commit an attempt row for the `/run` about to go."""
        now = self._clock.wall()
        where, params = _batch_filter(batches)
        with self._tx(durable=True) as conn:
            row = conn.exec_driver_sql(
                "SELECT pk, batch_id, job_id, model_name, inputs, failures FROM jobs"
                " WHERE state = 'queued' AND (not_before IS NULL OR not_before <= ?)"
                f"{where} ORDER BY priority DESC, pk LIMIT 1",
                (now, *params),
            ).first()
            if row is None:
                return None
            job_pk, batch_id, job_id, model_name, inputs, failures = row
            conn.exec_driver_sql(
                "UPDATE jobs SET state = 'running', not_before = NULL, updated_at = ? WHERE pk = ?",
                (now, job_pk),
            )
            attempt_pk = _insert(
                conn,
                "INSERT INTO attempts (job_pk, state, sent_at, uncertain)"
                " VALUES (?, 'pending', ?, 0)",
                (job_pk, now),
            )
            request_pk = self._log_request(conn, "run", now) if log_request else 0
            return ClaimedJob(
                job_pk=job_pk,
                batch_id=batch_id,
                job_id=job_id,
                model_name=model_name,
                inputs=self._inflate(conn, inputs),
                failures=failures,
                attempt_pk=attempt_pk,
                request_pk=request_pk,
            )

    def has_ready(self, batches: Sequence[str] | None) -> bool:
        """Whether a queued job could be sent now (one index probe)."""
        where, params = _batch_filter(batches)
        with self._tx() as conn:
            row = conn.exec_driver_sql(
                "SELECT 1 FROM jobs WHERE state = 'queued'"
                f" AND (not_before IS NULL OR not_before <= ?){where} LIMIT 1",
                (self._clock.wall(), *params),
            ).first()
        return row is not None

    def queue_state(self, batches: Sequence[str] | None) -> tuple[int, float | None]:
        """How many jobs wait in the queue, and when the earliest backed-off one is due."""
        where, params = _batch_filter(batches)
        with self._tx() as conn:
            count, due = conn.exec_driver_sql(
                f"SELECT count(*), min(not_before) FROM jobs WHERE state = 'queued'{where}",
                tuple(params),
            ).one()
        return int(count), due

    def record_refused(self, attempt_pk: int, request_pk: int) -> None:
        """`/run` answered 429, which proves nothing was created: until the attempt is
        sent again it counts as never sent, so a crash meanwhile leaves no doubt."""
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql("UPDATE attempts SET sent_at = NULL WHERE pk = ?", (attempt_pk,))
            self._finish_request(conn, request_pk, now)

    def resend(self, attempt_pk: int, *, log_request: bool = True) -> int:
        """The same attempt goes again after a 429 (which proves nothing was created)."""
        now = self._clock.wall()
        with self._tx(durable=True) as conn:
            conn.exec_driver_sql("UPDATE attempts SET sent_at = ? WHERE pk = ?", (now, attempt_pk))
            return self._log_request(conn, "run", now) if log_request else 0

    def record_accepted(
        self, claimed: ClaimedJob, prediction_id: str, credits: int, request_pk: int
    ) -> Flight:
        """The API accepted the job's `/run`: its prediction is now in flight."""
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE attempts SET state = 'submitted', prediction_id = ?, credits = ?,"
                " status = 'starting', accepted_at = ? WHERE pk = ?",
                (prediction_id, credits, now, claimed.attempt_pk),
            )
            if credits:
                _ledger(conn, claimed.job_pk, claimed.attempt_pk, prediction_id, credits, now)
                conn.exec_driver_sql(
                    "UPDATE jobs SET credits = credits + ? WHERE pk = ?", (credits, claimed.job_pk)
                )
            self._finish_request(conn, request_pk, now)
        return Flight(
            job_pk=claimed.job_pk,
            batch_id=claimed.batch_id,
            job_id=claimed.job_id,
            model_name=claimed.model_name,
            attempt_pk=claimed.attempt_pk,
            prediction_id=prediction_id,
            accepted_at=now,
            failures=claimed.failures,
        )

    def record_rejected(
        self,
        claimed: ClaimedJob,
        request_pk: int,
        *,
        error: str,
        fail_job: bool,
        not_before: float | None = None,
    ) -> None:
        """The API answered `/run` with an error: no prediction exists."""
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE attempts SET state = 'rejected', error_message = ?, finished_at = ?"
                " WHERE pk = ?",
                (error, now, claimed.attempt_pk),
            )
            conn.exec_driver_sql(
                "UPDATE jobs SET state = ?, error = ?, not_before = ?, updated_at = ? WHERE pk = ?",
                (
                    JobState.FAILED if fail_job else JobState.QUEUED,
                    error if fail_job else None,
                    not_before,
                    now,
                    claimed.job_pk,
                ),
            )
            self._finish_request(conn, request_pk, now)
            if fail_job:
                self._event(conn, claimed.batch_id, claimed.job_pk, "failed", error)

    def record_lost(
        self, claimed: ClaimedJob, request_pk: int, *, error: str, not_before: float | None
    ) -> None:
        """`/run` got no usable answer: a prediction may exist. Queue the job again."""
        with self._tx() as conn:
            self._mark_lost(conn, claimed.attempt_pk, claimed.job_pk, error, not_before)
            self._finish_request(conn, request_pk, self._clock.wall())

    def _mark_lost(
        self,
        conn: Connection,
        attempt_pk: int,
        job_pk: int,
        error: str,
        not_before: float | None = None,
    ) -> None:
        now = self._clock.wall()
        conn.exec_driver_sql(
            "UPDATE attempts SET state = 'rejected', uncertain = 1, error_name = 'AnswerLost',"
            " error_message = ?, finished_at = ? WHERE pk = ?",
            (error, now, attempt_pk),
        )
        conn.exec_driver_sql(
            "UPDATE jobs SET state = 'queued', not_before = ?, updated_at = ? WHERE pk = ?",
            (not_before, now, job_pk),
        )
        self._event(conn, None, job_pk, "uncertain", f"/run answer lost: {error}")

    # ------------------------------------------------------------------ poll

    def record_status(self, attempt_pk: int, status: str) -> None:
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE attempts SET status = ? WHERE pk = ?", (status, attempt_pk)
            )

    def record_completed(self, flight: Flight, urls: Sequence[str]) -> list[PendingOutput]:
        """Completion and its output URLs in one transaction; the downloads follow."""
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE attempts SET state = 'completed', status = 'completed', finished_at = ?"
                " WHERE pk = ?",
                (now, flight.attempt_pk),
            )
            conn.exec_driver_sql(
                "UPDATE jobs SET state = ?, updated_at = ? WHERE pk = ?",
                (JobState.DOWNLOADING if urls else JobState.COMPLETED, now, flight.job_pk),
            )
            pending = []
            for idx, url in enumerate(urls):
                pk = _insert(
                    conn,
                    "INSERT INTO outputs (job_pk, attempt_pk, idx, url, state, tries)"
                    " VALUES (?, ?, ?, ?, 'pending', 0)",
                    (flight.job_pk, flight.attempt_pk, idx, url),
                )
                pending.append(
                    PendingOutput(
                        pk,
                        flight.job_pk,
                        flight.attempt_pk,
                        flight.batch_id,
                        flight.job_id,
                        idx,
                        url,
                        0,
                    )
                )
        return pending

    def record_failed(
        self,
        flight: Flight,
        *,
        name: str,
        message: str,
        refund: bool,
        retry: bool,
        not_before: float | None = None,
    ) -> int:
        """A prediction failed. Failed predictions are not charged: the charge is refunded.

        Returns the credits refunded."""
        now = self._clock.wall()
        with self._tx() as conn:
            charged = conn.exec_driver_sql(
                "SELECT credits FROM attempts WHERE pk = ?", (flight.attempt_pk,)
            ).scalar_one()
            refunded = int(charged or 0) if refund else 0
            conn.exec_driver_sql(
                "UPDATE attempts SET state = 'failed', status = 'failed', error_name = ?,"
                " error_message = ?, finished_at = ? WHERE pk = ?",
                (name, message, now, flight.attempt_pk),
            )
            if refunded:
                _ledger(
                    conn, flight.job_pk, flight.attempt_pk, flight.prediction_id, -refunded, now
                )
            error = f"{name}: {message}" if message else name
            conn.exec_driver_sql(
                "UPDATE jobs SET state = ?, failures = failures + 1, credits = credits - ?,"
                " error = ?, not_before = ?, updated_at = ? WHERE pk = ?",
                (
                    JobState.QUEUED if retry else JobState.FAILED,
                    refunded,
                    None if retry else error,
                    not_before if retry else None,
                    now,
                    flight.job_pk,
                ),
            )
            kind = "retry" if retry else "failed"
            self._event(conn, flight.batch_id, flight.job_pk, kind, error)
        return refunded

    # ------------------------------------------------------------------ download

    def pending_outputs(self, job_pk: int) -> list[PendingOutput]:
        """The outputs still to save of the job's current (latest) attempt."""
        with self._tx() as conn:
            rows = conn.exec_driver_sql(
                "SELECT o.pk, o.attempt_pk, o.idx, o.url, o.tries, j.batch_id, j.job_id"
                " FROM outputs o JOIN jobs j ON j.pk = o.job_pk"
                f" WHERE o.job_pk = ? AND o.state = 'pending' AND {_CURRENT_ATTEMPT}"
                " ORDER BY o.idx",
                (job_pk,),
            ).all()
        return [
            PendingOutput(pk, job_pk, attempt_pk, b, j, idx, url, tries)
            for pk, attempt_pk, idx, url, tries, b, j in rows
        ]

    def record_saved(
        self, output: PendingOutput, *, path: str, sha256: str, size: int, url: str
    ) -> bool:
        """Record a saved output; returns True when it was its attempt's last one
        (outputs of earlier attempts of the job do not count)."""
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE outputs SET state = 'saved', path = ?, sha256 = ?, size = ?, url = ?,"
                " saved_at = ?, error = NULL WHERE pk = ?",
                (path, sha256, size, url, now, output.output_pk),
            )
            left = conn.exec_driver_sql(
                "SELECT count(*) FROM outputs WHERE attempt_pk = ? AND state != 'saved'",
                (output.attempt_pk,),
            ).scalar_one()
            if left == 0:
                conn.exec_driver_sql(
                    "UPDATE jobs SET state = 'completed', error = NULL, updated_at = ?"
                    " WHERE pk = ?",
                    (now, output.job_pk),
                )
        return bool(left == 0)

    def record_download_failed(self, output: PendingOutput, error: str, *, final: bool) -> None:
        now = self._clock.wall()
        with self._tx() as conn:
            conn.exec_driver_sql(
                "UPDATE outputs SET state = ?, tries = tries + 1, error = ? WHERE pk = ?",
                ("failed" if final else "pending", error, output.output_pk),
            )
            if final:
                message = f"download of output {output.idx} failed: {error}"
                conn.exec_driver_sql(
                    "UPDATE jobs SET state = 'failed', error = ?, updated_at = ? WHERE pk = ?",
                    (message, now, output.job_pk),
                )
                self._event(conn, output.batch_id, output.job_pk, "failed", message)

    # ------------------------------------------------------------------ request log

    def log_request(self, endpoint: str) -> int:
        with self._tx() as conn:
            return self._log_request(conn, endpoint, self._clock.wall())

    def finish_request(self, request_pk: int) -> None:
        if request_pk:
            with self._tx() as conn:
                self._finish_request(conn, request_pk, self._clock.wall())

    def recent_requests(self, endpoint: str, since: float) -> list[tuple[float, float | None]]:
        """(sent, answered) wall times of the requests an earlier run sent lately: those
        sent or answered since `since`, and those never answered (within the hour)."""
        with self._tx() as conn:
            conn.exec_driver_sql("DELETE FROM requests WHERE sent_at < ?", (since - 3600,))
            rows = conn.exec_driver_sql(
                "SELECT sent_at, done_at FROM requests WHERE endpoint = ?"
                " AND (sent_at >= ? OR done_at >= ? OR done_at IS NULL) ORDER BY sent_at",
                (endpoint, since, since),
            ).all()
        return [(sent, done) for sent, done in rows]

    @staticmethod
    def _log_request(conn: Connection, endpoint: str, now: float) -> int:
        return _insert(
            conn, "INSERT INTO requests (endpoint, sent_at) VALUES (?, ?)", (endpoint, now)
        )

    @staticmethod
    def _finish_request(conn: Connection, request_pk: int, now: float) -> None:
        if request_pk:
            conn.exec_driver_sql("UPDATE requests SET done_at = ? WHERE pk = ?", (now, request_pk))

    # ------------------------------------------------------------------ events

    def _event(
        self, conn: Connection, batch_id: str | None, job_pk: int | None, kind: str, message: str
    ) -> None:
        conn.exec_driver_sql(
            "INSERT INTO events (at, batch_id, job_pk, kind, message) VALUES (?, ?, ?, ?, ?)",
            (self._clock.wall(), batch_id, job_pk, kind, message),
        )

    # ------------------------------------------------------------------ reading

    def batch_ids(self) -> list[str]:
        with self._tx() as conn:
            return list(
                conn.execute(select(t.batches.c.id).order_by(t.batches.c.created_at)).scalars()
            )

    def resolve_batches(self, batch: str | None) -> list[str]:
        """The named batch (checked to exist), or every batch when none is named."""
        known = self.batch_ids()
        if batch is None:
            return known
        if batch not in known:
            hint = f"known batches: {', '.join(known)}" if known else "the database holds none"
            raise UsageError(f"no batch named {batch!r} in {self.path} ({hint})")
        return [batch]

    def state_counts(self, batches: Sequence[str] | None) -> dict[str, int]:
        with self._tx() as conn:
            stmt = select(t.jobs.c.state, func.count()).group_by(t.jobs.c.state)
            if batches is not None:
                stmt = stmt.where(t.jobs.c.batch_id.in_(batches))
            return {state: int(n) for state, n in conn.execute(stmt).all()}

    def progress(self, batches: Sequence[str] | None) -> tuple[dict[str, int], int]:
        """Jobs by state and credits spent (net of refunds), in one indexed scan."""
        where, params = _batch_filter(batches)
        with self._tx() as conn:
            rows = conn.exec_driver_sql(
                "SELECT state, count(*), coalesce(sum(credits), 0) FROM jobs"
                f" WHERE 1 = 1{where} GROUP BY state",
                tuple(params),
            ).all()
        return {state: int(n) for state, n, _ in rows}, sum(int(c) for _, _, c in rows)

    def credits_total(self, batches: Sequence[str] | None) -> int:
        with self._tx() as conn:
            stmt = select(func.coalesce(func.sum(t.ledger.c.credits), 0))
            if batches is not None:
                stmt = stmt.join(t.jobs, t.jobs.c.pk == t.ledger.c.job_pk).where(
                    t.jobs.c.batch_id.in_(batches)
                )
            return int(conn.execute(stmt).scalar_one())

    def uncertain_count(self, batches: Sequence[str] | None) -> int:
        with self._tx() as conn:
            stmt = (
                select(func.count()).select_from(t.attempts).where(t.attempts.c.uncertain.is_(True))
            )
            if batches is not None:
                stmt = stmt.join(t.jobs, t.jobs.c.pk == t.attempts.c.job_pk).where(
                    t.jobs.c.batch_id.in_(batches)
                )
            return int(conn.execute(stmt).scalar_one())

    def failure_reasons(
        self, batches: Sequence[str] | None, limit: int = 10
    ) -> list[tuple[str, int]]:
        with self._tx() as conn:
            stmt = (
                select(t.jobs.c.error, func.count().label("n"))
                .where(t.jobs.c.state == JobState.FAILED)
                .group_by(t.jobs.c.error)
                .order_by(text("n DESC"))
                .limit(limit)
            )
            if batches is not None:
                stmt = stmt.where(t.jobs.c.batch_id.in_(batches))
            return [(str(e), int(n)) for e, n in conn.execute(stmt).all()]

    def iter_report(self, batches: Sequence[str] | None) -> Iterator[dict[str, Any]]:
        """One dict per job, with its attempts and outputs, in queue order.

        Three ordered scans merged as they go: a million-job report costs three
        queries, not two per job, and holds one job in memory at a time.
        """
        where, params = _batch_filter(batches, "j.batch_id")
        with self._tx() as conn:

            def scan(sql: str) -> Iterator[dict[str, Any]]:
                return (dict(row) for row in conn.exec_driver_sql(sql, tuple(params)).mappings())

            jobs = scan(f"SELECT j.* FROM jobs j WHERE 1 = 1{where} ORDER BY j.pk")
            attempts = _Lookahead(
                scan(
                    "SELECT a.* FROM attempts a JOIN jobs j ON j.pk = a.job_pk"
                    f" WHERE 1 = 1{where} ORDER BY a.job_pk, a.pk"
                )
            )
            outputs = _Lookahead(
                scan(
                    "SELECT o.* FROM outputs o JOIN jobs j ON j.pk = o.job_pk"
                    " WHERE j.state IN ('downloading', 'completed', 'failed')"
                    f" AND {_CURRENT_ATTEMPT}{where} ORDER BY o.job_pk, o.idx"
                )
            )
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


# Outputs belong to an attempt: only those of the job's latest attempt are its own.
_LATEST_ATTEMPT = "SELECT max(pk) FROM attempts WHERE job_pk = ?"
_CURRENT_ATTEMPT = "o.attempt_pk = (SELECT max(pk) FROM attempts WHERE job_pk = o.job_pk)"


def _batch_filter(batches: Sequence[str] | None, column: str = "batch_id") -> tuple[str, list[str]]:
    """An `AND batch_id IN (...)` clause and its parameters, or nothing for all batches."""
    if batches is None:
        return "", []
    return f" AND {column} IN ({', '.join('?' * len(batches))})", list(batches)


def _ledger(
    conn: Connection, job_pk: int, attempt_pk: int, prediction_id: str, credits: int, now: float
) -> None:
    """One credit movement: a charge (positive) or a refund (negative)."""
    conn.exec_driver_sql(
        "INSERT INTO ledger (job_pk, attempt_pk, prediction_id, credits, kind, at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (job_pk, attempt_pk, prediction_id, credits, "charge" if credits > 0 else "refund", now),
    )


def _insert(conn: Connection, sql: str, params: tuple[Any, ...]) -> int:
    """Run an INSERT and return the new row's primary key."""
    result = conn.exec_driver_sql(sql, params)
    return int(result.lastrowid)


def _changed_message(manifest: str, batch_id: str, changed: list[tuple[Any, ...]]) -> str:
    shown = "\n".join(f"  {manifest}:{line}: id {job_id!r}" for job_id, line, _ in changed[:20])
    more = f"\n  ... and {len(changed) - 20} more" if len(changed) > 20 else ""
    return (
        f"{len(changed)} job(s) of batch {batch_id!r} already queued with other inputs:\n"
        f"{shown}{more}\n"
        "give changed jobs new ids, or pass --replace to queue them again with the new inputs"
    )


__all__ = [
    "ClaimedJob",
    "Flight",
    "IngestResult",
    "OrchestratorError",
    "PendingOutput",
    "Recovery",
    "Store",
]
