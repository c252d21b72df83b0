"""Batch commands and run accounting in virtual time against the in-memory FASHN:
jobs canceled during a run are never sent, 429s and retries are counted for the
progress display, and a job that fails for good gets exactly one log line."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from orchestrator.logs import FIELDS
from orchestrator.models import JobSpec, JobState, Location, Progress
from orchestrator.sandbox import Faults, Limits
from orchestrator.store import Store

from .test_scheduler import World, jobs


def test_jobs_canceled_during_a_run_are_never_sent(tmp_path: Path) -> None:
    """A second connection cancels the batch mid-run: its queued jobs never reach the
    server, the predictions in flight finish and are saved, and the run succeeds."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)})
    specs = jobs(60)
    world.store.ingest("b", "m.yaml", specs)
    other = Store(world.path, durable=False, clock=world.clock)
    canceled: list[int] = []

    def on_progress(p: Progress) -> None:
        if not canceled and p.counts.get(JobState.COMPLETED, 0) >= 10:
            canceled.append(other.batches.cancel("b").canceled)

    outcome = world.run(world.engine(on_progress=on_progress, progress_every=1.0))
    assert canceled and canceled[0] > 0
    assert outcome.counts == {"completed": 60 - canceled[0], "canceled": canceled[0]}
    assert outcome.succeeded
    runs = world.fashn.state.runs_by_fingerprint()
    states = {j["job"]["job_id"]: j["job"]["state"] for j in world.store.iter_report(["b"])}
    for spec in specs:
        sent = runs.get(spec.fingerprint, 0)
        assert sent == (0 if states[spec.id] == JobState.CANCELED else 1), spec.id


def test_429s_and_retries_are_counted_in_the_progress(tmp_path: Path) -> None:
    """A server with 2 slots answers 429 ConcurrencyLimitExceeded, a flaky job fails
    once: the last snapshot counts every 429 the server sent and the one retry."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, limits=Limits(concurrency=2))
    specs = jobs(12) + jobs(1, "flaky", "?sandbox:fail=PipelineError:1")
    world.store.ingest("b", "m.yaml", specs)
    snapshots: list[Progress] = []
    outcome = world.run(world.engine(on_progress=snapshots.append))
    assert outcome.counts == {"completed": 13}
    refused = world.fashn.state.rejections.get("ConcurrencyLimitExceeded", 0)
    assert refused > 0
    assert snapshots[-1].rate_limited == refused
    assert snapshots[-1].retries == 1


def _failure_records(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [getattr(r, FIELDS) for r in caplog.records if hasattr(r, FIELDS)]


def test_each_failed_job_gets_one_log_line_with_its_origin(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused /run, a permanent prediction failure and a retryable one that fails
    every attempt: one failure line each (batch, job, manifest, model, error), none
    for the job that completed."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)})
    specs = [
        *jobs(1, "ok"),
        *jobs(1, "pose", "?sandbox:fail=PoseError"),
        *jobs(1, "late", "?sandbox:fail=PipelineError"),
        JobSpec("bad", "no-such-model", {"image": "x"}, location=Location("m.yaml", 9)),
    ]
    world.store.ingest("b", "m.yaml", specs)
    with caplog.at_level(logging.INFO, logger="orchestrator"):
        outcome = world.run()
    assert outcome.counts == {"completed": 1, "failed": 3}
    records = sorted(_failure_records(caplog), key=lambda f: str(f["job"]))
    assert [(f["batch"], f["job"], f["manifest"], f["line"], f["model"]) for f in records] == [
        ("b", "bad", "m.yaml", 9, "no-such-model"),
        ("b", "late-0", "m.yaml", 2, "background-remove"),
        ("b", "pose-0", "m.yaml", 2, "background-remove"),
    ]
    assert "400 BadRequest" in str(records[0]["error"])
    assert str(records[1]["error"]).startswith("PipelineError")
    assert str(records[2]["error"]).startswith("PoseError")
    line = next(r for r in caplog.records if hasattr(r, FIELDS) and "pose-0" in r.getMessage())
    assert "batch b, job pose-0 (m.yaml:2), model background-remove: PoseError" in line.getMessage()


def test_a_download_that_fails_for_good_gets_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The outputs cannot be fetched: one failure line per job, naming the output."""
    world = World(tmp_path, latency={"*": (4.0, 12.0)}, faults=Faults(http_500={"cdn": 1.0}))
    world.store.ingest("b", "m.yaml", jobs(2))
    with caplog.at_level(logging.INFO, logger="orchestrator"):
        outcome = world.run(world.engine(world.settings(download_tries=2)))
    assert outcome.counts == {"failed": 2}
    records = _failure_records(caplog)
    assert sorted(str(f["job"]) for f in records) == ["job-0", "job-1"]
    assert all(str(f["error"]).startswith("output 0 not saved") for f in records)
