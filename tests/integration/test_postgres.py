"""What only PostgreSQL has to show: processes claiming from one queue at once, the
presence lock that keeps one process's recovery off another's work, and the recovery
of named attempts. Real processes and real connections on the real server."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from orchestrator.models import JobState
from orchestrator.store import DbLocation, Store

from ..conftest import jobs
from ..postgres import fresh_database

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg(tmp_path: Path) -> Iterator[DbLocation]:
    with fresh_database() as location:
        yield location


def test_two_processes_never_claim_the_same_job(pg: DbLocation, tmp_path: Path) -> None:
    """Two processes claim 600 jobs at once: each job is claimed once, with one attempt
    and one /run request row, and both processes take a share."""
    store = Store(pg)
    store.ingest("b", "m.yaml", jobs(600))
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.integration.claimer", pg.url.render_as_string(False)]
            + [str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    go.touch()
    claims = [[int(line) for line in proc.communicate(timeout=60)[0].split()] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    every = claims[0] + claims[1]
    assert sorted(every) == sorted(set(every)) and len(every) == 600
    assert all(claims), "each process claimed some jobs"
    with store.engine.connect() as conn:
        per_job = conn.execute(text("SELECT job_pk, count(*) FROM attempts GROUP BY job_pk"))
        assert Counter(n for _, n in per_job) == {1: 600}
        assert conn.execute(text("SELECT count(*) FROM requests")).scalar_one() == 600
    assert store.state_counts(None) == {JobState.RUNNING.value: 600}
    store.close()


def test_recovery_leaves_a_live_process_alone(pg: DbLocation, tmp_path: Path) -> None:
    """While one process runs the queue, another's recover() changes nothing and says
    so; once the first has left, the next recover() sorts out what it left."""
    first, second = Store(pg), Store(pg)
    first.ingest("b", "m.yaml", jobs(3))
    assert first.recover().others is False
    flying, lost = first.claim_next(None), first.claim_next(None)
    assert flying is not None and lost is not None
    first.record_accepted(flying, "pred-1", 1, flying.request_pk)
    meanwhile = second.recover()
    assert (meanwhile.others, meanwhile.flights, meanwhile.lost) == (True, [], 0)
    assert second.state_counts(None) == {"running": 2, "queued": 1}
    second.takeover.leave()
    first.close()  # as a killed process's connection closes
    _until_no_presence(second)  # its server process ends a moment after
    after = second.recover()
    assert after.others is False and after.lost == 1
    assert [f.prediction_id for f in after.flights] == ["pred-1"]
    assert second.uncertain_count(None) == 1
    second.close()


def test_two_processes_opening_a_new_database_migrate_it_once(pg: DbLocation) -> None:
    """Three processes open one blank database at once: each finds the schema at head
    (the migrations ran once, under the migration lock), and none fails."""
    code = "import sys; from orchestrator.store import Store; Store(sys.argv[1]).close()"
    url = pg.url.render_as_string(hide_password=False)
    procs = [subprocess.Popen([sys.executable, "-c", code, url], cwd=ROOT) for _ in range(3)]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0]
    store = Store(pg, create=False)
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    store.close()


def _until_no_presence(store: Store) -> None:
    """Wait until no server process holds an advisory lock on the store's database."""
    sql = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database ="
        " (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    for _ in range(500):
        with store.engine.connect() as conn:
            if conn.execute(sql).scalar_one() == 0:
                return
        time.sleep(0.01)
    raise AssertionError("the closed connection's locks were never released")


def test_takeover_recovers_the_named_attempts_only(pg: DbLocation, tmp_path: Path) -> None:
    """takeover.attempts: the named unanswered attempt is marked uncertain, the named
    flight comes back to be polled, and an attempt not named is left as it was."""
    store = Store(pg)
    store.ingest("b", "m.yaml", jobs(3))
    a, b, c = (store.claim_next(None) for _ in range(3))
    assert a is not None and b is not None and c is not None
    store.record_accepted(b, "pred-b", 1, b.request_pk)
    taken = store.takeover.attempts([a.attempt_pk, b.attempt_pk])
    assert (taken.lost, taken.unsent, [f.prediction_id for f in taken.flights]) == (
        1,
        0,
        ["pred-b"],
    )
    assert store.uncertain_count(None) == 1
    assert store.state_counts(None) == {"queued": 1, "running": 2}
    store.close()
