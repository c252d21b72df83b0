"""What the acceptance tests share: a sandbox with a secret-looking key."""

from __future__ import annotations

import pytest

from orchestrator.sandbox import SandboxServer

SECRET = "sk-live-SECRET-0123456789abcdef"
SCALE = 0.02


@pytest.fixture
def api(sandbox) -> tuple[SandboxServer, dict[str, str]]:  # type: ignore[no-untyped-def]
    """A sandbox with a secret-looking key, and the environment that points at it."""
    server = sandbox(api_key=SECRET, latency={"*": (10.0, 20.0)}, time_scale=SCALE)
    return server, {"FASHN_API_KEY": SECRET, "FASHN_BASE_URL": server.base_url}
