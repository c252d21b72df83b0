"""Part: the webhook regime. The middle regime (4-12 s) with webhooks on, clean and with
10 % of webhooks dropped, against the targets of the webhook issue: detection mean at
most 0.05 x uniform polling's mean delay, efficiency at least 0.98 and at most 1.2
status requests per job on a clean run; with 10 % dropped, every job completed and the
detection mean at most 0.3 x uniform's.

Uniform polling's mean delay is taken from its formula, concurrency / status rate / 2
(0.6 s at FASHN's limits), so the targets do not move with a noisy measured run.
"""

from __future__ import annotations

from . import stats
from .detection import summary
from .regimes import CONCURRENCY, STATUS_LIMIT, RegimeRun
from .runs import Runs
from .table import Row, Section

REGIME = "middle"
DROP = 0.1
UNIFORM_MEAN = CONCURRENCY / (STATUS_LIMIT[0] / STATUS_LIMIT[1]) / 2


def _mean(values: list[float]) -> float:
    return stats.mean(values) if values else float("nan")


def _clean_rows(run: RegimeRun) -> list[Row]:
    delays = run.detection_delays
    limit = 0.05 * UNIFORM_MEAN
    return [
        Row.check(
            f"webhooks {REGIME}: detection",
            summary(run),
            f"mean <= {limit:.3f} s",
            bool(delays) and stats.mean(delays) <= limit,
        ),
        Row.check(
            f"webhooks {REGIME}: status requests per job",
            f"{run.status_per_job:.2f} ({run.arrivals.get('status', 0)} for {run.regime.jobs})",
            "<= 1.2",
            run.status_per_job <= 1.2,
        ),
        Row.check(
            f"webhooks {REGIME}: efficiency, ideal/actual",
            f"{run.shown_efficiency} (ideal {run.ideal:.2f} s / actual {run.wall:.2f} s, "
            f"{run.completed}/{run.regime.jobs} jobs)",
            ">= 0.98",
            run.efficiency >= 0.98 and run.completed == run.regime.jobs,
        ),
        Row(
            f"webhooks {REGIME}: detection at the receiver's 2xx",
            f"mean {_mean(run.acknowledged_delays):.3f} s",
        ),
    ]


def _lossy_rows(run: RegimeRun) -> list[Row]:
    delays = run.detection_delays
    limit = 0.3 * UNIFORM_MEAN
    lost = run.unannounced_delays
    return [
        Row.check(
            f"webhooks {REGIME}, {DROP:.0%} dropped: jobs completed",
            f"{run.completed}/{run.regime.jobs}",
            f"{run.regime.jobs}/{run.regime.jobs}",
            run.completed == run.regime.jobs,
        ),
        Row.check(
            f"webhooks {REGIME}, {DROP:.0%} dropped: detection",
            summary(run),
            f"mean <= {limit:.3f} s",
            bool(delays) and stats.mean(delays) <= limit,
        ),
        Row(
            f"webhooks {REGIME}, {DROP:.0%} dropped: the unannounced ones",
            f"{len(lost)} found by polls, mean {_mean(lost):.2f} s after their finish; "
            f"efficiency {run.shown_efficiency}",
        ),
    ]


def measure(runs: Runs) -> Section:
    section = Section("webhooks")
    section.rows.extend(_clean_rows(runs.hooked(REGIME, 0.0)))
    section.rows.extend(_lossy_rows(runs.hooked(REGIME, DROP)))
    section.notes.append(
        "Webhooks: the middle regime with --webhook-url/--webhook-listen on loopback; the "
        "sandbox (in a thread of the bench process) POSTs each webhook at its prediction's "
        "finish. Detection: finish to the first webhook sent that the receiver answered 2xx, "
        "or to the first status answer showing it, whichever came first: both measured where "
        "the sandbox emits the news, as for polling. 'At the receiver's 2xx' adds the trip and "
        "the receiver's answer (on the engine's event loop, which also syncs the queue to "
        f"disk before each /run). Targets from uniform polling's {UNIFORM_MEAN:g} s "
        "(concurrency / status rate / 2)."
    )
    return section


__all__ = ["measure"]
