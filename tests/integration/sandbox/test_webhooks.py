"""The sandbox's webhooks: the outbox on a hand-moved clock (when each is due, faults,
FASHN's retries), and the sender over real HTTP to a receiver on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from orchestrator.sandbox import Faults, SandboxConfig, SandboxServer, SandboxState
from orchestrator.sandbox.webhooks import RETRY_DELAYS

from .helpers import AUTH, ManualClock

BEARER = AUTH["Authorization"]
HOOK = "http://hooks.example/fashn/token/1"


def submit(state: SandboxState, n: int = 0, webhook_url: str | None = HOOK, **inputs: Any) -> Any:
    body = {"model_name": "background-remove", "inputs": {"image": f"https://x.example/{n}.png"}}
    body["inputs"].update(inputs)
    return state.handle_run(BEARER, json.dumps(body).encode(), webhook_url)


def make(clock: ManualClock, **faults: Any) -> SandboxState:
    config = SandboxConfig(latency={"*": (5.0, 5.0)}, faults=Faults(**faults))
    return SandboxState(config, clock=clock)


def test_a_webhook_is_due_when_its_prediction_finishes() -> None:
    """Nothing is due before the finish; at it, the body is what /status would answer."""
    clock = ManualClock()
    state = make(clock)
    prediction_id = submit(state).body["id"]
    assert state.next_webhook_due() == pytest.approx(clock.now + 5.0)
    assert state.due_webhooks() == []
    clock.advance(5.0)
    ((delivery, body),) = state.due_webhooks()
    data = json.loads(body)
    assert (delivery.url, data["id"], data["status"]) == (HOOK, prediction_id, "completed")
    assert data["output"] and data["error"] is None
    state.webhook_answered(delivery, True)
    record = state.prediction(prediction_id)
    assert record.webhook and record.first_notified_at == record.notice_acknowledged_at == clock.now


def test_a_failed_prediction_is_announced_with_its_error() -> None:
    """Failures are sent too, with the error object a status answer carries."""
    clock = ManualClock()
    state = make(clock)
    submit(state, prompt="sandbox:fail=PoseError")
    clock.advance(5.0)
    ((_, body),) = state.due_webhooks()
    data = json.loads(body)
    assert data["status"] == "failed" and data["error"]["name"] == "PoseError"


def test_without_webhook_url_nothing_is_sent() -> None:
    """Only a /run that asked for a webhook gets one."""
    clock = ManualClock()
    state = make(clock)
    submit(state, webhook_url=None)
    assert state.next_webhook_due() is None and state.webhooks == {}


@pytest.mark.parametrize("url", ["ftp://x.example/h", "/relative", "http://", "x" * 3000])
def test_a_bad_webhook_url_is_a_400(url: str) -> None:
    """webhook_url must be an absolute http(s) URL of sane length."""
    answer = submit(make(ManualClock()), webhook_url=url)
    assert answer.status == 400 and "webhook_url" in answer.body["message"]


def test_a_delivery_not_answered_2xx_is_retried_five_times() -> None:
    """FASHN's retries: five more tries, about five minutes in all, then it gives up."""
    clock = ManualClock()
    state = make(clock)
    submit(state)
    clock.advance(5.0)
    tries = 0
    while (due := state.next_webhook_due()) is not None:
        clock.now = due
        ((delivery, _),) = state.due_webhooks()
        state.webhook_answered(delivery, False)
        tries += 1
    assert tries == 1 + len(RETRY_DELAYS) == 6
    assert 240 <= sum(RETRY_DELAYS) <= 360
    assert state.webhooks["abandoned"] == 1 and state.webhooks["retried"] == 5


def test_a_retry_wakes_the_sender() -> None:
    """The sender sleeps while nothing is due: a retry scheduled by an answer must wake it
    (it used to wait for the next prediction's webhook, for ever after the last one)."""
    clock = ManualClock()
    state = make(clock)
    wakes: list[float] = []
    state.on_webhook_scheduled(lambda: wakes.append(clock.now))
    submit(state)
    clock.advance(5.0)
    ((delivery, _),) = state.due_webhooks()
    assert state.next_webhook_due() is None
    woken = len(wakes)
    state.webhook_answered(delivery, False)
    assert len(wakes) == woken + 1 and state.next_webhook_due() is not None


def test_webhook_faults_are_drawn_per_prediction() -> None:
    """Drop: never due; delay: due late; duplicate: due twice."""
    clock = ManualClock()
    dropped = make(clock, webhook_drop=1.0)
    submit(dropped)
    assert dropped.next_webhook_due() is None and dropped.webhooks["dropped"] == 1
    late = make(clock, webhook_delay=1.0, webhook_delay_seconds=(30.0, 30.0))
    submit(late)
    assert late.next_webhook_due() == pytest.approx(clock.now + 35.0)
    twice = make(clock, webhook_duplicate=1.0)
    submit(twice)
    clock.advance(5.0)
    assert len(twice.due_webhooks()) == 2


class _Receiver(BaseHTTPRequestHandler):
    """Records each POST; answers 500 to the first one of each path, then 200."""

    seen: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with self.lock:
            first = all(path != self.path for path, _ in self.seen)
            self.seen.append((self.path, body))
        self.send_response(500 if first else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[str]:
    _Receiver.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_http_sandbox_posts_webhooks_and_retries_over_loopback(receiver: str) -> None:
    """Over real HTTP: each prediction's webhook is POSTed to its URL; a 500 is retried."""
    config = SandboxConfig(time_scale=0.01, latency={"*": (2.0, 3.0)})
    with SandboxServer(config) as server:
        ids = []
        for n in range(3):
            body = {"model_name": "background-remove", "inputs": {"image": f"https://x/{n}.png"}}
            answer = httpx.post(
                f"{server.base_url}/run",
                json=body,
                headers=AUTH,
                params={"webhook_url": f"{receiver}/hooks/t/{n}"},
            )
            ids.append(answer.json()["id"])
        deadline = time.monotonic() + 10
        while server.state.webhooks.get("delivered", 0) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        stats = server.state.webhooks
    assert stats["delivered"] == 3 and stats["retried"] == 3
    by_path: dict[str, list[str]] = {}
    for path, body in _Receiver.seen:
        by_path.setdefault(path, []).append(body["id"])
    assert by_path == {f"/hooks/t/{n}": [ids[n], ids[n]] for n in range(3)}
    assert all(body["status"] == "completed" for _, body in _Receiver.seen)
