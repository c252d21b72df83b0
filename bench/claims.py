"""Claims per second on each backend: `python -m bench.claims [--jobs N]`.

SQLite (one process: its file admits one runner) and PostgreSQL with one and with two
processes claiming from one queue at once. Each claim is what the submitter does before
a `/run`: the job marked running, its attempt and request rows committed (durably).
PostgreSQL databases are created on the server at ORCHESTRATOR_TEST_POSTGRES (default
postgres on 127.0.0.1:5432) and dropped afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from orchestrator.models import JobSpec
from orchestrator.store import Store

ADMIN = os.environ.get(
    "ORCHESTRATOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _specs(n: int) -> list[JobSpec]:
    return [
        JobSpec(f"job-{i}", "background-remove", {"image": f"https://cdn.example/{i}.png"})
        for i in range(n)
    ]


def _claim_all(db: str) -> int:
    store = Store(db, create=False)
    n = 0
    while store.claim_next(None) is not None:
        n += 1
    store.close()
    return n


def _claimer(db: str, go: Any, done: Any) -> None:
    """A process that opens the queue, waits for `go`, claims until none is left."""
    store = Store(db, create=False)
    go.wait()
    n = 0
    while store.claim_next(None) is not None:
        n += 1
    store.close()
    done.put(n)


def _admin(sql: str) -> None:
    engine = create_engine(make_url(ADMIN), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(sql))
    engine.dispose()


def _postgres(jobs: int, processes: int) -> float:
    name = f"orchestrator_bench_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    url = make_url(ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        store = Store(url)
        store.ingest("b", "m.yaml", _specs(jobs))
        store.close()
        ctx = multiprocessing.get_context("spawn")
        go, done = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=_claimer, args=(url, go, done)) for _ in range(processes)]
        for proc in procs:
            proc.start()
        time.sleep(3.0)  # every process has opened the queue
        start = time.perf_counter()
        go.set()
        claimed = sum(done.get() for _ in procs)
        elapsed = time.perf_counter() - start
        for proc in procs:
            proc.join()
        assert claimed == jobs, (claimed, jobs)
        return jobs / elapsed
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _sqlite(jobs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "queue.db")
        store = Store(db)
        store.ingest("b", "m.yaml", _specs(jobs))
        store.close()
        start = time.perf_counter()
        assert _claim_all(db) == jobs
        return jobs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    jobs = parser.parse_args().jobs
    print(f"claims per second, {jobs} jobs (one run each; the machine is shared)")
    print(f"  SQLite, 1 process:      {_sqlite(jobs):7.0f}")
    print(f"  PostgreSQL, 1 process:  {_postgres(jobs, 1):7.0f}")
    print(f"  PostgreSQL, 2 processes: {_postgres(jobs, 2):6.0f} (together)")


if __name__ == "__main__":
    main()
