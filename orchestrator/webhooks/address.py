"""The two webhook settings as the user gives them: the public URL, and HOST:PORT."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import UsageError

# The URL FASHN is given is URL/<token>/<attempt>: the base must leave room for both.
MAX_URL = 1900


def check_url(url: str) -> str:
    """The webhook base URL, without a trailing slash; UsageError if FASHN could not
    POST to it (not absolute http(s), or with a query or fragment that the token and
    attempt appended to its path would end up inside)."""
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018  (raises on a bad port)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--webhook-url {url!r} is not an absolute http(s) URL "
            "(e.g. https://hooks.example.com/fashn)"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise UsageError(
            f"--webhook-url {url!r} has a query, fragment or user name: give a plain "
            "URL; the orchestrator appends /<token>/<attempt> to its path"
        )
    if any(c.isspace() or not c.isprintable() for c in text) or len(text) > MAX_URL:
        raise UsageError(f"--webhook-url {url!r} has spaces or control characters, or is too long")
    return text.rstrip("/")


def parse_listen(text: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [ADDR]:PORT) where the receiver listens; UsageError if not."""
    host, sep, port_text = text.strip().rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 < port < 65536:
        raise UsageError(
            f"--webhook-listen {text!r} is not HOST:PORT with a port from 1 to 65535 "
            "(e.g. 0.0.0.0:8080, 127.0.0.1:8080 or [::]:8080)"
        )
    return host, port
