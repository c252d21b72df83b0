"""What a webhook POST is worth, decided without I/O: the token in its path, the attempt
it names, and its body `{id, status, output, error}` as a `Notice` for the engine.

The path is checked before the body is read, so a stranger's POST costs a hash and a
set lookup; the body is bounded (base64 outputs travel inside it, so the bound is
generous). Comparing digests rather than tokens keeps the secret out of the set, and
a lookup by hash gives a timing attacker nothing to measure.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..api import Status, status_from
from .token import digest

# Largest body accepted: four base64 images of a few megabytes each fit well within.
MAX_BODY = 64 * 1024 * 1024
_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")
_ATTEMPT = re.compile(r"[0-9]{1,18}")


@dataclass(frozen=True)
class Notice:
    """A webhook that passed the checks: which attempt, which prediction, what status."""

    attempt_pk: int
    prediction_id: str
    status: Status


class Refused(Exception):
    """The answer to a POST that does not count: an HTTP status and a short reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Inbox:
    """Checks webhook POSTs against the tokens this database issued (by digest)."""

    def __init__(self, digests: Iterable[str], redact: Callable[[str], str]):
        self._digests = set(digests)
        self._redact = redact
        # Asked about a digest not (yet) trusted: a fleet's receiver looks in the
        # database for the tokens of workers started since (see webhooks/fleet.py).
        self.lookup: Callable[[str], bool] | None = None
        self.counts: Counter[str] = Counter()  # by outcome: accepted, or why refused

    def __repr__(self) -> str:
        return f"<Inbox tokens={len(self._digests)} {dict(self.counts)}>"

    def trust(self, token_digest: str) -> None:
        self._digests.add(token_digest)

    def _trusted(self, token_digest: str) -> bool:
        if token_digest in self._digests:
            return True
        return self.lookup is not None and self.lookup(token_digest)

    def knows(self, token_digest: str) -> bool:
        return token_digest in self._digests

    def attempt(self, path: str) -> int:
        """The attempt a POST's path names (`.../<token>/<attempt>`, whatever prefix a
        proxy left), if its token is ours; else Refused (404, as for any unknown path)."""
        parts = [p for p in path.split("/") if p]
        if len(parts) < 2 or not _ATTEMPT.fullmatch(parts[-1]):
            raise self._refuse(404, "bad path")
        token = parts[-2]
        if not _TOKEN.fullmatch(token) or not self._trusted(digest(token)):
            raise self._refuse(404, "unknown token")
        return int(parts[-1])

    def check_size(self, content_length: str | None) -> None:
        if content_length is None:
            return
        try:
            size = int(content_length)
        except ValueError:
            raise self._refuse(400, "bad content-length") from None
        if size > MAX_BODY:
            raise self._refuse(413, "body too large")

    def notice(self, attempt_pk: int, body: bytes) -> Notice:
        """The webhook's body as a Notice; Refused (400) when it is not one."""
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise self._refuse(400, "body is not JSON") from None
        prediction_id = data.get("id") if isinstance(data, dict) else None
        if not isinstance(prediction_id, str) or not prediction_id:
            raise self._refuse(400, "no prediction id")
        assert isinstance(data, dict)
        status: Status | None = status_from(data, self._redact)
        if status is None:
            raise self._refuse(400, "no status")
        self.counts["accepted"] += 1
        return Notice(attempt_pk, prediction_id, status)

    def too_large(self) -> Refused:
        return self._refuse(413, "body too large")

    def _refuse(self, status: int, reason: str) -> Refused:
        self.counts[reason] += 1
        return Refused(status, reason)
