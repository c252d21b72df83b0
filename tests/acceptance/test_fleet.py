"""A fleet from the command line: `submit --queue-only`, then worker processes on one
database against the sandbox over HTTP. Every limit is judged by what the sandbox
recorded (per account), never by what the workers meant to do."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from orchestrator.sandbox import SandboxServer
from orchestrator.store import DbLocation

from .test_cli import cli, spawn

FLEET_SCALE = 0.05  # a 60 s window lasts 3 s: four processes on two cores keep up
WINDOWS = ["--run-limit", f"50/{60 * FLEET_SCALE:g}", "--status-limit", f"50/{10 * FLEET_SCALE:g}"]
LATENCY = {"*": (4.0, 12.0)}  # the bench's middle regime: both limits bind in turns

# Each test runs on a SQLite file and on a fresh database of the real PostgreSQL server.
pytestmark = pytest.mark.both_databases


def _manifest(path: Path, n: int, accounts: tuple[str, ...] = ("default",)) -> Path:
    with path.open("w") as fh:
        for i in range(n):
            job: dict[str, Any] = {
                "id": f"sku-{i}",
                "model_name": "background-remove",
                "inputs": {"image": f"https://cdn.example/sku-{i}.png"},
            }
            if accounts[i % len(accounts)] != "default":
                job["account"] = accounts[i % len(accounts)]
            fh.write(json.dumps(job) + "\n")
    return path


def _queue(
    tmp_path: Path, database: DbLocation, n: int, accounts: tuple[str, ...] = ("default",)
) -> str:
    """The jobs queued with `submit --queue-only`; the --db argument the workers take."""
    db = database.url.render_as_string(hide_password=False)
    manifest = _manifest(tmp_path / "c.jsonl", n, accounts)
    done = cli("submit", str(manifest), "--queue-only", "--db", db)
    assert done.returncode == 0, done.stderr
    return db


def _worker(db: str, out: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    args = ("worker", "--burst", "--db", db, "--out", str(out), *WINDOWS)
    # A lease long enough that a loaded machine never declares a live worker dead
    # (`extra` may shorten it: the last --lease-seconds wins).
    return spawn(*args, "--lease-seconds", "10", "--idle-poll", "0.05", *extra, env=env)


def _read(db: str, sql: str, **params: Any) -> list[Any]:
    """Rows of the queue as another process sees them (committed only)."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params).all())
    finally:
        engine.dispose()


def _finish(workers: list[subprocess.Popen[str]]) -> list[int]:
    codes = []
    for w in workers:
        _out, err = w.communicate(timeout=200)
        codes.append(w.returncode)
        assert w.returncode in (0, -signal.SIGKILL), err
    return codes


def _states(db: str) -> dict[str, int]:
    return dict(_read(db, "SELECT state, count(*) FROM jobs GROUP BY state"))


def _limits_held(state: Any) -> None:
    """What the server saw of one account: within every limit, no 429."""
    stats = state.stats()
    assert stats["max_in_flight"] <= 6
    assert stats["max_in_window"]["run"] <= 50
    assert stats["max_in_window"]["status"] <= 50
    assert stats["rejections"].get("RateLimitExceeded", 0) == 0


@pytest.mark.timeout(300)
def test_four_workers_share_one_accounts_limits(sandbox, database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """4 workers, 200 jobs: at most 6 in flight and 50 a window (server-counted), no repeat."""
    server: SandboxServer = sandbox(time_scale=FLEET_SCALE, latency=LATENCY)
    db = _queue(tmp_path, database, 200)
    env = {"FASHN_API_KEY": "sandbox", "FASHN_BASE_URL": server.base_url}
    assert _finish([_worker(db, tmp_path / "out", env) for _ in range(4)]) == [0, 0, 0, 0]
    _limits_held(server.state)
    runs = server.state.runs_by_fingerprint()
    assert len(runs) == 200 and set(runs.values()) == {1}
    assert _states(db) == {"completed": 200}
    assert len(list((tmp_path / "out" / "c").rglob("0.png"))) == 200


def _held_by(db: str, pid: int) -> int:
    query = "SELECT count(*) FROM jobs WHERE worker LIKE :pattern AND state = 'running'"
    return int(_read(db, query, pattern=f"%:{pid}:%")[0][0])


@pytest.mark.timeout(300)
def test_a_killed_workers_jobs_are_finished_by_the_others(
    sandbox, database, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL one of three workers mid-run: no job lost, none paid twice but uncertain ones."""
    server: SandboxServer = sandbox(time_scale=FLEET_SCALE, latency={"*": (10.0, 20.0)})
    db = _queue(tmp_path, database, 60)
    env = {"FASHN_API_KEY": "sandbox", "FASHN_BASE_URL": server.base_url}
    workers = [_worker(db, tmp_path / "out", env, "--lease-seconds", "5") for _ in range(3)]
    victim = workers[0]
    while _held_by(db, victim.pid) < 1:  # it holds a prediction in flight
        assert victim.poll() is None, victim.communicate()[1]
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    codes = _finish(workers)
    assert codes == [-signal.SIGKILL, 0, 0]
    _limits_held(server.state)
    assert _states(db) == {"completed": 60}
    ((uncertain,),) = _read(db, "SELECT count(*) FROM attempts WHERE uncertain")
    ((taken,),) = _read(db, "SELECT count(*) FROM events WHERE kind = 'uncertain'")
    runs = server.state.runs_by_fingerprint()
    assert len(runs) == 60
    assert sum(runs.values()) - 60 <= uncertain == taken  # a second charge only if uncertain


@pytest.mark.timeout(300)
def test_two_accounts_run_at_once_each_within_its_limits(sandbox, database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Two keys, two workers: each account's limits held by the server's count, both at once."""
    server: SandboxServer = sandbox(
        time_scale=FLEET_SCALE, latency=LATENCY, api_key="key-a", extra_keys=("key-b",)
    )
    db = _queue(tmp_path, database, 120, accounts=("default", "acme"))
    env = {
        "FASHN_API_KEY": "key-a",
        "FASHN_API_KEY_ACME": "key-b",
        "FASHN_BASE_URL": server.base_url,
    }
    assert _finish([_worker(db, tmp_path / "out", env) for _ in range(2)]) == [0, 0]
    accounts = [server.state.account("key-a"), server.state.account("key-b")]
    arrivals = []
    for state in accounts:
        _limits_held(state)
        runs = state.runs_by_fingerprint()
        assert len(runs) == 60 and set(runs.values()) == {1}
        arrivals.append(state.arrivals("run"))
    # Both at once: each account's first /run came before the other's last.
    assert arrivals[0][0] < arrivals[1][-1] and arrivals[1][0] < arrivals[0][-1]
    assert _states(db) == {"completed": 120}


def test_a_worker_with_other_limits_is_refused(sandbox, database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """While a worker runs an account, one with other limits for it exits 2, sending
    nothing; so does a `resume` of the queue, which recovers nothing of the worker's."""
    server: SandboxServer = sandbox(time_scale=FLEET_SCALE, latency={"*": (60.0, 60.0)})
    db = _queue(tmp_path, database, 30)
    env = {"FASHN_API_KEY": "sandbox", "FASHN_BASE_URL": server.base_url}
    first = _worker(db, tmp_path / "out", env)
    while server.state.stats()["requests"]["run"] == 0:
        assert first.poll() is None
        time.sleep(0.02)
    sent = server.state.stats()["requests"]
    other = cli("worker", "--burst", "--db", db, "--run-limit", "40/3", env=env)
    assert other.returncode == 2
    assert "--run-limit 50/3" in other.stderr
    assert server.state.stats()["requests"]["credits"] == sent["credits"]  # not even that
    again = cli("resume", "--db", db, *WINDOWS, env=env)
    assert again.returncode == 2 and "workers run this queue" in again.stderr
    assert server.state.stats()["requests"]["credits"] == sent["credits"]
    assert _read(db, "SELECT count(*) FROM attempts WHERE uncertain") == [(0,)]  # none taken
    first.send_signal(signal.SIGTERM)
    assert first.communicate(timeout=100) and first.returncode == 0
