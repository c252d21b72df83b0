"""Decisions about failures, as pure functions: which API answer leads to which
action, what may be retried, and when. Each is tested with a table."""

from __future__ import annotations

import enum
import random

# Runtime error names, and whether another attempt can help: one list for the whole
# package (the API client reads KNOWN_ERRORS from here, the sandbox injects from it).
from .runtime_errors import KNOWN_ERRORS as KNOWN_ERRORS
from .runtime_errors import PERMANENT_ERRORS as PERMANENT_ERRORS
from .runtime_errors import RETRYABLE_ERRORS as RETRYABLE_ERRORS

# Failures the client itself declares; all of them may be retried.
LOST = "NotFound"  # the API no longer knows the prediction id
STUCK = "StuckPrediction"  # not terminal within the prediction timeout


class RunAction(enum.Enum):
    """What to do after `POST /run` answered with an error (or not at all)."""

    WAIT_AND_RESEND = "wait and resend"  # 429 rate limit: nothing was created
    HOLD_SUBMISSIONS = "hold every submission, then resend"  # 429 concurrency
    FAIL_JOB = "fail the job"  # 400: never resend it unchanged
    STOP_BAD_KEY = "stop the run: the key is wrong"  # 401
    STOP_NO_CREDITS = "stop submitting: out of credits"  # 402, 429 OutOfCredits
    REQUEUE_UNCERTAIN = "queue the job again, the attempt uncertain"  # no usable answer


class StatusAction(enum.Enum):
    """What to do after `GET /status` answered with an error (or not at all)."""

    PAUSE_POLLING = "pause polling as the server asks"  # 429
    PREDICTION_LOST = "fail the prediction (retryable)"  # 404: the id is unknown
    STOP_BAD_KEY = "stop the run: the key is wrong"  # 401
    BACK_OFF = "ask again after a backoff"  # 5xx, timeouts, unreadable answers


def on_run_error(status: int | None, name: str | None) -> RunAction:
    """The action for a `/run` error answer: HTTP status (None: no answer) and the
    API's error name. The table is in the API reference."""
    if status == 429 and name == "ConcurrencyLimitExceeded":
        return RunAction.HOLD_SUBMISSIONS
    if status == 402 or (status == 429 and name == "OutOfCredits"):
        return RunAction.STOP_NO_CREDITS
    if status == 429:
        return RunAction.WAIT_AND_RESEND
    if status == 401:
        return RunAction.STOP_BAD_KEY
    if status is None or status in (408, 409) or status >= 500:
        return RunAction.REQUEUE_UNCERTAIN
    return RunAction.FAIL_JOB  # 400 and any other 4xx: the request itself is wrong


def on_status_error(status: int | None) -> StatusAction:
    """The action for a `/status` error answer (None: no answer)."""
    if status == 429:
        return StatusAction.PAUSE_POLLING
    if status == 404:
        return StatusAction.PREDICTION_LOST
    if status == 401:
        return StatusAction.STOP_BAD_KEY
    return StatusAction.BACK_OFF


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


# The name a failed job goes by when no prediction failed: its `/run` was refused
# (400: the same request is refused again), or its outputs could not be saved.
REFUSED = "BadRequest"
DOWNLOAD_FAILED = "DownloadError"
# Failures that `orchestrator retry` leaves alone unless `--error` names them: the
# same inputs would fail the same way (and a moderation refusal may cost again).
NOT_RETRIED_BY_DEFAULT = PERMANENT_ERRORS | {REFUSED}


def failure_name(attempt_state: str | None, error_name: str | None, undelivered: bool) -> str:
    """What a failed job failed of, from its latest attempt: the prediction's error
    name, DownloadError when it completed but an output was not saved, BadRequest when
    `/run` was refused."""
    if undelivered:
        return DOWNLOAD_FAILED
    if error_name:
        return error_name
    return REFUSED if attempt_state == "rejected" else "Unknown"


def chosen_for_retry(name: str, named: frozenset[str] | None) -> bool:
    """Whether `orchestrator retry` runs a job that failed of `name` again: the names
    given with --error if any, else every failure but the permanent ones."""
    if named:
        return name in named
    return name not in NOT_RETRIED_BY_DEFAULT


def within_budget(cap: int | None, spent: int, in_flight_most: int, cost: int) -> bool:
    """Whether a prediction costing `cost` may start under a cap of `cap` credits.

    `spent` is what the batch has spent (charged net of refunds, and what uncertain
    attempts may have been charged); `in_flight_most` is the most that the predictions
    in flight can still add (the `/run` requests not yet answered). None: no cap.
    """
    if cap is None:
        return True
    return spent + in_flight_most + cost <= cap
