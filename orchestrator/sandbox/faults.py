"""Fault injection: seeded draws decide which predictions fail and which requests get a
500, a dropped connection, a slow answer or a lost /run answer; markers in a job's own
inputs force its fate.

Draws are fixed by the seed and what they are about (job fingerprint and n-th
submission, or endpoint, request key and n-th request with that key), never by the
order of requests: the same jobs in any order meet the same faults.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Mapping
from typing import Any

from .answers import Answer, dropped, server_error
from .config import SandboxConfig

# Markers a job can carry in any string input to force its own fate (see README).
_FAIL_MARK = re.compile(r"sandbox:fail=([A-Za-z0-9]+)(?::(\d+))?")
_SECONDS_MARK = re.compile(r"sandbox:seconds=(\d+(?:\.\d*)?)")


def draw(seed: int, *parts: object) -> float:
    """A uniform number in [0, 1) fixed by the seed and `parts`, independent of order."""
    text = "|".join(map(str, (seed, *parts)))
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def markers(inputs: Mapping[str, Any], submission: int) -> tuple[str | None, float | None]:
    """A job's own `sandbox:fail=Name[:k]` and `sandbox:seconds=S` markers, if any.

    fail=Name fails every submission of the job; fail=Name:k only the first k,
    so that a retry succeeds. seconds=S fixes its lifetime (unscaled).
    """
    error: str | None = None
    seconds: float | None = None
    for value in inputs.values():
        if not isinstance(value, str) or "sandbox:" not in value:
            continue
        fail = _FAIL_MARK.search(value)
        if fail and (fail.group(2) is None or submission < int(fail.group(2))):
            error = fail.group(1)
        wait = _SECONDS_MARK.search(value)
        if wait:
            seconds = float(wait.group(1))
    return error, seconds


class FaultInjector:
    """Draws faults as `config.faults` says, and counts the ones it injected."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config  # read live: a test may swap it on a running sandbox
        self.injected: Counter[str] = Counter()  # by kind: http_500, drop, slow, lost_answer
        self._requests: Counter[tuple[str, str]] = Counter()

    def draw(self, *parts: object) -> float:
        return draw(self.config.seed, *parts)

    def request_index(self, endpoint: str, key: str) -> int | None:
        """n-th request with this key, counted only while a fault could hit it."""
        faults = self.config.faults
        active = (
            faults.rate("http_500", endpoint)
            or faults.rate("drop", endpoint)
            or faults.rate("slow", endpoint)
            or (endpoint == "run" and faults.lost_answer)
        )
        if not active:
            return None
        index = self._requests[endpoint, key]
        self._requests[endpoint, key] = index + 1
        return index

    def http_fault(
        self, endpoint: str, key: str, index: int | None = None
    ) -> tuple[Answer | None, float]:
        """(a 500 or a drop to answer instead, None) or (None, seconds to delay the answer).

        `index` is the request's `request_index` when the caller already took it.
        """
        if index is None:
            index = self.request_index(endpoint, key)
        if index is None:
            return None, 0.0
        faults = self.config.faults
        if self.draw("500", endpoint, key, index) < faults.rate("http_500", endpoint):
            self.injected["http_500"] += 1
            return server_error(), 0.0
        if self.draw("drop", endpoint, key, index) < faults.rate("drop", endpoint):
            self.injected["drop"] += 1
            return dropped(), 0.0
        if self.draw("slow", endpoint, key, index) < faults.rate("slow", endpoint):
            self.injected["slow"] += 1
            low, high = faults.slow_seconds
            seconds = low + (high - low) * self.draw("slow_for", endpoint, key, index)
            return None, self.config.scaled(seconds)
        return None, 0.0

    def lost_answer(self, key: str, index: int | None, delay: float) -> Answer | None:
        """What the client gets instead of an accepted /run's answer (a 500 or a drop)
        when the answer is lost; None when it is not."""
        faults = self.config.faults
        if index is None or self.draw("lost", "run", key, index) >= faults.lost_answer:
            return None
        self.injected["lost_answer"] += 1
        if self.draw("lost_drop", "run", key, index) < faults.lost_answer_drop:
            return dropped(delay)
        return server_error(delay)

    def fate(self, model_name: str, key: str, n: int) -> str | None:
        """The error the n-th submission of job `key` fails with, or None if it completes."""
        faults = self.config.faults
        if model_name in faults.fail_models:
            return faults.fail_models[model_name]
        if self.draw("permanent", key, n) < faults.permanent_failure:
            names = faults.permanent_errors
            return names[int(self.draw("permanent_name", key, n) * len(names))]
        if self.draw("failure", key, n) < faults.failure:
            names = faults.retryable_errors
            return names[int(self.draw("failure_name", key, n) * len(names))]
        return None

    def error_as_string(self, key: str, n: int) -> bool:
        """Whether the n-th submission of job `key` reports its error as a plain string."""
        return self.draw("as_string", key, n) < self.config.faults.error_as_string
