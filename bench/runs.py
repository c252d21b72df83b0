"""Regime runs, each made once per bench process and shared by the parts that read it.

Part 1 reads the orchestrator's middle run, part 2 reads it again next to a
uniform-polling run, and part 3 sets it beside the SDK's: one run each.
"""

from __future__ import annotations

from .ours import run_ours
from .peer import run_peer
from .regimes import RegimeRun, regime


class Runs:
    def __init__(self, *, quick: bool):
        self.quick = quick
        self._ours: dict[tuple[str, str], RegimeRun] = {}
        self._peer: dict[str, tuple[RegimeRun, dict[str, list[float]]]] = {}

    def ours(self, name: str, polling: str = "adaptive") -> RegimeRun:
        key = (name, polling)
        if key not in self._ours:
            self._ours[key] = run_ours(regime(name, quick=self.quick), polling=polling)
        return self._ours[key]

    def hooked(self, name: str, drop: float) -> RegimeRun:
        """The orchestrator with webhooks, `drop` of them lost."""
        key = (name, f"webhooks-{drop:g}")
        if key not in self._ours:
            self._ours[key] = run_ours(regime(name, quick=self.quick), webhook_drop=drop)
        return self._ours[key]

    def peer(self, name: str) -> tuple[RegimeRun, dict[str, list[float]]]:
        """The SDK's run, and its retry sleeps (seconds) by endpoint."""
        if name not in self._peer:
            self._peer[name] = run_peer(regime(name, quick=self.quick))
        return self._peer[name]


__all__ = ["Runs"]
