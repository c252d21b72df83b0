"""Webhooks in a fleet, over real HTTP on loopback: two worker processes, each with its
own receiver (its own port and `--webhook-url`), and the sandbox delivering every
prediction's webhook to the *other* worker's receiver, as a load balancer in front of
the fleet's receivers may (SandboxConfig.webhook_reroute). Judged by the queue's rows
and by what the sandbox recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandbox import SandboxServer

from .test_fleet import FLEET_SCALE, LATENCY, _finish, _limits_held, _queue, _read, _states, _worker
from .test_webhooks import free_port

pytestmark = pytest.mark.both_databases


def _hooks(port: int) -> tuple[str, ...]:
    url = f"http://127.0.0.1:{port}/hooks"
    # A longer lease than test_fleet's: a loaded machine must not kill a worker here.
    return ("--webhook-url", url, "--webhook-listen", f"127.0.0.1:{port}", "--lease-seconds", "10")


@pytest.mark.timeout(300)
def test_each_webhook_taken_by_another_worker(sandbox, database, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """60 jobs, 2 workers, every webhook at the other worker's receiver: every job
    completes, each prediction detected by its webhook, none paid twice, limits held."""
    ports = (free_port(), free_port())
    listeners = tuple(f"127.0.0.1:{p}" for p in ports)
    server: SandboxServer = sandbox(
        time_scale=FLEET_SCALE, latency=LATENCY, webhook_reroute=listeners
    )
    db = _queue(tmp_path, database, 60)
    env = {"FASHN_API_KEY": "sandbox", "FASHN_BASE_URL": server.base_url}
    workers = [_worker(db, tmp_path / "out", env, *_hooks(port)) for port in ports]
    assert _finish(workers) == [0, 0]
    assert _states(db) == {"completed": 60}
    assert len(list((tmp_path / "out" / "c").rglob("0.png"))) == 60
    runs = server.state.runs_by_fingerprint()
    assert len(runs) == 60 and set(runs.values()) == {1}  # 0 duplicate predictions
    _limits_held(server.state)
    # Every webhook taken by the other worker's receiver (2xx); one that overtook the
    # holder's /run answer (a loaded machine) is answered 503, and FASHN sends it again.
    hooks = server.state.webhooks
    assert hooks["delivered"] == 60 and hooks.get("abandoned", 0) == 0
    early = hooks.get("retried", 0)
    # Each prediction detected by its webhook, but those that a poll of the net found
    # finished first (the sandbox saw which), those that came early, and those whose
    # answer the holder committed while the webhook crossed to the other worker and its
    # database write (a race the poll of the net wins a few times in 60 when the machine
    # is loaded: seen 0 to 7).
    seen = dict(_read(db, "SELECT seen_by, count(*) FROM attempts GROUP BY seen_by"))
    polled_first = sum(
        1
        for r in server.state.predictions()
        if r.first_seen_finished_at is not None
        and (r.first_notified_at is None or r.first_seen_finished_at < r.first_notified_at)
    )
    assert seen.get("webhook", 0) + seen.get("status", 0) == 60
    assert seen.get("status", 0) <= polled_first + early + 10, (seen, polled_first, early)
    # Both workers sent /run requests, so each took webhooks of the other's predictions.
    holders = _read(db, "SELECT count(DISTINCT worker) FROM jobs")
    assert holders == [(2,)]
