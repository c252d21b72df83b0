"""Retry decisions and backoff."""

from __future__ import annotations

import random

import pytest

from orchestrator.policy import backoff, should_retry


@pytest.mark.parametrize(
    ("name", "failures", "max_attempts", "expected"),
    [
        ("PipelineError", 0, 3, True),
        ("PipelineError", 1, 3, True),
        ("PipelineError", 2, 3, False),  # the third failure is final
        ("3rdPartyProviderError", 0, 3, True),
        ("InternalServerError", 0, 1, False),
        ("PollingTimeout", 0, 3, True),
        ("ImageLoadError", 0, 3, False),
        ("ContentModerationError", 0, 3, False),
        ("NSFWError", 0, 3, False),
        ("PoseError", 0, 3, False),
        ("InputValidationError", 0, 3, False),
        ("PhotoTypeError", 0, 3, False),
        ("ThirdPartyError", 0, 3, False),
        ("SomethingNew", 0, 3, True),  # unknown: retried within the bound
        ("SomethingNew", 2, 3, False),
        ("NotFound", 0, 3, True),
        ("StuckPrediction", 0, 3, True),
    ],
)
def test_should_retry(name: str, failures: int, max_attempts: int, expected: bool) -> None:
    """Retryable names are retried up to max attempts; permanent ones never."""
    assert should_retry(name, failures, max_attempts) is expected


@pytest.mark.parametrize(
    ("tries", "low", "high"), [(0, 0.5, 1.0), (1, 1.0, 2.0), (3, 4.0, 8.0), (20, 30.0, 60.0)]
)
def test_backoff_grows_and_is_capped(tries: int, low: float, high: float) -> None:
    """Exponential from the base, capped, jittered within the upper half of the step."""
    rng = random.Random(tries)
    for _ in range(50):
        assert low <= backoff(tries, base=1.0, cap=60.0, rng=rng) <= high
