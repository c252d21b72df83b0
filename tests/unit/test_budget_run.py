"""The credit cap, the pre-flight balance and the end-of-run reconciliation in virtual
time against the in-memory FASHN: what the account was charged is read from the
server after every request, never from the client's own figures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator.errors import AuthError, BudgetReached
from orchestrator.models import JobSpec, Location
from orchestrator.reconcile import Reconciliation
from orchestrator.sandbox import Faults, Limits, SandboxConfig
from orchestrator.testing import InMemoryFashn, VirtualClock

from .test_scheduler import World, jobs


class WatchedFashn(InMemoryFashn):
    """The in-memory FASHN, noting the most the account had been charged (net of
    refunds) after each request it answered."""

    def __init__(self, config: SandboxConfig, clock: VirtualClock):
        super().__init__(config, clock)
        self.most_charged = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        self.most_charged = max(self.most_charged, self.state.credits_charged)
        return response


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, latency={"*": (4.0, 12.0)})


def watched_world(tmp_path: Path, **config: Any) -> World:
    world = World(tmp_path, **config)
    world.fashn = WatchedFashn(SandboxConfig(**config), world.clock)
    return world


def tryons(n: int, images: int = 2) -> list[JobSpec]:
    """`n` try-ons of `images` outputs each: 2 credits per output."""
    return [
        JobSpec(
            f"look-{i}",
            "tryon-max",
            {
                "model_image": f"https://cdn.example/m/{i}.png",
                "product_image": "https://cdn.example/p.png",
                "num_images": images,
            },
            location=Location("m.yaml", i + 2),
        )
        for i in range(n)
    ]


def test_the_cap_holds_and_a_higher_cap_continues(tmp_path: Path) -> None:
    """40 one-credit jobs under a cap of 15: the account is never charged more than 15,
    exit with what was spent and what is left; a higher cap then finishes the batch."""
    world = watched_world(tmp_path, latency={"*": (4.0, 12.0)})
    world.store.ingest("b", "m.yaml", jobs(40))
    with pytest.raises(BudgetReached) as stopped:
        world.run(world.engine(world.settings(max_credits=15)))
    assert str(stopped.value).startswith("spent 15 of 15; 25 jobs left (about 25 credits)")
    assert world.fashn.most_charged == world.fashn.state.credits_charged == 15
    assert world.store.state_counts(["b"]) == {"completed": 15, "queued": 25}

    outcome = world.run(world.engine(world.settings(max_credits=100)))
    assert outcome.counts == {"completed": 40}
    assert world.fashn.state.credits_charged == 40
    assert set(world.fashn.state.runs_by_fingerprint().values()) == {1}


def test_a_cap_below_the_concurrency_starts_no_more_than_it_pays_for(tmp_path: Path) -> None:
    """A cap of 9 with 4-credit try-ons: two start, the third would pass it (and the
    six slots do not matter)."""
    world = watched_world(tmp_path, latency={"*": (20.0, 45.0)})
    world.store.ingest("b", "m.yaml", tryons(10))
    with pytest.raises(BudgetReached) as stopped:
        world.run(world.engine(world.settings(max_credits=9)))
    assert str(stopped.value).startswith("spent 8 of 9; 8 jobs left (about 32 credits)")
    assert world.fashn.most_charged == 8
    assert world.fashn.state.max_in_flight() == 2


def test_refunds_make_room_under_the_cap(tmp_path: Path) -> None:
    """Failed predictions are refunded: the cap counts what is spent net of refunds, and
    is never passed as the account charges, refunds or not."""
    world = watched_world(tmp_path, latency={"*": (4.0, 12.0)}, faults=Faults(failure=0.3))
    world.store.ingest("b", "m.yaml", jobs(40))
    with pytest.raises(BudgetReached):
        world.run(world.engine(world.settings(max_credits=20, max_attempts=5)))
    state = world.fashn.state
    refunded = [p for p in state.predictions() if p.credits == 0]
    assert refunded  # some predictions failed and were refunded
    assert world.fashn.most_charged <= 20
    # Predictions in flight when submitting stopped may fail later: spent can end below.
    assert state.credits_charged == world.store.credits_total(["b"]) <= 20
    # More predictions were accepted than the cap alone would pay for.
    assert len(state.predictions()) > 20


def test_lost_answers_count_as_charged_under_the_cap(tmp_path: Path) -> None:
    """/run answers lost after the charge: the client cannot record them, so it counts
    each as charged, and the account is still never charged more than the cap."""
    world = watched_world(
        tmp_path, latency={"*": (4.0, 12.0)}, faults=Faults(lost_answer=0.25), seed=3
    )
    world.store.ingest("b", "m.yaml", jobs(60))
    with pytest.raises(BudgetReached) as stopped:
        world.run(world.engine(world.settings(max_credits=30)))
    lost = [p for p in world.fashn.state.predictions() if p.lost_answer]
    assert lost
    assert world.fashn.most_charged <= 30
    assert world.store.uncertain_count(["b"]) == len(lost)
    assert "may have been charged for attempts whose answer was lost" in str(stopped.value)


def test_no_cap_counts_nothing(world: World) -> None:
    """Without --max-credits the run has no budget at all, and runs every job."""
    world.store.ingest("b", "m.yaml", jobs(12))
    engine = world.engine()
    outcome = world.run(engine)
    assert engine.budget is None
    assert outcome.counts == {"completed": 12}


def test_a_wrong_key_costs_one_credits_request(world: World) -> None:
    """Pre-flight: a wrong key stops the run after one GET /credits, before any /run."""
    world.store.ingest("b", "m.yaml", jobs(10))
    with pytest.raises(AuthError):
        world.run(world.engine(world.settings(api_key="wrong")))
    stats = world.fashn.state.stats()
    assert stats["requests"] == {"run": 0, "status": 0, "credits": 1}
    assert world.fashn.requests == 1
    assert world.store.state_counts(["b"]) == {"queued": 10}


def test_the_balance_is_read_before_and_after_and_reconciled(tmp_path: Path) -> None:
    """Two readings per run; their difference is what the ledger recorded, exactly,
    when no answer was lost; a 429 on the second reading is waited out."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, limits=Limits(credits=(1, 600.0)))
    world.store.ingest("b", "m.yaml", jobs(20) + tryons(5))
    world.run()
    check = world.store.spend.latest_check(["b"])
    assert check is not None
    result = Reconciliation.from_row(check)
    assert (result.balance_before, result.balance_after) == (10_000, 10_000 - 40)
    assert result.recorded == result.charged == world.fashn.state.credits_charged == 40
    assert result.sentence() == "the account was charged 40; 40 are recorded: they agree"
    assert world.fashn.state.rejections == {"RateLimitExceeded": 1}
    assert world.fashn.state.stats()["requests"]["credits"] == 3


def test_lost_answers_explain_the_difference(tmp_path: Path) -> None:
    """Answers lost after the charge: the balance fell by more than was recorded, by
    exactly what those predictions cost, and the words blame the uncertain attempts."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, faults=Faults(lost_answer=0.2), seed=5)
    world.store.ingest("b", "m.yaml", jobs(40))
    world.run()
    state = world.fashn.state
    lost = [p for p in state.predictions() if p.lost_answer]
    check = world.store.spend.latest_check(["b"])
    assert check is not None and lost
    result = Reconciliation.from_row(check)
    assert result.charged == state.credits_charged == 40 + len(lost)
    assert result.recorded == world.store.credits_total(["b"]) == 40
    assert result.difference == sum(p.credits for p in lost)
    assert result.uncertain == len(lost)
    assert result.explained
    assert result.sentence().endswith(
        f"{len(lost)} are likely from {len(lost)} uncertain attempt{'s' * (len(lost) > 1)}"
    )
