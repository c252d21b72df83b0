"""The scheduler against the sandbox over real HTTP: every limit as the server saw it,
every error class, and nothing paid twice. Time is scaled; nothing asserts on wall time."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from orchestrator.engine import Engine
from orchestrator.errors import AuthError, OutOfCredits
from orchestrator.models import JobSpec, JobState
from orchestrator.report import job_reports
from orchestrator.sandbox import Faults, Limits
from orchestrator.store import Store

from ..conftest import jobs, run, scalar, settings_for

pytestmark = pytest.mark.both_databases


def assert_outputs_match(store: Store, server) -> None:  # type: ignore[no-untyped-def]
    """Every completed job's files are byte-identical to what the sandbox served."""
    for job in job_reports(store, store.batch_ids()):
        if job["state"] != JobState.COMPLETED:
            continue
        done = [a for a in job["attempts"] if a["status"] == "completed"]
        assert len(done) == 1
        prediction_id = done[0]["prediction_id"]
        assert job["outputs"], job
        for index, output in enumerate(job["outputs"]):
            data = Path(output["path"]).read_bytes()
            assert data == server.state.output_bytes(prediction_id, index)
            assert hashlib.sha256(data).hexdigest() == output["sha256"]


def test_short_predictions_never_breach_the_run_window(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """120 quick jobs: run-limit bound; the server never saw more than 50 /run in a window."""
    server = sandbox(latency={"*": (2.0, 5.0)})
    store.ingest("b", "m.yaml", jobs(120))
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    state = server.state
    assert outcome.counts == {"completed": 120}
    assert state.max_in_window("run") <= 50
    assert state.max_in_window("status") <= 50
    assert state.max_in_flight() <= 6
    assert state.rejections == {}
    assert len(state.predictions()) == 120
    assert outcome.credits == state.credits_charged == 120
    assert_outputs_match(store, server)


def test_long_predictions_fill_every_slot_and_no_more(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """100 long jobs: concurrency bound; the server saw exactly 6 in flight at most."""
    server = sandbox(latency={"*": (20.0, 60.0)}, time_scale=0.005)
    store.ingest("b", "m.yaml", jobs(100))
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    state = server.state
    assert outcome.counts == {"completed": 100}
    assert state.max_in_flight() == 6
    assert state.max_in_window("run") <= 50
    assert state.max_in_window("status") <= 50
    assert state.rejections == {}


def test_a_quick_restart_does_not_breach_the_window(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A second run right after a first one counts the first one's requests."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    settings = settings_for(server, tmp_path / "out")
    store.ingest("first", "m.yaml", jobs(45, prefix="a"))
    run(store, settings, ["first"])
    store.ingest("second", "m.yaml", jobs(45, prefix="b"))
    outcome = run(reopen(), settings, ["second"])
    assert outcome.counts == {"completed": 45}
    assert server.state.max_in_window("run") <= 50
    assert server.state.max_in_window("status") <= 50
    assert server.state.rejections == {}


def test_bad_request_fails_the_job_and_is_not_resent(sandbox, store: Store, tmp_path: Path) -> None:
    """400: that job fails with the API's message; the others complete."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    bad = JobSpec(
        "bad",
        "tryon-max",
        {"model_image": "https://x/a.png", "product_image": "https://x/b.png", "num_images": 9},
    )
    store.ingest("b", "m.yaml", [bad, *jobs(3)])
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    assert outcome.counts == {"completed": 3, "failed": 1}
    report = {j["id"]: j for j in job_reports(store, ["b"])}
    assert len(report["bad"]["attempts"]) == 1
    assert "num_images" in report["bad"]["error"]
    assert server.state.rejections == {"BadRequest": 1}


def test_wrong_key_stops_at_once(sandbox, store: Store, tmp_path: Path) -> None:
    """401: the run stops with AuthError; nothing was created and the jobs stay queued."""
    server = sandbox()
    store.ingest("b", "m.yaml", jobs(5))
    settings = settings_for(server, tmp_path / "out", api_key="wrong-key")
    with pytest.raises(AuthError, match="FASHN_API_KEY"):
        run(store, settings, ["b"])
    assert server.state.predictions() == []
    assert store.state_counts(["b"]) == {"queued": 5}
    assert server.state.rejections.get("Unauthorized", 0) <= 6


@pytest.mark.parametrize("mode", ["402", "429"])
def test_out_of_credits_finishes_in_flight_then_stops(
    sandbox, store: Store, tmp_path: Path, mode: str
) -> None:
    """Out of credits (402 or 429 OutOfCredits): in-flight work is saved, the rest waits."""
    server = sandbox(latency={"*": (2.0, 4.0)}, credits=8, out_of_credits=mode)
    store.ingest("b", "m.yaml", jobs(20))
    with pytest.raises(OutOfCredits, match="resume"):
        run(store, settings_for(server, tmp_path / "out"), ["b"])
    counts = store.state_counts(["b"])
    assert counts == {"completed": 8, "queued": 12}
    assert server.state.balance == 0
    assert_outputs_match(store, server)


def test_server_rate_limit_is_waited_out(sandbox, store: Store, tmp_path: Path) -> None:
    """429 RateLimitExceeded (a stricter server): wait, resend, no job fails, none duplicated."""
    server = sandbox(latency={"*": (1.0, 2.0)}, limits=Limits(run=(10, 60.0)))
    store.ingest("b", "m.yaml", jobs(25))
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    assert outcome.counts == {"completed": 25}
    assert server.state.rejections.get("RateLimitExceeded", 0) > 0
    assert set(server.state.runs_by_fingerprint().values()) == {1}


def test_server_concurrency_limit_is_waited_out(sandbox, store: Store, tmp_path: Path) -> None:
    """429 ConcurrencyLimitExceeded (the account is busier than we know): wait and resend."""
    server = sandbox(latency={"*": (5.0, 10.0)}, limits=Limits(concurrency=3))
    store.ingest("b", "m.yaml", jobs(20))
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    assert outcome.counts == {"completed": 20}
    assert server.state.rejections.get("ConcurrencyLimitExceeded", 0) > 0
    assert server.state.max_in_flight() == 3
    assert set(server.state.runs_by_fingerprint().values()) == {1}


def test_transport_faults_are_retried_and_duplicates_are_only_the_uncertain(
    sandbox, store: Store, tmp_path: Path
) -> None:
    """5xx, dropped connections and lost answers: every job completes; a duplicate charge
    happens only where the report marks the attempt uncertain."""
    faults = Faults(
        http_500={"run": 0.1, "status": 0.1, "cdn": 0.1},
        drop={"status": 0.05, "cdn": 0.05},
        lost_answer=0.1,
    )
    server = sandbox(latency={"*": (1.0, 3.0)}, faults=faults, seed=7)
    specs = jobs(60)
    store.ingest("b", "m.yaml", specs)
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    assert outcome.counts == {"completed": 60}
    injected = server.state.faults_injected
    assert injected.get("lost_answer", 0) > 0 and injected.get("http_500", 0) > 0
    runs = server.state.runs_by_fingerprint()
    for job, spec in zip(job_reports(store, ["b"]), specs, strict=True):
        uncertain = sum(a["uncertain"] for a in job["attempts"])
        assert runs[spec.fingerprint] <= 1 + uncertain
    assert outcome.uncertain >= injected["lost_answer"]
    assert_outputs_match(store, server)


def test_runtime_failures_retry_the_retryable_only(sandbox, store: Store, tmp_path: Path) -> None:
    """PipelineError is retried up to --max-attempts; PoseError fails at once; both refunded."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    specs = [
        *jobs(1, prefix="flaky", image="https://x/{i}.png?sandbox:fail=PipelineError:1"),
        *jobs(1, prefix="doomed", image="https://x/{i}.png?sandbox:fail=PipelineError"),
        *jobs(1, prefix="pose", image="https://x/{i}.png?sandbox:fail=PoseError"),
    ]
    store.ingest("b", "m.yaml", specs)
    outcome = run(store, settings_for(server, tmp_path / "out", max_attempts=3), ["b"])
    report = {j["id"]: j for j in job_reports(store, ["b"])}
    assert report["flaky-0"]["state"] == "completed" and len(report["flaky-0"]["attempts"]) == 2
    assert report["doomed-0"]["state"] == "failed" and len(report["doomed-0"]["attempts"]) == 3
    assert report["pose-0"]["state"] == "failed" and len(report["pose-0"]["attempts"]) == 1
    assert report["pose-0"]["error"].startswith("PoseError")
    assert outcome.credits == server.state.credits_charged == 1


def test_error_given_as_a_plain_string_is_understood(sandbox, store: Store, tmp_path: Path) -> None:
    """The spec's string form of a runtime error is classified like the object form."""
    server = sandbox(latency={"*": (1.0, 2.0)}, faults=Faults(error_as_string=1.0))
    store.ingest("b", "m.yaml", jobs(1, image="https://x/{i}.png?sandbox:fail=PoseError"))
    run(store, settings_for(server, tmp_path / "out"), ["b"])
    (job,) = job_reports(store, ["b"])
    assert job["state"] == "failed" and len(job["attempts"]) == 1
    assert job["attempts"][0]["error"].startswith("PoseError")


def test_stuck_prediction_is_given_up_and_retried(sandbox, store: Store, tmp_path: Path) -> None:
    """A prediction past the prediction timeout counts as a retryable failure."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(1, image="https://x/{i}.png?sandbox:seconds=500"))
    settings = settings_for(server, tmp_path / "out", max_attempts=2, prediction_timeout=60 * 0.02)
    outcome = run(store, settings, ["b"])
    (job,) = job_reports(store, ["b"])
    assert outcome.counts == {"failed": 1}
    assert [a["error"].split(":")[0] for a in job["attempts"]] == ["StuckPrediction"] * 2


def test_unknown_prediction_id_is_a_retryable_failure(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """404 on /status: the attempt failed; a new prediction completes the job."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(1))
    claimed = store.claim_next(None)
    assert claimed is not None
    store.record_accepted(claimed, "no-such-prediction-u1", 0, claimed.request_pk)
    outcome = run(reopen(), settings_for(server, tmp_path / "out"), ["b"])
    (job,) = job_reports(store, ["b"])
    assert outcome.counts == {"completed": 1}
    assert job["attempts"][0]["error"].startswith("NotFound")


def test_base64_outputs_are_saved(sandbox, store: Store, tmp_path: Path) -> None:
    """return_base64 outputs are decoded to files; the report keeps no data URI."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    store.ingest("b", "m.yaml", jobs(3, return_base64=True))
    outcome = run(store, settings_for(server, tmp_path / "out"), ["b"])
    assert outcome.counts == {"completed": 3}
    assert_outputs_match(store, server)
    for job in job_reports(store, ["b"]):
        assert job["outputs"][0]["url"] == "data:image/png;base64,…"


def test_stop_then_resume_finishes_without_paying_twice(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """Interrupted mid-run, resumed: in-flight predictions are polled, never resubmitted."""
    server = sandbox(latency={"*": (5.0, 10.0)})
    store.ingest("b", "m.yaml", jobs(30))
    settings = settings_for(server, tmp_path / "out")
    engine = Engine(
        store,
        settings,
        batches=["b"],
        on_progress=lambda p: p.counts.get("completed", 0) >= 5 and engine.request_stop(),
        progress_every=0.01,
    )
    with pytest.raises(Exception, match="resume"):
        anyio.run(engine.run)
    assert store.state_counts(["b"]).get("running", 0) > 0
    outcome = run(reopen(), settings, ["b"])
    assert outcome.counts == {"completed": 30}
    assert set(server.state.runs_by_fingerprint().values()) == {1}
    assert server.state.max_in_window("run") <= 50
    assert_outputs_match(store, server)


def test_a_kill_during_a_429_wait_leaves_no_uncertain_attempt(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A 429 proves nothing was created: a process that dies while waiting it out
    leaves no attempt marked uncertain (no double charge can be suspected)."""
    server = sandbox(latency={"*": (30.0, 40.0)}, limits=Limits(run=(2, 600.0)))
    store.ingest("b", "m.yaml", jobs(4))
    engine = Engine(store, settings_for(server, tmp_path / "out"), batches=["b"])

    def refused() -> int:
        sql = "SELECT count(*) FROM attempts WHERE state = 'pending' AND sent_at IS NULL"
        return int(scalar(store, sql))

    async def killed_while_waiting() -> None:
        with anyio.move_on_after(5.0) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(engine.run)
                # Two predictions recorded, the two other /run requests refused with
                # 429 and the refusals recorded: the engine waits out Retry-After.
                while store.credits_total(["b"]) < 2 or refused() < 2:
                    await anyio.sleep(0.01)
                scope.cancel()  # like SIGKILL: nothing more is written
        assert scope.cancel_called

    anyio.run(killed_while_waiting)
    assert server.state.rejections.get("RateLimitExceeded", 0) >= 1
    recovery = reopen().recover()
    assert recovery.lost == 0
    assert store.uncertain_count(["b"]) == 0
    assert len(recovery.flights) == 2


def test_progress_of_one_batch_is_not_moved_by_another_batch(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """Resuming batch b while batch a has predictions in flight: b's progress counts
    only b's jobs, never a negative number, and ends as the store says."""
    server = sandbox(latency={"*": (5.0, 8.0)})
    store.ingest("a", "a.yaml", jobs(6, prefix="a"))
    store.ingest("b", "b.yaml", jobs(3, prefix="b"))
    settings = settings_for(server, tmp_path / "out")
    first = Engine(
        store,
        settings,
        batches=["a"],
        on_progress=lambda p: p.in_flight >= 6 and first.request_stop(),
        progress_every=0.01,
    )
    with pytest.raises(Exception, match="resume"):
        anyio.run(first.run)
    assert store.state_counts(["a"]) == {"running": 6}

    seen: list[dict[str, int]] = []
    second = Engine(
        reopen(),
        settings,
        batches=["b"],
        on_progress=lambda p: seen.append(dict(p.counts)),
        progress_every=0.01,
    )
    outcome = anyio.run(second.run)
    assert outcome.counts == {"completed": 3}
    assert all(n >= 0 for counts in seen for n in counts.values()), seen
    assert all(sum(counts.values()) == 3 for counts in seen), seen
    assert seen[-1] == {"completed": 3}
