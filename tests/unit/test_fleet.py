"""The fleet's decisions as tables, and leases on a virtual clock."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from orchestrator.accounts import key_variable
from orchestrator.config import RateLimit
from orchestrator.fleet.decisions import (
    AccountLimits,
    burst_done,
    heartbeat_every,
    lease_expired,
    limits_conflict,
    window_ready_at,
)
from orchestrator.models import JobSpec, JobState
from orchestrator.store import Gate, Store
from orchestrator.testing import VirtualClock

W = RateLimit(3, 10.0)


@pytest.mark.parametrize(
    ("limit", "now", "answered", "outstanding", "paused", "expected"),
    [
        (None, 5.0, [1.0, 2.0, 3.0, 4.0], 9, 0.0, 5.0),  # no limit: now
        (None, 5.0, [], 0, 7.0, 7.0),  # no limit, but the server said wait
        (W, 100.0, [], 0, 0.0, 100.0),  # empty window
        (W, 100.0, [95.0, 96.0], 0, 0.0, 100.0),  # room for one more
        (W, 100.0, [95.0, 96.0, 97.0], 0, 0.0, 105.0),  # full: the oldest leaves at 105
        (W, 100.0, [95.0, 96.0], 1, 0.0, 105.0),  # one on the wire takes the last place
        (W, 100.0, [95.0], 2, 0.0, 105.0),
        (W, 100.0, [], 3, 0.0, math.inf),  # all unanswered: not before an answer
        (W, 100.0, [89.0, 90.0, 95.0], 0, 0.0, 100.0),  # 89 and 90 left the window
        (W, 100.0, [], 0, 103.0, 103.0),  # paused by a Retry-After
        (W, 100.0, [96.0, 97.0, 98.0], 0, 103.0, 106.0),  # both: the later wins
    ],
)
def test_window_ready_at(limit, now, answered, outstanding, paused, expected) -> None:  # type: ignore[no-untyped-def]
    """A request goes when fewer than N of the account's requests hold the window."""
    assert window_ready_at(limit, now, answered, outstanding, paused) == expected


@pytest.mark.parametrize(
    ("heartbeat_at", "lease", "now", "expired"),
    [(100.0, 30.0, 129.0, False), (100.0, 30.0, 130.0, False), (100.0, 30.0, 130.5, True)],
)
def test_lease_expired(heartbeat_at: float, lease: float, now: float, expired: bool) -> None:
    """A worker silent for longer than its lease is dead; at the lease exactly, not yet."""
    assert lease_expired(heartbeat_at, lease, now) is expired
    assert heartbeat_every(lease) == lease / 3


@pytest.mark.parametrize(
    ("waiting", "held_elsewhere", "busy", "done"),
    [(0, 0, False, True), (1, 0, False, False), (0, 2, False, False), (0, 0, True, False)],
)
def test_burst_done(waiting: int, held_elsewhere: int, busy: bool, done: bool) -> None:
    """A burst worker waits for jobs another worker holds: that worker may die."""
    assert burst_done(waiting, held_elsewhere, busy) is done


def test_limits_conflict_names_the_fleets_limits() -> None:
    """Different limits for an account are refused with the ones to use."""
    fleet = AccountLimits(6, RateLimit(50, 60), RateLimit(50, 10))
    assert (
        limits_conflict("a", fleet, AccountLimits(6, RateLimit(50, 60), RateLimit(50, 10))) is None
    )
    problem = limits_conflict("a", fleet, AccountLimits(6, RateLimit(60, 60), RateLimit(50, 10)))
    assert problem is not None and "--run-limit 50/60" in problem


@pytest.mark.parametrize(
    ("account", "variable"),
    [
        ("default", "FASHN_API_KEY"),
        ("acme", "FASHN_API_KEY_ACME"),
        ("big-co", "FASHN_API_KEY_BIG_CO"),
    ],
)
def test_key_variable(account: str, variable: str) -> None:
    """Each account's key has its own environment variable."""
    assert key_variable(account) == variable


def _store_with_job(tmp_path: Path, clock: VirtualClock) -> Store:
    store = Store(tmp_path / "q.db", clock=clock)
    store.ingest("b", "m.yaml", [JobSpec("j1", "background-remove", {"image": "https://x/1.png"})])
    return store


def test_lease_expiry_hands_a_prediction_in_flight_to_another_worker(tmp_path: Path) -> None:
    """A killed worker's prediction is polled by the next, never sent again."""
    clock = VirtualClock()
    store = _store_with_job(tmp_path, clock)
    limits = AccountLimits(6, RateLimit(50, 60), RateLimit(50, 10))
    store.fleet.record_limits("default", limits, others_live=False)
    store.fleet.register("a", 30.0)
    store.fleet.register("b", 30.0)
    claimed = store.claim_next(None, gate=Gate("default", 6, "a"))
    assert claimed is not None
    store.record_accepted(claimed, "pred-1", 1, 0)
    clock.advance(20.0)
    assert store.fleet.renew("b") and store.fleet.expire() == []
    assert store.fleet.take_over("b", "default").flights == []  # a still lives
    clock.advance(11.0)  # a silent for 31 s: dead
    assert store.fleet.expire() == ["a"]
    taken = store.fleet.take_over("b", "default")
    assert [f.prediction_id for f in taken.flights] == ["pred-1"] and taken.lost == 0
    assert store.fleet.take_over("b", "default").flights == []  # taken once
    assert not store.fleet.renew("a")  # a restarted process cannot take its lease back


def test_take_over_marks_an_unanswered_run_uncertain(tmp_path: Path) -> None:
    """A `/run` its dead worker sent without an answer is uncertain; its job queued again."""
    clock = VirtualClock()
    store = _store_with_job(tmp_path, clock)
    store.fleet.record_limits("default", AccountLimits(6, None, None), others_live=False)
    store.fleet.register("a", 5.0)
    pk, _ = store.fleet.acquire("default", "run", RateLimit(1, 60.0), "a")
    gate = Gate("default", 6, "a")
    assert pk is not None and store.claim_next(None, log_request=False, gate=gate) is not None
    clock.advance(6.0)
    assert store.fleet.expire() == ["a"]
    # The dead worker's unanswered request now holds the window for one window.
    assert store.fleet.acquire("default", "run", RateLimit(1, 60.0), "b") == (
        None,
        clock.wall() + 60.0,
    )
    taken = store.fleet.take_over("b", "default")
    assert taken.lost == 1 and store.state_counts(None) == {JobState.QUEUED: 1}
    assert store.uncertain_count(None) == 1


def test_gate_refuses_a_claim_when_the_fleet_fills_the_slots(tmp_path: Path) -> None:
    """The account's slots count every worker's jobs, not one worker's."""
    store = Store(tmp_path / "q.db")
    specs = [
        JobSpec(f"j{i}", "background-remove", {"image": f"https://x/{i}.png"}) for i in range(3)
    ]
    store.ingest("b", "m.yaml", specs)
    store.fleet.record_limits("default", AccountLimits(2, None, None), others_live=False)
    assert store.claim_next(None, gate=Gate("default", 2, "a")) is not None
    assert store.claim_next(None, gate=Gate("default", 2, "b")) is not None
    gate = Gate("default", 2, "c")
    assert store.claim_next(None, gate=gate) is None and gate.full


def test_manifests_name_each_jobs_account(tmp_path: Path) -> None:
    """YAML (defaults too), CSV and JSON Lines give a job's account; the queue keeps it."""
    from orchestrator.manifest import read_manifest

    (tmp_path / "a.yaml").write_text(
        "defaults: {model_name: background-remove, account: acme}\njobs:\n"
        "  - {id: y1, inputs: {image: 'https://x/1.png'}}\n"
        "  - {id: y2, account: default, inputs: {image: 'https://x/2.png'}}\n"
    )
    (tmp_path / "b.csv").write_text(
        "id,model_name,account,inputs.image\nc1,background-remove,big-co,https://x/3.png\n"
        "c2,background-remove,,https://x/4.png\n"
    )
    (tmp_path / "c.jsonl").write_text(
        '{"id": "l1", "model_name": "background-remove", "account": "acme",'
        ' "inputs": {"image": "https://x/5.png"}}\n'
    )
    store = Store(tmp_path / "q.db")
    for name in ("a.yaml", "b.csv", "c.jsonl"):
        store.ingest(name[0], name, read_manifest(tmp_path / name).entries())
    with store.engine.connect() as conn:
        rows = dict(conn.exec_driver_sql("SELECT job_id, account FROM jobs").fetchall())
    assert rows == {"y1": "acme", "y2": "default", "c1": "big-co", "c2": "default", "l1": "acme"}
    assert store.fleet.accounts(None) == ["acme", "big-co", "default"]


def test_a_bad_account_name_is_a_manifest_problem(tmp_path: Path) -> None:
    """An account that cannot name an environment variable is refused, with its line."""
    from orchestrator.errors import ManifestError
    from orchestrator.manifest import read_manifest

    (tmp_path / "c.jsonl").write_text(
        '{"model_name": "background-remove", "account": "a b", "inputs": {"image": "https://x/1.png"}}\n'
    )
    with pytest.raises(ManifestError, match="account"):
        Store(tmp_path / "q.db").ingest(
            "c", "c.jsonl", read_manifest(tmp_path / "c.jsonl").entries()
        )


def test_an_answer_time_is_written_with_the_workers_next_place(tmp_path: Path) -> None:
    """Until a worker writes an answer time, the others count its request as unanswered
    (their window held longer, never shorter); the worker itself counts the answer."""
    clock = VirtualClock()
    store = _store_with_job(tmp_path, clock)
    other = Store(tmp_path / "q.db", clock=clock)
    store.fleet.record_limits("default", AccountLimits(6, None, None), others_live=False)
    limit = RateLimit(1, 10.0)
    pk, _ = store.fleet.acquire("default", "status", limit, "a")
    assert pk is not None
    clock.advance(1.0)
    store.fleet.answered(pk)
    answered_at = clock.wall()
    assert other.fleet.acquire("default", "status", limit, "b") == (None, math.inf)
    assert store.fleet.acquire("default", "status", limit, "a") == (None, answered_at + 10.0)
    clock.advance(10.5)
    assert store.fleet.acquire("default", "status", limit, "a")[0] is not None
    # Written with that place: the other worker now sees the first request answered.
    assert other.fleet.acquire("default", "status", limit, "b") == (None, math.inf)
    assert other.fleet.slots_used("default") == 0
    other.close()
