"""Test helpers that ship with the package: virtual time and an in-memory FASHN.

The unit tier runs the whole scheduler in milliseconds: the event loop's clock is a
`VirtualClock` that jumps to the next timer whenever nothing else can run, and FASHN
is the sandbox's own state machine behind an httpx transport (no sockets), on that
clock. Limits, lifecycles, faults and credits behave exactly as over HTTP, and tests
read what the "server" saw from `InMemoryFashn.state`.

    clock = VirtualClock()
    fashn = InMemoryFashn(SandboxConfig(), clock)
    outcome = run_in_virtual_time(engine_for(store, fashn, out).run, clock=clock)

With webhooks, the engine's receiver gets them from the in-memory FASHN through
httpx's ASGI transport (no sockets): `run_with_webhooks(engine.run,
fashn.webhooks_to(engine.webhooks.app))`.
"""

from __future__ import annotations

import asyncio
import json
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
import httpx

from .sandbox import SandboxConfig
from .sandbox.state import Answer, SandboxState
from .sandbox.webhook_sender import WebhookSender

T = TypeVar("T")

BASE_URL = "http://fashn.test/v1"
# What one turn of the loop costs in virtual time (a real one takes microseconds).
_TURN_SECONDS = 1e-9
# A loop that has nothing scheduled waits this long (real seconds) for a thread's
# result before it calls the run deadlocked.
_DEADLOCK_SECONDS = 10.0


class VirtualClock:
    """Wall and monotonic time that move only when the loop runs out of work."""

    def __init__(self, wall_start: float = 1_800_000_000.0):
        self.now = 0.0
        self._wall_start = wall_start
        self.jumps = 0  # how often the loop had to move time on

    def __repr__(self) -> str:
        return f"<VirtualClock now={self.now:.6f} jumps={self.jumps}>"

    def wall(self) -> float:
        return self._wall_start + self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Jump to the next timer: nothing else could happen before it."""
        if seconds > 0:
            self.now += seconds
            self.jumps += 1

    def tick(self, seconds: float) -> None:
        """The time one turn of the event loop takes."""
        self.now += seconds


class _FastForward(selectors.BaseSelector):
    """A selector that, instead of blocking until the next timer, moves the clock to it.

    Real readiness (a worker thread's result arriving through the loop's self-pipe)
    is still seen: it is checked first, without waiting.
    """

    def __init__(self, clock: VirtualClock):
        self._real = selectors.DefaultSelector()
        self._clock = clock

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            # On a real clock every turn of the loop takes time. Code may rely on that:
            # aiolimiter, woken a float rounding short of "enough has leaked", sets its
            # timer for now again, and would spin for ever on a clock that stood still.
            self._clock.tick(_TURN_SECONDS)
            return ready
        if timeout is None:  # no timer at all: only a thread can still wake the loop
            ready = self._real.select(_DEADLOCK_SECONDS)
            if not ready:
                raise RuntimeError("virtual time: nothing is scheduled and nothing can wake")
            return ready
        self._clock.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a VirtualClock: every sleep and timeout takes no real time."""

    def __init__(self, clock: VirtualClock):
        super().__init__(_FastForward(clock))
        self._virtual = clock

    def time(self) -> float:
        return self._virtual.now


def run_in_virtual_time(func: Callable[..., Awaitable[T]], *args: Any, clock: VirtualClock) -> T:
    """`anyio.run(func, *args)` on a VirtualTimeLoop driven by `clock`."""
    return anyio.run(
        func,
        *args,
        backend="asyncio",
        backend_options={"loop_factory": lambda: VirtualTimeLoop(clock)},
    )


async def inline(func: Callable[..., T], *args: Any) -> T:
    """A blocking runner that runs `func` on the loop itself: no worker thread, so
    virtual time cannot move while it runs (for small files in tests only)."""
    return func(*args)


async def run_with_webhooks(run: Callable[[], Awaitable[T]], sender: WebhookSender) -> T:
    """`await run()` while `sender` delivers webhooks; the sender stops when it returns."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(sender.run)
        try:
            result = await run()
        finally:
            sender.stop()
    return result


class InMemoryFashn(httpx.AsyncBaseTransport):
    """FASHN's API and output URLs as an httpx transport over a SandboxState.

    The same state machine as the HTTP sandbox (limits, credits, lifecycles, faults),
    on the virtual clock; delays are virtual sleeps and dropped connections are
    httpx transport errors, as a client sees them over a socket.
    """

    def __init__(self, config: SandboxConfig, clock: VirtualClock):
        self.state = SandboxState(config, clock=clock.monotonic)
        self.state.public_url = BASE_URL.removesuffix("/v1")
        self.requests = 0

    def __repr__(self) -> str:
        return f"<InMemoryFashn {self.state!r}>"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        answer = self._answer(request, await request.aread())
        if answer.delay > 0:
            await anyio.sleep(answer.delay)
        if answer.drop:
            raise httpx.RemoteProtocolError("sandbox fault: connection dropped", request=request)
        body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        headers = {**answer.headers, "content-type": answer.media_type}
        return httpx.Response(answer.status, headers=headers, content=body, request=request)

    def webhooks_to(self, app: Any) -> WebhookSender:
        """A sender of this FASHN's webhooks into the ASGI `app` (an engine's receiver:
        `engine.webhooks.app`), on the virtual clock; run it beside the engine with
        `run_with_webhooks`."""
        return WebhookSender(self.state, transport=httpx.ASGITransport(app))

    def _answer(self, request: httpx.Request, body: bytes) -> Answer:
        path, auth = request.url.path, request.headers.get("authorization")
        if request.method == "POST" and path == "/v1/run":
            return self.state.handle_run(auth, body, request.url.params.get("webhook_url"))
        if request.method == "GET" and path.startswith("/v1/status/"):
            return self.state.handle_status(auth, path.removeprefix("/v1/status/"))
        if request.method == "GET" and path == "/v1/credits":
            return self.state.handle_credits(auth)
        if request.method == "GET" and path.startswith("/cdn/"):
            prediction_id, _, name = path.removeprefix("/cdn/").partition("/")
            return self.state.handle_download(prediction_id, name)
        return Answer(404, {"error": "NotFound", "message": f"no route {request.method} {path}"})
