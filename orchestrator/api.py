"""The FASHN HTTP client: HTTP answers in, typed results and errors out.

Nothing here retries: whether and when to send again is the engine's decision,
because a resent `/run` can cost credits twice. The API key lives only in the
headers of one httpx client and is never part of an error message: every message
built here is redacted, and httpx's own text about a request it could not send
(which quotes the headers) is never used.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from .config import check_api_key
from .errors import HandledError
from .logs import Redactor
from .models import TERMINAL_STATUSES
from .policy import KNOWN_ERRORS

log = logging.getLogger("orchestrator.api")


class ApiError(HandledError):
    """An answer (or the lack of one) from the API that the engine must act on."""

    def __init__(self, message: str, *, status: int | None = None, name: str | None = None):
        super().__init__(message)
        self.status = status
        self.name = name


class BadRequest(ApiError):
    """400: the job is wrong; sending it again unchanged cannot help."""


class Unauthorized(ApiError):
    """401: the key is wrong."""


class OutOfCreditsError(ApiError):
    """402, or 429 OutOfCredits: the account cannot pay for more predictions."""


class NotFound(ApiError):
    """404: the prediction id is unknown or no longer tracked."""


class RateLimited(ApiError):
    """429 RateLimitExceeded or ConcurrencyLimitExceeded: nothing was created."""

    def __init__(self, message: str, *, name: str, retry_after: float | None):
        super().__init__(message, status=429, name=name)
        self.retry_after = retry_after

    @property
    def concurrency(self) -> bool:
        return self.name == "ConcurrencyLimitExceeded"


class Transient(ApiError):
    """5xx, a timeout, a dropped connection or an unreadable answer.

    On `/run` the request may or may not have created a prediction.
    """


@dataclass(frozen=True)
class Accepted:
    prediction_id: str
    credits: int


@dataclass(frozen=True)
class Status:
    status: str
    outputs: list[str]
    error_name: str | None
    error_message: str | None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def failure(self) -> tuple[str, str]:
        """A failed status's error name (a time-out without one is PollingTimeout; else
        the status itself) and message."""
        name = self.error_name or ("PollingTimeout" if self.status == "time_out" else "")
        return name or self.status, self.error_message or ""


class FashnClient:
    """Typed calls to `/run`, `/status` and `/credits`, over one shared `httpx.AsyncClient`."""

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, *, connections: int = 10
    ):
        """`http` must be a client of its own: it is given the API key for every request
        (and so must never fetch output URLs, which live on other hosts).

        At most `connections` requests are under way at once; more wait here, where
        waiting is cheap, rather than in httpcore's pool, which rescans its whole queue
        of waiting requests each time a connection frees up. (Give the pool as many.)
        """
        check_api_key(api_key)  # a control character would end up in httpx's error text
        self._http = http
        self._base = base_url.rstrip("/")
        # A free place is taken without a trip through the event loop: the request
        # that follows yields soon enough.
        self._gate = anyio.Semaphore(connections, fast_acquire=True)
        self._redact = Redactor(api_key)
        http.headers["Authorization"] = f"Bearer {api_key}"

    async def run(
        self, model_name: str, inputs: dict[str, Any], webhook_url: str | None = None
    ) -> Accepted:
        """`webhook_url` goes as a query parameter, as the official SDKs send it; it is
        never logged (the -vv line names the path only)."""
        body = {"model_name": model_name, "inputs": inputs}
        params = {"webhook_url": webhook_url} if webhook_url else None
        response = await self._send("POST", "/run", json=body, params=params)
        data = _json_object(response)
        prediction_id = data.get("id")
        if not isinstance(prediction_id, str) or not prediction_id:
            raise Transient(f"/run answered {response.status_code} without a prediction id")
        return Accepted(prediction_id, _credits_header(response))

    async def status(self, prediction_id: str) -> Status:
        response = await self._send("GET", f"/status/{prediction_id}")
        status = status_from(_json_object(response), self._redact)
        if status is None:
            raise Transient("/status answered without a status")
        return status

    async def credits(self) -> int:
        """The account's balance: `GET /credits`, `credits.total` (a bare number too)."""
        response = await self._send("GET", "/credits")
        data = _json_object(response)
        credits = data.get("credits")
        total = credits.get("total") if isinstance(credits, dict) else credits
        if isinstance(total, bool) or not isinstance(total, int | float):
            raise Transient("/credits answered without a balance")
        return int(total)

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request; -vv logs each (method, path, status: never a header)."""
        started = time.monotonic()
        try:
            async with self._gate:
                response = await self._http.request(method, self._base + path, **kwargs)
        except httpx.TimeoutException as exc:
            log.debug("%s %s -> %s", method, path, type(exc).__name__)
            raise Transient(f"{method} {path} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            log.debug("%s %s -> %s", method, path, type(exc).__name__)
            text = _transport_text(exc, self._redact)
            raise Transient(f"{method} {path} failed: {text}") from None
        except httpx.HTTPError as exc:
            # Not a transport error, but no usable answer either (a body that does not
            # decode, a redirect loop): on /run the request may still have been charged.
            log.debug("%s %s -> %s", method, path, type(exc).__name__)
            raise Transient(f"{method} {path} failed: {type(exc).__name__}") from None
        elapsed = (time.monotonic() - started) * 1000
        log.debug("%s %s -> %d (%.0f ms)", method, path, response.status_code, elapsed)
        if response.status_code >= 400:
            raise _api_error(response, path, self._redact)
        return response


def status_from(data: dict[str, Any], redact: Callable[[str], str]) -> Status | None:
    """A prediction's status from a `/status` answer or a webhook's body (the same
    `{id, status, output, error}`); None when it carries no status."""
    status = data.get("status")
    if not isinstance(status, str):
        return None
    output = data.get("output") or []
    if isinstance(output, str):
        output = [output]
    elif not isinstance(output, list):
        output = []
    name, message = _runtime_error(data.get("error"))
    message = redact(message) if message else message
    return Status(status, [str(o) for o in output], name, message)


def _transport_text(exc: httpx.TransportError, redact: Redactor) -> str:
    """What went wrong on the wire, fit for a log line and the database.

    An error about the request we built (LocalProtocolError: "Illegal header value
    b'Bearer ...'") quotes the request itself, so only its class is kept; the text of
    others (connection refused, server disconnected) is useful and is kept, redacted.
    """
    name = type(exc).__name__
    if isinstance(exc, httpx.LocalProtocolError):
        return f"{name} (the request could not be sent as built)"
    text = redact(str(exc))
    return f"{name}: {text}" if text else name


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise Transient(f"answer {response.status_code} is not JSON") from None
    if not isinstance(data, dict):
        raise Transient(f"answer {response.status_code} is not a JSON object")
    return data


def _credits_header(response: httpx.Response) -> int:
    try:
        return int(response.headers.get("x-fashn-credits-used", "0"))
    except ValueError:
        return 0


def _runtime_error(error: object) -> tuple[str | None, str | None]:
    """A failed prediction's error: an object {name, message} (SDK, docs) or a string (spec)."""
    if error is None or error == "":
        return None, None
    if isinstance(error, dict):
        name = error.get("name")
        message = error.get("message")
        return (str(name) if name else "UnknownError", str(message) if message else "")
    text = str(error).strip()
    # A plain string may be the error's name, or start with it: "PoseError: ...".
    head, _, rest = text.partition(":")
    if head.strip() in KNOWN_ERRORS:
        return head.strip(), rest.strip()
    return "UnknownError", text


def retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait, from `retry-after-ms` or `Retry-After` (seconds, maybe fractional)."""
    ms = response.headers.get("retry-after-ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = response.headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            return None  # an HTTP date: rare enough to fall back to our own backoff
    return None


def _api_error(response: httpx.Response, path: str, redact: Redactor) -> ApiError:
    code = response.status_code
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    name = str(data.get("error") or "")
    message = str(data.get("message") or name or response.reason_phrase)
    text = f"{path}: {code} {name}: {message}" if name else f"{path}: {code} {message}"
    text = redact(text)  # an API that echoes the key must not put it in our records
    if code == 400:
        return BadRequest(text, status=code, name=name or "BadRequest")
    if code == 401:
        return Unauthorized(text, status=code, name=name or "UnauthorizedAccess")
    if code == 402 or (code == 429 and name == "OutOfCredits"):
        return OutOfCreditsError(text, status=code, name=name or "OutOfCredits")
    if code == 404:
        return NotFound(text, status=code, name=name or "NotFound")
    if code == 429:
        return RateLimited(
            text, name=name or "RateLimitExceeded", retry_after=retry_after(response)
        )
    if code in (408, 409) or code >= 500:
        return Transient(text, status=code, name=name or None)
    # Other 4xx: the request itself is at fault; treat as a bad request.
    return BadRequest(text, status=code, name=name or None)
