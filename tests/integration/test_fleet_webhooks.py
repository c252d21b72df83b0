"""Webhooks in a fleet: one receiver per worker process, whatever its accounts, and a
webhook for another worker's prediction recorded in the database exactly once. On
SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import text

from orchestrator.api import FashnClient, Status
from orchestrator.clock import SystemClock
from orchestrator.config import Settings
from orchestrator.engine.poller import Poller
from orchestrator.engine.state import RunState
from orchestrator.fleet.decisions import AccountLimits
from orchestrator.fleet.worker import Worker
from orchestrator.limits import SlidingWindow
from orchestrator.polling import LossRate
from orchestrator.store import Gate, Store
from orchestrator.webhooks import Notice
from orchestrator.webhooks.fleet import FleetWebhooks

from ..conftest import jobs, settings_for
from .test_webhooks import free_port, with_webhooks

pytestmark = pytest.mark.both_databases


def _rows(store: Store, sql: str) -> list[Any]:
    with store.engine.connect() as conn:
        return list(conn.execute(text(sql)).all())


@pytest.mark.timeout(120)
def test_two_accounts_in_one_worker_share_one_receiver(
    sandbox, store: Store, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """One worker, two accounts (two engines), one `--webhook-listen`: the port is bound
    once, and the one receiver takes both accounts' webhooks to their own pollers."""
    server = sandbox(latency={"*": (4.0, 12.0)}, api_key="key-a", extra_keys=("key-b",))
    specs = [replace(j, account="acme" if i % 2 else "default") for i, j in enumerate(jobs(24))]
    store.ingest("b", "m.yaml", specs)
    settings = with_webhooks(settings_for(server, tmp_path / "out"), free_port())
    worker = Worker(
        store,
        settings,
        burst=True,
        lease_seconds=3.0,
        idle_poll=0.05,
        keys={"default": "key-a", "acme": "key-b"},
    )
    assert sorted(worker.prepare()) == ["acme", "default"]
    outcomes = anyio.run(worker.run)
    assert sorted(outcomes) == ["acme", "default"]
    assert store.state_counts(None) == {"completed": 24}
    hooks = worker.webhooks
    assert hooks is not None and hooks.inbox.counts["accepted"] == 24
    assert hooks.counts["local"] == 24 and hooks.counts["recorded"] == 0
    for key in ("key-a", "key-b"):
        account = server.state.account(key)
        assert account.webhooks["delivered"] == 12
        assert set(account.runs_by_fingerprint().values()) == {1}
    seen = dict(_rows(store, "SELECT seen_by, count(*) FROM attempts GROUP BY seen_by"))
    # Most by webhook; the polling net may see a few first on a loaded machine.
    assert seen.get("webhook", 0) > 12 and sum(seen.values()) == 24


def _in_flight(store: Store, worker: str, n: int) -> list[Any]:
    """`n` jobs claimed by `worker`, the first n-1 accepted (with a prediction id)."""
    limits = AccountLimits(6, None, None)
    store.fleet.record_limits("default", limits, others_live=False)
    store.fleet.register(worker, 30.0)
    claims = [store.claim_next(None, gate=Gate("default", 6, worker)) for _ in range(n)]
    assert all(c is not None for c in claims)
    flights: list[Any] = [
        store.record_accepted(c, f"pred-{i}", 1, c.request_pk)  # type: ignore[union-attr]
        for i, c in enumerate(claims[:-1])
    ]
    return [*flights, claims[-1]]


def test_another_workers_webhook_is_recorded_once(store: Store, tmp_path: Path) -> None:
    """A webhook for a prediction that another worker holds is recorded in the database
    (completed, outputs pending) exactly once: a duplicate, and the holder's poll after
    it, change nothing, and the holder's poll gets the outputs to download."""
    store.ingest("b", "m.yaml", jobs(4))
    settings = Settings(out_dir=tmp_path, api_key="k", webhook_url="http://127.0.0.1:9/hooks")
    done, failed, other_done, early = _in_flight(store, "other", 4)
    hooks = FleetWebhooks(settings, str, store, "me")
    hooks.open(store)
    completed = Status("completed", ["https://cdn.example/a.png"], None, None)
    route = hooks.route
    assert route(Notice(done.attempt_pk, "pred-x", completed)) == 404  # not its prediction
    assert route(Notice(999_999, "pred-0", completed)) == 404
    assert route(Notice(done.attempt_pk, "pred-0", completed)) is None
    assert route(Notice(done.attempt_pk, "pred-0", completed)) is None  # a duplicate
    assert hooks.counts["recorded"] == 1 and hooks.counts["duplicate"] == 1
    assert route(Notice(early.attempt_pk, "pred-3", completed)) == 503  # before /run's answer
    failure = Status("failed", [], "ImageLoadError", "no image")
    assert route(Notice(failed.attempt_pk, "pred-1", failure)) is None
    # The holder's poll comes after: nothing recorded again, the outputs are its to save.
    pending = store.record_completed(done, ["https://cdn.example/b.png"], seen_by="status")
    assert [p.url for p in pending] == ["https://cdn.example/a.png"]
    assert store.record_completed(other_done, [], seen_by="status") == []
    rows = _rows(store, "SELECT pk, state, seen_by FROM attempts ORDER BY pk")
    assert [(r[1], r[2]) for r in rows] == [
        ("completed", "webhook"),
        ("failed", "webhook"),
        ("completed", "status"),
        ("pending", None),
    ]
    assert _rows(store, "SELECT count(*) FROM outputs") == [(1,)]
    assert store.relay.settled([done.attempt_pk, early.attempt_pk]) == {
        done.attempt_pk: "completed"
    }


def test_a_poll_after_another_workers_webhook_is_no_lost_webhook(
    store: Store, tmp_path: Path
) -> None:
    """The holder's poll may find finished a prediction whose webhook another worker's
    receiver already recorded: the webhook came, so the loss rate that paces the net
    counts it announced; a finish no receiver recorded counts lost."""
    store.ingest("b", "m.yaml", jobs(3))
    settings = Settings(out_dir=tmp_path, api_key="k", webhook_url="http://127.0.0.1:9/hooks")
    announced, unannounced, _claimed = _in_flight(store, "holder", 3)
    hooks = FleetWebhooks(settings, str, store, "other")
    hooks.open(store)
    completed = Status("completed", ["https://cdn.example/a.png"], None, None)
    assert hooks.route(Notice(announced.attempt_pk, "pred-0", completed)) is None

    async def poll_both() -> LossRate:
        state = RunState(settings, SystemClock(), random.Random(0))
        poller = Poller(
            state,
            store,
            FashnClient(httpx.AsyncClient(), "http://127.0.0.1:9", "k"),
            SlidingWindow(None),
            spawn=lambda *_: None,
            on_completed=lambda *_: None,
            net=True,
            share=lambda _held, _now: 1.0,
        )
        for flight in (announced, unannounced):
            poller.adopt(flight)
            poller._on_status(state.slots[flight.attempt_pk], completed, 0.0)
        return poller.loss

    loss = anyio.run(poll_both)
    assert (loss.announced, loss.lost) == (1, 1)


def test_a_later_workers_token_is_looked_up(store: Store, tmp_path: Path) -> None:
    """A receiver opened before another worker's accepts that worker's token (looked up
    in the database on a miss); a token the database never issued stays refused."""
    settings = Settings(out_dir=tmp_path, api_key="k", webhook_url="http://127.0.0.1:9/h")
    first = FleetWebhooks(settings, str, store, "first")
    first.open(store)
    later = FleetWebhooks(settings, str, store, "later")
    later.open(store)
    path = later.url_for(7).split("/h", 1)[1]
    assert first.inbox.attempt(path) == 7
    with pytest.raises(Exception, match="unknown token"):
        first.inbox.attempt("/AAAAAAAAAAAAAAAAAAAAAA/7")
