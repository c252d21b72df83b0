"""The queue on a real database, a SQLite file and a PostgreSQL database: ingest,
claims, recovery, migrations."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from orchestrator.errors import ChangedJobError, ManifestError, Problem, UsageError
from orchestrator.locking import queue_lock
from orchestrator.models import AttemptState, JobSpec, JobState, Location, fingerprint
from orchestrator.schema import metadata
from orchestrator.store import Store


def spec(
    job_id: str, line: int = 1, priority: int = 0, image: str = "https://cdn.example/a.png"
) -> JobSpec:
    return JobSpec(
        id=job_id,
        model_name="background-remove",
        inputs={"image": image},
        priority=priority,
        location=Location("m.yaml", line),
    )


pytestmark = pytest.mark.both_databases


def test_migrations_produce_the_schema(store: Store) -> None:
    """A blank database migrated to head has exactly the tables and indexes of schema.py."""
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_ingest_into_an_empty_queue_leaves_the_schema_whole(store: Store) -> None:
    """The first ingest builds the indexes of `jobs` after its rows (a later one keeps
    them): either way the database ends with exactly the indexes of schema.py, and
    the queue's order (priority, then manifest order) reads from them."""
    store.ingest("b", "m.yaml", [spec("a", 1), spec("b", 2, priority=1)])
    store.ingest("c", "m.yaml", [spec("c", 1, priority=2)])
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    claimed = [store.claim_next(None) for _ in range(3)]
    assert [c.job_id for c in claimed if c is not None] == ["c", "b", "a"]


def test_a_resubmitted_manifest_moves_only_waiting_jobs_to_their_new_account(
    store: Store,
) -> None:
    """The account is not part of what a job asks for: submitted again under another
    account, a job still queued takes it (back to the default too); one sent keeps its own."""

    def submit(accounts: dict[str, str]) -> None:
        specs = [
            JobSpec(job, "background-remove", {"image": f"https://x/{job}.png"}, account=name)
            for job, name in accounts.items()
        ]
        store.ingest("b", "m.yaml", specs)

    submit({"sent": "acme", "moved": "acme", "back": "acme", "kept": "default"})
    claimed = store.claim_next(None)
    assert claimed is not None and claimed.job_id == "sent"
    submit({"sent": "big-co", "moved": "big-co", "back": "default", "kept": "default"})
    with store.engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("SELECT job_id, account FROM jobs").fetchall())
    assert rows == {"sent": "acme", "moved": "big-co", "back": "default", "kept": "default"}


@pytest.mark.sqlite_only
def test_database_is_in_wal_mode(store: Store) -> None:
    """WAL lets `status` read while a run writes."""
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_ingest_is_idempotent(store: Store) -> None:
    """Submitting the same jobs again adds nothing."""
    first = store.ingest("b", "m.yaml", [spec("a"), spec("b")])
    again = store.ingest("b", "m.yaml", [spec("a"), spec("b")])
    assert (first.added, again.added, again.unchanged) == (2, 0, 2)
    assert store.state_counts(["b"]) == {"queued": 2}


def test_changed_job_is_refused_without_replace(store: Store) -> None:
    """Same id with other inputs is an error naming the line, and changes nothing."""
    store.ingest("b", "m.yaml", [spec("a")])
    with pytest.raises(ChangedJobError, match=r"(?s)m.yaml:7: id 'a'.*--replace"):
        store.ingest("b", "m.yaml", [spec("a", line=7, image="https://cdn.example/other.png")])
    result = store.ingest(
        "b", "m.yaml", [spec("a", image="https://cdn.example/other.png")], replace=True
    )
    assert result.replaced == 1
    claimed = store.claim_next(None)
    assert claimed is not None and claimed.inputs["image"].endswith("other.png")


def test_duplicate_ids_are_reported_with_lines_and_nothing_is_written(store: Store) -> None:
    """Duplicates within one manifest are all listed; the database stays empty."""
    with pytest.raises(ManifestError) as err:
        store.ingest("b", "m.yaml", [spec("a", 3), spec("x", 4), spec("a", 9)])
    assert [(p.line, p.field) for p in err.value.problems] == [(9, "id")]
    assert "first used on line 3" in str(err.value)
    assert store.state_counts(None) == {}
    assert store.batch_ids() == []


def test_manifest_problems_roll_back_everything(store: Store) -> None:
    """A problem found while streaming the manifest leaves nothing queued."""
    entries = [spec("a", 1), Problem("m.yaml", 2, "model_name", "missing"), spec("c", 3)]
    with pytest.raises(ManifestError, match=r"m\.yaml:2: model_name: missing"):
        store.ingest("b", "m.yaml", entries)
    assert store.state_counts(None) == {}


def test_large_data_uris_are_stored_once(store: Store) -> None:
    """One local photo used by many jobs is kept once in blobs and inflated on claim."""
    uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"x" * 4000).decode()
    store.ingest("b", "m.yaml", [spec(f"j{i}", image=uri) for i in range(20)])
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM blobs").scalar() == 1
        size = conn.exec_driver_sql("SELECT max(length(inputs)) FROM jobs").scalar()
    assert size < 200
    claimed = store.claim_next(None)
    assert claimed is not None and claimed.inputs["image"] == uri


def test_claim_order_is_priority_then_manifest_order(store: Store) -> None:
    """Higher priority first; equal priority in manifest order."""
    store.ingest("b", "m.yaml", [spec("low1"), spec("high", priority=5), spec("low2")])
    order = []
    while (c := store.claim_next(None)) is not None:
        order.append(c.job_id)
    assert order == ["high", "low1", "low2"]


@pytest.mark.sqlite_only
def test_claiming_for_a_batch_does_not_walk_other_batches(store: Store) -> None:
    """A batch's next job is one index probe, however many jobs of other batches wait
    ahead of it (counted in SQLite virtual-machine steps, not in time)."""
    store.ingest(
        "big", "m.yaml", [spec(f"o{i}", image=f"https://x/{i}.png") for i in range(20_000)]
    )
    store.ingest("mine", "m.yaml", [spec("a")])
    raw = store.engine.raw_connection()
    store.claim_next(["mine"])  # opens the store's own connection
    assert store._conn is not None
    dbapi = store._conn.connection.dbapi_connection
    steps = [0]

    def count() -> int:
        steps[0] += 1
        return 0

    dbapi.set_progress_handler(count, 100)
    store.ingest("mine", "m.yaml", [spec("a"), spec("b")])
    steps[0] = 0
    claimed = store.claim_next(["mine"])
    dbapi.set_progress_handler(None, 0)
    raw.close()
    assert claimed is not None and claimed.job_id == "b"
    assert steps[0] * 100 < 5_000  # the old plan stepped over all 20,000 rows


def test_claim_commits_the_attempt_before_sending(store: Store) -> None:
    """The attempt row exists, with its send time, as soon as a job is claimed."""
    store.ingest("b", "m.yaml", [spec("a")])
    claimed = store.claim_next(None)
    assert claimed is not None
    with store.engine.connect() as conn:  # another connection: what is committed
        state, sent = conn.execute(text("SELECT state, sent_at FROM attempts")).one()
    assert state == AttemptState.PENDING and sent is not None


def test_recover_sorts_out_what_a_crash_left(store: Store, reopen: Callable[[], Store]) -> None:
    """In flight with an id: polled. Sent without an answer: requeued and uncertain."""
    store.ingest("b", "m.yaml", [spec("a"), spec("b"), spec("c")])
    flying = store.claim_next(None)
    lost = store.claim_next(None)
    assert flying is not None and lost is not None
    store.record_accepted(flying, "pred-1-u1", 1, flying.request_pk)
    recovery = reopen().recover()
    assert [f.prediction_id for f in recovery.flights] == ["pred-1-u1"]
    assert recovery.lost == 1
    assert store.uncertain_count(None) == 1
    assert store.state_counts(None) == {"running": 1, "queued": 2}


def test_failed_prediction_is_refunded(store: Store) -> None:
    """A failed prediction's charge is reversed in the ledger and the job's credits."""
    store.ingest("b", "m.yaml", [spec("a")])
    claimed = store.claim_next(None)
    assert claimed is not None
    store.record_accepted(claimed, "p-1", 2, claimed.request_pk)
    flight = store.recover().flights[0]
    refunded = store.record_failed(
        flight, name="PoseError", message="no pose", refund=True, retry=False
    )
    assert refunded == 2
    assert store.credits_total(None) == 0
    assert store.state_counts(None) == {JobState.FAILED.value: 1}
    assert store.failure_reasons(None) == [("PoseError: no pose", 1)]


@pytest.mark.sqlite_only
def test_only_one_runner_per_database(store: Store) -> None:
    """A second run lock on the same database is refused with advice."""
    with (
        queue_lock(store.path),
        pytest.raises(UsageError, match="another orchestrator process"),
        queue_lock(store.path),
    ):
        pass


def test_unknown_batch_is_a_usage_error(store: Store) -> None:
    """Naming a batch that does not exist lists the ones that do."""
    store.ingest("catalog", "m.yaml", [spec("a")])
    with pytest.raises(UsageError, match="known batches: catalog"):
        store.resolve_batches("nope")


def test_newest_revision_is_alembic_head() -> None:
    """The cheap check of the schema version agrees with alembic's own idea of head."""
    from alembic.script import ScriptDirectory

    from orchestrator.store import _migrations_dir, _newest_revision

    scripts = _migrations_dir()
    assert ScriptDirectory(str(scripts)).get_current_head() == _newest_revision(scripts)


def test_reopening_a_current_database_skips_alembic(tmp_path: Path) -> None:
    """Opening a database already at head runs no migration (and imports no alembic)."""
    import subprocess
    import sys

    Store(tmp_path / "q.db")
    code = (
        "import sys; from orchestrator.store import Store; Store(sys.argv[1]);"
        " print('alembic' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "q.db")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_unanswered_requests_are_remembered_for_the_next_run(
    store: Store, reopen: Callable[[], Store]
) -> None:
    """A request logged but never answered (the process died) is handed to the next run."""
    import time as clock

    answered = store.requests.log("status")
    store.requests.finish(answered)
    store.requests.log("status")
    rows = reopen().requests.recent("status", since=clock.time() + 1)
    assert [done is None for _sent, done in rows] == [True]


def test_installing_adds_one_top_level_package() -> None:
    """The wheel holds `orchestrator` alone; the migrations ship inside it."""
    import tomllib

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    assert {p.split(".")[0] for p in setuptools["packages"]} == {"orchestrator"}
    assert setuptools["package-dir"] == {"orchestrator.migrations": "migrations"}
    assert "orchestrator.migrations.versions" in setuptools["packages"]


def test_every_subpackage_is_packaged() -> None:
    """Each folder of the package is in the wheel's package list (a folder left out
    would be missing from an installed copy, though an editable one finds it)."""
    import tomllib

    root = Path(__file__).parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(p.parent.relative_to(root).parts)
        for p in (root / "orchestrator").rglob("__init__.py")
    }
    assert folders <= listed


def _migrate(path: Path, revision: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from orchestrator.store import _migrations_dir

    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(_migrations_dir()))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    engine.dispose()


def test_one_fingerprint_from_manifest_to_queue(store: Store) -> None:
    """The queue stores models.fingerprint, data URIs counted as their sha256, and each
    job's manifest line."""
    uri = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"y" * 4000).decode()
    jobs = [spec("a", line=4, image=uri), spec("b", line=9)]
    store.ingest("b", "m.yaml", jobs)
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT job_id, fingerprint, line FROM jobs").all()
    token = "sha256:" + hashlib.sha256(uri.encode()).hexdigest()
    assert sorted(rows) == [
        ("a", fingerprint("background-remove", {"image": token}), 4),
        ("b", fingerprint("background-remove", {"image": "https://cdn.example/a.png"}), 9),
    ]
    assert jobs[0].fingerprint == fingerprint("background-remove", jobs[0].inputs)


def test_migration_0003_recomputes_fingerprints_so_jobs_stay_unchanged(tmp_path: Path) -> None:
    """Jobs queued under the earlier fingerprint are the same jobs after the upgrade."""
    path = tmp_path / "old.db"
    _migrate(path, "0002")
    big = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"z" * 4000).decode()
    small = "data:image/png;base64,iVBORw0KGgo="
    raw_inputs = {"a": ('{"image":{"$blob":"%s"}}', big), "b": ('{"image":"%s"}', small)}
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO batches VALUES ('b', 'm.yaml', 0, 0)")
    for job_id, (template, uri) in raw_inputs.items():
        digest = hashlib.sha256(uri.encode()).hexdigest()
        inputs = template % (digest if job_id == "a" else uri)
        earlier = hashlib.sha256(f"background-remove\n{inputs}".encode()).hexdigest()
        conn.execute(
            "INSERT INTO jobs (batch_id, job_id, model_name, inputs, fingerprint, state,"
            " created_at, updated_at) VALUES ('b', ?, 'background-remove', ?, ?, 'queued', 0, 0)",
            (job_id, inputs, earlier),
        )
        conn.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (digest, uri))
    conn.commit()
    conn.close()
    store = Store(path)  # migrates to head
    again = store.ingest("b", "m.yaml", [spec("a", image=big), spec("b", image=small)])
    assert (again.added, again.unchanged, again.replaced) == (0, 2, 0)


def test_journal_keeps_what_the_timeline_marks(store: Store) -> None:
    """A 429 on /run, a lost answer and a run's start and end are journalled once each,
    with the job they concern; the job's attempt then reads back as a prediction."""
    store.ingest("b", "m.yaml", [spec("a"), spec("z")])
    store.ingest("other", "m.yaml", [spec("x")])
    store.record_run("run-start", None, "run started")
    claimed = store.claim_next(["b"])
    assert claimed is not None
    store.record_refused(claimed.attempt_pk, claimed.request_pk, "ConcurrencyLimitExceeded")
    flight = store.record_accepted(claimed, "pred-1", 2, store.resend(claimed.attempt_pk))
    store.record_completed(flight, [])
    lost = store.claim_next(["b"])
    assert lost is not None
    store.record_lost(lost, lost.request_pk, error="connection reset", not_before=None)
    store.record_run("run-end", ["b"], "run finished")

    marks = store.sheet.marks(["b"])
    assert [(m["kind"], m["job_id"]) for m in marks] == [
        ("run-start", None),
        ("rate-limited", "a"),
        ("uncertain", "z"),
        ("run-end", None),
    ]
    assert "ConcurrencyLimitExceeded" in marks[1]["message"]
    assert [m["kind"] for m in store.sheet.marks(["other"])] == ["run-start"]
    (prediction,) = store.sheet.predictions(["b"])
    assert (prediction["job_id"], prediction["prediction_id"]) == ("a", "pred-1")
    assert prediction["accepted_at"] <= prediction["finished_at"]
    assert store.sheet.credits_by_model(["b"]) == [("background-remove", 2, 2)]


@pytest.mark.sqlite_only
def test_the_summary_of_every_batch_reads_no_row_of_jobs(store: Store) -> None:
    """`status` without a batch counts states in an index and credits and uncertain
    attempts without joining `jobs` (SQLite's own plans say so), and says what
    naming every batch says."""
    from sqlalchemy import event

    from orchestrator.report import summarize

    store.ingest("a", "m.yaml", [spec(f"a{i}", image=f"https://x/{i}.png") for i in range(50)])
    store.ingest("b", "m.yaml", [spec("b1")])
    ran: list[tuple[str, object]] = []

    def record(*args: object) -> None:
        ran.append((str(args[2]), args[3]))

    event.listen(store.engine, "before_cursor_execute", record)
    every = summarize(store, None)
    event.remove(store.engine, "before_cursor_execute", record)
    with sqlite3.connect(store.path) as conn:
        plans = {
            sql: [r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", p)] for sql, p in ran
        }
    reads = [s for steps in plans.values() for s in steps if "jobs" in s]
    assert reads and all("INDEX" in s for s in reads)
    assert not any(s.startswith("SCAN jobs") and "COVERING" not in s for s in reads)
    others = [
        steps for steps in plans.values() if any("ledger" in s or "attempts" in s for s in steps)
    ]
    assert len(others) == 2 and not any("jobs" in s for steps in others for s in steps)
    assert every == summarize(store, ["a", "b"])
    assert every.batches == ["a", "b"] and every.counts == {"queued": 51}
