"""Run settings: what the flags, the environment and the defaults decide."""

from __future__ import annotations

import logging
import math
import os
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UsageError

DEFAULT_BASE_URL = "https://api.fashn.ai/v1"
DEFAULT_DB = "orchestrator.db"
DEFAULT_OUT = "outputs"
API_KEY_ENV = "FASHN_API_KEY"

log = logging.getLogger("orchestrator")


def raw_api_key(environ: Mapping[str, str] | None = None) -> str:
    """FASHN_API_KEY exactly as set: what must be redacted wherever it could surface."""
    return (os.environ if environ is None else environ).get(API_KEY_ENV, "")


def read_api_key(environ: Mapping[str, str] | None = None) -> str:
    """The API key to send: FASHN_API_KEY without the whitespace around it.

    A CRLF .env file or a pasted newline leaves a stray CR/LF that httpx refuses to
    send, quoting the whole header in its error; so it is stripped (with a warning), and
    a key with any other unprintable character is refused before any request.
    """
    raw = raw_api_key(environ)
    key = raw.strip()
    if key != raw:
        log.warning(
            "%s had surrounding whitespace (a CRLF .env file?); it was stripped", API_KEY_ENV
        )
    check_api_key(key)
    return key


def check_api_key(key: str) -> None:
    """Refuse a key that is not printable ASCII, naming where, never showing it."""
    for position, char in enumerate(key, 1):
        if not "!" <= char <= "~":
            raise UsageError(
                f"{API_KEY_ENV} contains {_kind(char)} (character {position} of {len(key)}); "
                "an API key is printable ASCII: set it again (its value is not shown)"
            )


def _kind(char: str) -> str:
    if char.isspace():
        return "whitespace"
    if unicodedata.category(char).startswith("C"):
        return "a control or invisible character"
    return "a non-ASCII character"


@dataclass(frozen=True)
class RateLimit:
    """At most `count` requests in any window of `seconds`."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str, *, option: str = "limit") -> RateLimit:
        """Parse `N/SECONDS`, e.g. `50/60` or `50/0.6`."""
        count_text, sep, seconds_text = text.partition("/")
        try:
            count, seconds = int(count_text), float(seconds_text)
        except ValueError:
            count, seconds = 0, 0.0
        if not sep or count < 1 or not math.isfinite(seconds) or seconds <= 0:
            raise UsageError(
                f"{option} {text!r} is not N/SECONDS with N ≥ 1 and SECONDS > 0 (e.g. 50/60)"
            )
        return cls(count, seconds)

    def scaled(self, factor: float) -> RateLimit:
        return RateLimit(self.count, self.seconds * factor)

    def __str__(self) -> str:
        return f"{self.count}/{self.seconds:g}"


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know. Durations are seconds."""

    base_url: str = DEFAULT_BASE_URL
    api_key: str = field(default="", repr=False)  # never printed
    out_dir: Path = Path(DEFAULT_OUT)
    concurrency: int = 6
    run_limit: RateLimit | None = RateLimit(50, 60.0)
    status_limit: RateLimit | None = RateLimit(50, 10.0)
    max_attempts: int = 3
    # The most the run's batches may spend (credits charged net of refunds); None: no cap.
    max_credits: int | None = None
    # HTTP timeout of one request.
    request_timeout: float = 60.0
    # A prediction not terminal after this long is given up as failed (retryable).
    prediction_timeout: float = 15 * 60.0
    # Exponential backoff after transport errors and 5xx: base and cap.
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    # This many consecutive requests without any answer stop the run (resumable).
    max_transport_failures: int = 12
    # FASHN's output URLs live 72 hours: a failed download is retried without a new
    # prediction only while its URLs are surely valid.
    output_url_ttl: float = 72 * 3600.0
    # Tries per output download before the job is marked failed (resume tries again).
    download_tries: int = 5
    download_concurrency: int = 8
    # Bounded burst of status requests above the sustained rate.
    status_burst: int = 6
    # "adaptive": ask about the prediction most likely to have finished (learned
    # durations); "uniform": round robin within the same budget, for comparison.
    polling: str = "adaptive"
    # Seconds between plain progress lines when not on a terminal.
    progress_interval: float = 30.0
    # Webhooks: the public URL that FASHN POSTs to (each /run gets URL/<token>/<attempt>)
    # and the HOST:PORT where the receiver listens behind it. None: polling only.
    webhook_url: str | None = None
    webhook_listen: tuple[str, int] | None = None

    def scaled(self, factor: float) -> Settings:
        """The same settings with every duration multiplied by `factor` (sandbox time)."""
        return replace(
            self,
            run_limit=self.run_limit.scaled(factor) if self.run_limit else None,
            status_limit=self.status_limit.scaled(factor) if self.status_limit else None,
            request_timeout=max(self.request_timeout * factor, 5.0),
            prediction_timeout=self.prediction_timeout * factor,
            output_url_ttl=self.output_url_ttl * factor,
            backoff_base=self.backoff_base * factor,
            backoff_cap=self.backoff_cap * factor,
            progress_interval=self.progress_interval * factor,
        )


SANDBOX_SCALE = 0.05  # --sandbox runs 20x faster than the real API by default

# The run options' defaults as the command line and the Python API take them (limits as
# "N/SECONDS"), drawn from Settings: one place decides each of them.
RUN_DEFAULTS: dict[str, Any] = {
    "out": DEFAULT_OUT,
    "concurrency": Settings.concurrency,
    "run_limit": str(Settings.run_limit),
    "status_limit": str(Settings.status_limit),
    "max_attempts": Settings.max_attempts,
    "max_credits": Settings.max_credits,
    "polling": Settings.polling,
    "sandbox": False,
    "sandbox_scale": SANDBOX_SCALE,
    "sandbox_seed": 0,
    "webhook_url": Settings.webhook_url,
    "webhook_listen": Settings.webhook_listen,
}
