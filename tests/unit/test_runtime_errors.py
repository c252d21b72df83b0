"""One list of FASHN runtime error names: the retry policy, the API client and the
sandbox read it, so what the sandbox injects is what the policy knows how to treat."""

from __future__ import annotations

import pytest

from orchestrator import policy, runtime_errors, sandbox
from orchestrator.api import _runtime_error
from orchestrator.sandbox import Faults
from orchestrator.sandbox.predictions import ERROR_MESSAGES

OLDER_NAMES = {e.name for e in runtime_errors.RUNTIME_ERRORS if e.older_name_of}


def test_policy_reads_the_one_list() -> None:
    """policy's sets are the runtime_errors table's, split by retryability."""
    table = runtime_errors.RUNTIME_ERRORS
    retryable = {e.name for e in table if e.retryable}
    permanent = {e.name for e in table if not e.retryable}
    assert retryable == policy.RETRYABLE_ERRORS
    assert permanent == policy.PERMANENT_ERRORS
    assert not policy.RETRYABLE_ERRORS & policy.PERMANENT_ERRORS
    assert policy.KNOWN_ERRORS == policy.RETRYABLE_ERRORS | policy.PERMANENT_ERRORS
    assert len(table) == len(retryable | permanent)  # no name twice


def test_sandbox_and_policy_agree() -> None:
    """Every name the sandbox injects by default is one the policy classes the same way;
    only the older names (NSFWError, PhotoTypeError) are left out, on purpose."""
    assert set(sandbox.RETRYABLE_ERRORS) <= policy.RETRYABLE_ERRORS
    assert set(sandbox.PERMANENT_ERRORS) <= policy.PERMANENT_ERRORS
    injected = set(sandbox.RETRYABLE_ERRORS) | set(sandbox.PERMANENT_ERRORS)
    assert policy.KNOWN_ERRORS - injected == OLDER_NAMES == {"NSFWError", "PhotoTypeError"}
    assert "PollingTimeout" in sandbox.RETRYABLE_ERRORS
    faults = Faults()
    assert (faults.retryable_errors, faults.permanent_errors) == (
        sandbox.RETRYABLE_ERRORS,
        sandbox.PERMANENT_ERRORS,
    )


@pytest.mark.parametrize("name", sorted(sandbox.RETRYABLE_ERRORS + sandbox.PERMANENT_ERRORS))
def test_each_injected_failure_is_treated_as_its_list_says(name: str) -> None:
    """A sandbox failure with this name is retried by the policy iff it is retryable,
    the API client recognises it in the spec's string form, and it has its own message."""
    assert policy.should_retry(name, 0, 3) is (name in sandbox.RETRYABLE_ERRORS)
    assert _runtime_error(f"{name}: something went wrong") == (name, "something went wrong")
    assert name in ERROR_MESSAGES


def test_older_names_point_at_a_current_name_of_the_same_kind() -> None:
    """NSFWError and PhotoTypeError are retried exactly like the names that replaced them."""
    table = {e.name: e for e in runtime_errors.RUNTIME_ERRORS}
    for name in OLDER_NAMES:
        newer = table[table[name].older_name_of or ""]
        assert newer.older_name_of is None and newer.retryable == table[name].retryable
