"""The batch commands as a user runs them: `cancel` from another process while `submit`
runs (as subprocesses, against a sandbox over loopback), `list`, `status` and `report`
with canceled jobs, `retry` with its filters, and the log file in JSON."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from .conftest import SECRET
from .test_cli import LIMITS, cli, spawn, submitted_attempts, write_manifest


def job_rows(db: Path) -> dict[str, tuple[str, str]]:
    """job id -> (state, fingerprint), as the queue records them."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT job_id, state, fingerprint FROM jobs").fetchall()
    return {job_id: (state, fp) for job_id, state, fp in rows}


def test_cancel_during_a_run_stops_sending_the_canceled_jobs(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`cancel` while `submit` runs in another process (which holds the queue's lock):
    no canceled job ever reaches /run, every other job completes, and the running
    process exits 0."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 60, seconds="50")  # 1 s each
    db, out = tmp_path / "q.db", tmp_path / "out"
    args = ["--db", str(db), "--out", str(out), *LIMITS]
    proc = spawn("submit", str(manifest), "--batch", "night", *args, env=env)
    deadline = time.monotonic() + 60
    while submitted_attempts(db) < 6 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    canceled = cli("cancel", "night", "--db", str(db), env=env)
    took_effect = time.monotonic()
    _, stderr = proc.communicate(timeout=120)
    assert canceled.returncode == 0, canceled.stderr
    assert proc.returncode == 0, stderr

    rows = job_rows(db)
    states = [state for state, _ in rows.values()]
    count = states.count("canceled")
    assert count >= 10 and states.count("completed") == 60 - count
    assert f"batch night: {count} queued job(s) canceled" in canceled.stderr
    runs = server.state.runs_by_fingerprint()
    canceled_fps = {fp for state, fp in rows.values() if state == "canceled"}
    assert not canceled_fps & set(runs)  # never sent, before the cancel or after it
    late = [p for p in server.state.predictions() if p.accepted_at > took_effect]
    assert not {p.fingerprint for p in late} & canceled_fps
    assert sum(runs.values()) == len(server.state.arrivals("run")) == 60 - count


def test_list_status_and_report_show_canceled_as_a_state(tmp_path: Path) -> None:
    """Named jobs canceled: `list --json`, `status --json` and `report` count and show
    them as canceled; an unknown job id is exit 2 and changes nothing."""
    manifest = write_manifest(tmp_path / "catalog.csv", 5)
    db = str(tmp_path / "q.db")
    assert cli("submit", str(manifest), "--queue-only", "--db", db).returncode == 0
    refused = cli("cancel", "catalog", "--job", "sku-1", "--job", "sku-9", "--db", db)
    assert refused.returncode == 2 and "'sku-9'" in refused.stderr
    done = cli("cancel", "catalog", "--job", "sku-1", "--job", "sku-2", "--db", db)
    assert done.returncode == 0, done.stderr

    (listed,) = json.loads(cli("list", "--json", "--db", db).stdout)
    assert listed["batch"] == "catalog" and listed["total"] == 5
    assert listed["counts"]["canceled"] == 2 and listed["counts"]["queued"] == 3
    assert listed["first_activity"] <= listed["last_activity"]
    status = json.loads(cli("status", "--json", "--db", db).stdout)
    assert status["counts"]["canceled"] == 2 and status["total"] == 5
    report = {j["id"]: j["state"] for j in json.loads(cli("report", "--db", db).stdout)}
    assert report == {f"sku-{i}": "canceled" if i in (1, 2) else "queued" for i in range(5)}
    table = cli("list", "--db", db)
    assert "canceled" in table.stdout and "catalog" in table.stdout
    both = cli("-q", "-v", "list", "--db", db)
    assert both.returncode == 2 and "-q and -v" in both.stderr


def test_retry_leaves_a_permanent_failure_until_error_names_it(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`retry` says it skipped the PoseError job (exit 1: it is still failed); with
    --error PoseError --queue-only it is queued again without a run."""
    _server, env = api
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        '{"id": "pose", "model_name": "background-remove",'
        ' "inputs": {"image": "https://x/a.png?sandbox:fail=PoseError"}}\n'
    )
    db, out = str(tmp_path / "q.db"), str(tmp_path / "out")
    first = cli("submit", str(manifest), "--db", db, "--out", out, *LIMITS, env=env)
    assert first.returncode == 1, first.stderr
    skipped = cli("retry", "m", "--db", db, "--out", out, *LIMITS, env=env)
    assert skipped.returncode == 1, skipped.stderr
    assert "0 failed job(s) run again" in skipped.stderr
    assert "skipped 1 that failed with PoseError" in skipped.stderr
    named = cli("retry", "m", "--error", "PoseError", "--queue-only", "--db", db)
    assert named.returncode == 0, named.stderr
    assert "1 failed job(s) run again: 0 only downloaded again" in named.stderr
    assert json.loads(cli("status", "--json", "--db", db).stdout)["counts"]["queued"] == 1


def test_the_json_log_file_has_one_line_per_failed_job_and_no_key(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--log-file with --log-format json: each failed job is one object with batch, job,
    manifest file and line, model and error; the key appears nowhere in the file."""
    _server, env = api
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "id,model_name,inputs.image\n"
        "ok,background-remove,https://x/ok.png\n"
        "pose,background-remove,https://x/p.png?sandbox:fail=PoseError\n"
        "load,background-remove,https://x/l.png?sandbox:fail=ImageLoadError\n"
    )
    log_file = tmp_path / "night.log"
    done = cli(
        *("--log-file", str(log_file), "--log-format", "json", "-q"),
        *("submit", str(manifest), "--db", str(tmp_path / "q.db"), "--out", str(tmp_path)),
        *LIMITS,
        env=env,
    )
    assert done.returncode == 1, done.stderr
    text = log_file.read_text()
    assert SECRET not in text
    lines = [json.loads(line) for line in text.splitlines()]
    failed = sorted(
        ((r["job"], r["manifest"], r["line"], r["model"], r["error"].split(":")[0]))
        for r in lines
        if r.get("event") == "job_failed"
    )
    assert failed == [
        ("load", str(manifest), 4, "background-remove", "ImageLoadError"),
        ("pose", str(manifest), 3, "background-remove", "PoseError"),
    ]
    assert any(r["logger"] == "orchestrator.progress" for r in lines)
    assert "job failed" in done.stderr  # -q keeps errors on the console
