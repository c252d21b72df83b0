"""The sandbox's account, predictions and bookkeeping: pure logic behind an injected clock.

Each `handle_*` method takes what an HTTP request carried and returns an `Answer`;
app.py only translates. Nothing here sleeps or does I/O, so tests drive it with a
hand-moved clock. Prediction lifecycles are computed lazily from the clock: a
prediction is in flight from its acceptance to its finish time whether or not
anyone asks about it, and a heap of finish times keeps that bookkeeping O(log n).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import json
import math
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from orchestrator.catalog import MAX_OUTPUTS, MODELS, ModelSpec, credits_for, output_count
from orchestrator.models import fingerprint

from . import images
from .config import ENDPOINTS, Limits, SandboxConfig

Clock = Callable[[], float]

ERROR_MESSAGES = {
    "ImageLoadError": "Unable to load an image from the provided inputs.",
    "ContentModerationError": "Prohibited content detected in an input image.",
    "PoseError": "Unable to detect a body pose in the model or garment image.",
    "InputValidationError": "Invalid parameter combination.",
    "PipelineError": "Unexpected pipeline error. Retry; failures are not charged.",
    "ThirdPartyError": "A third-party processor refused the inputs.",
    "3rdPartyProviderError": "An external provider failed. Retry.",
    "InternalServerError": "General server error. Retry.",
    "PollingTimeout": "The prediction timed out before completion.",
}
# Markers a job can carry in any string input to force its own fate (see README).
_FAIL_MARK = re.compile(r"sandbox:fail=([A-Za-z0-9]+)(?::(\d+))?")
_SECONDS_MARK = re.compile(r"sandbox:seconds=(\d+(?:\.\d*)?)")
_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,")
_CDN_NAME = re.compile(r"(\d+)\.([a-z0-9]+)")
# The share of a prediction's life spent in "starting", then up to "in_queue".
_STARTING, _QUEUED = 0.1, 0.3


@dataclass(frozen=True)
class Answer:
    """An HTTP answer to send, or a fault to enact instead."""

    status: int
    body: Mapping[str, Any] | bytes = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    drop: bool = False  # close the connection without a complete answer
    delay: float = 0.0  # real seconds to wait before answering


@dataclass(frozen=True)
class PredictionRecord:
    """One prediction as the sandbox saw it; times are in `time.monotonic()` seconds."""

    id: str
    model_name: str
    fingerprint: str
    submission: int  # 0 for the first accepted /run of this fingerprint, then 1, 2, ...
    accepted_at: float
    finished_at: float
    status: str  # as of the moment the record was taken
    error: str | None  # the failure's name, set from acceptance when it will fail
    cost: int  # the x-fashn-credits-used this prediction announced
    credits: int  # charged net of the refund: 0 once a failure is refunded
    first_seen_finished_at: float | None  # first status answer that reported it terminal
    output_urls: tuple[str, ...]  # CDN URLs (empty for base64 outputs)
    base64: bool
    lost_answer: bool  # created and charged, but the /run answer was lost
    expires_at: float  # after this the API forgets it

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class _Prediction:
    id: str
    model_name: str
    fingerprint: str
    submission: int
    accepted_at: float
    finished_at: float
    error_name: str | None
    error_as_string: bool
    cost: int
    outputs: int
    base64: bool
    mime: str
    lost_answer: bool
    expires_at: float
    refunded: bool = False
    first_seen_finished_at: float | None = None

    def status_at(self, now: float) -> str:
        if now >= self.finished_at:
            return "failed" if self.error_name else "completed"
        elapsed = (now - self.accepted_at) / (self.finished_at - self.accepted_at)
        if elapsed < _STARTING:
            return "starting"
        return "in_queue" if elapsed < _QUEUED else "processing"


class BadRequest(Exception):
    """A /run body the API would refuse; the message names the field."""


def max_in_window(times: list[float], window: float) -> int:
    """Most arrivals in any sliding window: a and b share one iff b - a < window."""
    best = start = 0
    for end, t in enumerate(times):
        while t - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def retry_headers(seconds: float, time_scale: float) -> dict[str, str]:
    """Retry-After in whole seconds, or in decimals when time is scaled (else it rounds to 0)."""
    # round() first: t + window - t can come out a hair above the window.
    ms = max(1, math.ceil(round(seconds * 1000, 6)))
    after = str(math.ceil(ms / 1000)) if time_scale == 1 else f"{ms / 1000:.3f}"
    return {"Retry-After": after, "retry-after-ms": str(ms)}


def validate_run(body: object) -> tuple[ModelSpec, dict[str, Any]]:
    """Check a /run body as the API does; raise BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model_name = body.get("model_name")
    if not isinstance(model_name, str):
        raise BadRequest("model_name: required, must be a string")
    spec = MODELS.get(model_name)
    if spec is None:
        raise BadRequest(f"model_name: unknown model {model_name!r}; known: {', '.join(MODELS)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise BadRequest("inputs: required, must be a JSON object")
    for name in spec.required:
        if inputs.get(name) in (None, ""):
            raise BadRequest(f"inputs.{name}: required by {model_name}")
    for name, allowed in spec.choices.items():
        if name in inputs and inputs[name] not in allowed:
            listed = ", ".join(map(str, allowed))
            raise BadRequest(f"inputs.{name}: must be one of {listed}, got {inputs[name]!r}")
    for name in spec.image_inputs:
        if inputs.get(name) is not None:
            problem = _image_problem(inputs[name])
            if problem:
                raise BadRequest(f"inputs.{name}: {problem}")
    count = spec.count_input
    if count and count in inputs:
        value = inputs[count]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_OUTPUTS:
            raise BadRequest(f"inputs.{count}: must be an integer from 1 to {MAX_OUTPUTS}")
    if "return_base64" in inputs and not isinstance(inputs["return_base64"], bool):
        raise BadRequest("inputs.return_base64: must be true or false")
    return spec, inputs


def _image_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return "must be an http(s) URL or a data:image/<format>;base64,<data> URI"
    if value.startswith("data:"):
        prefix = _DATA_URI.match(value)
        if not prefix:
            return "a data URI must look like data:image/<format>;base64,<data>"
        try:
            payload = base64.b64decode(value[prefix.end() :], validate=True)
        except (binascii.Error, ValueError):
            return "the data URI's base64 payload does not decode"
        return None if payload else "the data URI's payload is empty"
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return "must be an http(s) URL or a data:image/<format>;base64,<data> URI"


def _error(
    status: int, name: str, message: str, headers: Mapping[str, str] | None = None
) -> Answer:
    return Answer(status, {"error": name, "message": message}, headers or {})


_UNAUTHORIZED = _error(401, "UnauthorizedAccess", "Invalid or missing API key (Bearer token).")


class SandboxState:
    """The live account: call `handle_*` per request, read the rest to inspect."""

    def __init__(self, config: SandboxConfig, clock: Clock = time.monotonic) -> None:
        self.config = config
        self.clock = clock
        # Where output URLs point; the server sets it once it knows its port.
        self.public_url = "http://127.0.0.1"
        self._lock = threading.Lock()
        self._auth = f"Bearer {config.api_key}"
        self._balance = config.credits
        self._charged = 0
        self._predictions: dict[str, _Prediction] = {}
        self._finishing: list[tuple[float, int, _Prediction]] = []  # heap of finish times
        self._in_flight = 0
        self._max_in_flight = 0
        self._arrivals: dict[str, list[float]] = {e: [] for e in ENDPOINTS}
        self._logs: dict[str, deque[float]] = {e: deque() for e in ENDPOINTS}
        self._windows = {e: self._scaled_window(e) for e in ENDPOINTS}
        self._submissions: Counter[str] = Counter()
        self._requests: Counter[tuple[str, str]] = Counter()
        self._rejections: Counter[str] = Counter()
        self._faults: Counter[str] = Counter()

    def __repr__(self) -> str:
        return (
            f"<SandboxState predictions={len(self._predictions)} in_flight={self._in_flight}"
            f" balance={self._balance} rejections={dict(self._rejections)}>"
        )

    # -- requests ---------------------------------------------------------------

    def handle_run(self, authorization: str | None, body: bytes) -> Answer:
        with self._lock:
            now = self._advance()
            refused = self._refuse(authorization, "run", now)
            if refused:
                return refused
            try:
                data: object = json.loads(body)
            except ValueError:
                data = None
            key = "-"
            if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
                key = fingerprint(str(data.get("model_name")), data["inputs"])
            index = self._request_index("run", key)
            fault, delay = self._http_fault("run", key, index)
            if fault:
                return fault
            try:
                spec, inputs = validate_run(data)
            except BadRequest as exc:
                return self._reject("BadRequest", _error(400, "BadRequest", str(exc)), delay)
            limit = self.config.limits.concurrency
            if limit is not None and self._in_flight >= limit:
                wait = self._finishing[0][0] - now
                message = f"{self._in_flight} predictions in flight; the limit is {limit}."
                answer = _error(429, "ConcurrencyLimitExceeded", message, self._retry(wait))
                return self._reject("ConcurrencyLimitExceeded", answer, delay)
            cost = credits_for(spec.name, inputs)
            if self._balance < cost:
                return self._reject("OutOfCredits", self._out_of_credits(cost), delay)
            prediction = self._accept(spec, inputs, key, now, cost)
            if index is not None and self._draw("lost", "run", key, index) < (
                self.config.faults.lost_answer
            ):
                prediction.lost_answer = True
                self._faults["lost_answer"] += 1
                if self._draw("lost_drop", "run", key, index) < self.config.faults.lost_answer_drop:
                    return Answer(500, drop=True, delay=delay)
                return self._server_error(delay)
            body_out = {"id": prediction.id, "error": None}
            return Answer(200, body_out, {"x-fashn-credits-used": str(cost)}, delay=delay)

    def handle_status(
        self, authorization: str | None, prediction_id: str, *, origin: str | None = None
    ) -> Answer:
        """`origin` (http://host:port, as the client dialled it) roots the output URLs;
        default: `public_url`."""
        with self._lock:
            now = self._advance()
            refused = self._refuse(authorization, "status", now)
            if refused:
                return refused
            fault, delay = self._http_fault("status", prediction_id)
            if fault:
                return fault
            prediction = self._predictions.get(prediction_id)
            if prediction is None or now >= prediction.expires_at:
                message = f"No prediction {prediction_id!r} (unknown, or expired and forgotten)."
                return self._reject("NotFound", _error(404, "NotFound", message), delay)
            status = prediction.status_at(now)
            body: dict[str, Any] = {"id": prediction.id, "status": status}
            body.update(output=None, error=None)
            headers: dict[str, str] = {}
            if status in ("completed", "failed"):
                if prediction.first_seen_finished_at is None:
                    prediction.first_seen_finished_at = now
                # subscribe() in the official SDK reads the cost off the terminal status.
                spent = prediction.cost if status == "completed" else 0
                headers["x-fashn-credits-used"] = str(spent)
            if status == "completed":
                body["output"] = self._outputs(prediction, origin)
            elif status == "failed":
                body["error"] = self._runtime_error(prediction)
            return Answer(200, body, headers, delay=delay)

    def handle_credits(self, authorization: str | None) -> Answer:
        with self._lock:
            now = self._advance()
            refused = self._refuse(authorization, "credits", now)
            if refused:
                return refused
            fault, delay = self._http_fault("credits", "-")
            if fault:
                return fault
            total = self._balance
            body = {"credits": {"total": total, "subscription": total, "on_demand": 0}}
            return Answer(200, body, delay=delay)

    def handle_download(self, prediction_id: str, name: str) -> Answer:
        """An output file; no auth, like a signed CDN URL."""
        with self._lock:
            now = self._advance()
            self._arrivals["cdn"].append(now)
            fault, delay = self._http_fault("cdn", f"{prediction_id}/{name}")
            if fault:
                return fault
            prediction = self._predictions.get(prediction_id)
            match = _CDN_NAME.fullmatch(name)
            index = int(match.group(1)) if match else -1
            if (
                prediction is None
                or match is None
                or prediction.base64
                or prediction.status_at(now) != "completed"
                or not 0 <= index < prediction.outputs
                or match.group(2) != images.extension(prediction.mime)
            ):
                answer = _error(404, "NotFound", f"No such output: {prediction_id}/{name}.")
                return self._reject("NotFound", answer, delay)
            if now >= prediction.expires_at:
                answer = _error(403, "AccessDenied", "Request has expired.")
                return self._reject("Expired", answer, delay)
            data = self._bytes(prediction, index)
            return Answer(200, data, media_type=prediction.mime, delay=delay)

    # -- inspection -------------------------------------------------------------

    def now(self) -> float:
        return self.clock()

    def arrivals(self, endpoint: str) -> list[float]:
        """Times of every authenticated request to an API endpoint (every download for "cdn")."""
        with self._lock:
            return list(self._arrivals[endpoint])

    def max_in_window(self, endpoint: str, window: float | None = None) -> int:
        """Most arrivals in any sliding window of `window` real seconds.

        Default: the endpoint's configured window, or FASHN's (scaled) when lifted.
        """
        span = window if window is not None else self._windows[endpoint]
        if span is None:
            raise ValueError(f"no rate window for {endpoint!r}: pass window=")
        with self._lock:
            return max_in_window(self._arrivals[endpoint], span)

    def max_in_flight(self) -> int:
        with self._lock:
            return self._max_in_flight

    def in_flight(self) -> int:
        with self._lock:
            self._advance()
            return self._in_flight

    @property
    def rejections(self) -> dict[str, int]:
        """Refusals by reason: Unauthorized, RateLimitExceeded, BadRequest,
        ConcurrencyLimitExceeded, OutOfCredits, NotFound, Expired."""
        with self._lock:
            return dict(self._rejections)

    @property
    def faults_injected(self) -> dict[str, int]:
        """Injected faults by kind: http_500, drop, slow, lost_answer."""
        with self._lock:
            return dict(self._faults)

    @property
    def balance(self) -> int:
        with self._lock:
            self._advance()
            return self._balance

    @property
    def credits_charged(self) -> int:
        """Credits taken so far, net of refunds for failed predictions."""
        with self._lock:
            self._advance()
            return self._charged

    def runs_by_fingerprint(self) -> dict[str, int]:
        """Accepted /run requests (lost answers included) per job fingerprint."""
        with self._lock:
            return dict(self._submissions)

    def predictions(self) -> list[PredictionRecord]:
        """Every prediction ever accepted, in acceptance order, expired ones included."""
        with self._lock:
            now = self._advance()
            return [self._record(p, now) for p in self._predictions.values()]

    def prediction(self, prediction_id: str) -> PredictionRecord:
        with self._lock:
            return self._record(self._predictions[prediction_id], self._advance())

    def output_bytes(self, prediction_id: str, index: int) -> bytes:
        """What the CDN serves for an output, whatever its expiry."""
        with self._lock:
            prediction = self._predictions[prediction_id]
            if not 0 <= index < prediction.outputs:
                raise IndexError(f"{prediction_id} has {prediction.outputs} output(s)")
            return self._bytes(prediction, index)

    def stats(self) -> dict[str, Any]:
        """The numbers /_sandbox/stats serves."""
        with self._lock:
            now = self._advance()
            statuses = Counter(p.status_at(now) for p in self._predictions.values())
            windows = {e: w for e, w in self._windows.items() if w is not None}
            return {
                "now": now,
                "time_scale": self.config.time_scale,
                "balance": self._balance,
                "credits_charged": self._charged,
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "arrivals": {e: len(a) for e, a in self._arrivals.items()},
                "windows": windows,
                "max_in_window": {
                    e: max_in_window(self._arrivals[e], w) for e, w in windows.items()
                },
                "rejections": dict(self._rejections),
                "faults": dict(self._faults),
                "predictions": {"total": len(self._predictions), **statuses},
                "accepted_runs": sum(self._submissions.values()),
                "distinct_fingerprints": len(self._submissions),
            }

    # -- internals --------------------------------------------------------------

    def _scaled_window(self, endpoint: str) -> float | None:
        window = self.config.limits.window(endpoint)
        if window is None:
            # Lifted limits still get FASHN's window for max_in_window's default.
            window = Limits().window(endpoint)
        return None if window is None else self.config.scaled(window[1])

    def _advance(self) -> float:
        """Retire every prediction finished by now: frees its slot, refunds a failure."""
        now = self.clock()
        heap = self._finishing
        while heap and heap[0][0] <= now:
            _, _, prediction = heapq.heappop(heap)
            self._in_flight -= 1
            if prediction.error_name and not prediction.refunded:
                prediction.refunded = True
                self._balance += prediction.cost
                self._charged -= prediction.cost
        return now

    def _refuse(self, authorization: str | None, endpoint: str, now: float) -> Answer | None:
        """What the API answers before looking at a request: 401 for a wrong key (not
        counted in any window), else 429 when the endpoint's window is full."""
        if authorization != self._auth:
            return self._reject("Unauthorized", _UNAUTHORIZED)
        return self._admit(endpoint, now)

    def _admit(self, endpoint: str, now: float) -> Answer | None:
        """Log the arrival; refuse it if the sliding window already holds `count`."""
        self._arrivals[endpoint].append(now)
        limit = self.config.limits.window(endpoint)
        if limit is None:
            return None
        count, span = limit[0], self.config.scaled(limit[1])
        log = self._logs[endpoint]
        while log and now - log[0] >= span:
            log.popleft()
        log.append(now)
        if len(log) <= count:
            return None
        # Refused arrivals count too, so a slot frees when the count-th newest leaves.
        wait = log[-count] + span - now
        message = f"At most {count} {endpoint} requests per {limit[1]:g} s."
        answer = _error(429, "RateLimitExceeded", message, self._retry(wait))
        return self._reject("RateLimitExceeded", answer)

    def _retry(self, seconds: float) -> dict[str, str]:
        return retry_headers(seconds, self.config.time_scale)

    def _reject(self, reason: str, answer: Answer, delay: float = 0.0) -> Answer:
        self._rejections[reason] += 1
        return replace(answer, delay=delay) if delay else answer

    def _out_of_credits(self, cost: int) -> Answer:
        message = f"This prediction costs {cost} credits; the balance is {self._balance}."
        if self.config.out_of_credits == "429":
            return _error(429, "OutOfCredits", message)
        return _error(402, "InsufficientCredits", message)

    def _server_error(self, delay: float = 0.0) -> Answer:
        body = {"error": "InternalServerError", "message": "Internal server error."}
        return Answer(500, body, delay=delay)

    def _draw(self, *parts: object) -> float:
        """A uniform number in [0, 1) fixed by the seed and `parts`, independent of order."""
        text = "|".join(map(str, (self.config.seed, *parts)))
        digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _request_index(self, endpoint: str, key: str) -> int | None:
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

    def _http_fault(
        self, endpoint: str, key: str, index: int | None = None
    ) -> tuple[Answer | None, float]:
        """(a 500 or a drop to answer instead, None) or (None, seconds to delay the answer).

        `index` is the request's `_request_index` when the caller already took it.
        """
        if index is None:
            index = self._request_index(endpoint, key)
        if index is None:
            return None, 0.0
        faults = self.config.faults
        if self._draw("500", endpoint, key, index) < faults.rate("http_500", endpoint):
            self._faults["http_500"] += 1
            return self._server_error(), 0.0
        if self._draw("drop", endpoint, key, index) < faults.rate("drop", endpoint):
            self._faults["drop"] += 1
            return Answer(500, drop=True), 0.0
        if self._draw("slow", endpoint, key, index) < faults.rate("slow", endpoint):
            self._faults["slow"] += 1
            low, high = faults.slow_seconds
            seconds = low + (high - low) * self._draw("slow_for", endpoint, key, index)
            return None, self.config.scaled(seconds)
        return None, 0.0

    def _accept(
        self, spec: ModelSpec, inputs: dict[str, Any], key: str, now: float, cost: int
    ) -> _Prediction:
        n = self._submissions[key]
        self._submissions[key] = n + 1
        forced_error, forced_seconds = _markers(inputs, n)
        low, high = self.config.latency_span(spec.name)
        seconds = forced_seconds
        if seconds is None:
            seconds = low + (high - low) * self._draw("latency", key, n)
        finished_at = now + self.config.scaled(seconds)
        error = forced_error or self._fate(spec.name, key, n)
        is_base64 = inputs.get("return_base64") is True and spec.output_mime.startswith("image/")
        ttl = self.config.base64_ttl if is_base64 and error is None else self.config.url_ttl
        prediction = _Prediction(
            id=self._new_id(key, n),
            model_name=spec.name,
            fingerprint=key,
            submission=n,
            accepted_at=now,
            finished_at=finished_at,
            error_name=error,
            error_as_string=self._draw("as_string", key, n) < self.config.faults.error_as_string,
            cost=cost,
            outputs=output_count(spec.name, inputs),
            base64=is_base64,
            mime=spec.output_mime,
            lost_answer=False,
            expires_at=finished_at + self.config.scaled(ttl),
        )
        self._predictions[prediction.id] = prediction
        heapq.heappush(self._finishing, (finished_at, len(self._predictions), prediction))
        self._in_flight += 1
        self._max_in_flight = max(self._max_in_flight, self._in_flight)
        self._balance -= cost
        self._charged += cost
        return prediction

    def _fate(self, model_name: str, key: str, n: int) -> str | None:
        faults = self.config.faults
        if model_name in faults.fail_models:
            return faults.fail_models[model_name]
        if self._draw("permanent", key, n) < faults.permanent_failure:
            names = faults.permanent_errors
            return names[int(self._draw("permanent_name", key, n) * len(names))]
        if self._draw("failure", key, n) < faults.failure:
            names = faults.retryable_errors
            return names[int(self._draw("failure_name", key, n) * len(names))]
        return None

    def _new_id(self, key: str, n: int) -> str:
        text = f"{self.config.seed}|id|{key}|{n}"
        h = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        base = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        suffix = 1
        while f"{base}-u{suffix}" in self._predictions:
            suffix += 1
        return f"{base}-u{suffix}"

    def _runtime_error(self, prediction: _Prediction) -> dict[str, str] | str:
        name = prediction.error_name or "InternalServerError"
        message = ERROR_MESSAGES.get(name, f"The prediction failed ({name}).")
        if prediction.error_as_string:
            return f"{name}: {message}"
        return {"name": name, "message": message}

    def _outputs(self, prediction: _Prediction, origin: str | None = None) -> list[str]:
        if prediction.base64:
            return [
                "data:image/png;base64," + base64.b64encode(self._bytes(prediction, i)).decode()
                for i in range(prediction.outputs)
            ]
        return list(self._urls(prediction, origin))

    def _urls(self, prediction: _Prediction, origin: str | None = None) -> tuple[str, ...]:
        if prediction.base64:
            return ()
        ext = images.extension(prediction.mime)
        root = origin or self.public_url
        return tuple(f"{root}/cdn/{prediction.id}/{i}.{ext}" for i in range(prediction.outputs))

    def _bytes(self, prediction: _Prediction, index: int) -> bytes:
        return images.output_bytes(prediction.mime, f"{self.config.seed}/{prediction.id}/{index}")

    def _record(self, p: _Prediction, now: float) -> PredictionRecord:
        status = p.status_at(now)
        return PredictionRecord(
            id=p.id,
            model_name=p.model_name,
            fingerprint=p.fingerprint,
            submission=p.submission,
            accepted_at=p.accepted_at,
            finished_at=p.finished_at,
            status=status,
            error=p.error_name,
            cost=p.cost,
            credits=0 if p.refunded else p.cost,
            first_seen_finished_at=p.first_seen_finished_at,
            output_urls=self._urls(p),
            base64=p.base64,
            lost_answer=p.lost_answer,
            expires_at=p.expires_at,
        )


def _markers(inputs: Mapping[str, Any], submission: int) -> tuple[str | None, float | None]:
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


__all__ = [
    "Answer",
    "BadRequest",
    "Clock",
    "PredictionRecord",
    "SandboxState",
    "max_in_window",
    "retry_headers",
    "validate_run",
]
