"""Saving outputs: names, data URIs, atomic writes."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import anyio
import httpx
import pytest

from orchestrator.outputs import (
    OutputError,
    decode_data_uri,
    extension,
    safe_name,
    save_output,
    write_atomically,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sku-123_front.v2", "sku-123_front.v2"),
        ("../../etc/passwd", "_.._etc_passwd"),
        ("a/b\\c", "a_b_c"),
        ("..", "_"),
        (".hidden", "hidden"),
        ("", "_"),
        ("ü ñ", "___"),
    ],
)
def test_safe_name(name: str, expected: str) -> None:
    """Job ids become one harmless path component."""
    assert safe_name(name) == expected
    assert "/" not in safe_name(name) and safe_name(name) not in (".", "..")


def test_decode_data_uri() -> None:
    """A base64 data URI gives its bytes and media type."""
    data, mime = decode_data_uri("data:image/png;base64," + base64.b64encode(b"abc").decode())
    assert (data, mime) == (b"abc", "image/png")


@pytest.mark.parametrize("uri", ["data:image/png,abc", "data:image/png;base64,@@@", "nonsense"])
def test_bad_data_uri_is_not_retryable(uri: str) -> None:
    """A data URI that does not decode will not decode next time either."""
    with pytest.raises(OutputError) as err:
        decode_data_uri(uri)
    assert not err.value.retryable


@pytest.mark.parametrize(
    ("mime", "url", "ext"),
    [
        ("image/png", "https://x/y", "png"),
        ("image/jpeg; charset=x", "https://x/y", "jpg"),
        ("video/mp4", "https://x/y", "mp4"),
        (None, "https://x/out.webp?sig=1", "webp"),
        ("application/x-weird", "https://x/y", "bin"),
    ],
)
def test_extension(mime: str | None, url: str, ext: str) -> None:
    """The extension comes from the media type, else the URL."""
    assert extension(mime, url) == ext


def test_write_atomically_leaves_no_partial_files(tmp_path: Path) -> None:
    """The file appears whole, with its checksum, and no temporary file remains."""
    saved = write_atomically(tmp_path / "a" / "0.png", b"hello")
    assert saved.path.read_bytes() == b"hello"
    assert saved.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["0.png"]


def test_save_output_refuses_other_schemes(tmp_path: Path) -> None:
    """Only http(s) and data: outputs are accepted; file: is refused for good."""

    async def main() -> None:
        async with httpx.AsyncClient() as http:
            await save_output(http, "file:///etc/passwd", tmp_path, "b", "j", 0)

    with pytest.raises(OutputError, match="scheme 'file'") as err:
        anyio.run(main)
    assert not err.value.retryable


def test_save_output_from_data_uri(tmp_path: Path) -> None:
    """A base64 output is decoded to OUT/batch/job/n.ext; only its header is kept as URL."""
    uri = "data:image/png;base64," + base64.b64encode(b"png-bytes").decode()

    async def main():  # type: ignore[no-untyped-def]
        async with httpx.AsyncClient() as http:
            return await save_output(http, uri, tmp_path, "batch", "job/1", 2)

    saved = anyio.run(main)
    assert saved.path == tmp_path / "batch" / "job_1" / "2.png"
    assert saved.path.read_bytes() == b"png-bytes"
    assert saved.url == "data:image/png;base64,…"
