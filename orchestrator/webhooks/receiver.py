"""The webhook receiver over HTTP: a starlette app served by uvicorn on the engine's
own event loop, so that a webhook reaches the scheduler without crossing threads.

Every POST is answered at once: 200 when it counts (the engine acts on it after the
answer has gone), 404 for a path without a token of ours, 400 for a body that is not
a webhook, 413 past the size bound, 503 while no run is under way. FASHN retries a
non-2xx answer, so a webhook that arrives while a run starts is sent again.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..errors import UsageError
from .inbox import MAX_BODY, Inbox, Notice, Refused

log = logging.getLogger("orchestrator")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so that a port in use is a usage error before
    anything is paid for."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"--webhook-listen {host}:{port}: cannot listen there ({exc.strerror or exc}); "
            "pick a free port on an address of this machine"
        ) from None
    sock.setblocking(False)
    return sock


class Receiver:
    """The ASGI app (`app`), handing each webhook that counts to `on_notice`."""

    def __init__(self, inbox: Inbox):
        self.inbox = inbox
        # Set while a run is on; it may answer another status than 200 (a fleet's
        # receiver asks FASHN to retry a webhook that overtook another worker's /run).
        self.on_notice: Callable[[Notice], int | None] | None = None
        self.app = Starlette(routes=[Route("/{path:path}", self._post, methods=["POST"])])

    def __repr__(self) -> str:
        return f"<Receiver running={self.on_notice is not None} {self.inbox!r}>"

    async def _post(self, request: Request) -> Response:
        inbox = self.inbox
        try:
            attempt_pk = inbox.attempt(request.url.path)
            inbox.check_size(request.headers.get("content-length"))
            body = bytearray()
            async for chunk in request.stream():
                body += chunk
                if len(body) > MAX_BODY:
                    raise inbox.too_large()
            notice = inbox.notice(attempt_pk, bytes(body))
        except Refused as refused:
            return Response(refused.reason, refused.status, media_type="text/plain")
        on_notice = self.on_notice
        if on_notice is None:
            return Response("no run under way", 503, media_type="text/plain")
        answer = on_notice(notice)  # an HTTP status other than 200, or None
        if answer is not None and answer != 200:
            return Response(f"not now ({answer})", answer, media_type="text/plain")
        return Response(status_code=200)


class _Server(uvicorn.Server):
    """uvicorn on a loop that is not its own: the engine handles the signals."""

    def capture_signals(self):  # type: ignore[no-untyped-def]
        from contextlib import nullcontext

        return nullcontext()


async def serve(app: Starlette, sock: socket.socket) -> None:
    """Serve `app` on `sock` until cancelled; then stop listening and close every
    connection at once (no grace period: the run is over)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="none",
        http="h11",
        proxy_headers=False,
        server_header=False,
        date_header=False,
    )
    config.load()
    server = _Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        await anyio.sleep_forever()
    finally:
        for listener in server.servers:
            listener.close()
        for connection in list(server.server_state.connections):
            connection.shutdown()
        sock.close()
