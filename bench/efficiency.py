"""Part 1, efficiency against the oracle: ideal makespan / actual, in three regimes.

The ideal is `oracle.ideal_makespan` over the latencies the sandbox drew, in the
order it accepted the predictions, under the same cap (6) and the same scaled run
window (50 per 60 s). The actual makespan runs from the Engine's construction to the
return of Engine.run(), downloads included.
"""

from __future__ import annotations

from .regimes import REGIMES, RegimeRun
from .runs import Runs
from .table import Row, Section

ORDER = ("long", "short", "middle")


def rows_for(run: RegimeRun) -> list[Row]:
    regime = run.regime
    value = (
        f"{run.shown_efficiency} (ideal {run.ideal:.2f} s / actual {run.wall:.2f} s, "
        f"{run.completed}/{regime.jobs} jobs)"
    )
    if run.timed_out:
        value = f"timed out after {run.wall:.0f} s"
    ok = run.efficiency >= regime.target and run.completed == regime.jobs
    name = f"efficiency {regime.name} ({regime.binds}-bound), ideal/actual"
    bound = f"{regime.latency[0]:g}-{regime.latency[1]:g} s at scale {regime.scale:g}"
    return [
        Row.check(name, value, f">= {regime.target:.2f}", ok),
        Row.check(
            f"efficiency {regime.name}: 429s ({bound})",
            f"{run.rate_limited} (max /run in window {run.max_in_window['run']}, "
            f"in flight {run.max_in_flight})",
            "0",
            run.rate_limited == 0,
        ),
    ]


def measure(runs: Runs) -> Section:
    section = Section("efficiency")
    for name in ORDER:
        section.rows.extend(rows_for(runs.ours(name)))
    scales = ", ".join(f"{n} {REGIMES[n].scale:g}" for n in ORDER)
    section.notes.append(
        "Efficiency: actual makespan = Engine() construction to the return of Engine.run(), "
        "downloads and the durable store included; ideal = zero-overhead client with the "
        "latencies the sandbox drew, same start order, cap 6, /run window 50 per 60 s "
        f"(scaled). Sandbox in a thread of the bench process. Time scales: {scales}; seconds "
        "in the table are real (scaled) seconds."
    )
    return section


__all__ = ["measure", "rows_for"]
