"""Accounts: whose API key runs a job. A job names its account (default `default`);
the key comes only from the environment (`FASHN_API_KEY` for `default`,
`FASHN_API_KEY_<NAME>` otherwise, NAME upper-cased with `-` as `_`) and is never
stored: the queue keeps the account's name alone."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Final

from .config import API_KEY_ENV, check_api_key
from .errors import UsageError

DEFAULT_ACCOUNT: Final = "default"
ACCOUNT_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def bad_account(value: Any) -> str:
    return (
        f"account must be a name of 1-64 letters, digits, '_' or '-' (its key is read from "
        f"FASHN_API_KEY_<NAME>); got {value!r}"
    )


def key_variable(account: str) -> str:
    """The environment variable that holds the account's key."""
    if account == DEFAULT_ACCOUNT:
        return API_KEY_ENV
    return f"{API_KEY_ENV}_{account.upper().replace('-', '_')}"


def raw_key(account: str, environ: Mapping[str, str] | None = None) -> str:
    """The account's key exactly as set ("" when not set): what logs must redact."""
    return (os.environ if environ is None else environ).get(key_variable(account), "")


def account_key(account: str, environ: Mapping[str, str] | None = None) -> str:
    """The account's key, stripped of surrounding whitespace and checked; UsageError
    (naming the variable, never the value) when it is missing or unprintable."""
    variable = key_variable(account)
    key = raw_key(account, environ).strip()
    if not key:
        raise UsageError(
            f"account {account!r} has jobs but {variable} is not set: export its API key "
            "(or run the worker with --account for the other accounts only)"
        )
    try:
        check_api_key(key)
    except UsageError as exc:
        raise UsageError(str(exc).replace(API_KEY_ENV, variable, 1)) from None
    return key


def every_raw_key(environ: Mapping[str, str] | None = None) -> list[str]:
    """Every account key set in the environment, as set: what logs must redact."""
    env = os.environ if environ is None else environ
    return [
        v for k, v in env.items() if (k == API_KEY_ENV or k.startswith(API_KEY_ENV + "_")) and v
    ]
