"""Saving prediction outputs: fetched or decoded, written atomically, checksummed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import httpx

# Extensions by media type; anything else keeps the URL's own extension or `.bin`.
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class OutputError(Exception):
    """An output could not be fetched or saved. `retryable` says if trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True)
class SavedOutput:
    path: Path
    sha256: str
    size: int
    # What to keep as the output's URL: data URIs are not stored whole once saved.
    url: str


def safe_name(name: str) -> str:
    """A name usable as one path component: no separators, no `..`, not hidden."""
    cleaned = _UNSAFE.sub("_", name).strip(".") or "_"
    return cleaned[:128]


def output_path(root: Path, batch_id: str, job_id: str, index: int, ext: str) -> Path:
    return root / safe_name(batch_id) / safe_name(job_id) / f"{index}.{ext}"


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """The bytes and media type of a `data:<type>;base64,<payload>` URI."""
    header, sep, payload = uri.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise OutputError("output is a data URI that is not base64", retryable=False)
    mime = header[5:-7] or "application/octet-stream"
    try:
        return base64.b64decode(payload, validate=True), mime
    except (binascii.Error, ValueError):
        raise OutputError("output data URI does not decode as base64", retryable=False) from None


def extension(mime: str | None, url: str) -> str:
    if mime:
        ext = _EXTENSIONS.get(mime.split(";")[0].strip().lower())
        if ext:
            return ext
    suffix = Path(urlsplit(url).path).suffix.lstrip(".").lower()
    return suffix if suffix.isalnum() and len(suffix) <= 5 else "bin"


async def fetch(http: httpx.AsyncClient, url: str) -> tuple[bytes, str | None]:
    """Bytes and media type of an output: downloaded (http, https) or decoded (data:)."""
    if url.startswith("data:"):
        return decode_data_uri(url)
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise OutputError(f"refusing output URL with scheme {scheme!r}", retryable=False)
    try:
        response = await http.get(url)
    except httpx.TransportError as exc:
        raise OutputError(f"download failed: {type(exc).__name__}") from None
    if response.status_code in (403, 404, 410):
        raise OutputError(f"output URL answered {response.status_code} (expired?)")
    if response.status_code >= 400:
        raise OutputError(f"output URL answered {response.status_code}")
    return response.content, response.headers.get("content-type")


def write_atomically(path: Path, data: bytes) -> SavedOutput:
    """Write to a temporary file beside `path`, fsync, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return SavedOutput(path, hashlib.sha256(data).hexdigest(), len(data), "")


async def save_output(
    http: httpx.AsyncClient, url: str, root: Path, batch_id: str, job_id: str, index: int
) -> SavedOutput:
    data, mime = await fetch(http, url)
    path = output_path(root, batch_id, job_id, index, extension(mime, url))
    saved = await anyio.to_thread.run_sync(write_atomically, path, data)
    kept = url if not url.startswith("data:") else f"{url.partition(',')[0]},…"
    return SavedOutput(saved.path, saved.sha256, saved.size, kept)
