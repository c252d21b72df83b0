"""The webhook token: the secret in every webhook URL this orchestrator hands FASHN.

FASHN does not sign webhooks, so the URL itself is the credential: a POST counts only
if its path carries a token this database issued. A token is 128 random bits, made
fresh by each run. The database keeps only its sha256, which cannot be turned back
into the token: a copy of the file (a backup, a bug report) is no key to the receiver.
Since the plain token cannot be read back, a process that resumes a queue cannot reuse
the token of the process that died; it makes its own, and accepts the earlier runs'
tokens too (their digests are in the database), so that a webhook for a prediction
that an earlier run sent still counts when it arrives.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 16  # 128 bits


def digest(token: str) -> str:
    """What the database stores: the token's sha256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class Token:
    """A fresh secret; its value is only ever put into webhook URLs, never printed."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None = None):
        self._value = value if value is not None else secrets.token_urlsafe(TOKEN_BYTES)

    @property
    def value(self) -> str:
        return self._value

    @property
    def digest(self) -> str:
        return digest(self._value)

    def __repr__(self) -> str:
        return "<Token ***>"

    __str__ = __repr__
