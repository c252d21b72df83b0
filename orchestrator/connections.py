"""The HTTP transport of the engine's clients: httpx's own, whose pooled connections
answer "has the server closed you?" with one poll of their socket.

httpcore asks that of every idle connection in the pool, several times per request
(each time it assigns a request to a connection, and again when a response is
closed). Through anyio, each answer first builds the stream's whole table of socket
attributes, which calls getpeername(): some 15 us where the poll takes 2 us, paid
about 25 times per job. Here the socket is looked up once, when the connection opens.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx


def transport(*, limits: httpx.Limits, verify: ssl.SSLContext) -> httpx.AsyncHTTPTransport:
    """httpx's transport, its pool's connections made by `IdleCheckBackend`. (Its pool
    is a private attribute: a version of httpx without one keeps the default backend.)"""
    made = httpx.AsyncHTTPTransport(verify=verify, limits=limits)
    pool = getattr(made, "_pool", None)
    if isinstance(pool, httpcore.AsyncConnectionPool) and hasattr(pool, "_network_backend"):
        pool._network_backend = IdleCheckBackend(pool._network_backend)
    return made


class IdleCheckBackend(httpcore.AsyncNetworkBackend):
    """Another backend's connections (anyio's, trio's), each keeping its socket."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend):
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return IdleCheckStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return IdleCheckStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class IdleCheckStream(httpcore.AsyncNetworkStream):
    """A connection whose `is_readable` polls the socket it was opened on."""

    def __init__(self, inner: httpcore.AsyncNetworkStream):
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # The TLS stream runs over the same socket; wrapped again, it keeps it.
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return IdleCheckStream(tls)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return socket_readable(self._socket)
        return self._inner.get_extra_info(info)


def socket_readable(sock: socket.socket) -> bool:
    """Whether a read would return at once: data, or the b"" of a closed connection
    (a socket already closed here counts as readable, as httpcore counts it)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    poll = getattr(select, "poll", None)
    if poll is None:  # Windows
        ready, _, _ = select.select([fd], [], [], 0)
        return bool(ready)
    poller = poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
