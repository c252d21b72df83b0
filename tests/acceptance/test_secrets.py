"""The API key never leaks, whatever it looks like: a key with stray whitespace (a CRLF
.env file) is stripped and works; a key with other unprintable characters is refused
before any request; every printed form of the key is redacted."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import httpx
import pytest

from orchestrator.api import FashnClient, Transient
from orchestrator.logs import RedactFilter, Redactor

from .test_cli import LIMITS, cli, write_manifest

KEY = "fa-LEAKTEST-9d8c7b6a"


def leaked(text: str | bytes) -> bool:
    """Whether any part of the key that identifies it is in `text`."""
    needle = KEY.encode() if isinstance(text, bytes) else KEY
    return needle in text


@pytest.mark.parametrize("stray", ["\r", "\n", "\t", " \r\n"], ids=repr)
def test_a_key_with_surrounding_whitespace_is_stripped_and_never_leaks(  # type: ignore[no-untyped-def]
    sandbox, tmp_path: Path, stray: str
) -> None:
    """A CRLF .env file: the run completes with the stripped key, warns without echoing
    it, and the key is in no output stream, database byte or report."""
    server = sandbox(api_key=KEY, latency={"*": (1.0, 2.0)})
    env = {"FASHN_API_KEY": KEY + stray, "FASHN_BASE_URL": server.base_url}
    manifest = write_manifest(tmp_path / "catalog.csv", 3)
    db, out = tmp_path / "q.db", tmp_path / "out"
    done = cli("-vv", "submit", str(manifest), "--db", str(db), "--out", str(out), *LIMITS, env=env)
    assert done.returncode == 0, done.stderr
    assert "FASHN_API_KEY had surrounding whitespace" in done.stderr
    assert server.state.rejections == {}
    report = cli("report", "--format", "json", "--db", str(db), env=env)
    assert report.returncode == 0, report.stderr
    assert {job["state"] for job in json.loads(report.stdout)} == {"completed"}
    for run in (done, report, cli("status", "--db", str(db), env=env)):
        assert not leaked(run.stdout) and not leaked(run.stderr)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("q.db") for p in files)
    for path in files:
        assert not leaked(path.read_bytes()), path


@pytest.mark.parametrize(
    "key",
    ["fa-ab\x01cd", "fa-ab\x7fcd", "fa-ab\x1bcd", "fa-abécd", "fa-ab\u200bcd", "fa-ab cd"],
    ids=repr,
)
def test_a_key_with_unprintable_characters_is_refused_before_any_request(  # type: ignore[no-untyped-def]
    sandbox, tmp_path: Path, key: str
) -> None:
    """Exit 2 with a message naming FASHN_API_KEY but not its value; nothing was sent."""
    server = sandbox(api_key=key.replace("é", "e"))
    env = {"FASHN_API_KEY": key, "FASHN_BASE_URL": server.base_url}
    manifest = write_manifest(tmp_path / "catalog.csv", 2)
    args = ["--db", str(tmp_path / "q.db"), "--out", str(tmp_path / "out")]
    done = cli("submit", str(manifest), *args, *LIMITS, env=env)
    assert done.returncode == 2, done.stderr
    assert "FASHN_API_KEY" in done.stderr
    for part in ("fa-ab", key):
        assert part not in done.stderr and part not in done.stdout
    assert sum(server.state.stats()["arrivals"].values()) == 0


def test_the_key_is_redacted_in_every_printed_form() -> None:
    """Plain, repr'd, escaped, as bytes, in a Bearer header, stripped or not."""
    raw = KEY + "\r"
    redact = Redactor(raw)
    header = f"Bearer {raw}".encode()
    forms = [
        raw,
        repr(raw),
        repr(raw.encode()),
        f"Illegal header value {header!r}",
        json.dumps(raw),
        KEY,
        f"Bearer {KEY}",
        repr(KEY),
    ]
    for form in forms:
        text = redact(f"before {form} after")
        assert not leaked(text), text
        assert text.startswith("before ") and text.endswith(" after"), text
    # A key with a control character inside: its escaped forms are not contiguous.
    odd = "fa-ab\x01cd"
    for form in (odd, repr(odd), json.dumps(odd), repr(odd.encode())):
        assert "fa-ab" not in Redactor(odd)(form), form
    # A short key (tests, the sandbox) is masked as a word, not inside other words.
    assert Redactor("k\r")("key k, 'k\\r' in packshot") == "key ***, '***' in packshot"
    # A Bearer token is hidden even if it is not the configured key.
    assert "sk-other" not in Redactor("")("Authorization: Bearer sk-other-123")


def test_the_log_filter_redacts_args_exceptions_and_tracebacks() -> None:
    """The key in formatted args, an exception's text and a traceback is redacted."""
    header = f"Bearer {KEY}\r".encode()
    try:
        raise RuntimeError(f"Illegal header value {header!r}")
    except RuntimeError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "orchestrator", logging.ERROR, __file__, 1, "%s|%r", (KEY, KEY + "\n"), exc_info
    )
    record.stack_info = f"Stack (most recent call last):\n  frame {KEY}"
    assert RedactFilter(Redactor(KEY + "\n")).filter(record)
    text = logging.Formatter().format(record)
    assert "RuntimeError" in text and "Traceback" in text and "***" in text
    assert not leaked(text), text


def test_a_transport_error_never_carries_the_request_headers_into_a_message() -> None:
    """httpx's LocalProtocolError quotes the header it refused: the message must not."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.LocalProtocolError(f"Illegal header value {request.headers['authorization']!r}")

    def refuse_with_text(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot connect, sent {request.headers['authorization']}")

    import anyio

    async def attempt(handler: object) -> str:
        transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport) as http:
            client = FashnClient(http, "http://127.0.0.1:9/v1", KEY)
            with pytest.raises(Transient) as caught:
                await client.status("p-1")
            return str(caught.value)

    for handler in (refuse, refuse_with_text):
        message = anyio.run(attempt, handler)
        assert "/status/p-1" in message and not leaked(message), message
