"""Serve the sandbox with uvicorn: in a background thread (tests, --sandbox) or in front."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from .app import DropFilter, create_app
from .config import SandboxConfig
from .state import Clock, SandboxState
from .webhook_sender import WebhookSender

_START_TIMEOUT = 10.0


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (a name other than localhost is
    assumed reachable from elsewhere: it is what a user would bind to share it)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def dialable(host: str) -> str:
    """A host a client on this machine can dial for a server bound to `host`: a
    wildcard bind (0.0.0.0, ::, "") is not an address to connect to, loopback is."""
    if not host:
        return "127.0.0.1"
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if ip.is_unspecified:
        return "::1" if ip.version == 6 else "127.0.0.1"
    return host


def exposure_warning(host: str, port: int) -> str | None:
    """What to tell a user who binds the sandbox beyond loopback; None on loopback."""
    if is_loopback(host):
        return None
    where = "every network interface" if dialable(host) != host else "a network address"
    return (
        f"warning: listening on {host or '0.0.0.0'} ({where}), not only loopback: anyone on "
        f"the network who can reach port {port} can use this sandbox and download every "
        "output (outputs need no key). Use --host 127.0.0.1 unless that is what you want."
    )


class SandboxServer:
    """A FASHN API stand-in on a real socket; `with SandboxServer(cfg) as server: ...`.

    port=0 picks a free port; `url` and `base_url` are known once it is bound.
    `clock` replaces time.monotonic, for tests that move time by hand.
    """

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Clock = time.monotonic,
    ) -> None:
        self.config = config or SandboxConfig()
        self.host = host
        self.port = port
        self.state = SandboxState(self.config, clock=clock)
        self.app = create_app(self.state)
        self.webhooks = WebhookSender(self.state)
        self._socket: socket.socket | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        running = self._thread is not None and self._thread.is_alive()
        return f"<SandboxServer {self.url} running={running}>"

    @property
    def url(self) -> str:
        """The root, e.g. http://127.0.0.1:8787 (the official SDK's base_url).

        Bound on a wildcard address, it names loopback: 0.0.0.0 is not dialable, and
        output URLs follow the Host header each client used anyway.
        """
        host = dialable(self.host)
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API root, e.g. http://127.0.0.1:8787/v1."""
        return f"{self.url}/v1"

    def start(self) -> SandboxServer:
        """Bind, serve in a daemon thread, and return once requests are answered."""
        if self._thread is not None:
            raise RuntimeError("the sandbox server is already started")
        sock = self._bind()
        self._server = _SandboxUvicorn(self._uvicorn_config(), self.webhooks)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name=f"sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the sandbox server did not start on {self.url}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run_forever(self, on_ready: Callable[[SandboxServer], None] | None = None) -> None:
        """Serve in the foreground until Ctrl-C or SIGTERM.

        `on_ready(server)` runs once requests are answered and Ctrl-C is handled by the
        server (so a user, or a test, that reacts to it at once finds both), e.g. to
        print the URL.
        """
        sock = self._bind()
        announce = lambda: on_ready and on_ready(self)  # noqa: E731
        server = _SandboxUvicorn(self._uvicorn_config(), self.webhooks, announce)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            # uvicorn re-raises the captured SIGINT after its graceful shutdown.
            pass
        finally:
            sock.close()
            self._socket = None

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto must say TCP: asyncio only disables Nagle on such sockets, and with Nagle
        # on, each answer (head and body are two writes) waits ~40 ms for a delayed ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock.bind((self.host, self.port))
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._socket = sock
        self.state.public_url = self.url
        return sock

    def _uvicorn_config(self) -> uvicorn.Config:
        error_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, DropFilter) for f in error_log.filters):
            error_log.addFilter(DropFilter())
        return uvicorn.Config(
            self.app,
            log_config=None,  # leave the host program's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            loop="asyncio",
            timeout_graceful_shutdown=1,
            proxy_headers=False,  # loopback only: skip the per-request middleware
            server_header=False,
        )


class _SandboxUvicorn(uvicorn.Server):
    """A uvicorn server that sends the sandbox's webhooks from its own loop (one thread
    for the whole sandbox), and says when it has started: after its signal handlers
    are in place and its sockets listen, so that a Ctrl-C right after the announcement
    stops it gracefully."""

    def __init__(
        self,
        config: uvicorn.Config,
        webhooks: WebhookSender,
        announce: Callable[[], object] | None = None,
    ):
        super().__init__(config)
        self._webhooks = webhooks
        self._announce = announce
        self._sending: asyncio.Task[None] | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self._sending = asyncio.get_running_loop().create_task(self._webhooks.run())
        if not self.should_exit and self._announce is not None:
            self._announce()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._sending is not None:
            self._webhooks.stop()
            await asyncio.wait([self._sending], timeout=_START_TIMEOUT)
        await super().shutdown(sockets)
