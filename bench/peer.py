"""The peer: what a typical user of the official `fashn` SDK writes for a batch.

Six `subscribe()` calls at a time under an `asyncio.Semaphore(6)`, each polling
every second (scaled like the sandbox), then each output downloaded with httpx.
The SDK is used as shipped: default retries (3), default timeouts. Its retry
sleeps are observed through its own log records ("Retrying request to ... in
... seconds"), not patched.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

import httpx
from fashn import AsyncFashn

from orchestrator.models import JobSpec
from orchestrator.sandbox import SandboxServer

from .ours import time_budget
from .regimes import CONCURRENCY, Regime, RegimeRun

log = logging.getLogger("bench")
SDK_LOGGER = "fashn._base_client"
SDK_POLL_MS = 1000  # subscribe()'s default poll interval


class JobFailed(Exception):
    """subscribe() returned a terminal status other than completed."""


class RetrySleeps(logging.Handler):
    """Collects the SDK's retry sleeps (seconds) by endpoint from its log records."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.sleeps: dict[str, list[float]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not record.getMessage().startswith("Retrying request to") or len(record.args or ()) != 2:
            return
        url, seconds = cast(tuple[Any, Any], record.args)
        endpoint = "run" if str(url).rstrip("/").endswith("/run") else "status"
        self.sleeps.setdefault(endpoint, []).append(float(seconds))


def _reason(exc: BaseException) -> str:
    """The exception's type, and the endpoint whose answer raised it when it has one."""
    response = getattr(exc, "response", None)
    path = response.request.url.path if isinstance(response, httpx.Response) else ""
    endpoint = "/run" if path.endswith("/run") else "/status" if "/status/" in path else ""
    return f"{type(exc).__name__} on {endpoint}" if endpoint else type(exc).__name__


async def _one(
    client: AsyncFashn,
    http: httpx.AsyncClient,
    gate: asyncio.Semaphore,
    spec: JobSpec,
    poll_ms: int,
    out: Path,
) -> None:
    async with gate:
        result = await client.predictions.subscribe(
            model_name=cast(Any, spec.model_name),
            inputs=cast(Any, dict(spec.inputs)),
            poll_interval=poll_ms,
        )
    if result.status != "completed" or not result.output:
        raise JobFailed(f"{result.status}: {result.error}")
    for index, url in enumerate(result.output):
        answer = await http.get(url)
        answer.raise_for_status()
        (out / f"{spec.id}-{index}.png").write_bytes(answer.content)


async def _batch(server: SandboxServer, specs: list[JobSpec], poll_ms: int, out: Path) -> list[Any]:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with (
        AsyncFashn(api_key=server.config.api_key, base_url=server.url) as client,
        httpx.AsyncClient() as http,
    ):
        jobs = (_one(client, http, gate, spec, poll_ms, out) for spec in specs)
        return await asyncio.gather(*jobs, return_exceptions=True)


def run_peer(regime: Regime) -> tuple[RegimeRun, dict[str, list[float]]]:
    """Run the regime's jobs with the SDK; also return its retry sleeps by endpoint."""
    client = "fashn SDK"
    log.info("%s: %s regime, %d jobs, scale %g", client, regime.name, regime.jobs, regime.scale)
    poll_ms = max(1, round(SDK_POLL_MS * regime.scale))
    sdk_log = logging.getLogger(SDK_LOGGER)
    level, propagate, sleeps = sdk_log.level, sdk_log.propagate, RetrySleeps()
    # The retry records are INFO: collect them, and keep them off the console.
    sdk_log.setLevel(logging.INFO)
    sdk_log.propagate = False
    sdk_log.addHandler(sleeps)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp,
            SandboxServer(regime.sandbox_config()) as server,
        ):
            started = time.monotonic()
            timed_out = False
            try:
                results = asyncio.run(
                    asyncio.wait_for(
                        _batch(server, regime.job_specs(), poll_ms, Path(tmp)),
                        # Its 429 retries wait out whole windows: more room than ours.
                        2 * time_budget(regime),
                    )
                )
            except TimeoutError:
                timed_out, results = True, []
            wall = time.monotonic() - started
            failures = Counter(_reason(r) for r in results if isinstance(r, BaseException))
            run = RegimeRun.observed(
                server.state,
                client=client,
                regime=regime,
                wall=wall,
                completed=len(results) - sum(failures.values()),
                timed_out=timed_out,
                failures=dict(failures),
            )
    finally:
        sdk_log.removeHandler(sleeps)
        sdk_log.setLevel(level)
        sdk_log.propagate = propagate
    return run, sleeps.sleeps


__all__ = ["run_peer"]
