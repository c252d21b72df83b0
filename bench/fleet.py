"""The fleet regime: `orchestrator worker` processes on one SQLite database against the
in-thread time-scaled sandbox, on the middle regime's jobs (both limits bind).

- 4 workers x 1 account: efficiency = the ideal client's makespan (oracle.py, over the
  latencies the sandbox drew, in its acceptance order) / the fleet's;
- 2 accounts x 2 workers: the same jobs split between two keys; makespan against the
  one-account fleet's.

The fleet's makespan runs from the first `/run` the sandbox received to the last output
download it served: the workers' start-up and exit (Python imports, the database opened
and migrated, the balance read at each end) are outside it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from orchestrator.sandbox import PredictionRecord, SandboxConfig, SandboxServer

from . import stats
from .oracle import ideal_makespan
from .regimes import CONCURRENCY, REGIMES, Regime
from .table import Row, Section

log = logging.getLogger("bench")
KEYS = ("bench-a", "bench-b")


def _manifest(path: Path, regime: Regime, accounts: int) -> Path:
    with path.open("w") as fh:
        for i in range(regime.jobs):
            job = {
                "id": f"{regime.name}-{i:04d}",
                "model_name": "background-remove",
                "inputs": {"image": f"https://cdn.example.com/bench/{regime.name}/{i:04d}.jpg"},
            }
            if i % accounts:
                job["account"] = "second"
            fh.write(json.dumps(job) + "\n")
    return path


def _fleet(
    regime: Regime, workers: int, accounts: int
) -> tuple[float, list[dict[str, Any]], list[PredictionRecord]]:
    """Run the regime with `workers` processes over `accounts` keys: the makespan, each
    account's statistics, and every prediction the sandbox made."""
    config = SandboxConfig(
        seed=7,
        time_scale=regime.scale,
        latency={"*": regime.latency},
        credits=10 * regime.jobs + 1000,
        api_key=KEYS[0],
        extra_keys=KEYS[1:accounts],
    )
    scale = regime.scale
    limits = ["--run-limit", f"50/{60 * scale:g}", "--status-limit", f"50/{10 * scale:g}"]
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp, SandboxServer(config) as server:
        db = Path(tmp) / "q.db"
        env = {**os.environ, "FASHN_BASE_URL": server.base_url, "FASHN_API_KEY": KEYS[0]}
        env["FASHN_API_KEY_SECOND"] = KEYS[1]
        python = [sys.executable, "-m", "orchestrator"]
        manifest = _manifest(Path(tmp) / "fleet.jsonl", regime, accounts)
        subprocess.run(
            [*python, "submit", str(manifest), "--queue-only", "--db", str(db)],
            env=env,
            check=True,
            capture_output=True,
        )
        args = [
            *python,
            "-q",
            "worker",
            "--burst",
            "--db",
            str(db),
            "--out",
            f"{tmp}/out",
            *limits,
            "--idle-poll",
            "0.05",
        ]
        procs = [
            subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
            for _ in range(workers)
        ]
        for p in procs:
            _, err = p.communicate(timeout=600)
            if p.returncode != 0:
                raise RuntimeError(f"a worker exited {p.returncode}: {err.strip()[-300:]}")
        views = [server.state.account(k) for k in KEYS[:accounts]]
        first = min(v.arrivals("run")[0] for v in views)
        ended = max(v.arrivals("cdn")[-1] for v in views)
        seen = [v.stats() for v in views]
        records = [r for v in views for r in v.predictions()]
    return ended - first, seen, records


def measure(*, quick: bool) -> Section:
    section = Section("fleet")
    regime = REGIMES["middle"]
    if quick:
        regime = regime.quick()
    one, one_stats, one_runs = _fleet(regime, 4, 1)
    ordered = sorted(one_runs, key=lambda r: r.accepted_at)
    ideal = ideal_makespan(
        [r.finished_at - r.accepted_at for r in ordered], CONCURRENCY, regime.scaled_run_limit
    )
    efficiency = stats.ratio(ideal, one)
    held = one_stats[0]
    section.rows.append(
        Row.check(
            "fleet 4 workers x 1 account (middle), ideal/actual",
            f"{stats.floor_to(efficiency, 3):.3f} (ideal {ideal:.2f} s / actual {one:.2f} s; "
            f"in flight {held['max_in_flight']}, /run in window {held['max_in_window']['run']}, "
            f"/status {held['max_in_window']['status']}, 429s {sum(held['rejections'].values())})",
            ">= 0.93",
            efficiency >= 0.93,
        )
    )
    two, two_stats, _ = _fleet(regime, 4, 2)
    ratio = stats.ratio(two, one)
    worst = max(s["max_in_flight"] for s in two_stats)
    section.rows.append(
        Row.check(
            "fleet 2 accounts x 2 workers: makespan / one account's",
            f"{ratio:.3f} ({two:.2f} s / {one:.2f} s; per account in flight <= {worst})",
            "<= 0.55",
            ratio <= 0.55,
        )
    )
    section.notes.append(
        f"Fleet: {regime.jobs} middle-regime jobs (scale {regime.scale:g}), `orchestrator "
        "worker --burst` processes on one SQLite file, the sandbox in a thread of the bench "
        "process; makespan from the sandbox's first /run to the last output download it served."
    )
    return section


__all__ = ["measure"]
