"""FASHN's runtime error names (a failed prediction's `error.name`) and whether another
attempt can help: the one list that the retry policy, the API client and the sandbox
read, so that they never disagree. Source: the API reference's table of runtime errors.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RuntimeErrorName:
    """One name a failed prediction can report."""

    name: str
    retryable: bool  # whether a new prediction of the same job can succeed
    meaning: str
    older_name_of: str | None = None  # set on a name the API replaced by this newer one


RUNTIME_ERRORS: tuple[RuntimeErrorName, ...] = (
    RuntimeErrorName("ImageLoadError", False, "an input image could not be loaded"),
    RuntimeErrorName("ContentModerationError", False, "moderation flagged an input"),
    RuntimeErrorName(
        "NSFWError", False, "moderation flagged an input", older_name_of="ContentModerationError"
    ),
    RuntimeErrorName("PoseError", False, "no body pose found (try-on)"),
    RuntimeErrorName("InputValidationError", False, "bad parameter combination"),
    RuntimeErrorName(
        "PhotoTypeError", False, "bad parameter combination", older_name_of="InputValidationError"
    ),
    RuntimeErrorName("PipelineError", True, "internal pipeline failure (retry, no charge)"),
    # Not retryable unless the inputs change, and a retry resends the same inputs.
    RuntimeErrorName("ThirdPartyError", False, "an external processor refused the inputs"),
    RuntimeErrorName("3rdPartyProviderError", True, "an external provider failed"),
    RuntimeErrorName("InternalServerError", True, "general server failure"),
    RuntimeErrorName("PollingTimeout", True, "timed out before completion"),
)

RETRYABLE_ERRORS = frozenset(e.name for e in RUNTIME_ERRORS if e.retryable)
PERMANENT_ERRORS = frozenset(e.name for e in RUNTIME_ERRORS if not e.retryable)
KNOWN_ERRORS = RETRYABLE_ERRORS | PERMANENT_ERRORS

__all__ = [
    "KNOWN_ERRORS",
    "PERMANENT_ERRORS",
    "RETRYABLE_ERRORS",
    "RUNTIME_ERRORS",
    "RuntimeErrorName",
]
