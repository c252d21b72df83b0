"""The scheduler in virtual time against the in-memory FASHN: FASHN's real limits
and lifecycles (unscaled: minutes of API time take milliseconds), asserted on what
the server saw. No sockets, no sleeps."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from orchestrator.config import Settings
from orchestrator.engine import Engine, RunOutcome
from orchestrator.errors import AuthError, Interrupted, OutOfCredits
from orchestrator.models import JobSpec, Location
from orchestrator.sandbox import Faults, Limits, SandboxConfig
from orchestrator.store import Store
from orchestrator.testing import BASE_URL, InMemoryFashn, VirtualClock, inline, run_in_virtual_time


class World:
    """One account on the in-memory FASHN, one queue, one virtual clock."""

    def __init__(self, tmp_path: Path, **config: Any):
        self.clock = VirtualClock()
        self.fashn = InMemoryFashn(SandboxConfig(**config), self.clock)
        self.path = tmp_path / "q.db"
        self.out = tmp_path / "out"
        self.store = self.open_store()

    def open_store(self) -> Store:
        return Store(self.path, durable=False, clock=self.clock)

    def settings(self, **overrides: Any) -> Settings:
        overrides.setdefault("api_key", self.fashn.state.config.api_key)
        return Settings(out_dir=self.out, base_url=BASE_URL, **overrides)

    def engine(self, settings: Settings | None = None, **kwargs: Any) -> Engine:
        return Engine(
            self.store,
            settings or self.settings(),
            clock=self.clock,
            transport=self.fashn,
            blocking=inline,
            rng=random.Random(0),
            **kwargs,
        )

    def run(self, engine: Engine | None = None) -> RunOutcome:
        return run_in_virtual_time((engine or self.engine()).run, clock=self.clock)


def jobs(n: int, prefix: str = "job", query: str = "") -> list[JobSpec]:
    return [
        JobSpec(
            f"{prefix}-{i}",
            "background-remove",
            {"image": f"https://cdn.example/{prefix}/{i}.png{query}"},
            location=Location("m.yaml", i + 2),
        )
        for i in range(n)
    ]


@pytest.fixture
def world(tmp_path: Path) -> World:
    return World(tmp_path, latency={"*": (4.0, 12.0)})


def test_fashn_limits_hold_as_the_server_counts_them(world: World) -> None:
    """300 jobs: never more than 50 /run in any 60 s, 50 /status in any 10 s, 6 in
    flight, as the server saw them; nothing refused, nothing predicted twice."""
    world.store.ingest("b", "m.yaml", jobs(300))
    outcome = world.run()
    state = world.fashn.state
    assert outcome.counts == {"completed": 300}
    assert state.max_in_window("run") <= 50
    assert state.max_in_window("status") <= 50
    assert state.max_in_flight() == 6
    assert state.rejections == {}
    assert set(state.runs_by_fingerprint().values()) == {1}
    assert outcome.credits == state.credits_charged == 300


@pytest.mark.parametrize(
    ("limits", "refusal"),
    [
        (Limits(run=(10, 60.0)), "RateLimitExceeded"),
        (Limits(concurrency=2), "ConcurrencyLimitExceeded"),
    ],
)
def test_a_stricter_server_is_waited_out(tmp_path: Path, limits: Limits, refusal: str) -> None:
    """429 of either kind: waited out and resent, no job fails, none predicted twice."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, limits=limits)
    world.store.ingest("b", "m.yaml", jobs(30))
    outcome = world.run()
    assert outcome.counts == {"completed": 30}
    assert world.fashn.state.rejections.get(refusal, 0) > 0
    assert set(world.fashn.state.runs_by_fingerprint().values()) == {1}
    assert world.store.uncertain_count(["b"]) == 0


def test_out_of_credits_finishes_what_is_in_flight(tmp_path: Path) -> None:
    """The balance runs out: no more submissions, the paid predictions are saved."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, credits=10)
    world.store.ingest("b", "m.yaml", jobs(20))
    with pytest.raises(OutOfCredits):
        world.run()
    counts = world.store.state_counts(["b"])
    assert counts == {"completed": 10, "queued": 10}


def test_a_wrong_key_stops_the_run(world: World) -> None:
    """401: the run stops with AuthError; no job is failed, every one waits."""
    world.store.ingest("b", "m.yaml", jobs(10))
    with pytest.raises(AuthError):
        world.run(world.engine(world.settings(api_key="wrong")))
    assert world.store.state_counts(["b"]) == {"queued": 10}
    assert world.fashn.state.predictions() == []


def test_lost_answers_make_uncertain_attempts_and_nothing_else(tmp_path: Path) -> None:
    """/run answers lost after the charge: the jobs are sent again and only those
    attempts are uncertain; every job completes."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, faults=Faults(lost_answer=0.2), seed=3)
    world.store.ingest("b", "m.yaml", jobs(40))
    outcome = world.run()
    assert outcome.counts == {"completed": 40}
    lost = world.fashn.state.faults_injected.get("lost_answer", 0)
    assert lost > 0
    assert outcome.uncertain == lost
    assert sum(world.fashn.state.runs_by_fingerprint().values()) == 40 + lost


def test_interrupted_then_resumed_without_spinning(world: World) -> None:
    """Stopped with predictions in flight, then resumed: the resumed run polls what
    was in flight (never resubmits it), and its poller wakes no more per status
    request than a fresh run's does."""
    world.store.ingest("b", "m.yaml", jobs(60))
    first = world.engine(
        on_progress=lambda p: p.counts.get("completed", 0) >= 20 and first.request_stop(),
        progress_every=1.0,
    )
    with pytest.raises(Interrupted):
        world.run(first)
    assert world.store.state_counts(["b"]).get("running", 0) > 0
    statuses_before = len(world.fashn.state.arrivals("status"))

    world.store = world.open_store()
    resumed = world.engine()
    assert world.run(resumed).counts == {"completed": 60}
    assert set(world.fashn.state.runs_by_fingerprint().values()) == {1}
    assert resumed.poller is not None and first.poller is not None
    resumed_statuses = len(world.fashn.state.arrivals("status")) - statuses_before
    per_request_resumed = resumed.poller.wakeups / resumed_statuses
    per_request_first = first.poller.wakeups / statuses_before
    assert per_request_resumed <= 1.5 * per_request_first + 1


def test_retryable_failures_are_retried_and_permanent_ones_are_not(world: World) -> None:
    """PipelineError once → a second prediction; PoseError → the job fails at once."""
    specs = jobs(1, "flaky", "?sandbox:fail=PipelineError:1") + jobs(
        1, "pose", "?sandbox:fail=PoseError"
    )
    world.store.ingest("b", "m.yaml", specs)
    outcome = world.run()
    assert outcome.counts == {"completed": 1, "failed": 1}
    assert sorted(world.fashn.state.runs_by_fingerprint().values()) == [1, 2]


def test_a_run_counts_the_queue_once_before_its_first_request(world: World) -> None:
    """The first progress line reuses the run's starting count: on a large queue each
    count is a scan, and both would come before the first /run."""
    world.store.ingest("b", "m.yaml", jobs(5))
    scans: list[int] = []
    progress = world.store.progress

    def counted(batches: Any) -> tuple[dict[str, int], int]:
        scans.append(len(world.fashn.state.predictions()))
        return progress(batches)

    world.store.progress = counted  # type: ignore[method-assign]
    seen: list[dict[str, int]] = []
    outcome = world.run(world.engine(on_progress=lambda p: seen.append(dict(p.counts))))
    assert outcome.counts == {"completed": 5}
    assert seen[0] == {"queued": 5}
    assert scans.count(0) == 1  # one count before any prediction was made


def test_a_run_reads_no_row_of_the_queue_it_does_not_send_before_its_first_request(
    world: World,
) -> None:
    """Every statement from the start of a run to its first /run reads `jobs` through
    an index (SQLite's own plan says so): on a million-job queue, a scan of its rows
    would cost seconds before anything is sent."""
    world.store.ingest("b", "m.yaml", jobs(50))
    world.store.ingest("c", "m.yaml", jobs(5, prefix="other"))
    before_first: list[tuple[str, Any]] = []
    made = [0]  # predictions made before this run

    def record(_conn: Any, _cursor: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        if len(world.fashn.state.predictions()) == made[0] and not many:
            before_first.append((sql, params))

    event.listen(world.store.engine, "before_cursor_execute", record)
    for batches in (["c"], None):  # one batch named (its own index), then every batch
        before_first.clear()
        made[0] = len(world.fashn.state.predictions())
        world.run(world.engine(batches=batches, on_progress=lambda _p: None))
        assert any(sql.startswith("INSERT INTO attempts") for sql, _ in before_first)
        with sqlite3.connect(world.path) as conn:
            plans = {
                sql: [row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
                for sql, params in before_first
                if " jobs" in sql
            }
        scans = {
            sql: steps
            for sql, steps in plans.items()
            if any(s.startswith("SCAN jobs") and "COVERING INDEX" not in s for s in steps)
        }
        assert scans == {}
        assert len(plans) >= 4  # recovery, the count, the claim, the job's start


def test_each_output_is_saved_in_one_trip_to_a_worker_thread(world: World) -> None:
    """The partial files a killed writer left are removed in the same worker-thread
    call that writes the job's first output: one call per output, none left over."""
    world.store.ingest("b", "m.yaml", jobs(8))
    planted = []
    for i in range(0, 8, 2):
        folder = world.out / "b" / f"job-{i}"
        folder.mkdir(parents=True)
        planted.append(folder / ".0.png.k1ll3d00.part")
        planted[-1].write_bytes(b"half a file")
    calls: list[str] = []

    async def counted(func: Any, *args: Any) -> Any:
        calls.append(func.__name__)
        return await inline(func, *args)

    engine = Engine(
        world.store,
        world.settings(),
        clock=world.clock,
        transport=world.fashn,
        blocking=counted,
        rng=random.Random(0),
    )
    outcome = world.run(engine)
    assert outcome.counts == {"completed": 8}
    assert len(calls) == 8, calls
    assert not any(p.exists() for p in planted)
    assert len([p for p in world.out.rglob("*") if p.is_file()]) == 8
    assert list(world.out.rglob("*.part")) == []


@pytest.mark.parametrize(
    ("limits", "statements", "transactions"),
    [({"run_limit": None, "status_limit": None}, 13, 5), ({}, 17, 7)],
    ids=["unlimited", "limited"],
)
def test_what_a_job_costs_the_database(
    tmp_path: Path, limits: dict[str, Any], statements: int, transactions: int
) -> None:
    """The statements and transactions (at most) of each job of a plain run (one output,
    completed at its first poll): the claim (select, start, attempt), the accepted
    /run (attempt, ledger, charge), the completion (attempt, job, output), the job's
    name (its own read), the save (output, count, job). With rate limits (the
    defaults), each /run and /status is also logged as sent and as answered (their
    own transactions for /status). Counted as the difference between a run of 30 jobs
    and one of 10, so that what a run does once (recovery, counts) cancels out."""
    world = World(tmp_path, latency={"*": (0.0, 0.0)})
    ran: list[str] = []
    commits: list[int] = []
    event.listen(world.store.engine, "before_cursor_execute", lambda *a: ran.append(a[2]))
    event.listen(world.store.engine, "commit", lambda *a: commits.append(1))
    counted = {}
    for batch, n in (("small", 10), ("large", 30)):
        world.store.ingest(batch, "m.yaml", jobs(n, prefix=batch))
        ran.clear()
        commits.clear()
        engine = world.engine(world.settings(**limits), batches=[batch])
        assert world.run(engine).counts == {"completed": n}
        counted[n] = (len(ran), len(commits))
    (small_ran, small_commits), (large_ran, large_commits) = counted[10], counted[30]
    # At most: a run's own reads (the queue looked at when it waits) vary a little.
    assert (large_ran - small_ran) / 20 <= statements
    assert (large_commits - small_commits) / 20 <= transactions
