"""Decisions about failures, as pure functions: what may be retried, and when."""

from __future__ import annotations

import random

# Runtime error names, and whether another attempt can help (from the API reference).
RETRYABLE_ERRORS = frozenset(
    {"PipelineError", "3rdPartyProviderError", "InternalServerError", "PollingTimeout"}
)
PERMANENT_ERRORS = frozenset(
    {
        "ImageLoadError",
        "ContentModerationError",
        "NSFWError",
        "PoseError",
        "InputValidationError",
        "PhotoTypeError",
        "ThirdPartyError",
    }
)
KNOWN_ERRORS = RETRYABLE_ERRORS | PERMANENT_ERRORS

# Failures the client itself declares; all of them may be retried.
LOST = "NotFound"  # the API no longer knows the prediction id
STUCK = "StuckPrediction"  # not terminal within the prediction timeout


def should_retry(error_name: str | None, failures_so_far: int, max_attempts: int) -> bool:
    """Whether a job whose prediction just failed gets another attempt.

    `failures_so_far` counts earlier failed predictions of the job, not this one.
    Unknown names are retried too, within the same bound, since FASHN adds names.
    """
    if error_name in PERMANENT_ERRORS:
        return False
    return failures_so_far + 1 < max_attempts


def backoff(tries: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Delay before try number `tries + 1`: exponential, capped, with full jitter.

    Full jitter (uniform between half and the whole step) keeps clients that
    failed together from coming back together.
    """
    step = min(cap, base * 2.0 ** max(0, tries))
    r = (rng or random).random()
    return step * (0.5 + 0.5 * r)
