"""The money side against the sandbox over real HTTP: the pre-flight reading, the cap as
the sandbox charged it, and the balance reconciled with the ledger, lost answers and
refunds included. Assertions read the sandbox's own account and the database."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from orchestrator.errors import AuthError, BudgetReached, ManifestError
from orchestrator.manifest import read_manifest
from orchestrator.reconcile import Reconciliation
from orchestrator.report import summarize
from orchestrator.sandbox import Faults, SandboxServer
from orchestrator.service import validate_manifest
from orchestrator.store import Store

from ..conftest import jobs, run, scalar, settings_for

pytestmark = pytest.mark.both_databases


def stats(server: SandboxServer) -> dict:  # type: ignore[type-arg]
    """What the sandbox says about itself, over HTTP."""
    return httpx.get(f"{server.url}/_sandbox/stats").json()


@contextmanager
def most_charged(server: SandboxServer) -> Iterator[list[int]]:
    """The most the account had been charged (net of refunds) at any reading, read from
    the sandbox in a thread for as long as the block runs."""
    seen = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.005):
            seen[0] = max(seen[0], server.state.credits_charged)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        done.set()
        thread.join()
        seen[0] = max(seen[0], server.state.credits_charged)


def test_a_wrong_key_costs_exactly_one_request(sandbox, store: Store, tmp_path: Path) -> None:
    """Pre-flight: the one GET /credits is refused and nothing else is sent."""
    server = sandbox()
    store.ingest("b", "m.yaml", jobs(20))
    with pytest.raises(AuthError):
        run(store, settings_for(server, tmp_path / "out", api_key="wrong-key"), ["b"])
    seen = stats(server)
    assert seen["requests"] == {"run": 0, "status": 0, "credits": 1}
    assert seen["rejections"] == {"Unauthorized": 1}
    assert seen["predictions"] == {"total": 0}
    assert store.state_counts(["b"]) == {"queued": 20}


def test_the_cap_is_never_passed_as_the_sandbox_charges(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """A cap of 25 over 60 jobs with failures (refunds) and lost answers (charges the
    client never sees): the sandbox's charge never passes 25; a higher cap finishes."""
    server = sandbox(
        latency={"*": (2.0, 6.0)}, faults=Faults(failure=0.15, lost_answer=0.1), seed=11
    )
    store.ingest("b", "m.yaml", jobs(60))
    settings = settings_for(server, tmp_path / "out", max_credits=25, max_attempts=6)
    with most_charged(server) as seen, pytest.raises(BudgetReached) as stopped:
        run(store, settings, ["b"])
    assert seen[0] <= 25
    assert server.state.credits_charged >= store.credits_total(["b"])
    assert "jobs left" in str(stopped.value)
    assert any(p.lost_answer for p in server.state.predictions())

    with most_charged(server) as seen:
        outcome = run(store, settings_for(server, tmp_path / "out", max_credits=200), ["b"])
    assert outcome.counts == {"completed": 60}
    assert seen[0] <= 200


def test_refunds_show_in_the_balance_and_agree_with_the_ledger(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """Failed predictions are refunded by the sandbox's /credits as in the ledger: the
    two balance readings differ by exactly the recorded spend."""
    server = sandbox(latency={"*": (2.0, 6.0)}, faults=Faults(failure=0.3), seed=2)
    store.ingest(
        "b",
        "m.yaml",
        jobs(30, "tryon-max", model_image="https://x/{i}.png", product_image="https://x/p.png"),
    )
    run(store, settings_for(server, tmp_path / "out", max_attempts=6), ["b"])
    assert any(p.credits == 0 for p in server.state.predictions())  # refunded
    check = summarize(store, ["b"]).balance_check
    assert check is not None
    assert check.balance_before == 10_000
    assert check.balance_after == stats(server)["balance"]
    assert check.charged == server.state.credits_charged == check.recorded == 60
    assert check.sentence() == "the account was charged 60; 60 are recorded: they agree"


def test_lost_answers_make_a_difference_that_is_explained(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """Answers lost after the charge: the balance falls by more than was recorded, the
    difference is what those predictions cost, and status says so in words."""
    server = sandbox(latency={"*": (2.0, 6.0)}, faults=Faults(lost_answer=0.2), seed=7)
    store.ingest("b", "m.yaml", jobs(40))
    run(store, settings_for(server, tmp_path / "out"), ["b"])
    lost = [p for p in server.state.predictions() if p.lost_answer]
    assert lost
    summary = summarize(store, ["b"])
    check = summary.balance_check
    assert isinstance(check, Reconciliation)
    assert check.charged == 10_000 - stats(server)["balance"] == 40 + len(lost)
    assert check.recorded == 40 and check.difference == len(lost)
    assert check.uncertain == summary.uncertain == len(lost)
    assert f"{len(lost)} are likely from {len(lost)} uncertain attempt" in check.sentence()
    as_json = summary.as_dict()["balance_check"]
    assert as_json["difference"] == len(lost) and as_json["summary"] == check.sentence()


def test_validate_estimates_from_the_ledger_and_reads_the_balance(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """After a run, validate prices a model at the rate the ledger recorded; with a key it
    reads the balance with one GET /credits and sends no /run; it queues nothing."""
    server = sandbox(credits=100)
    store.ingest("b", "m.yaml", jobs(3))
    run(store, settings_for(server, tmp_path / "out"), ["b"])
    manifest = tmp_path / "more.csv"
    manifest.write_text(
        "id,model_name,inputs.image,inputs.aspect_ratio,inputs.num_images\n"
        + "".join(f"r-{i},reframe,https://x/{i}.png,1:1,3\n" for i in range(40))
        + "".join(f"bg-{i},background-remove,https://x/{i}.png,,\n" for i in range(10))
    )
    before = stats(server)
    estimate = validate_manifest(
        store.location, manifest, api_key="sandbox", base_url=server.base_url
    )
    after = stats(server)
    assert estimate.by_model == {"background-remove": (10, 10), "reframe": (40, 120)}
    assert estimate.sources == {"background-remove": "ledger", "reframe": "table"}
    assert (estimate.credits, estimate.balance) == (130, 97)
    assert estimate.verdict() == (
        "needs about 130 credits; you have 97: the run would stop after about 74 % of the jobs"
    )
    assert after["requests"]["run"] == before["requests"]["run"]
    assert after["requests"]["credits"] == before["requests"]["credits"] + 1
    assert store.state_counts(None) == {"completed": 3}


def test_validate_against_a_queue_writes_nothing_and_finds_its_clashes(
    store: Store, tmp_path: Path
) -> None:
    """validate on an existing queue: a case twin of a queued id is refused as submit
    would, and a valid manifest with a local photo adds no job, no batch, no blob."""
    store.ingest("b", "m.yaml", jobs(2))
    photo = tmp_path / "photo.png"  # large enough to be stored as a blob when queued
    photo.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4096))
    twin = tmp_path / "twin.yaml"
    twin.write_text(
        "batch: b\njobs:\n  - id: JOB-0\n    model_name: background-remove\n"
        "    inputs: {image: https://x/a.png}\n"
    )
    with pytest.raises(ManifestError, match="JOB-0"):
        validate_manifest(store.location, twin)
    fine = tmp_path / "fine.yaml"
    fine.write_text(
        f"batch: b\njobs:\n  - id: new\n    model_name: background-remove\n"
        f"    inputs: {{image: {photo}}}\n"
    )
    before = {t: count(store, t) for t in ("jobs", "batches", "blobs", "events")}
    estimate = validate_manifest(store.location, fine)
    assert estimate.jobs == 1
    assert {t: count(store, t) for t in before} == before
    store.ingest("b", str(fine), read_manifest(fine).jobs())  # what submit would store
    assert count(store, "blobs") == before["blobs"] + 1


def count(store: Store, table: str) -> int:
    return int(scalar(store, f"SELECT count(*) FROM {table}"))
