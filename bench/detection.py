"""Part 2, completion detection: finish → first status answer that shows it.

Measured on the middle regime, with adaptive polling (the default) and with uniform
round-robin polling within the same status budget, on the same jobs.
"""

from __future__ import annotations

from . import stats
from .polling_bound import least_delay
from .regimes import RegimeRun
from .runs import Runs
from .table import Row, Section

REGIME = "middle"


def summary(run: RegimeRun) -> str:
    delays = run.detection_delays
    if not delays:
        return "no prediction seen finished"
    return (
        f"mean {stats.mean(delays):.3f} s, p95 {stats.percentile(delays, 95):.2f} s, "
        f"{run.status_per_job:.1f} status/job"
    )


def measure(runs: Runs) -> Section:
    section = Section("detection")
    adaptive, uniform = runs.ours(REGIME), runs.ours(REGIME, "uniform")
    a, u = adaptive.detection_delays, uniform.detection_delays
    limit = stats.mean(u) / 2 if u else float("nan")
    ok = bool(a and u) and stats.mean(a) <= limit
    section.rows.append(
        Row.check(
            f"detection {REGIME}, adaptive polling", summary(adaptive), f"mean <= {limit:.3f} s", ok
        )
    )
    section.rows.append(Row(f"detection {REGIME}, uniform polling", summary(uniform)))
    low, high = adaptive.regime.latency
    bound = least_delay(low, high, adaptive.status_per_job)
    section.rows.append(
        Row(
            f"detection {REGIME}: least mean of any age-based poller, "
            f"{adaptive.status_per_job:.1f} status/job",
            f"{bound:.3f} s (zero network time; target / bound = {stats.ratio(limit, bound):.2f})",
        )
    )
    section.rows.append(
        Row(
            f"detection {REGIME}: efficiency adaptive / uniform",
            f"{adaptive.shown_efficiency} / {uniform.shown_efficiency}",
        )
    )
    section.notes.append(
        "Detection: first_seen_finished_at - finished_at per prediction, in unscaled seconds "
        "(divided by the time scale); target: adaptive mean at most half the uniform mean. "
        "status/job = status requests the sandbox received / jobs. Least mean: the best "
        "polling schedule for latencies uniform on the regime's range, knowing that "
        "distribution exactly and each prediction's age, at the adaptive run's status/job "
        "(bench/polling_bound.py); no poller that sees only ages can do better on average."
    )
    return section


__all__ = ["measure", "summary"]
