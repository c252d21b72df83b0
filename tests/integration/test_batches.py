"""Batch commands against the sandbox over HTTP and a real SQLite file: retry with its
filters (a completed prediction is downloaded again, never bought again), cancel
(also racing a claim from another connection), and the list of batches."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator import batches
from orchestrator.errors import UsageError
from orchestrator.models import JobState
from orchestrator.sandbox import Faults
from orchestrator.store import Store, queue

from ..conftest import jobs, run, settings_for
from .test_engine import assert_outputs_match

pytestmark = pytest.mark.both_databases


def _cdn_down(server, down: bool) -> None:  # type: ignore[no-untyped-def]
    faults = Faults(http_500={"cdn": 1.0}) if down else Faults()
    server.state.config = replace(server.state.config, faults=faults)


def test_retry_after_a_download_failed_for_good_only_downloads_again(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """Every download fails for good; `retry` queues the jobs for download only: the
    second run sends no /run at all, and the saved files are what the sandbox made."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(4))
    settings = replace(settings_for(server, tmp_path / "out"), download_tries=2)
    _cdn_down(server, True)
    assert run(store, settings, ["b"]).counts == {"failed": 4}
    runs_before = len(server.state.arrivals("run"))

    _cdn_down(server, False)
    retried = batches.retry(store, "b", url_ttl=settings.output_url_ttl)
    assert (retried.requeued.downloads, retried.requeued.predictions) == (4, 0)
    assert run(reopen(), settings, ["b"]).counts == {"completed": 4}
    assert len(server.state.arrivals("run")) == runs_before == 4
    assert_outputs_match(store, server)


def test_retry_after_the_urls_expired_predicts_again(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A failed download whose URLs may have expired is predicted again."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(1))
    settings = replace(settings_for(server, tmp_path / "out"), download_tries=1)
    _cdn_down(server, True)
    assert run(store, settings, ["b"]).counts == {"failed": 1}
    _cdn_down(server, False)
    retried = batches.retry(store, "b", url_ttl=0.0)
    assert (retried.requeued.downloads, retried.requeued.predictions) == (0, 1)
    assert run(reopen(), settings, ["b"]).counts == {"completed": 1}
    assert len(server.state.arrivals("run")) == 2


def test_retry_skips_permanent_failures_unless_error_names_them(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """PoseError is left alone (and said so) until --error names it; --job narrows it
    to the jobs named; a PipelineError that used up its attempts runs again."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    specs = jobs(2, prefix="pose", image="https://x/{i}.png?sandbox:fail=PoseError")
    specs += jobs(1, prefix="flaky", image="https://x/f{i}.png?sandbox:fail=PipelineError:3")
    store.ingest("b", "m.yaml", specs)
    settings = settings_for(server, tmp_path / "out")
    assert run(store, settings, ["b"]).counts == {"failed": 3}

    first = batches.retry(store, "b", url_ttl=settings.output_url_ttl)
    assert (first.requeued.predictions, first.requeued.skipped) == (1, {"PoseError": 2})
    assert "skipped 2 that failed with PoseError" in first.lines()[1]
    assert "--error PoseError" in first.lines()[1]
    assert run(reopen(), settings, ["b"]).counts == {"completed": 1, "failed": 2}

    second = batches.retry(
        store, "b", url_ttl=settings.output_url_ttl, errors=["PoseError"], job_ids=["pose-0"]
    )
    assert (second.requeued.predictions, second.requeued.skipped) == (1, {})
    assert run(reopen(), settings, ["b"]).counts == {"completed": 1, "failed": 2}
    runs = server.state.runs_by_fingerprint()
    assert [runs[s.fingerprint] for s in specs] == [2, 1, 4]


def test_retry_filters_by_error_name_and_reports_jobs_that_did_not_fail(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """--error PipelineError leaves a PoseError job counted as not named; a named job
    that completed is reported as not failed; an unknown id changes nothing."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    specs = jobs(1, prefix="ok") + jobs(
        1, prefix="pose", image="https://x/{i}.png?sandbox:fail=PoseError"
    )
    store.ingest("b", "m.yaml", specs)
    settings = settings_for(server, tmp_path / "out")
    assert run(store, settings, ["b"]).counts == {"completed": 1, "failed": 1}
    with pytest.raises(UsageError, match="'nope'"):
        batches.retry(store, "b", url_ttl=1e9, job_ids=["ok-0", "nope"])
    retried = batches.retry(
        store, "b", url_ttl=1e9, errors=["PipelineError"], job_ids=["ok-0", "pose-0"]
    )
    assert (retried.requeued.total, retried.requeued.skipped) == (0, {"PoseError": 1})
    assert retried.not_failed == {"completed": 1}
    assert retried.lines()[1:] == [
        "skipped 1 that failed with PoseError: not named by --error",
        "1 named job(s) are not failed (completed 1): left as they are",
    ]
    assert store.state_counts(["b"]) == {"completed": 1, "failed": 1}


@pytest.mark.sqlite_only  # PostgreSQL's claim locks the row: the cancel would wait for it
def test_a_job_canceled_between_the_claims_read_and_its_write_is_not_claimed(
    monkeypatch: pytest.MonkeyPatch, store: Store, reopen: Callable[[], Store]
) -> None:
    """Another connection cancels the very job the claim has just read: the claim's
    guarded write takes nothing, and it claims the next queued job instead."""
    store.ingest("b", "m.yaml", jobs(2))
    other = reopen()
    real_next = queue._NEXT
    raced: list[str] = []

    class Stale:
        """The claim's read as it was before the other connection wrote."""

        def __init__(self, row):  # type: ignore[no-untyped-def]
            self.row = row

        def first(self):  # type: ignore[no-untyped-def]
            return self.row

    def read_then_cancel(conn, batches, /, **params):  # type: ignore[no-untyped-def]
        result = real_next(conn, batches, **params)
        if raced:
            return result
        row = result.first()
        raced.append(row.job_id)
        assert other.batches.cancel("b", [row.job_id]).canceled == 1
        return Stale(row)

    monkeypatch.setattr(queue, "_NEXT", read_then_cancel)
    claimed = store.claim_next(["b"], log_request=False)
    assert raced == ["job-0"]
    assert claimed is not None and claimed.job_id == "job-1"
    assert store.state_counts(["b"]) == {"canceled": 1, "running": 1}


def test_cancel_changes_only_queued_jobs_and_refuses_unknown_ids(store: Store) -> None:
    """Named jobs: the queued one is canceled, a running one is left and counted; an
    unknown id cancels nothing; a second cancel finds nothing left to cancel."""
    store.ingest("b", "m.yaml", jobs(4))
    assert store.claim_next(["b"], log_request=False) is not None  # job-0 is running
    with pytest.raises(UsageError, match="'job-9'"):
        store.batches.cancel("b", ["job-1", "job-9"])
    assert store.state_counts(["b"]) == {"running": 1, "queued": 3}
    named = store.batches.cancel("b", ["job-0", "job-1", "job-1"])
    assert (named.canceled, named.others) == (1, {"running": 1})
    everything = store.batches.cancel("b")
    assert (everything.canceled, everything.others) == (2, {"running": 1, "canceled": 1})
    assert store.batches.cancel("b").canceled == 0
    assert store.state_counts(["b"]) == {"running": 1, "canceled": 3}


def test_the_list_counts_each_batch_by_state_with_credits_and_activity(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """Two batches, one run and one canceled: counts, credits as charged, and the
    last activity no earlier than the first."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("ran", "ran.yaml", jobs(3))
    store.ingest("held", "held.csv", jobs(2, prefix="h"))
    store.batches.cancel("held")
    run(store, settings_for(server, tmp_path / "out"), ["ran"])
    listed = {b.id: b for b in store.batches.list()}
    assert listed["ran"].counts == {JobState.COMPLETED: 3}
    assert listed["ran"].credits == server.state.credits_charged == 3
    assert listed["held"].counts == {JobState.CANCELED: 2}
    assert listed["held"].manifest == "held.csv"
    for info in listed.values():
        assert info.first_activity <= info.last_activity
    shown = batches.batch_dict(listed["held"])
    assert shown["counts"]["canceled"] == 2 and shown["total"] == 2
