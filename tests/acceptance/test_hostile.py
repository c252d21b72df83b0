"""The paths nobody takes on purpose, with the real command as a subprocess: a second
process on a running queue, SIGKILL during downloads, a disk that fills up. Each
asserts on what the sandbox and the files recorded. (A retry after downloads failed
is in integration/test_retry.py: through the CLI it waits out real backoffs.)"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.sandbox import Faults

from .test_cli import LIMITS, cli, spawn, submitted_attempts, write_manifest


def _wait_for(condition, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


def _rows(db: Path, sql: str) -> list[tuple]:  # type: ignore[type-arg]
    """Rows of a query, read only (never creating the file); none before the schema."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []


def _count(db: Path, sql: str) -> int:
    rows = _rows(db, sql)
    return int(rows[0][0]) if rows else 0


def test_refused_commands_change_nothing_while_a_run_goes_on(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """While `submit a` runs, `resume --retry-failed`, `submit --replace` and
    `submit b` are refused (exit 2) and change nothing: each job is predicted once."""
    server, env = api
    manifest = tmp_path / "a.csv"
    rows = ["id,model_name,inputs.image,priority"]
    rows += [
        f"j{i:03d},background-remove,https://x/{i}.png?sandbox:seconds=100,0" for i in range(24)
    ]
    rows += [
        f"bad{i},background-remove,https://x/b{i}.png?sandbox:fail=PoseError,9" for i in range(4)
    ]
    manifest.write_text("\n".join(rows) + "\n")
    changed = tmp_path / "changed" / "a.csv"
    changed.parent.mkdir()
    changed.write_text(manifest.read_text().replace("https://x/1.png?", "https://x/new.png?"))
    other = write_manifest(tmp_path / "b.csv", 5)
    db, out = tmp_path / "q.db", tmp_path / "out"
    first = spawn("submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env)
    _wait_for(lambda: _count(db, "SELECT count(*) FROM jobs WHERE state = 'failed'") >= 1)
    before = _rows(db, "SELECT job_id, fingerprint FROM jobs ORDER BY pk")

    common = ["--db", str(db), "--out", str(out), *LIMITS]
    others = [
        spawn("resume", "--retry-failed", *common, env=env),
        spawn("submit", str(changed), "--replace", *common, env=env),
        spawn("submit", str(other), *common, env=env),
        spawn("submit", str(other), "--queue-only", "--db", str(db), env=env),
    ]
    for proc in others:
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 2, stderr
        assert "another orchestrator process" in stderr
    assert first.poll() is None, "the first run ended too soon for this test"
    assert _rows(db, "SELECT job_id, fingerprint FROM jobs ORDER BY pk") == before
    assert _rows(db, "SELECT id FROM batches") == [("a",)]

    _, stderr = first.communicate(timeout=120)
    assert first.returncode == 1, stderr  # the four PoseError jobs failed
    runs = server.state.runs_by_fingerprint()
    assert len(server.state.predictions()) == 28
    assert set(runs.values()) == {1}


def test_sigkill_during_downloads_leaves_no_partial_file(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL while outputs download: resume removes the temporary files a killed
    writer leaves, saves every output once, and files get the usual mode (0644)."""
    server, env = api
    server.state.config = replace(
        server.state.config, faults=Faults(slow={"cdn": 1.0}), latency={"*": (1.0, 2.0)}
    )
    manifest = write_manifest(tmp_path / "catalog.csv", 30)
    db, out = tmp_path / "q.db", tmp_path / "out"
    proc = spawn("submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env)
    downloading = "SELECT j.batch_id, j.job_id FROM jobs j WHERE j.state = 'downloading'"
    _wait_for(lambda: len(_rows(db, downloading)) >= 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # What a writer killed between mkstemp and rename leaves: `.N.png.XXXXXXXX.part`.
    planted = []
    for batch, job_id in _rows(db, downloading):
        folder = out / batch / job_id
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / ".0.png.k1ll3d00.part"
        partial.write_bytes(os.urandom(2_000_000))
        planted.append(partial)
    assert planted

    server.state.config = replace(server.state.config, faults=Faults())
    resumed = cli("resume", "--db", str(db), "--out", str(out), *LIMITS, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert not any(p.exists() for p in planted)
    assert list(out.rglob("*.part")) == []
    umask = os.umask(0o022)
    os.umask(umask)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) == 30
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o666 & ~umask}
    # A second prediction only through a /run the kill left unanswered (uncertain).
    uncertain = json.loads(cli("status", "--json", "--db", str(db)).stdout)["uncertain_attempts"]
    runs = server.state.runs_by_fingerprint()
    assert len(runs) == 30 and 30 <= sum(runs.values()) <= 30 + uncertain


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs: a file system that can actually fill up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk`."""
    filler = disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def test_a_disk_that_fills_up_stops_the_run_and_resume_finishes(
    api, tmp_path: Path, small_disk: Path
) -> None:  # type: ignore[no-untyped-def]
    """The outputs' disk fills mid-run: no more submissions, exit 3 naming the folder
    and what to do, no traceback; after space is freed, resume buys nothing again."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 40, seconds="40")
    db, out = tmp_path / "q.db", small_disk / "out"
    common = ["--db", str(db), "--out", str(out), *LIMITS]
    proc = spawn("submit", str(manifest), *common, env=env)
    _wait_for(lambda: len(list(out.rglob("*.png"))) >= 3)
    filler = _fill(small_disk)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 3, stderr
    assert "Traceback" not in stderr and "ExceptionGroup" not in stderr
    assert str(out) in stderr and "No space left on device" in stderr
    accepted = submitted_attempts(db)
    assert accepted < 40  # submission stopped
    assert len(server.state.predictions()) == accepted

    filler.unlink()
    resumed = cli("resume", *common, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert set(server.state.runs_by_fingerprint().values()) == {1}
    assert len(list(out.rglob("*.png"))) == 40


def test_a_read_only_out_is_refused_before_anything_is_paid(
    api, tmp_path: Path, small_disk: Path
) -> None:  # type: ignore[no-untyped-def]
    """--out on a read-only file system: exit 2 before the first /run, nothing queued."""
    server, env = api
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    manifest = write_manifest(tmp_path / "catalog.csv", 3)
    db = tmp_path / "q.db"
    done = cli("submit", str(manifest), "--db", str(db), "--out", str(small_disk), *LIMITS, env=env)
    assert done.returncode == 2, done.stderr
    assert "Read-only file system" in done.stderr and "--out" in done.stderr
    assert server.state.arrivals("run") == []
    assert not db.exists()
