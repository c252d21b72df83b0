"""One run's webhook endpoint: its token, the URL for each attempt, the receiver."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Settings
from ..logs import redact_also
from ..store import Store
from .inbox import Inbox, Notice
from .receiver import Receiver, bind, serve
from .token import Token

if TYPE_CHECKING:
    from ..engine.poller import Poller


class Webhooks:
    """One run's webhooks: its token (stored as a digest), the URL for each attempt,
    and the receiver (`app`), served on `settings.webhook_listen` when it is set
    (without it, something else must deliver to `app`: the unit tests do)."""

    def __init__(self, settings: Settings, redact: Callable[[str], str]):
        if not settings.webhook_url:
            raise ValueError("webhooks need settings.webhook_url")
        self.base_url = settings.webhook_url.rstrip("/")
        self.listen = settings.webhook_listen
        self.token = Token()
        redact_also(self.token.value)
        self.inbox = Inbox((), redact)
        self.receiver = Receiver(self.inbox)
        self._sock: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<Webhooks {self.base_url} listen={self.listen} {self.receiver!r}>"

    @property
    def app(self) -> Callable[..., object]:
        return self.receiver.app

    def open(self, store: Store) -> None:
        """Before the run: record this run's token, trust every token still valid
        (earlier runs' predictions may still announce themselves), and bind the
        listening socket (UsageError if the address cannot be had)."""
        for valid in store.add_webhook_token(self.token.digest):
            self.inbox.trust(valid)
        if self.listen is not None and self._sock is None:
            self._sock = bind(*self.listen)

    def url_for(self, attempt_pk: int) -> str:
        """The webhook_url for one attempt's `/run`: secret, never to be logged."""
        return f"{self.base_url}/{self.token.value}/{attempt_pk}"

    def attach(self, announce: Callable[[Notice], None]) -> None:
        """Hand each webhook that counts to `announce`, just after its answer has gone."""

        def later(notice: Notice) -> None:
            asyncio.get_running_loop().call_soon(announce, notice)

        self.receiver.on_notice = later

    def detach(self) -> None:
        self.receiver.on_notice = None

    async def serve(self) -> None:
        """Serve the receiver until cancelled (a no-op without a listening address)."""
        sock, self._sock = self._sock, None
        if sock is not None:
            await serve(self.receiver.app, sock)

    async def follow(self, poller: Poller, download: Callable[[int], None]) -> None:
        """One process's receiver hears every webhook of its run: no other receiver
        finishes its flights (in a fleet, see AccountWebhooks.follow)."""

    def close(self) -> None:
        """Release a socket that was bound but never served."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
