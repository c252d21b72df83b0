"""--reuse against the sandbox over HTTP: a job that an earlier job already made takes
its files (no `/run`, 0 credits, sha256 checked), durably across a restart, and goes
back to the queue when the file it would take is gone or changed."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.models import JobSpec, JobState
from orchestrator.report import job_reports
from orchestrator.store import Store

from ..conftest import jobs, run, settings_for


def catalog() -> list[JobSpec]:
    """Three background removals and a two-image try-on."""
    tryon = JobSpec(
        "look-1",
        "tryon-max",
        {"model_image": "https://x/m.png", "product_image": "https://x/p.png", "num_images": 2},
    )
    return [*jobs(3), tryon]


def outputs_by_job(store: Store, batch: str) -> dict[str, list[tuple[str, str, int]]]:
    return {
        job["id"]: [(o["path"], o["sha256"], o["size"]) for o in job["outputs"]]
        for job in job_reports(store, [batch])
    }


def test_reuse_sends_no_run_and_takes_identical_files(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A second batch of the same jobs with reuse: no /run, 0 credits, the same sha256
    (hard links), the report naming the job reused; without reuse they run again."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    settings = settings_for(server, tmp_path / "out")
    store.ingest("first", "m.yaml", catalog())
    assert run(store, settings, ["first"]).counts == {"completed": 4}
    runs = len(server.state.arrivals("run"))

    assert store.ingest("again", "m.yaml", catalog(), reuse=True).reused == 4
    outcome = run(reopen(), settings, ["again"])
    assert outcome.counts == {"completed": 4}
    assert outcome.credits == 0
    assert len(server.state.arrivals("run")) == runs

    first, again = outputs_by_job(store, "first"), outputs_by_job(store, "again")
    assert len(again["look-1"]) == 2
    for job_id, outputs in again.items():
        assert [(sha, size) for _, sha, size in outputs] == [
            (sha, size) for _, sha, size in first[job_id]
        ]
        for (path, _, _), (source, _, _) in zip(outputs, first[job_id], strict=True):
            assert path != source and os.path.samefile(path, source)
    for job in job_reports(store, ["again"]):
        assert job["reused_from"] == {"batch": "first", "id": job["id"]}
        assert [(a["status"], a["credits"]) for a in job["attempts"]] == [("reused", 0)]

    store.ingest("fresh", "m.yaml", catalog())
    assert run(reopen(), settings, ["fresh"]).counts == {"completed": 4}
    assert len(server.state.arrivals("run")) == runs + 4


def test_reuse_is_recorded_with_the_jobs_and_finished_after_a_restart(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """Queued with reuse, the jobs wait as downloads: a later process (resume) links
    them, clearing what a killed one left (a partial file, a link made but not recorded)."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    settings = settings_for(server, tmp_path / "out")
    store.ingest("first", "m.yaml", jobs(2))
    run(store, settings, ["first"])
    runs = len(server.state.arrivals("run"))

    store.ingest("again", "m.yaml", jobs(2), reuse=True)
    assert store.state_counts(["again"]) == {"downloading": 2}
    first = outputs_by_job(store, "first")
    folder = tmp_path / "out" / "again" / "job-0"
    folder.mkdir(parents=True)
    os.link(first["job-0"][0][0], folder / "0.png")  # linked, then killed
    (folder / ".0.png.abcd1234.part").write_bytes(b"half")  # killed while writing

    reopened = reopen()
    assert run(reopened, settings, ["again"]).counts == {"completed": 2}
    assert len(server.state.arrivals("run")) == runs
    assert sorted(p.name for p in folder.iterdir()) == ["0.png"]
    assert outputs_by_job(reopened, "again")["job-0"][0][0] == str(folder / "0.png")


def test_a_changed_source_file_sends_the_job_to_a_prediction(
    sandbox, store: Store, reopen: Callable[[], Store], tmp_path: Path
) -> None:
    """A file edited since it was saved is not reused: that job alone is predicted."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    settings = settings_for(server, tmp_path / "out")
    store.ingest("first", "m.yaml", jobs(3))
    run(store, settings, ["first"])
    runs = len(server.state.arrivals("run"))
    Path(outputs_by_job(store, "first")["job-1"][0][0]).write_bytes(b"edited by hand")

    store.ingest("again", "m.yaml", jobs(3), reuse=True)
    assert run(reopen(), settings, ["again"]).counts == {"completed": 3}
    assert len(server.state.arrivals("run")) == runs + 1
    reports = {job["id"]: job for job in job_reports(store, ["again"])}
    assert reports["job-1"]["reused_from"] is None
    statuses = [a["status"] for a in reports["job-1"]["attempts"]]
    assert statuses == ["failed", "completed"]
    assert "has changed" in (reports["job-1"]["attempts"][0]["error"] or "")
    assert reports["job-0"]["reused_from"] == {"batch": "first", "id": "job-0"}


def test_only_completed_jobs_are_reused(sandbox, store: Store, tmp_path: Path) -> None:
    """A job whose twin failed is predicted: only saved outputs stand for a job."""
    server = sandbox(latency={"*": (1.0, 2.0)})
    settings = settings_for(server, tmp_path / "out")
    failing = jobs(1, image="https://x/{i}.png?sandbox:fail=PoseError:1")
    store.ingest("first", "m.yaml", failing)
    assert run(store, settings, ["first"]).counts == {JobState.FAILED: 1}
    assert store.ingest("again", "m.yaml", failing, reuse=True).reused == 0
    assert store.state_counts(["again"]) == {"queued": 1}
