"""What the sandbox answers: an `Answer` per request, and the API's error bodies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to send, or a fault to enact instead."""

    status: int
    body: Mapping[str, Any] | bytes = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    drop: bool = False  # close the connection without a complete answer
    delay: float = 0.0  # real seconds to wait before answering

    def delayed(self, delay: float) -> Answer:
        """The same answer, sent `delay` real seconds late."""
        return replace(self, delay=delay) if delay else self


def error(status: int, name: str, message: str, headers: Mapping[str, str] | None = None) -> Answer:
    """An API-level error: {"error": name, "message": message}."""
    return Answer(status, {"error": name, "message": message}, headers or {})


def server_error(delay: float = 0.0) -> Answer:
    """500 InternalServerError, as the API answers a request it failed."""
    body = {"error": "InternalServerError", "message": "Internal server error."}
    return Answer(500, body, delay=delay)


def dropped(delay: float = 0.0) -> Answer:
    """A connection closed before a complete answer."""
    return Answer(500, drop=True, delay=delay)


UNAUTHORIZED = error(401, "UnauthorizedAccess", "Invalid or missing API key (Bearer token).")
