"""Retrying failed jobs: a job whose prediction completed is downloaded again, never
bought again, while its output URLs are valid; outputs belong to one attempt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.models import JobState
from orchestrator.report import job_reports
from orchestrator.sandbox import Faults
from orchestrator.store import Store

from ..conftest import jobs, run, settings_for
from .test_engine import assert_outputs_match

pytestmark = pytest.mark.both_databases


def _cdn_down(server, down: bool) -> None:  # type: ignore[no-untyped-def]
    faults = Faults(http_500={"cdn": 1.0}) if down else Faults()
    server.state.config = replace(server.state.config, faults=faults)


def test_retry_failed_downloads_again_and_never_buys_again(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """The CDN fails for a whole run, then works: retrying the failed jobs sends no
    /run, completes every job, and each report lists only its current outputs."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(5))
    settings = replace(settings_for(server, tmp_path / "out"), download_tries=2)
    _cdn_down(server, True)
    first = run(store, settings, ["b"])
    assert first.counts == {"failed": 5}
    assert len(server.state.predictions()) == 5

    _cdn_down(server, False)
    assert store.retry_failed(["b"], url_ttl=Settings.output_url_ttl).total == 5
    second = run(reopen(), settings, ["b"])
    assert second.counts == {"completed": 5}
    assert len(server.state.predictions()) == 5  # nothing bought twice
    assert_outputs_match(store, server)
    for job in job_reports(store, ["b"]):
        assert len(job["outputs"]) == 1, job


def test_retry_failed_buys_again_when_the_prediction_failed(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A job whose prediction failed for good gets a new prediction on retry."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(1, image="https://x/{i}.png?sandbox:fail=PoseError:1"))
    settings = settings_for(server, tmp_path / "out")
    assert run(store, settings, ["b"]).counts == {"failed": 1}
    assert store.retry_failed(["b"], url_ttl=Settings.output_url_ttl).total == 1
    assert run(reopen(), settings, ["b"]).counts == {"completed": 1}
    assert len(server.state.predictions()) == 2


def test_replaced_job_reports_only_the_new_outputs(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """--replace: the old attempt's outputs are not reported for the new inputs."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(1))
    settings = settings_for(server, tmp_path / "out")
    assert run(store, settings, ["b"]).counts == {"completed": 1}
    changed = [replace(jobs(1)[0], inputs={"image": "https://cdn.example/other.png"})]
    store.ingest("b", "m.yaml", changed, replace=True)
    (job,) = job_reports(store, ["b"])
    assert job["state"] == JobState.QUEUED and job["outputs"] == []
    assert run(reopen(), settings, ["b"]).counts == {"completed": 1}
    (job,) = job_reports(store, ["b"])
    (output,) = job["outputs"]
    newest = job["attempts"][-1]["prediction_id"]
    assert Path(output["path"]).read_bytes() == server.state.output_bytes(newest, 0)
