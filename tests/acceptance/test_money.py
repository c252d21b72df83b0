"""What a paid night looks like from the command line: `validate`, `--max-credits`
across a SIGKILL and a resume, the pre-flight on a wrong key, and `status` saying what
the night cost. The sandbox's account is the judge, never the client's own figures."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path

import httpx

from .conftest import SECRET
from .test_cli import LIMITS, cli, spawn, submitted_attempts, write_manifest


def stats(server) -> dict:  # type: ignore[no-untyped-def, type-arg]
    return httpx.get(f"{server.url}/_sandbox/stats").json()


def test_validate_sends_no_run_and_creates_no_file(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """validate: exit 0, the JSON contract, the balance from one GET /credits, no /run,
    and a --db that does not exist stays absent."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 12)
    db = tmp_path / "missing" / "q.db"
    done = cli("validate", str(manifest), "--db", str(db), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "jobs": 12,
        "by_model": {"background-remove": {"jobs": 12, "credits": 12}},
        "estimated_credits": 12,
        "balance": 10_000,
    }
    seen = stats(server)
    assert seen["requests"] == {"run": 0, "status": 0, "credits": 1}
    assert not db.exists() and not db.parent.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog.csv"]
    assert SECRET not in done.stdout + done.stderr


def test_validate_says_where_a_short_balance_would_stop(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """With too few credits, validate's text names the need, the balance and the share."""
    server = sandbox(credits=9)
    env = {"FASHN_API_KEY": "sandbox", "FASHN_BASE_URL": server.base_url}
    manifest = write_manifest(tmp_path / "catalog.csv", 12)
    done = cli("validate", str(manifest), "--db", str(tmp_path / "q.db"), env=env)
    assert done.returncode == 0, done.stderr
    assert "catalog.csv: valid, 12 jobs" in done.stdout
    assert (
        "needs about 12 credits; you have 9: the run would stop after about 75 % of the jobs"
        in done.stdout
    )
    assert stats(server)["requests"]["run"] == 0


def test_validate_refuses_what_submit_refuses(tmp_path: Path) -> None:
    """A bad manifest: the same errors as submit, exit 2, nothing created."""
    manifest = tmp_path / "m.csv"
    manifest.write_text("id,model_name,inputs.image\na,background-remove,\na,no-such-model,x\n")
    db = tmp_path / "q.db"
    validated = cli("validate", str(manifest), "--db", str(db))
    submitted = cli("submit", str(manifest), "--db", str(db), "--queue-only")
    assert validated.returncode == submitted.returncode == 2
    assert validated.stderr == submitted.stderr
    assert not db.exists()


def test_a_wrong_key_costs_one_request(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """submit with a wrong key: exit 3 after one GET /credits, with advice naming
    FASHN_API_KEY; no /run, and the wrong key is not echoed."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 12)
    done = cli(
        "submit",
        str(manifest),
        "--db",
        str(tmp_path / "q.db"),
        *LIMITS,
        env={**env, "FASHN_API_KEY": "sk-wrong-987"},
    )
    assert done.returncode == 3
    assert "FASHN_API_KEY" in done.stderr and "sk-wrong-987" not in done.stderr
    seen = stats(server)
    assert seen["requests"] == {"run": 0, "status": 0, "credits": 1}
    assert seen["arrivals"]["run"] == 0 and seen["rejections"] == {"Unauthorized": 1}


def test_the_cap_holds_across_sigkill_and_resume(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--max-credits 30 over 80 one-credit jobs, SIGKILL mid-run, resume with the same
    cap: exit 3 with what was spent and what is left, the sandbox never charged more
    than 30; resume with a higher cap finishes, and status says what the night cost."""
    server, env = api
    manifest = write_manifest(tmp_path / "catalog.csv", 80)
    db, out = tmp_path / "q.db", tmp_path / "out"
    common = ["--db", str(db), "--out", str(out), *LIMITS]
    most = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.005):
            most[0] = max(most[0], server.state.credits_charged)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        proc = spawn("submit", str(manifest), *common, "--max-credits", "30", env=env)
        deadline = time.monotonic() + 60
        while submitted_attempts(db) < 12 and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL

        capped = cli("resume", *common, env={**env, "ORCHESTRATOR_MAX_CREDITS": "30"})
        assert capped.returncode == 3, capped.stderr
        assert "spent " in capped.stderr and " of 30; " in capped.stderr
        assert "jobs left (about " in capped.stderr
        assert most[0] <= 30

        finished = cli("resume", *common, "--max-credits", "120", env=env)
        assert finished.returncode == 0, finished.stderr
    finally:
        done.set()
        watcher.join()
    assert max(most[0], server.state.credits_charged) <= 120
    status = json.loads(cli("status", "--json", "--db", str(db)).stdout)
    assert status["counts"]["completed"] == 80
    check = status["balance_check"]
    assert check["balance_after"] == stats(server)["balance"]
    assert check["summary"].startswith(f"the account was charged {check['charged']}; ")
    assert {"batches", "total", "counts", "credits", "uncertain_attempts"} <= set(status)
