"""A local FASHN API stand-in over real HTTP: limits, credits, lifecycles, faults, inspection.

with SandboxServer(SandboxConfig(time_scale=0.01)) as server:
    client = Fashn(api_key="sandbox", base_url=server.url)
    ...
    server.state.max_in_window("run")
"""

from .config import ENDPOINTS, PERMANENT_ERRORS, RETRYABLE_ERRORS, Faults, Limits, SandboxConfig
from .server import SandboxServer
from .state import Answer, PredictionRecord, SandboxState, max_in_window

__all__ = [
    "ENDPOINTS",
    "PERMANENT_ERRORS",
    "RETRYABLE_ERRORS",
    "Answer",
    "Faults",
    "Limits",
    "PredictionRecord",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "max_in_window",
]
