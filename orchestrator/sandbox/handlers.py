"""The four requests the sandbox answers: POST /v1/run, GET /v1/status/{id},
GET /v1/credits and GET /cdn/{id}/{file}, each from what the HTTP request carried to
an `Answer`; and the webhooks due, with their bodies. Nothing here sleeps or does I/O:
time is the injected clock's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from typing import Any

from orchestrator.catalog import ModelSpec, credits_for, output_count
from orchestrator.models import fingerprint

from .account import Account
from .admission import Admission
from .answers import UNAUTHORIZED, Answer, error
from .cdn import Cdn, output_mime
from .config import SandboxConfig
from .faults import FaultInjector, markers
from .predictions import Prediction, PredictionBook
from .validation import BadRequest, validate_run
from .webhooks import Delivery, WebhookOutbox, url_problem

Clock = Callable[[], float]


class Handlers:
    """Answers requests over the account's parts. Not thread-safe: `SandboxState` holds
    its lock around every call."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.clock = clock
        self._auth = f"Bearer {config.api_key}"
        self.book = PredictionBook()
        self.account = Account(config)
        self.admission = Admission(config)
        self.faults = FaultInjector(config)
        self.cdn = Cdn(config)
        self.outbox = WebhookOutbox(config)
        self.rejections: Counter[str] = Counter()  # refusals by reason
        # Every API request by endpoint, a wrong key's included (arrivals count only
        # authenticated ones, as FASHN's windows do).
        self.received: Counter[str] = Counter()
        self.config = config

    @property
    def config(self) -> SandboxConfig:
        return self._config

    @config.setter
    def config(self, config: SandboxConfig) -> None:
        # Tests swap the config of a running sandbox (to bring the CDN down, say): every
        # part reads the one set here. The key and the starting balance stay as they were.
        self._config = config
        for part in (self.account, self.admission, self.faults, self.cdn, self.outbox):
            part.config = config

    def advance(self) -> float:
        """Retire every prediction finished by now: frees its slot, refunds a failure."""
        now = self.clock()
        for prediction in self.book.retire(now):
            self.account.settle(prediction)
        return now

    def run(self, authorization: str | None, body: bytes, webhook_url: str | None = None) -> Answer:
        now = self.advance()
        refused = self._refuse(authorization, "run", now)
        if refused:
            return refused
        data, key = _parse_run(body)
        index = self.faults.request_index("run", key)
        fault, delay = self.faults.http_fault("run", key, index)
        if fault:
            return fault
        try:
            spec, inputs = validate_run(data)
            problem = None if webhook_url is None else url_problem(webhook_url)
            if problem:
                raise BadRequest(problem)
        except BadRequest as exc:
            return self._reject("BadRequest", error(400, "BadRequest", str(exc)), delay)
        full = self.admission.cap(self.book, now)
        if full:
            return self._reject("ConcurrencyLimitExceeded", full, delay)
        cost = credits_for(spec.name, inputs)
        broke = self.account.refusal(cost)
        if broke:
            return self._reject("OutOfCredits", broke, delay)
        prediction = self._accept(spec, inputs, key, now, cost)
        if webhook_url is not None:
            prediction.webhook = True
            self.outbox.schedule(prediction, webhook_url)
        lost = self.faults.lost_answer(key, index, delay)
        if lost:
            prediction.lost_answer = True
            return lost
        body_out = {"id": prediction.id, "error": None}
        return Answer(200, body_out, {"x-fashn-credits-used": str(cost)}, delay=delay)

    def status(self, authorization: str | None, prediction_id: str, origin: str | None) -> Answer:
        now = self.advance()
        refused = self._refuse(authorization, "status", now)
        if refused:
            return refused
        fault, delay = self.faults.http_fault("status", prediction_id)
        if fault:
            return fault
        prediction = self.book.get(prediction_id)
        if prediction is None or now >= prediction.expires_at:
            message = f"No prediction {prediction_id!r} (unknown, or expired and forgotten)."
            return self._reject("NotFound", error(404, "NotFound", message), delay)
        status = prediction.status_at(now)
        headers: dict[str, str] = {}
        if status in ("completed", "failed"):
            if prediction.first_seen_finished_at is None:
                prediction.first_seen_finished_at = now
            # subscribe() in the official SDK reads the cost off the terminal status.
            spent = prediction.cost if status == "completed" else 0
            headers["x-fashn-credits-used"] = str(spent)
        return Answer(200, self._status_body(prediction, now, origin), headers, delay=delay)

    def _status_body(
        self, prediction: Prediction, now: float, origin: str | None
    ) -> dict[str, Any]:
        """{id, status, output, error}: what /status answers and a webhook carries."""
        status = prediction.status_at(now)
        body: dict[str, Any] = {"id": prediction.id, "status": status}
        body.update(output=None, error=None)
        if status == "completed":
            body["output"] = self.cdn.outputs(prediction, origin)
        elif status == "failed":
            body["error"] = prediction.error_body()
        return body

    def due_webhooks(self) -> list[tuple[Delivery, bytes]]:
        """The webhook deliveries due now, each with its JSON body."""
        now = self.advance()
        due = []
        for delivery in self.outbox.take_due(now):
            prediction = self.book.by_id[delivery.prediction_id]
            due.append((delivery, json.dumps(self._status_body(prediction, now, None)).encode()))
        return due

    def webhook_answered(self, delivery: Delivery, ok: bool) -> None:
        """A delivery was answered 2xx (ok) or not (retried while retries remain)."""
        now = self.clock()
        prediction = self.book.by_id[delivery.prediction_id]
        if ok and prediction.first_notified_at is None:
            prediction.first_notified_at = delivery.sent_at
            prediction.notice_acknowledged_at = now
        self.outbox.answered(delivery, ok, now)

    def credits(self, authorization: str | None) -> Answer:
        now = self.advance()
        refused = self._refuse(authorization, "credits", now)
        if refused:
            return refused
        fault, delay = self.faults.http_fault("credits", "-")
        if fault:
            return fault
        return Answer(200, self.account.credits_body(), delay=delay)

    def download(self, prediction_id: str, name: str) -> Answer:
        """An output file; no auth, like a signed CDN URL."""
        now = self.advance()
        self.admission.arrive("cdn", now)
        fault, delay = self.faults.http_fault("cdn", f"{prediction_id}/{name}")
        if fault:
            return fault
        prediction = self.book.get(prediction_id)
        index = None if prediction is None else self.cdn.index(prediction, name)
        if prediction is None or index is None or prediction.status_at(now) != "completed":
            answer = error(404, "NotFound", f"No such output: {prediction_id}/{name}.")
            return self._reject("NotFound", answer, delay)
        if now >= prediction.expires_at:
            answer = error(403, "AccessDenied", "Request has expired.")
            return self._reject("Expired", answer, delay)
        data = self.cdn.file(prediction, index)
        return Answer(200, data, media_type=prediction.mime, delay=delay)

    def _refuse(self, authorization: str | None, endpoint: str, now: float) -> Answer | None:
        """What the API answers before looking at a request: 401 for a wrong key (not
        counted in any window), else 429 when the endpoint's window is full."""
        self.received[endpoint] += 1
        if authorization != self._auth:
            return self._reject("Unauthorized", UNAUTHORIZED)
        refused = self.admission.admit(endpoint, now)
        return self._reject("RateLimitExceeded", refused) if refused else None

    def _reject(self, reason: str, answer: Answer, delay: float = 0.0) -> Answer:
        self.rejections[reason] += 1
        return answer.delayed(delay)

    def _accept(
        self, spec: ModelSpec, inputs: dict[str, Any], key: str, now: float, cost: int
    ) -> Prediction:
        """Create, book and charge the n-th prediction of job `key`, its fate drawn now."""
        config = self.config
        n = self.book.next_submission(key)
        forced_error, seconds = markers(inputs, n)
        if seconds is None:
            low, high = config.latency_span(spec.name)
            seconds = low + (high - low) * self.faults.draw("latency", key, n)
        finished_at = now + config.scaled(seconds)
        error_name = forced_error or self.faults.fate(spec.name, key, n)
        is_base64 = inputs.get("return_base64") is True and spec.output_mime.startswith("image/")
        ttl = config.base64_ttl if is_base64 and error_name is None else config.url_ttl
        prediction = Prediction(
            id=self.book.new_id(config.seed, key, n),
            model_name=spec.name,
            fingerprint=key,
            submission=n,
            accepted_at=now,
            finished_at=finished_at,
            error_name=error_name,
            error_as_string=self.faults.error_as_string(key, n),
            cost=cost,
            outputs=output_count(spec.name, inputs),
            base64=is_base64,
            mime=output_mime(spec, inputs),
            lost_answer=False,
            expires_at=finished_at + config.scaled(ttl),
        )
        self.book.add(prediction)
        self.account.charge(cost)
        return prediction


def _parse_run(body: bytes) -> tuple[object, str]:
    """A /run body as JSON (None if it is not), and its job fingerprint ("-" if none)."""
    try:
        data: object = json.loads(body)
    except ValueError:
        data = None
    key = "-"
    if isinstance(data, dict) and isinstance(data.get("inputs"), dict):
        key = fingerprint(str(data.get("model_name")), data["inputs"])
    return data, key
