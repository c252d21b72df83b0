"""Retry decisions and backoff."""

from __future__ import annotations

import random

import anyio
import httpx
import pytest

from orchestrator.api import FashnClient, Transient
from orchestrator.policy import (
    RunAction,
    StatusAction,
    backoff,
    on_run_error,
    on_status_error,
    should_retry,
)


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


@pytest.mark.parametrize(
    ("status", "name", "action"),
    [
        (400, "BadRequest", RunAction.FAIL_JOB),
        (422, None, RunAction.FAIL_JOB),
        (401, "UnauthorizedAccess", RunAction.STOP_BAD_KEY),
        (402, "InsufficientCredits", RunAction.STOP_NO_CREDITS),
        (429, "OutOfCredits", RunAction.STOP_NO_CREDITS),
        (429, "RateLimitExceeded", RunAction.WAIT_AND_RESEND),
        (429, None, RunAction.WAIT_AND_RESEND),
        (429, "ConcurrencyLimitExceeded", RunAction.HOLD_SUBMISSIONS),
        (500, "InternalServerError", RunAction.REQUEUE_UNCERTAIN),
        (503, None, RunAction.REQUEUE_UNCERTAIN),
        (408, None, RunAction.REQUEUE_UNCERTAIN),
        (None, None, RunAction.REQUEUE_UNCERTAIN),  # timeout, dropped connection
    ],
)
def test_on_run_error(status: int | None, name: str | None, action: RunAction) -> None:
    """Each /run error answer leads to the action the API reference gives it."""
    assert on_run_error(status, name) is action


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (429, StatusAction.PAUSE_POLLING),
        (404, StatusAction.PREDICTION_LOST),
        (401, StatusAction.STOP_BAD_KEY),
        (500, StatusAction.BACK_OFF),
        (None, StatusAction.BACK_OFF),
    ],
)
def test_on_status_error(status: int | None, action: StatusAction) -> None:
    """Each /status error answer leads to its action."""
    assert on_status_error(status) is action


@pytest.mark.parametrize(
    "error", [httpx.DecodingError("bad gzip"), httpx.TooManyRedirects("loop"), httpx.ReadError("x")]
)
def test_any_http_failure_of_the_api_is_transient(error: Exception) -> None:
    """Errors httpx raises that are not transport errors still mean "no usable
    answer" (Transient: the run backs off), never an unexpected exception."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise error

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
            await FashnClient(http, "https://api.example/v1", "key-123456789").run("m", {})

    with pytest.raises(Transient, match=type(error).__name__):
        anyio.run(main)
