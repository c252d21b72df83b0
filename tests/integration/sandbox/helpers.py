"""Helpers for the sandbox tests: a hand-moved clock, valid jobs, an API client."""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator.catalog import MODELS
from orchestrator.sandbox import SandboxServer

API_KEY = "sandbox"
AUTH = {"Authorization": f"Bearer {API_KEY}"}


class ManualClock:
    """A clock that only moves when told: the server's time, frozen between requests."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def example_inputs(model_name: str, **extra: Any) -> dict[str, Any]:
    """The smallest inputs the catalog says the model accepts, plus `extra`."""
    spec = MODELS[model_name]
    inputs: dict[str, Any] = {}
    for name in spec.required:
        if name in spec.image_inputs:
            inputs[name] = f"https://images.example.com/{name}.png"
        elif name in spec.choices:
            inputs[name] = spec.choices[name][0]
        else:
            inputs[name] = "a model in a red dress"
    inputs.update(extra)
    return inputs


def job(model_name: str = "background-remove", **extra: Any) -> dict[str, Any]:
    """A /run body."""
    return {"model_name": model_name, "inputs": example_inputs(model_name, **extra)}


def api(server: SandboxServer, key: str = API_KEY) -> httpx.Client:
    """An httpx client on the server's /v1 root, authenticated with `key`."""
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)
