"""Part 3, the peer side by side: the official SDK as a typical user drives it, vs ours.

Same sandbox configuration, seed and jobs, so the same latencies; each client gets a
fresh sandbox, one after the other. Each efficiency is against the oracle on that
client's own accepted predictions.
"""

from __future__ import annotations

from . import stats
from .regimes import RegimeRun
from .runs import Runs
from .table import Row, Section


def _detection(run: RegimeRun) -> str:
    delays = run.detection_delays
    return f"{stats.mean(delays):.2f} s" if delays else "-"


def _failed(run: RegimeRun) -> str:
    if not run.failed:
        return "0"
    reasons = ", ".join(f"{name} {n}" for name, n in sorted(run.failures.items()))
    return f"{run.failed} ({reasons})" if reasons else str(run.failed)


def side_by_side(ours: RegimeRun, sdk: RegimeRun) -> list[Row]:
    """One row per figure: 'ours / SDK'."""
    name = f"peer {ours.regime.name}"
    pairs = {
        "efficiency vs oracle": (ours.shown_efficiency, sdk.shown_efficiency),
        "detection mean": (_detection(ours), _detection(sdk)),
        "status requests/job": (f"{ours.status_per_job:.1f}", f"{sdk.status_per_job:.1f}"),
        "429s": (str(ours.rate_limited), str(sdk.rate_limited)),
        "failed jobs": (_failed(ours), _failed(sdk)),
        "completed, charged, never collected": (str(ours.uncollected), str(sdk.uncollected)),
        "wall time": (f"{ours.wall:.1f} s", f"{sdk.wall:.1f} s"),
    }
    return [Row(f"{name}: {what} (ours / SDK)", f"{a} / {b}") for what, (a, b) in pairs.items()]


def retry_note(regime: str, sleeps: dict[str, list[float]], sdk: RegimeRun) -> str:
    slept = {e: (len(s), sum(s), max(s)) for e, s in sleeps.items() if s}
    told = ", ".join(
        f"{e} {n} retries, {total:.0f} s slept in all, longest {most:.2f} s"
        for e, (n, total, most) in sorted(slept.items())
    )
    return f"SDK retries ({regime}): {told or 'none'}; server refusals {sdk.rejections}."


def measure(runs: Runs, regimes: tuple[str, ...]) -> Section:
    section = Section("peer")
    for name in regimes:
        sdk, sleeps = runs.peer(name)
        section.rows.extend(side_by_side(runs.ours(name), sdk))
        section.notes.append(retry_note(name, sleeps, sdk))
    section.notes.append(
        "Peer: asyncio.Semaphore(6) around AsyncFashn.predictions.subscribe(poll_interval="
        "1000 ms x scale), default max_retries (3) and subscribe timeout (300 s, real), then "
        "each output fetched with httpx; a job whose subscribe raised or did not complete "
        "counts as failed. Its efficiency is over the predictions it got accepted. "
        "Six subscribes poll 6 times per (scaled) second against a budget of 5: status 429s; "
        "once 3 retries are spent, subscribe raises while the prediction runs on (charged, "
        "never collected), its slot is refilled at once, and the extra /run requests meet the "
        "in-flight cap and the run window, where refused requests count too."
    )
    section.notes.append(
        "SDK retry delays: every 429 carries the sandbox's scaled Retry-After and "
        "retry-after-ms, which the SDK obeys (up to 60 s), so its waits were scaled like the "
        "rest; its unscaled 2-6 s backoff applies only to answers without Retry-After (5xx, "
        "timeouts), and these sandboxes inject none. Its constructor offers max_retries, "
        "timeout and http_client but no retry-delay option: no scaled-delay variant is run."
    )
    return section


__all__ = ["measure", "side_by_side"]
