"""Run the orchestrator's Engine on a regime, against an in-thread time-scaled sandbox."""

from __future__ import annotations

import logging
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import anyio

from orchestrator.config import Settings
from orchestrator.engine import Engine
from orchestrator.models import JobState
from orchestrator.sandbox import Faults, SandboxServer
from orchestrator.store import Store

from .oracle import ideal_makespan
from .regimes import CONCURRENCY, Regime, RegimeRun

log = logging.getLogger("bench")
T = TypeVar("T")
BATCH = "bench"


def time_budget(regime: Regime) -> float:
    """Real seconds a run of the regime may take before it counts as hung.

    Three times the ideal makespan at mean latency, plus slack for a slow machine.
    """
    low, high = regime.latency
    mean = (low + high) / 2 * regime.scale
    estimate = ideal_makespan([mean] * regime.jobs, CONCURRENCY, regime.scaled_run_limit)
    return 3 * estimate + 30.0


async def bounded(fn: Callable[[], Awaitable[T]], seconds: float) -> T:
    with anyio.fail_after(seconds):
        return await fn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_ours(
    regime: Regime, *, polling: str = "adaptive", webhook_drop: float | None = None
) -> RegimeRun:
    """Queue the regime's jobs, run them to the end, and read what the sandbox saw.

    With `webhook_drop` (a rate, 0 for none), the run uses webhooks: the sandbox POSTs
    to the engine's receiver on loopback and drops that share of them."""
    hooks = webhook_drop is not None
    client = f"orchestrator ({'webhooks' if hooks else polling})"
    log.info("%s: %s regime, %d jobs, scale %g", client, regime.name, regime.jobs, regime.scale)
    config = regime.sandbox_config()
    if hooks:
        config = replace(config, faults=Faults(webhook_drop=webhook_drop or 0.0))
    with (
        tempfile.TemporaryDirectory(prefix="bench-ours-") as tmp,
        SandboxServer(config) as server,
    ):
        store = Store(Path(tmp) / "queue.db")
        try:
            store.ingest(BATCH, "bench", regime.job_specs())
            base = Settings(out_dir=Path(tmp) / "out", api_key=server.config.api_key)
            settings = replace(base, polling=polling).scaled(regime.scale)
            settings = replace(settings, base_url=server.base_url)
            if hooks:
                port = free_port()
                settings = replace(
                    settings,
                    webhook_url=f"http://127.0.0.1:{port}/hooks",
                    webhook_listen=("127.0.0.1", port),
                )
            timed_out = False
            started = time.monotonic()
            engine = Engine(store, settings, batches=[BATCH])
            try:
                anyio.run(bounded, engine.run, time_budget(regime))
            except TimeoutError:
                timed_out = True
            wall = time.monotonic() - started
            counts = store.state_counts([BATCH])
            reasons = dict(store.failure_reasons([BATCH]))
        finally:
            store.close()
        return RegimeRun.observed(
            server.state,
            client=client,
            regime=regime,
            wall=wall,
            completed=counts.get(JobState.COMPLETED, 0),
            timed_out=timed_out,
            failures=reasons,
        )


__all__ = ["bounded", "free_port", "run_ours", "time_budget"]
