"""Webhooks over real HTTP on loopback: the sandbox POSTs to the orchestrator's receiver,
with and without faults, and across a stopped and resumed run. Asserted on what the
sandbox recorded and on the queue's rows."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config import Settings
from orchestrator.engine import Engine
from orchestrator.errors import Interrupted, UsageError
from orchestrator.models import Progress
from orchestrator.sandbox import Faults
from orchestrator.store import Store

from ..conftest import jobs, settings_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def with_webhooks(settings: Settings, port: int) -> Settings:
    return replace(
        settings,
        webhook_url=f"http://127.0.0.1:{port}/hooks",
        webhook_listen=("127.0.0.1", port),
    )


def seen_by(db: Path) -> dict[str | None, int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT seen_by, count(*) FROM attempts WHERE finished_at IS NOT NULL "
            "AND prediction_id IS NOT NULL GROUP BY seen_by"
        ).fetchall()
    return dict(rows)


def test_completions_arrive_by_webhook_over_http(sandbox, store: Store, tmp_path: Path) -> None:
    """40 jobs: the sandbox delivered every webhook to the receiver, the receiver took
    each, and every completion not seen by a poll first was recorded as a webhook's."""
    server = sandbox(latency={"*": (4.0, 12.0)})
    store.ingest("b", "m.yaml", jobs(40))
    engine = Engine(store, with_webhooks(settings_for(server, tmp_path / "out"), free_port()))
    outcome = anyio.run(engine.run)
    state = server.state
    assert outcome.counts == {"completed": 40}
    assert state.webhooks["delivered"] == 40
    assert engine.webhooks is not None and engine.webhooks.inbox.counts["accepted"] == 40
    # A completion is recorded from a poll only if some status answer showed it
    # finished; on a loaded machine such an answer may cross the webhook in flight.
    polled_finished = sum(1 for r in state.predictions() if r.first_seen_finished_at is not None)
    counts = seen_by(store.path)
    assert counts.get("webhook", 0) + counts.get("status", 0) == 40
    assert counts.get("status", 0) <= polled_finished
    assert state.max_in_window("status") <= 50 and state.rejections == {}


def test_lost_late_and_doubled_webhooks_over_http(sandbox, store: Store, tmp_path: Path) -> None:
    """A fifth of the webhooks dropped, a fifth late, a fifth sent twice: every job is
    completed once and paid once; every dropped one was found by a poll."""
    faults = Faults(webhook_drop=0.2, webhook_delay=0.2, webhook_duplicate=0.2)
    server = sandbox(latency={"*": (4.0, 12.0)}, faults=faults)
    store.ingest("b", "m.yaml", jobs(40))
    engine = Engine(store, with_webhooks(settings_for(server, tmp_path / "out"), free_port()))
    outcome = anyio.run(engine.run)
    state = server.state
    assert outcome.counts == {"completed": 40}
    assert set(state.runs_by_fingerprint().values()) == {1}
    assert outcome.credits == state.credits_charged == 40
    dropped = {r.id for r in state.predictions() if r.first_notified_at is None}
    assert len(dropped) >= state.webhooks["dropped"] > 0
    with sqlite3.connect(store.path) as conn:
        by_status = {
            pid
            for (pid,) in conn.execute(
                "SELECT prediction_id FROM attempts WHERE seen_by = 'status'"
            )
        }
    assert by_status >= {r.id for r in state.predictions() if r.first_notified_at is None}


def test_a_resumed_run_takes_over_the_webhooks_of_a_stopped_one(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A run stopped with predictions in flight; the next, on the same address, polls
    them and accepts their webhooks (sent to the first run's token): all complete, none
    predicted twice, and both runs' tokens are kept only as digests."""
    server = sandbox(latency={"*": (10.0, 20.0)})
    store.ingest("b", "m.yaml", jobs(30))
    settings = with_webhooks(settings_for(server, tmp_path / "out"), free_port())
    first: Engine | None = None

    def stop_after_ten(progress: Progress) -> None:
        if progress.finished_this_run >= 10 and first is not None:
            first.request_stop()

    first = Engine(store, settings, on_progress=stop_after_ten, progress_every=0.01)
    with pytest.raises(Interrupted):
        anyio.run(first.run)
    with sqlite3.connect(store.path) as conn:
        in_flight = {
            pk
            for (pk,) in conn.execute(
                "SELECT pk FROM attempts WHERE state = 'submitted' AND prediction_id IS NOT NULL"
            )
        }
    assert in_flight
    second = Engine(reopen(), settings)
    outcome = anyio.run(second.run)
    assert outcome.counts == {"completed": 30}
    assert set(server.state.runs_by_fingerprint().values()) == {1}
    with sqlite3.connect(store.path) as conn:
        tokens = [d for (d,) in conn.execute("SELECT digest FROM webhook_tokens")]
        recovered = dict(
            conn.execute(
                f"SELECT pk, seen_by FROM attempts WHERE pk IN ({','.join(map(str, in_flight))})"
            ).fetchall()
        )
    assert len(tokens) == 2 and all(len(d) == 64 for d in tokens)
    assert second.webhooks is not None
    assert {first.webhooks.token.value, second.webhooks.token.value} & set(tokens) == set()  # type: ignore[union-attr]
    assert "webhook" in recovered.values()


def test_a_listen_address_in_use_is_a_usage_error(sandbox, store: Store, tmp_path: Path) -> None:
    """The receiver's port is taken before anything is sent: if it cannot be, nothing is."""
    server = sandbox()
    store.ingest("b", "m.yaml", jobs(3))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings: Any = with_webhooks(settings_for(server, tmp_path / "out"), port)
        with pytest.raises(UsageError, match="--webhook-listen"):
            anyio.run(Engine(store, settings).run)
    assert server.state.arrivals("run") == []
