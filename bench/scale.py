"""Part 5, scale: a million-job CSV, a 100,000-job YAML, and the commands on the result.

Every figure is one `orchestrator` command run as a child process, so interpreter
start-up and imports count, as they do for a user. The manifests and databases are
generated in a temporary directory and deleted afterwards (the 1M-job DB is ~0.5 GB).
"""

from __future__ import annotations

import csv
import logging
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from orchestrator.sandbox import SandboxConfig, SandboxServer

from . import stats
from .procs import ORCHESTRATOR, ChildFailed, child_env, run_child, stop
from .regimes import MODEL
from .table import Row, Section

log = logging.getLogger("bench")


@dataclass(frozen=True)
class Sizes:
    csv_jobs: int
    yaml_jobs: int


FULL, QUICK = Sizes(1_000_000, 100_000), Sizes(100_000, 10_000)
CSV_SECONDS, CSV_MB, YAML_SECONDS, STATUS_SECONDS, RESUME_SECONDS = 30.0, 200.0, 20.0, 1.0, 1.0
REPEATS = 3  # quick commands are timed this many times; the median is reported


def write_csv(path: Path, jobs: int) -> None:
    """`jobs` background-remove rows with ids, priorities and https URLs."""
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "model_name", "priority", "inputs.image", "inputs.return_base64"])
        for i in range(jobs):
            out.writerow(
                [f"job-{i:07d}", MODEL, i % 3, f"https://cdn.example.com/c/{i:07d}.jpg", "false"]
            )


def write_yaml(path: Path, jobs: int) -> None:
    with open(path, "w") as fh:
        fh.write("batch: big-yaml\ndefaults:\n  inputs: {return_base64: false}\njobs:\n")
        for i in range(jobs):
            fh.write(
                f"  - id: y-{i:06d}\n    model_name: {MODEL}\n    priority: {i % 3}\n"
                f"    inputs:\n      image: https://cdn.example.com/y/{i:06d}.jpg\n"
            )


def _submit(manifest: Path, db: Path, tmp: Path, timeout: float) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `submit MANIFEST --queue-only`."""
    args = [*ORCHESTRATOR, "submit", str(manifest), "--queue-only", "--db", str(db)]
    run = run_child(args, log=tmp / f"{manifest.stem}.log", timeout=timeout)
    if not re.search(r"\b[1-9][0-9]* job\(s\) queued", run.output):
        raise ChildFailed(f"submit queued nothing:\n{run.output[-2000:]}")
    return run.wall, run.peak_rss_mb


def _median_wall(args: list[str], tmp: Path, name: str, timeout: float = 60.0) -> float:
    walls = [run_child(args, log=tmp / f"{name}.log", timeout=timeout).wall for _ in range(REPEATS)]
    return stats.median(walls)


def resume_start(db: Path, tmp: Path, timeout: float = 60.0) -> float:
    """Seconds from launching `resume` to the sandbox's first /run arrival."""
    # Real time (scale 1): no prediction finishes while we watch, so the run only starts.
    with SandboxServer(SandboxConfig()) as server:
        env = {"FASHN_BASE_URL": server.base_url, "FASHN_API_KEY": server.config.api_key}
        args = [*ORCHESTRATOR, "resume", "--db", str(db), "--out", str(tmp / "out")]
        with open(tmp / "resume.log", "wb") as out:
            started = time.monotonic()  # the sandbox logs arrivals on this same clock
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=child_env(env))
        try:
            deadline = started + timeout
            while not (arrivals := server.state.arrivals("run")):
                if proc.poll() is not None or time.monotonic() > deadline:
                    text = (tmp / "resume.log").read_text(errors="replace")
                    raise ChildFailed(f"resume sent no /run:\n{text[-2000:]}")
                time.sleep(0.002)
        finally:
            code = stop(proc, timeout=30)
        if code != 3:  # SIGTERM: stopped early and resumable
            text = (tmp / "resume.log").read_text(errors="replace")
            raise ChildFailed(f"resume exited {code} after SIGTERM:\n{text[-2000:]}")
        return arrivals[0] - started


def import_times(tmp: Path) -> tuple[float, float, float]:
    """Median wall of `python -c pass` and of `orchestrator --help`; cumulative import
    time of orchestrator.cli as `python -X importtime` reports it (seconds)."""
    bare = _median_wall([ORCHESTRATOR[0], "-c", "pass"], tmp, "python")
    helps = _median_wall([*ORCHESTRATOR, "--help"], tmp, "help")
    run = run_child(
        [ORCHESTRATOR[0], "-X", "importtime", "-c", "import orchestrator.cli"],
        log=tmp / "importtime.log",
        timeout=60,
    )
    found = re.search(r"\|\s*(\d+)\s*\|\s*orchestrator\.cli\s*$", run.output, re.MULTILINE)
    cumulative = int(found.group(1)) / 1e6 if found else float("nan")
    return bare, helps, cumulative


def _ingest_csv(sizes: Sizes, tmp: Path, rows: list[Row]) -> Path:
    """Queue the big CSV; return the database, for the commands that follow."""
    big_csv, big_db = tmp / "big.csv", tmp / "big.db"
    log.info("scale: writing a %d-row CSV", sizes.csv_jobs)
    write_csv(big_csv, sizes.csv_jobs)
    log.info("scale: submit --queue-only of %d CSV jobs", sizes.csv_jobs)
    wall, peak = _submit(big_csv, big_db, tmp, timeout=10 * CSV_SECONDS)
    big_csv.unlink()  # ~90 MB for a million rows: not needed any more
    label = f"{sizes.csv_jobs:,} CSV jobs"
    rows.append(
        Row.check(
            f"scale: ingest {label}", f"{wall:.1f} s", f"<= {CSV_SECONDS:g} s", wall <= CSV_SECONDS
        )
    )
    rows.append(
        Row.check(
            f"scale: ingest {label}, peak RSS",
            f"{peak:.0f} MB",
            f"<= {CSV_MB:g} MB",
            peak <= CSV_MB,
        )
    )
    rows.append(Row(f"scale: database size, {label}", f"{big_db.stat().st_size / 2**20:.0f} MB"))
    return big_db


def _commands(db: Path, jobs: int, tmp: Path, rows: list[Row]) -> None:
    """`status` and the start of `resume` on the big database."""
    label = f"{jobs:,} jobs"
    log.info("scale: status on %s", label)
    status = _median_wall([*ORCHESTRATOR, "status", "--db", str(db)], tmp, "status")
    rows.append(
        Row.check(
            f"scale: status on {label}",
            f"{status:.2f} s (median of {REPEATS})",
            f"<= {STATUS_SECONDS:g} s",
            status <= STATUS_SECONDS,
        )
    )
    log.info("scale: start of resume on %s", label)
    start = resume_start(db, tmp)
    rows.append(
        Row.check(
            f"scale: resume on {label}, launch to first /run",
            f"{start:.2f} s",
            f"<= {RESUME_SECONDS:g} s",
            start <= RESUME_SECONDS,
        )
    )


def _ingest_yaml(sizes: Sizes, tmp: Path, rows: list[Row]) -> None:
    path = tmp / "big.yaml"
    log.info("scale: submit --queue-only of %d YAML jobs", sizes.yaml_jobs)
    write_yaml(path, sizes.yaml_jobs)
    wall, peak = _submit(path, tmp / "yaml.db", tmp, timeout=10 * YAML_SECONDS)
    rows.append(
        Row.check(
            f"scale: ingest {sizes.yaml_jobs:,} YAML jobs",
            f"{wall:.1f} s (peak RSS {peak:.0f} MB)",
            f"<= {YAML_SECONDS:g} s",
            wall <= YAML_SECONDS,
        )
    )


def _start_up(tmp: Path, rows: list[Row]) -> None:
    log.info("scale: interpreter start and imports")
    bare, helps, imports = import_times(tmp)
    rows.append(Row("scale: python -c pass / orchestrator --help", f"{bare:.2f} s / {helps:.2f} s"))
    rows.append(Row("scale: import orchestrator.cli (-X importtime)", f"{imports:.2f} s"))


def measure(*, quick: bool) -> Section:
    sizes = QUICK if quick else FULL
    section = Section("scale")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        tmp = Path(name)
        db = _ingest_csv(sizes, tmp, section.rows)
        _commands(db, sizes.csv_jobs, tmp, section.rows)
        db.unlink()
        _ingest_yaml(sizes, tmp, section.rows)
        _start_up(tmp, section.rows)
    section.notes.append(
        "Scale: each figure is one `python -m orchestrator ...` child process (start-up and "
        "imports included), wall time from launch to exit; peak RSS from wait4() for that "
        "child alone. Resume: from launch to the first /run the sandbox (in the bench "
        "process, same clock) received; the process is then stopped with SIGTERM."
    )
    return section


__all__ = ["import_times", "measure", "resume_start", "write_csv", "write_yaml"]
