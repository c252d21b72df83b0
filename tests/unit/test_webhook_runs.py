"""Runs with webhooks in virtual time: the in-memory FASHN sends them into the engine's
receiver through httpx's ASGI transport (no sockets), at FASHN's real limits and the
middle regime's latencies (4-12 s). Asserted on what the server recorded and on the
queue's own rows."""

from __future__ import annotations

import random
import sqlite3
import statistics
from pathlib import Path
from typing import Any

import anyio
import httpx

from orchestrator.config import Settings
from orchestrator.engine import Engine, RunOutcome
from orchestrator.errors import Interrupted
from orchestrator.models import JobSpec, Location
from orchestrator.sandbox import Faults, SandboxConfig
from orchestrator.sandbox.predictions import PredictionRecord
from orchestrator.store import Store
from orchestrator.testing import (
    BASE_URL,
    InMemoryFashn,
    VirtualClock,
    inline,
    run_in_virtual_time,
    run_with_webhooks,
)

HOOKS = "http://hooks.test/fashn"
# Uniform polling's mean detection delay at FASHN's limits: concurrency / status rate / 2.
UNIFORM_MEAN = 6 / 5.0 / 2


class World:
    """One account on the in-memory FASHN, one queue, one virtual clock, webhooks on."""

    def __init__(self, tmp_path: Path, **faults: Any):
        self.clock = VirtualClock()
        config = SandboxConfig(seed=3, latency={"*": (4.0, 12.0)}, faults=Faults(**faults))
        self.fashn = InMemoryFashn(config, self.clock)
        self.db = tmp_path / "q.db"
        self.store = Store(self.db, durable=False, clock=self.clock)
        self.out = tmp_path / "out"

    def engine(self) -> Engine:
        settings = Settings(
            out_dir=self.out, base_url=BASE_URL, api_key="sandbox", webhook_url=HOOKS
        )
        return Engine(
            self.store,
            settings,
            clock=self.clock,
            transport=self.fashn,
            blocking=inline,
            rng=random.Random(0),
        )

    def run(self, engine: Engine | None = None) -> RunOutcome:
        engine = engine or self.engine()
        assert engine.webhooks is not None
        sender = self.fashn.webhooks_to(engine.webhooks.app)
        return run_in_virtual_time(lambda: run_with_webhooks(engine.run, sender), clock=self.clock)

    def seen_by(self) -> dict[str | None, int]:
        """Terminal attempts by what first showed them terminal."""
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(
                "SELECT seen_by, count(*) FROM attempts WHERE finished_at IS NOT NULL "
                "AND prediction_id IS NOT NULL GROUP BY seen_by"
            ).fetchall()
        return dict(rows)


def jobs(n: int, marker: str = "") -> list[JobSpec]:
    return [
        JobSpec(
            f"job-{i}",
            "background-remove",
            {"image": f"https://cdn.example/{i}.png{marker}"},
            location=Location("m.yaml", i + 2),
        )
        for i in range(n)
    ]


def detection(records: list[PredictionRecord]) -> list[float]:
    """Seconds from each finish to the first webhook sent or status answer showing it."""
    delays = []
    for r in records:
        seen = [t for t in (r.first_seen_finished_at, r.first_notified_at) if t is not None]
        delays.append(min(seen) - r.finished_at)
    return delays


def test_a_clean_run_is_announced_by_webhooks_and_polls_little(tmp_path: Path) -> None:
    """200 jobs, no webhook lost: every completion came by webhook, the detection mean is
    within 0.05 x uniform polling's, and the net spent at most 1.2 status requests a job."""
    world = World(tmp_path)
    world.store.ingest("b", "m.yaml", jobs(200))
    outcome = world.run()
    state = world.fashn.state
    assert outcome.counts == {"completed": 200}
    assert world.seen_by() == {"webhook": 200}
    assert state.webhooks["delivered"] == 200
    assert len(state.arrivals("status")) <= 1.2 * 200
    assert statistics.mean(detection(state.predictions())) <= 0.05 * UNIFORM_MEAN
    assert state.max_in_window("status") <= 50 and state.max_in_window("run") <= 50


def test_lost_webhooks_are_caught_by_the_net(tmp_path: Path) -> None:
    """10 % of webhooks dropped: every job completes, each dropped one was found by a
    poll, and the detection mean stays within 0.3 x uniform polling's."""
    world = World(tmp_path, webhook_drop=0.1)
    world.store.ingest("b", "m.yaml", jobs(200))
    outcome = world.run()
    state = world.fashn.state
    dropped = state.webhooks["dropped"]
    assert outcome.counts == {"completed": 200}
    assert dropped > 0
    assert world.seen_by() == {"webhook": 200 - dropped, "status": dropped}
    assert statistics.mean(detection(state.predictions())) <= 0.3 * UNIFORM_MEAN


def test_duplicate_and_late_webhooks_change_nothing(tmp_path: Path) -> None:
    """Webhooks sent twice or seconds late: each job is completed and paid once, and its
    outputs saved once."""
    world = World(tmp_path, webhook_duplicate=0.3, webhook_delay=0.3)
    world.store.ingest("b", "m.yaml", jobs(60))
    outcome = world.run()
    state = world.fashn.state
    assert state.webhooks["duplicated"] > 0 and state.webhooks["delayed"] > 0
    assert outcome.counts == {"completed": 60}
    assert set(state.runs_by_fingerprint().values()) == {1}
    assert outcome.credits == state.credits_charged == 60
    with sqlite3.connect(world.db) as conn:
        saved = conn.execute("SELECT count(*) FROM outputs WHERE state = 'saved'").fetchone()[0]
        completed = conn.execute(
            "SELECT count(*) FROM attempts WHERE state = 'completed'"
        ).fetchone()[0]
    assert saved == completed == 60


def test_a_failure_announced_by_webhook_is_retried_and_refunded(tmp_path: Path) -> None:
    """A webhook saying failed takes the path of a failed status: refund, new attempt."""
    world = World(tmp_path)
    world.store.ingest("b", "m.yaml", jobs(6, marker="?sandbox:fail=PipelineError:1"))
    outcome = world.run()
    assert outcome.counts == {"completed": 6}
    assert outcome.credits == world.fashn.state.credits_charged == 6
    assert world.seen_by() == {"webhook": 12}
    with sqlite3.connect(world.db) as conn:
        failed = conn.execute(
            "SELECT count(*) FROM attempts WHERE error_name = 'PipelineError' "
            "AND seen_by = 'webhook'"
        ).fetchone()[0]
    assert failed == 6


def test_forged_webhooks_are_refused_or_ignored(tmp_path: Path) -> None:
    """A POST without our token is a 404; one with our token but another prediction id
    changes nothing: the job completes with the real prediction's output."""
    world = World(tmp_path)
    world.store.ingest("b", "m.yaml", jobs(1, marker="?sandbox:seconds=10"))
    engine = world.engine()
    assert engine.webhooks is not None
    answers: list[int] = []

    async def forge() -> None:
        await anyio.sleep(2.0)  # the prediction is in flight, far from finished
        (attempt_pk,) = engine.state.slots
        good = engine.webhooks.url_for(attempt_pk) if engine.webhooks else ""
        bad = good.replace(engine.webhooks.token.value if engine.webhooks else "", "x" * 22)
        body = {"id": "forged", "status": "completed", "output": ["https://evil.example/x.png"]}
        transport = httpx.ASGITransport(engine.webhooks.app if engine.webhooks else None)
        async with httpx.AsyncClient(transport=transport) as client:
            for url in (bad, good):
                answers.append((await client.post(url, json=body)).status_code)

    async def both() -> RunOutcome:
        async with anyio.create_task_group() as tg:
            tg.start_soon(forge)
            assert engine.webhooks is not None
            sender = world.fashn.webhooks_to(engine.webhooks.app)
            outcome = await run_with_webhooks(engine.run, sender)
        return outcome

    outcome = run_in_virtual_time(both, clock=world.clock)
    assert answers == [404, 200]
    assert outcome.counts == {"completed": 1}
    (record,) = world.fashn.state.predictions()
    with sqlite3.connect(world.db) as conn:
        url, prediction_id = conn.execute(
            "SELECT o.url, a.prediction_id FROM outputs o JOIN attempts a ON a.pk = o.attempt_pk"
        ).fetchone()
    assert prediction_id == record.id
    assert "evil" not in url


def test_without_a_run_the_receiver_answers_503(tmp_path: Path) -> None:
    """A webhook that arrives while no run is under way is refused, so FASHN retries."""
    world = World(tmp_path)
    engine = world.engine()
    assert engine.webhooks is not None
    engine.webhooks.inbox.trust(engine.webhooks.token.digest)

    async def post() -> int:
        assert engine.webhooks is not None
        transport = httpx.ASGITransport(engine.webhooks.app)
        async with httpx.AsyncClient(transport=transport) as client:
            body = {"id": "p", "status": "completed", "output": []}
            return (await client.post(engine.webhooks.url_for(1), json=body)).status_code

    assert anyio.run(post) == 503


def test_a_resumed_run_accepts_the_webhooks_of_the_run_that_stopped(tmp_path: Path) -> None:
    """Predictions in flight when a run stopped are taken over by the next run, which
    accepts their webhooks (sent to the first run's token); none is predicted twice."""
    world = World(tmp_path)
    world.store.ingest("b", "m.yaml", jobs(30))
    first = world.engine()

    async def interrupted() -> bool:
        try:
            await first.run()
        except Interrupted:
            return True
        return False

    async def stop_soon() -> bool:
        async with anyio.create_task_group() as tg:

            async def stop() -> None:
                await anyio.sleep(20.0)
                first.request_stop()

            tg.start_soon(stop)
            assert first.webhooks is not None
            sender = world.fashn.webhooks_to(first.webhooks.app)
            stopped = await run_with_webhooks(interrupted, sender)
        return stopped

    assert run_in_virtual_time(stop_soon, clock=world.clock)
    with sqlite3.connect(world.db) as conn:
        in_flight = conn.execute(
            "SELECT pk FROM attempts WHERE state = 'submitted' AND prediction_id IS NOT NULL"
        ).fetchall()
    assert in_flight
    second = world.engine()
    outcome = world.run(second)
    assert outcome.counts == {"completed": 30}
    assert set(world.fashn.state.runs_by_fingerprint().values()) == {1}
    first_token = [int(pk) for (pk,) in in_flight]
    with sqlite3.connect(world.db) as conn:
        by_webhook = conn.execute(
            f"SELECT count(*) FROM attempts WHERE seen_by = 'webhook' "
            f"AND pk IN ({','.join(map(str, first_token))})"
        ).fetchone()[0]
    assert by_webhook > 0
