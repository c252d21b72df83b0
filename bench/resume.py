"""Part 6, resume: the CPU a resumed run spends per job, against a fresh run's.

A run interrupted with predictions in flight is resumed: the resumed run polls what
was in flight and submits the rest. It must cost about what a fresh run costs per
job (target: at most 1.5 times), not spin. The sandbox runs in its own process, at
FASHN's limits and the middle regime's latencies, time-scaled; the CPU counted is
the bench process's (the engine and its threads) during Engine.run().
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path

import anyio

from orchestrator.config import Settings
from orchestrator.engine import Engine
from orchestrator.errors import Interrupted
from orchestrator.models import JobState
from orchestrator.store import Store

from .ours import bounded
from .procs import SandboxProcess, sandbox_process
from .regimes import job_specs
from .table import Row, Section

log = logging.getLogger("bench")
TARGET = 1.5  # resumed CPU per job / fresh CPU per job
JOBS, QUICK_JOBS = 200, 80
SCALE = 0.05
STOP_AT = 0.4  # interrupt once this share of the batch is done


def _settings(sandbox: SandboxProcess, out: Path) -> Settings:
    base = Settings(base_url=sandbox.base_url, api_key="sandbox", out_dir=out).scaled(SCALE)
    return base


def _run(engine: Engine, jobs: int) -> float:
    """CPU seconds of Engine.run(); an Interrupted stop is expected for the first half."""
    cpu = time.process_time()
    with contextlib.suppress(Interrupted):
        anyio.run(bounded, engine.run, jobs * 5.0 + 60)
    return time.process_time() - cpu


def cpu_per_job(sandbox: SandboxProcess, tmp: Path, jobs: int) -> tuple[float, float, int]:
    """(fresh CPU ms/job, resumed CPU ms/job, jobs finished by the resumed run)."""
    settings = _settings(sandbox, tmp / "out")
    fresh_store = Store(tmp / "fresh.db")
    fresh_store.ingest("fresh", "bench", job_specs(jobs, "fresh"))
    fresh = _run(Engine(fresh_store, settings, batches=["fresh"]), jobs) / jobs

    store = Store(tmp / "resumed.db")
    store.ingest("resumed", "bench", job_specs(jobs, "resumed"))
    first = Engine(
        store,
        settings,
        batches=["resumed"],
        on_progress=lambda p: (
            p.counts.get(JobState.COMPLETED, 0) >= STOP_AT * jobs and first.request_stop()
        ),
        progress_every=0.05,
    )
    _run(first, jobs)
    done_before = store.state_counts(["resumed"]).get(JobState.COMPLETED, 0)
    resumed_cpu = _run(Engine(Store(store.path), settings, batches=["resumed"]), jobs)
    done = store.state_counts(["resumed"]).get(JobState.COMPLETED, 0) - done_before
    return 1000 * fresh, 1000 * resumed_cpu / max(done, 1), done


def measure(*, quick: bool) -> Section:
    section = Section("resume")
    jobs = QUICK_JOBS if quick else JOBS
    args = ("--port", "0", "--time-scale", str(SCALE), "--latency", "*=4-12")
    with (
        tempfile.TemporaryDirectory(prefix="bench-resume-") as name,
        sandbox_process(args, log=Path(name) / "sandbox.log") as sandbox,
    ):
        log.info("resume: %d jobs fresh, then %d interrupted and resumed", jobs, jobs)
        fresh, resumed, done = cpu_per_job(sandbox, Path(name), jobs)
    ratio = resumed / fresh if fresh else float("inf")
    section.rows.append(
        Row.check(
            "resume: CPU ms/job, resumed / fresh",
            f"{ratio:.2f} (resumed {resumed:.1f} over {done} jobs, fresh {fresh:.1f})",
            f"<= {TARGET:g}",
            ratio <= TARGET,
        )
    )
    section.notes.append(
        f"Resume: {jobs} jobs (4-12 s at scale {SCALE}, FASHN's limits) run fresh, then "
        f"{jobs} others interrupted with predictions in flight once {STOP_AT:.0%} were done "
        "and resumed by a new Engine on the same database; CPU of the bench process during "
        "Engine.run(), per job the run finished; the sandbox in its own process."
    )
    return section


__all__ = ["cpu_per_job", "measure"]
