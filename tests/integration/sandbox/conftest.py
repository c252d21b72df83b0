"""Fixtures for the sandbox tests: servers on loopback and a hand-moved clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orchestrator.sandbox import SandboxConfig, SandboxServer

from .helpers import ManualClock

StartSandbox = Callable[..., SandboxServer]


@pytest.fixture
def sandbox() -> Iterator[StartSandbox]:
    """Start sandboxes for one test: sandbox(clock=..., **SandboxConfig fields); stopped after."""
    servers: list[SandboxServer] = []

    def start(clock: Callable[[], float] | None = None, **fields: Any) -> SandboxServer:
        config = SandboxConfig(**fields)
        server = SandboxServer(config, clock=clock) if clock else SandboxServer(config)
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def clock() -> ManualClock:
    """A hand-moved clock starting at t=1000."""
    return ManualClock()
