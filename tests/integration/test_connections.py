"""The engine's HTTP transport (connections.py) over real sockets: an idle connection
the server keeps open is used again, one the server closed is replaced."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import anyio
import httpx

from orchestrator import connections
from orchestrator.sandbox import SandboxServer

LIMITS = httpx.Limits(max_connections=4)


def _client() -> httpx.AsyncClient:
    made = connections.transport(limits=LIMITS, verify=httpx.create_ssl_context())
    return httpx.AsyncClient(transport=made, timeout=5.0)


def test_the_transports_connections_keep_their_socket() -> None:
    made = connections.transport(limits=LIMITS, verify=httpx.create_ssl_context())
    backend = made._pool._network_backend  # type: ignore[attr-defined]
    assert isinstance(backend, connections.IdleCheckBackend)


def test_an_idle_connection_the_server_keeps_is_used_again(
    sandbox: Callable[..., AbstractContextManager[SandboxServer]],
) -> None:
    server: Any = sandbox()
    headers = {"Authorization": f"Bearer {server.state.config.api_key}"}

    async def three_requests() -> list[object]:
        async with _client() as http:
            streams = []
            for _ in range(3):
                response = await http.get(f"{server.base_url}/credits", headers=headers)
                assert response.status_code == 200
                streams.append(response.extensions["network_stream"])
            return streams

    streams = anyio.run(three_requests)
    assert all(isinstance(s, connections.IdleCheckStream) for s in streams)
    assert streams[0] is streams[1] is streams[2]


@contextmanager
def _closing_server() -> Iterator[tuple[int, list[int]]]:
    """An HTTP/1.1 server that answers one request per connection (keep-alive
    promised) and then closes it; yields its port and the requests each connection got."""
    served: list[int] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:  # the listener was closed: the test is over
                return
            with conn:
                served.append(0)
                request = b""
                while b"\r\n\r\n" not in request:
                    request += conn.recv(4096)
                served[-1] += 1
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok"
                )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], served
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the accept()
        listener.close()
        thread.join(5)


def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    with _closing_server() as (port, served):

        async def two_requests() -> None:
            async with _client() as http:
                for _ in range(2):
                    first = await http.get(f"http://127.0.0.1:{port}/")
                    assert first.text == "ok"
                    # Until the server's close has arrived, the connection looks alive.
                    for _ in range(100):
                        if connections.socket_readable(_socket_of(first)):
                            break
                        await anyio.sleep(0.01)

        anyio.run(two_requests)
    assert served == [1, 1]  # a second connection, each with its one request


def _socket_of(response: httpx.Response) -> socket.socket:
    stream = response.extensions["network_stream"]
    sock = stream.get_extra_info("socket")
    assert sock is not None
    return sock  # type: ignore[no-any-return]
