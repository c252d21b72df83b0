"""The `orchestrator` command as a user runs it: a subprocess against a sandbox over
loopback, killed with SIGKILL and resumed; exit codes; the key never leaks."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import SCALE, SECRET

LIMITS = ["--run-limit", f"50/{60 * SCALE:g}", "--status-limit", f"50/{10 * SCALE:g}"]


def cli(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def spawn(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orchestrator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
    )


def write_manifest(path: Path, n: int, seconds: str = "") -> Path:
    """`n` background removals; `seconds` fixes each one's lifetime (unscaled)."""
    lines = ["id,model_name,inputs.image"]
    for i in range(n):
        marker = f"?sandbox:seconds={seconds}" if seconds else ""
        lines.append(f"sku-{i},background-remove,https://cdn.example/sku-{i}.png{marker}")
    path.write_text("\n".join(lines) + "\n")
    return path


def submitted_attempts(db: Path) -> int:
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute(
                "SELECT count(*) FROM attempts WHERE prediction_id IS NOT NULL"
            ).fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_then_resume_completes_without_paying_twice(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL mid-run, then resume: every job done, no recorded prediction resubmitted,
    every output byte-identical, no window breached across the restart."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 80)
    db, out = tmp_path / "q.db", tmp_path / "out"
    proc = spawn("submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env)
    deadline = time.monotonic() + 60
    while submitted_attempts(db) < 20 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    recorded_before = submitted_attempts(db)
    assert 20 <= recorded_before < 80

    resumed = cli("resume", "--db", str(db), "--out", str(out), *LIMITS, env=env)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(cli("report", "--db", str(db)).stdout)
    assert len(report) == 80 and {j["state"] for j in report} == {"completed"}

    state = server.state
    by_id = {p.id: p for p in state.predictions()}
    runs = state.runs_by_fingerprint()
    for job in report:
        ids = [a["prediction_id"] for a in job["attempts"] if a["prediction_id"]]
        uncertain = sum(a["uncertain"] for a in job["attempts"])
        fingerprint = by_id[ids[0]].fingerprint
        # Recorded predictions were polled, never resubmitted: a second charge for a
        # job happens only through an attempt the report marks uncertain.
        assert runs[fingerprint] <= len(ids) + uncertain
        assert len(ids) == 1
        for index, output in enumerate(job["outputs"]):
            assert Path(output["path"]).read_bytes() == state.output_bytes(ids[0], index)
    assert state.max_in_window("run") <= 50
    assert state.max_in_window("status") <= 50
    assert state.max_in_flight() <= 6
    assert state.rejections == {}


def test_sigterm_stops_with_exit_3_and_resume_finishes(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """SIGTERM: submission stops, state is recorded, exit 3; resume finishes the batch."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 40)
    db, out = tmp_path / "q.db", tmp_path / "out"
    proc = spawn("submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env)
    deadline = time.monotonic() + 60
    while submitted_attempts(db) < 8 and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 3, stderr
    assert "resume" in stderr
    resumed = cli("resume", "--db", str(db), "--out", str(out), *LIMITS, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert set(server.state.runs_by_fingerprint().values()) == {1}


def test_the_key_never_leaks(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The API key is in no output stream, no database byte, no report, no output file."""
    _server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 6)
    db, out = tmp_path / "q.db", tmp_path / "out"
    runs = [
        cli("-vv", "submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env),
        cli("status", "--db", str(db), env=env),
        cli("status", "--json", "--db", str(db), env=env),
        cli("report", "--db", str(db), env=env),
        cli("report", "--format", "csv", "--db", str(db), env=env),
        cli("report", "--format", "html", "-o", str(out / "r.html"), "--db", str(db), env=env),
    ]
    assert runs[0].returncode == 0, runs[0].stderr
    for done in runs:
        assert SECRET not in done.stdout and SECRET not in done.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("q.db") for p in files)
    for path in files:
        assert SECRET.encode() not in path.read_bytes(), path


def test_failed_jobs_exit_1(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A batch that finishes with a failed job exits 1; report says why."""
    _server, env = api
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"id": "ok", "model_name": "background-remove", "inputs": {"image": "https://x/a.png"}}\n'
        '{"id": "pose", "model_name": "tryon-max", "inputs": {"model_image": "https://x/a.png",'
        ' "product_image": "https://x/b.png", "prompt": "sandbox:fail=PoseError"}}\n'
    )
    db = tmp_path / "q.db"
    done = cli(
        "submit", str(manifest), "--db", str(db), "--out", str(tmp_path / "o"), *LIMITS, env=env
    )
    assert done.returncode == 1, done.stderr
    report = {j["id"]: j for j in json.loads(cli("report", "--db", str(db)).stdout)}
    assert report["pose"]["state"] == "failed" and report["pose"]["error"].startswith("PoseError")
    assert report["ok"]["state"] == "completed"
    assert set(report["ok"]) >= {
        "id",
        "state",
        "model_name",
        "attempts",
        "outputs",
        "credits",
        "error",
    }
    assert set(report["ok"]["attempts"][0]) == {
        "prediction_id",
        "status",
        "credits",
        "error",
        "uncertain",
    }
    assert set(report["ok"]["outputs"][0]) == {"index", "url", "path", "size", "sha256"}


def test_bad_manifest_exits_2_lists_every_problem_and_writes_nothing(tmp_path: Path) -> None:
    """Invalid input: exit 2, each problem with file and line, and no file written
    (no empty database); an existing database keeps its rows unchanged."""
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,model_name,inputs.image\n"
        "a,background-remove,\n"
        "b,background-remove,ftp://x/y.png\n"
        "c,background-remove,https://x/ok.png\n"
        "c,background-remove,https://x/ok2.png\n"
    )
    db = tmp_path / "q.db"
    done = cli("submit", str(manifest), "--queue-only", "--db", str(db))
    assert done.returncode == 2
    for line in ("m.csv:2", "m.csv:3", "m.csv:5"):
        assert line in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]

    good = write_manifest(tmp_path / "good.csv", 2)
    assert cli("submit", str(good), "--queue-only", "--db", str(db)).returncode == 0
    assert cli("submit", str(manifest), "--queue-only", "--db", str(db)).returncode == 2
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2


def test_queue_only_then_status(tmp_path: Path) -> None:
    """--queue-only needs no key and contacts nothing; status shows the queue."""
    manifest = write_manifest(tmp_path / "catalog.csv", 4)
    db = tmp_path / "q.db"
    done = cli("submit", str(manifest), "--queue-only", "--db", str(db), env={"FASHN_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    again = cli("submit", str(manifest), "--queue-only", "--db", str(db))
    assert "0 job(s) queued, 4 already known" in again.stderr
    status = json.loads(cli("status", "--json", "--db", str(db)).stdout)
    assert status["counts"]["queued"] == 4 and status["batches"] == ["catalog"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "nope"], "no queue at"),
        (["submit", "missing.yaml", "--queue-only"], "missing.yaml"),
        (["resume", "--run-limit", "fast"], "--run-limit"),
        (["resume", "--concurrency", "0"], "--concurrency"),
        (["report", "--format", "xml"], "xml"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    """Wrong arguments: exit 2 and a message that names what is wrong."""
    done = cli(*args, "--db", str(tmp_path / "q.db"), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr


@pytest.mark.parametrize("command", ["status", "report", "resume"])
def test_a_mistyped_db_creates_nothing(tmp_path: Path, command: str) -> None:
    """status/report/resume on a queue that does not exist: exit 2, no folder, no file."""
    db = tmp_path / "typo" / "dir" / "nothere.db"
    done = cli(command, "--db", str(db), env={"FASHN_API_KEY": "k"})
    assert done.returncode == 2, done.stderr
    assert "no queue at" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_no_key_without_sandbox_is_a_usage_error(tmp_path: Path) -> None:
    """Running without FASHN_API_KEY says how to set it, or to use --sandbox."""
    manifest = write_manifest(tmp_path / "catalog.csv", 1)
    done = cli("submit", str(manifest), "--db", str(tmp_path / "q.db"), env={"FASHN_API_KEY": ""})
    assert done.returncode == 2
    assert "FASHN_API_KEY" in done.stderr and "--sandbox" in done.stderr


def test_sandbox_flag_runs_the_example_catalog(tmp_path: Path) -> None:
    """`submit jobs.example.yaml --sandbox` (the README's demo) completes every job."""
    root = Path(__file__).resolve().parents[2]
    db, out = tmp_path / "demo.db", tmp_path / "out"
    done = cli(
        "submit",
        str(root / "jobs.example.yaml"),
        "--sandbox",
        "--db",
        str(db),
        "--out",
        str(out),
        env={"FASHN_API_KEY": ""},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(cli("report", "--db", str(db)).stdout)
    assert report and {j["state"] for j in report} == {"completed"}
    assert all(Path(o["path"]).is_file() for j in report for o in j["outputs"])

    page = out / "report.html"
    html = cli("report", "--format", "html", "-o", str(page), "--db", str(db), "--out", str(out))
    assert html.returncode == 0 and html.stdout == "", html.stderr
    text = page.read_text(encoding="utf-8")
    assert text.count('<article class="card completed"') == len(report)
    assert str(tmp_path) not in text  # every link relative to the page
    assert any((out / "spring-catalog" / ".thumbs").glob("*.webp"))


def test_sandbox_command_serves_a_batch(tmp_path: Path) -> None:
    """`orchestrator sandbox` in the foreground serves a real batch and its stats."""
    import re
    import urllib.request

    server = spawn("sandbox", "--port", "0", "--time-scale", str(SCALE), "--api-key", "k1", env={})
    try:
        assert server.stderr is not None
        line = server.stderr.readline()
        url = re.search(r"http://[\d.]+:\d+/v1", line)
        assert url, line
        env = {"FASHN_BASE_URL": url.group(0), "FASHN_API_KEY": "k1"}
        manifest = write_manifest(tmp_path / "catalog.csv", 5)
        done = cli(
            "submit",
            str(manifest),
            "--db",
            str(tmp_path / "q.db"),
            "--out",
            str(tmp_path / "o"),
            *LIMITS,
            env=env,
        )
        assert done.returncode == 0, done.stderr
        stats_url = url.group(0).removesuffix("/v1") + "/_sandbox/stats"
        with urllib.request.urlopen(stats_url) as response:
            stats = json.load(response)
        assert stats["predictions"]["completed"] == 5 and stats["rejections"] == {}
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    assert server.returncode == 0
