"""What the sandbox simulates: limits, credits, latencies, faults and the time scale.

Every duration here is in UNSCALED seconds, as on the real service; the server
multiplies each one by `SandboxConfig.time_scale` when it uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from orchestrator.catalog import MODELS
from orchestrator.runtime_errors import RUNTIME_ERRORS

# Endpoints the sandbox serves; "cdn" is the output download route.
ENDPOINTS = ("run", "status", "credits", "cdn")

Window = tuple[int, float]  # (requests, unscaled seconds) of a sliding window
Rate = float | Mapping[str, float]  # one rate for every endpoint, or rates by endpoint


@dataclass(frozen=True)
class Limits:
    """Per-account limits; `None` lifts one. Defaults are FASHN's published numbers.

    run, status, credits: at most `count` requests in any sliding window of
        `seconds` (unscaled). Every authenticated arrival counts, answered or refused.
    concurrency: at most this many predictions accepted and not yet terminal.
    """

    run: Window | None = (50, 60.0)
    status: Window | None = (50, 10.0)
    credits: Window | None = (30, 10.0)
    concurrency: int | None = 6

    @classmethod
    def unlimited(cls) -> Limits:
        """No limit at all: for benchmarks and tests that are not about limits."""
        return cls(run=None, status=None, credits=None, concurrency=None)

    def window(self, endpoint: str) -> Window | None:
        return {"run": self.run, "status": self.status, "credits": self.credits}.get(endpoint)


# The names `Faults.failure` and `Faults.permanent_failure` draw from by default: the
# package's one list of runtime errors (orchestrator.runtime_errors), in its order, split
# by whether a retry can help. Every name the API reports today is in, PollingTimeout
# included (the API reports it as a failure like any other). Left out: the older names
# the API replaced (NSFWError, PhotoTypeError), since a rehearsal should meet what the API
# sends now; a test that wants one names it in `*_errors`, `fail_models` or a marker.
RETRYABLE_ERRORS = tuple(e.name for e in RUNTIME_ERRORS if e.retryable and not e.older_name_of)
PERMANENT_ERRORS = tuple(e.name for e in RUNTIME_ERRORS if not e.retryable and not e.older_name_of)


@dataclass(frozen=True)
class Faults:
    """Injected failures. Every rate is a probability in 0..1; all default to 0.

    Draws are seeded: a prediction's fate depends on (seed, fingerprint, n-th
    submission of that fingerprint); an HTTP fault on (seed, endpoint, request
    key, n-th request with that key), the key being the job fingerprint for
    /run, the prediction id for /status and "<id>/<file>" for downloads.

    failure: a prediction fails at its finish time with a name from `retryable_errors`.
    permanent_failure: ... with a name from `permanent_errors` (checked first).
    error_as_string: a failed prediction reports `error` as a plain string
        "<Name>: <message>" (as the spec says) instead of {"name", "message"}.
    fail_models: model name -> error name: every prediction of that model fails.
    http_500, drop, slow: by endpoint ("run", "status", "credits", "cdn"), or one
        float for all four. http_500 answers 500 InternalServerError and changes
        nothing; drop closes the connection before a complete answer; slow delays
        the answer by a uniform draw from `slow_seconds`.
    lost_answer: /run accepts and charges the prediction, then the client gets a
        500 (or, with probability `lost_answer_drop`, a dropped connection).
    webhook_drop: a prediction's webhook is never delivered (nor retried).
    webhook_delay: ... is delivered late, by a uniform draw from `webhook_delay_seconds`.
    webhook_duplicate: ... is delivered twice.

    A job can also force its own fate with markers in any string input (a prompt,
    an image URL's query): "sandbox:fail=<Name>" fails every submission of it,
    "sandbox:fail=<Name>:<k>" only the first k; "sandbox:seconds=<S>" fixes its
    lifetime (unscaled). Markers win over rates and fail_models.
    """

    failure: float = 0.0
    permanent_failure: float = 0.0
    retryable_errors: tuple[str, ...] = RETRYABLE_ERRORS
    permanent_errors: tuple[str, ...] = PERMANENT_ERRORS
    error_as_string: float = 0.0
    fail_models: Mapping[str, str] = field(default_factory=dict)
    http_500: Rate = 0.0
    drop: Rate = 0.0
    slow: Rate = 0.0
    slow_seconds: tuple[float, float] = (1.0, 5.0)
    lost_answer: float = 0.0
    lost_answer_drop: float = 0.5
    webhook_drop: float = 0.0
    webhook_delay: float = 0.0
    webhook_delay_seconds: tuple[float, float] = (1.0, 10.0)
    webhook_duplicate: float = 0.0

    def rate(self, kind: Literal["http_500", "drop", "slow"], endpoint: str) -> float:
        value: Rate = getattr(self, kind)
        return value.get(endpoint, 0.0) if isinstance(value, Mapping) else value

    def check(self) -> None:
        scalars = {
            "failure": self.failure,
            "permanent_failure": self.permanent_failure,
            "error_as_string": self.error_as_string,
            "lost_answer": self.lost_answer,
            "lost_answer_drop": self.lost_answer_drop,
            "webhook_drop": self.webhook_drop,
            "webhook_delay": self.webhook_delay,
            "webhook_duplicate": self.webhook_duplicate,
        }
        for kind in ("http_500", "drop", "slow"):
            value: Rate = getattr(self, kind)
            if isinstance(value, Mapping):
                unknown = set(value) - set(ENDPOINTS)
                if unknown:
                    raise ValueError(f"faults.{kind}: unknown endpoint(s) {sorted(unknown)}")
                scalars.update({f"{kind}[{k}]": v for k, v in value.items()})
            else:
                scalars[kind] = value
        for name, value in scalars.items():
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"faults.{name} must be a rate between 0 and 1, got {value}")
        if self.failure and not self.retryable_errors:
            raise ValueError("faults.retryable_errors is empty but faults.failure > 0")
        if self.permanent_failure and not self.permanent_errors:
            raise ValueError("faults.permanent_errors is empty but faults.permanent_failure > 0")
        _check_span("faults.slow_seconds", self.slow_seconds)
        _check_span("faults.webhook_delay_seconds", self.webhook_delay_seconds)
        for model in self.fail_models:
            _check_model(f"faults.fail_models[{model!r}]", model)


@dataclass(frozen=True)
class SandboxConfig:
    """Everything the sandbox simulates.

    api_key: the Bearer token of the (first) account; an unknown one answers 401.
    extra_keys: more keys, each an account of its own: the same configuration, but its
        own limits' windows, in-flight cap, balance, predictions and statistics.
    seed: seeds every random draw (latencies, failures, ids, output bytes, faults).
    time_scale: multiplies EVERY duration (latencies, limit windows, Retry-After,
        ttls, slow delays): 0.01 makes a 60 s window last 0.6 s of real time.
    limits: rate windows and the in-flight cap, see `Limits`.
    credits: starting balance.
    out_of_credits: "402" answers 402 {"error": "InsufficientCredits"} (the spec),
        "429" answers 429 {"error": "OutOfCredits"} (the docs).
    latency: model name (or "*" for every model) -> (min, max) unscaled seconds of
        a prediction's whole life, drawn uniformly; default: the catalog's
        typical_seconds.
    faults: injected failures, see `Faults`.
    url_ttl: how long after finishing a prediction and its CDN outputs live; the
        status then answers 404 and the output URLs 403.
    base64_ttl: same for predictions with `return_base64: true`, whose outputs
        only exist inside the status answer: after it the status answers 404.
    webhook_reroute: receivers ("host:port", ...) behind one load balancer, as a
        fleet's workers are: a webhook whose URL names one of them is delivered to the
        next one in the list (cyclically), its path kept, so that each webhook reaches
        another worker than the one that sent its /run. Empty: delivered as addressed.
    """

    api_key: str = "sandbox"
    extra_keys: tuple[str, ...] = ()
    seed: int = 0
    time_scale: float = 1.0
    limits: Limits = field(default_factory=Limits)
    credits: int = 10_000
    out_of_credits: Literal["402", "429"] = "402"
    latency: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)
    url_ttl: float = 72 * 3600.0
    base64_ttl: float = 3600.0
    webhook_reroute: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.time_scale > 0:
            raise ValueError(f"time_scale must be > 0, got {self.time_scale}")
        if self.out_of_credits not in ("402", "429"):
            raise ValueError(f"out_of_credits must be '402' or '429', got {self.out_of_credits!r}")
        if len({self.api_key, *self.extra_keys}) != 1 + len(self.extra_keys):
            raise ValueError("api_key and extra_keys must all differ")
        if self.credits < 0:
            raise ValueError(f"credits must be >= 0, got {self.credits}")
        for endpoint in ("run", "status", "credits"):
            window = self.limits.window(endpoint)
            if window is not None and (window[0] < 1 or window[1] <= 0):
                raise ValueError(f"limits.{endpoint} must be (count >= 1, seconds > 0)")
        if self.limits.concurrency is not None and self.limits.concurrency < 1:
            raise ValueError("limits.concurrency must be >= 1 or None")
        for model, span in self.latency.items():
            if model != "*":
                _check_model(f"latency[{model!r}]", model)
            _check_span(f"latency[{model!r}]", span)
        if self.url_ttl <= 0 or self.base64_ttl <= 0:
            raise ValueError("url_ttl and base64_ttl must be > 0")
        self.faults.check()

    def scaled(self, seconds: float) -> float:
        """Real seconds for a duration given in the service's seconds."""
        return seconds * self.time_scale

    def latency_span(self, model: str) -> tuple[float, float]:
        """Unscaled (min, max) lifetime of a prediction of this model."""
        span = self.latency.get(model) or self.latency.get("*")
        return span if span is not None else MODELS[model].typical_seconds


def _check_span(name: str, span: tuple[float, float]) -> None:
    low, high = span
    if not 0 <= low <= high:
        raise ValueError(f"{name} must be (min, max) with 0 <= min <= max, got {span}")


def _check_model(name: str, model: str) -> None:
    if model not in MODELS:
        raise ValueError(f"{name}: unknown model; known: {', '.join(MODELS)}")


def from_options(
    *,
    windows: Mapping[str, Window | None],
    concurrency: int,
    latency: Mapping[str, tuple[float, float]],
    rates: Mapping[str, float],
    **fields: Any,
) -> SandboxConfig:
    """The config that `orchestrator sandbox`'s options describe: `windows` by endpoint
    (run, status, credits), `concurrency` 0 for no cap, `rates` by option name
    (failure_rate, permanent_failure_rate, error_as_string, http_500, drop, slow,
    lost_answer, and the optional webhook_drop, webhook_delay, webhook_duplicate), and
    every other SandboxConfig field as it is. ValueError if invalid."""
    faults = Faults(
        failure=rates["failure_rate"],
        permanent_failure=rates["permanent_failure_rate"],
        error_as_string=rates["error_as_string"],
        http_500=rates["http_500"],
        drop=rates["drop"],
        slow=rates["slow"],
        lost_answer=rates["lost_answer"],
        webhook_drop=rates.get("webhook_drop", 0.0),
        webhook_delay=rates.get("webhook_delay", 0.0),
        webhook_duplicate=rates.get("webhook_duplicate", 0.0),
    )
    limits = Limits(
        run=windows["run"],
        status=windows["status"],
        credits=windows["credits"],
        concurrency=concurrency or None,
    )
    return SandboxConfig(limits=limits, latency=latency, faults=faults, **fields)
