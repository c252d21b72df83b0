"""`--webhook-url` and `--webhook-listen` as a user runs them: the command as a
subprocess, against a sandbox on loopback that POSTs to its receiver."""

from __future__ import annotations

import re
import socket
import sqlite3
from pathlib import Path

from .conftest import SECRET
from .test_cli import LIMITS, cli, write_manifest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hooks(port: int) -> list[str]:
    return [
        "--webhook-url",
        f"http://127.0.0.1:{port}/hooks",
        "--webhook-listen",
        f"127.0.0.1:{port}",
    ]


def test_submit_with_webhooks_completes_and_never_prints_the_token(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A batch run with webhooks: exit 0, completions recorded as the webhooks', and the
    token in no output and in the database only as a sha256."""
    server, env = api
    manifest = write_manifest(tmp_path / "m.csv", 12)
    db = tmp_path / "q.db"
    done = cli(
        "-vv", "submit", str(manifest), "--db", str(db), "--out", str(tmp_path / "out"),
        *LIMITS, *hooks(free_port()), env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert server.state.webhooks["delivered"] == 12
    with sqlite3.connect(db) as conn:
        (digest,) = conn.execute("SELECT digest FROM webhook_tokens").fetchone()
        counts = dict(conn.execute("SELECT seen_by, count(*) FROM attempts GROUP BY seen_by"))
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    # Most finishes come by webhook; on a loaded machine the polling net may see a few
    # first (a poll is due while the receiver's loop is busy), which is its job.
    assert sum(counts.values()) == 12 and counts.get("webhook", 0) > 6
    printed = done.stdout + done.stderr
    assert "webhook_url" not in printed and "/hooks/" not in printed
    assert SECRET not in printed


def test_the_webhook_options_go_together(tmp_path: Path) -> None:
    """--webhook-url without --webhook-listen is a usage error: exit 2, nothing run."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    done = cli(
        "submit", str(manifest), "--db", str(tmp_path / "q.db"), "--sandbox",
        "--webhook-url", "https://hooks.example.com/fashn",
    )  # fmt: skip
    assert done.returncode == 2
    assert "--webhook-listen" in done.stderr


def test_a_webhook_url_fashn_cannot_reach_is_refused(tmp_path: Path) -> None:
    """A URL with a query (where the token would not go in the path) is refused: exit 2."""
    manifest = write_manifest(tmp_path / "m.csv", 1)
    done = cli(
        "submit", str(manifest), "--db", str(tmp_path / "q.db"), "--sandbox",
        "--webhook-url", "https://hooks.example.com/f?x=1", "--webhook-listen", "127.0.0.1:9",
    )  # fmt: skip
    assert done.returncode == 2
    assert "--webhook-url" in done.stderr
    assert not (tmp_path / "q.db").exists()


def test_resume_takes_the_webhook_options_from_the_environment(api, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Queued with --queue-only, run by `resume` with ORCHESTRATOR_WEBHOOK_URL/_LISTEN."""
    server, env = api
    manifest = write_manifest(tmp_path / "m.csv", 6)
    db = tmp_path / "q.db"
    assert cli("submit", str(manifest), "--db", str(db), "--queue-only").returncode == 0
    port = free_port()
    hook_env = {
        **env,
        "ORCHESTRATOR_WEBHOOK_URL": f"http://127.0.0.1:{port}/hooks",
        "ORCHESTRATOR_WEBHOOK_LISTEN": f"127.0.0.1:{port}",
    }
    done = cli("resume", "--db", str(db), "--out", str(tmp_path / "out"), *LIMITS, env=hook_env)
    assert done.returncode == 0, done.stderr
    assert server.state.webhooks["delivered"] == 6
