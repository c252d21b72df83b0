"""The sandbox's webhook sender: POSTs each delivery the outbox has due, on time.

It runs on an event loop whose clock is the sandbox's (time.monotonic, which is also
asyncio's; or the unit tier's virtual clock): as a task in the HTTP sandbox's own loop,
or in the test's loop with an in-memory transport.
"""

from __future__ import annotations

import asyncio
import logging

import anyio
import httpx

from .state import SandboxState
from .webhooks import Delivery

log = logging.getLogger("orchestrator.sandbox")

# Seconds a receiver may take to answer one delivery (FASHN does not document its own).
TIMEOUT = 10.0


class WebhookSender:
    """`await sender.run()` until `stop()`."""

    def __init__(
        self, state: SandboxState, *, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self.state = state
        self._transport = transport
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._stopping = False

    def __repr__(self) -> str:
        return f"<WebhookSender next_due={self.state.next_webhook_due()} stopping={self._stopping}>"

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.state.on_webhook_scheduled(self.wake)
        limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
        try:
            async with (
                httpx.AsyncClient(
                    timeout=TIMEOUT, limits=limits, transport=self._transport
                ) as client,
                anyio.create_task_group() as tg,
            ):
                while not self._stopping:
                    for delivery, body in self.state.due_webhooks():
                        tg.start_soon(self._post, client, delivery, body)
                    due = self.state.next_webhook_due()
                    await self._sleep(None if due is None else due - self.state.now())
                tg.cancel_scope.cancel()
        finally:
            self.state.on_webhook_scheduled(None)

    def wake(self) -> None:
        """Look at the outbox again (callable from any thread)."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def stop(self) -> None:
        """Make `run()` return (deliveries under way are abandoned)."""
        self._stopping = True
        self.wake()

    async def _sleep(self, seconds: float | None) -> None:
        assert self._wake is not None
        if seconds is None or seconds > 0:
            with anyio.move_on_after(seconds if seconds is not None else float("inf")):
                await self._wake.wait()
        self._wake.clear()

    async def _post(self, client: httpx.AsyncClient, delivery: Delivery, body: bytes) -> None:
        headers = {"content-type": "application/json"}
        try:
            response = await client.post(delivery.url, content=body, headers=headers)
            ok = response.is_success
        except httpx.HTTPError as exc:
            log.debug(
                "webhook for %s not delivered: %s", delivery.prediction_id, type(exc).__name__
            )
            ok = False
        self.state.webhook_answered(delivery, ok)
