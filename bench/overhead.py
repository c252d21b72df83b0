"""Part 4, engine overhead: jobs per second end to end when nothing else limits them.

The sandbox runs in its own process (the real API is remote: its CPU is not ours),
with every limit lifted and zero latency, so each job costs only what the client
does: claim it (a durable commit), POST /run, record, GET /status, record, download,
write the file atomically, record. The engine runs in the bench process, as the CLI
would run it, with the default durable store.
"""

from __future__ import annotations

import cProfile
import io
import logging
import pstats
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import psutil

from orchestrator.config import Settings
from orchestrator.engine import Engine
from orchestrator.models import JobState
from orchestrator.store import Store

from .ours import bounded
from .procs import SandboxProcess, sandbox_process
from .regimes import MODEL, job_specs
from .table import Row, Section

log = logging.getLogger("bench")
TARGET = 200.0  # jobs per second on a 2-core machine
JOBS, QUICK_JOBS = 3000, 400
PROFILE_JOBS = 1000  # cProfile halves the rate; fewer jobs keep the run short
CONCURRENCIES = (6, 32)
PROFILE_FILE = Path(__file__).with_name("profile-overhead.txt")
SANDBOX_ARGS = (
    "--port", "0", "--run-limit", "none", "--status-limit", "none", "--credits-limit", "none",
    "--concurrency", "0", "--latency", "*=0-0", "--credits", "100000000",
)  # fmt: skip
BATCH = "overhead"


@dataclass(frozen=True)
class Throughput:
    jobs: int
    concurrency: int
    wall: float
    completed: int
    client_cpu: float  # CPU seconds of the bench process (engine + its threads)
    server_cpu: float  # CPU seconds of the sandbox process

    @property
    def rate(self) -> float:
        return self.completed / self.wall if self.wall > 0 else 0.0


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def run_engine(
    sandbox: SandboxProcess,
    tmp: Path,
    *,
    jobs: int,
    concurrency: int,
    tag: str,
    profile: cProfile.Profile | None = None,
) -> Throughput:
    """Queue `jobs` fresh jobs and time Engine.run() over them."""
    store = Store(tmp / f"{tag}.db")
    try:
        store.ingest(BATCH, "bench", job_specs(jobs, tag))
        settings = Settings(
            base_url=sandbox.base_url,
            api_key="sandbox",
            out_dir=tmp / tag,
            concurrency=concurrency,
            run_limit=None,
            status_limit=None,
        )
        engine = Engine(store, settings, batches=[BATCH])
        budget = jobs / 20 + 30  # anything slower than 20 jobs/s is a hang, not a figure
        server_cpu, client_cpu = _cpu(sandbox.pid), time.process_time()
        started = time.monotonic()
        if profile is not None:
            profile.enable()
        try:
            anyio.run(bounded, engine.run, budget)
        finally:
            if profile is not None:
                profile.disable()
        wall = time.monotonic() - started
        client_cpu, server_cpu = time.process_time() - client_cpu, _cpu(sandbox.pid) - server_cpu
        completed = store.state_counts([BATCH]).get(JobState.COMPLETED, 0)
    finally:
        store.close()
    return Throughput(jobs, concurrency, wall, completed, client_cpu, server_cpu)


async def _bare_jobs(base_url: str, jobs: int, concurrency: int) -> int:
    """Each job as three plain httpx requests (run, status, download): no store, no files."""
    headers = {"Authorization": "Bearer sandbox"}
    gate = anyio.Semaphore(concurrency)
    done = 0

    async def one(http: httpx.AsyncClient, i: int) -> None:
        nonlocal done
        async with gate:
            inputs = {"image": f"https://cdn.example.com/bare/{i:06d}.jpg"}
            run = await http.post(f"{base_url}/run", json={"model_name": MODEL, "inputs": inputs})
            status = (await http.get(f"{base_url}/status/{run.json()['id']}")).json()
            if status["status"] == "completed":
                (await http.get(status["output"][0])).raise_for_status()
                done += 1

    async with httpx.AsyncClient(headers=headers) as http, anyio.create_task_group() as tg:
        for i in range(jobs):
            tg.start_soon(one, http, i)
    return done


def bare_http_rate(sandbox: SandboxProcess, jobs: int, concurrency: int = 6) -> float:
    """Jobs per second of the HTTP alone: the ceiling httpx sets on this machine."""
    started = time.monotonic()
    done = anyio.run(
        bounded, lambda: _bare_jobs(sandbox.base_url, jobs, concurrency), jobs / 20 + 30
    )
    return done / (time.monotonic() - started)


def _package(filename: str, function: str) -> str:
    """Which library a profiled function belongs to, from its file (or C method) name."""
    if filename == "~":  # a C function: {method 'commit' of 'sqlite3.Connection' objects}
        found = re.search(r"of '([A-Za-z_]\w*)", function) or re.search(
            r"built-in method ([A-Za-z_]\w*)\.", function
        )  # or {built-in method posix.fsync}
        return f"{found.group(1)} (C)" if found else "builtins (C)"
    path = Path(filename)
    parts = path.parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].split(".")[0]
    if "orchestrator" in parts:
        return "orchestrator"
    if path.parent.name.startswith("python3"):
        return f"stdlib:{path.stem}"
    return f"stdlib:{path.parent.name}" if "lib" in parts else path.parent.name or filename


def own_time_by_package(stats: pstats.Stats) -> list[tuple[str, float]]:
    """Profiled own time summed per library, largest first."""
    totals: dict[str, float] = {}
    raw: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, tottime, *_rest) in raw.items():
        package = _package(filename, function)
        totals[package] = totals.get(package, 0.0) + tottime
    return sorted(totals.items(), key=lambda item: item[1], reverse=True)


def write_profile(profile: cProfile.Profile, result: Throughput, path: Path) -> None:
    out = io.StringIO()
    out.write(
        f"Engine.run() under cProfile: {result.jobs} jobs, concurrency {result.concurrency}, "
        f"{result.wall:.2f} s ({result.rate:.0f} jobs/s under the profiler); "
        "sandbox in a separate process.\n\n"
    )
    stats = pstats.Stats(profile, stream=out)
    libraries = own_time_by_package(stats)  # before strip_dirs(), which drops the paths
    total = sum(t for _, t in libraries) or 1.0
    out.write("== top 25 by cumulative time ==\n")
    stats.strip_dirs().sort_stats("cumulative").print_stats(25)
    out.write("== own time by library ==\n")
    for package, seconds in libraries[:20]:
        out.write(f"{seconds:8.3f} s  {100 * seconds / total:5.1f}%  {package}\n")
    out.write("\n== top 25 by own time ==\n")
    stats.sort_stats("tottime").print_stats(25)
    path.write_text(out.getvalue())


def measure(*, quick: bool) -> Section:
    section = Section("overhead")
    jobs = QUICK_JOBS if quick else JOBS
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as name:
        tmp = Path(name)
        with sandbox_process(SANDBOX_ARGS, log=tmp / "sandbox.log") as sandbox:
            # A short warm-up: connections, imports and SQLite caches, not measured.
            run_engine(sandbox, tmp, jobs=50, concurrency=6, tag="warmup")
            for concurrency in CONCURRENCIES:
                log.info("overhead: %d jobs at concurrency %d", jobs, concurrency)
                result = run_engine(
                    sandbox, tmp, jobs=jobs, concurrency=concurrency, tag=f"c{concurrency}"
                )
                section.rows.append(
                    Row.check(
                        f"overhead: jobs/s, concurrency {concurrency}",
                        f"{result.rate:.0f} ({result.completed}/{jobs} in {result.wall:.1f} s)",
                        f">= {TARGET:.0f}",
                        result.rate >= TARGET and result.completed == jobs,
                    )
                )
                section.rows.append(
                    Row(
                        f"overhead: CPU ms/job, concurrency {concurrency}",
                        f"engine {1000 * result.client_cpu / jobs:.2f}, "
                        f"sandbox {1000 * result.server_cpu / jobs:.2f}",
                    )
                )
            log.info("overhead: %d jobs as bare httpx requests", jobs)
            section.rows.append(
                Row(
                    "overhead: bare httpx (run+status+download, no store), c 6",
                    f"{bare_http_rate(sandbox, jobs):.0f} jobs/s",
                )
            )
            profiled_jobs = min(jobs, PROFILE_JOBS)
            log.info("overhead: profiling %d jobs at concurrency 6", profiled_jobs)
            profile = cProfile.Profile()
            profiled = run_engine(
                sandbox, tmp, jobs=profiled_jobs, concurrency=6, tag="profile", profile=profile
            )
            write_profile(profile, profiled, PROFILE_FILE)
    section.notes.append(
        f"Overhead: {jobs} background-remove jobs per run against `orchestrator sandbox` in a "
        "separate process (no limits, zero latency); Engine.run() wall time, downloads and the "
        "durable store included. CPU ms/job: the bench process (engine, all threads) and the "
        f"sandbox process. Bare httpx: the same three requests per job and nothing else, the "
        f"ceiling the HTTP client sets. Profile: {PROFILE_FILE.name} (cProfile, concurrency 6)."
    )
    return section


__all__ = ["Throughput", "measure", "run_engine"]
