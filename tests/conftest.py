"""Shared fixtures: a real sandbox over loopback, a real SQLite file, a scaled clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config import Settings
from orchestrator.engine import Engine, RunOutcome
from orchestrator.models import JobSpec, Location
from orchestrator.sandbox import Limits, SandboxConfig, SandboxServer
from orchestrator.store import Store

# Sandbox time runs 50x faster than the API's: a 60 s window lasts 1.2 s.
SCALE = 0.02


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "queue.db")


@pytest.fixture
def sandbox() -> Iterator[Callable[..., AbstractContextManager[SandboxServer]]]:
    """Start sandboxes with a given configuration; each is stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**config: Any) -> SandboxServer:
        config.setdefault("time_scale", SCALE)
        server = SandboxServer(SandboxConfig(**config))
        server.start()
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        server.stop()


def settings_for(server: SandboxServer, out: Path, **overrides: Any) -> Settings:
    """The orchestrator's defaults, in the sandbox's scaled time, pointed at it."""
    scale = server.state.config.time_scale
    base = Settings(out_dir=out, api_key=server.state.config.api_key).scaled(scale)
    return replace(base, base_url=server.base_url, **overrides)


def jobs(
    n: int, model: str = "background-remove", prefix: str = "job", **inputs: Any
) -> list[JobSpec]:
    """`n` distinct valid jobs of one model."""
    base = {"background-remove": {"image": "https://cdn.example/{i}.png"}}.get(model, {})
    specs = []
    for i in range(n):
        values = {
            k: v.format(i=i) if isinstance(v, str) else v for k, v in {**base, **inputs}.items()
        }
        specs.append(JobSpec(f"{prefix}-{i}", model, values, location=Location("test.yaml", i + 2)))
    return specs


def run(
    store: Store, settings: Settings, batches: list[str] | None = None, **kwargs: Any
) -> RunOutcome:
    return anyio.run(Engine(store, settings, batches=batches, **kwargs).run)


__all__ = ["SCALE", "Limits", "jobs", "run", "settings_for"]
