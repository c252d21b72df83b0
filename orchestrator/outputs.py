"""Saving prediction outputs: fetched or decoded, written atomically, checksummed."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx

from .datauri import DataURIError, parse_data_uri
from .errors import HandledError

# A job id or batch name is used verbatim as one path component: validation allows
# only these, so distinct ids are distinct folders (the mapping is injective).
_COMPONENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
PARTIAL_SUFFIX = ".part"
# Every extension `extension()` gives: a name template's `{ext}` is one of these.
EXTENSIONS = ("png", "jpg", "webp", "gif", "mp4", "bin")

# New files get the mode the user's umask gives (0644 under 022), not mkstemp's 0600.
# Read once at import, while no other thread can be changing it.
_UMASK = os.umask(0o022)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK


class OutputError(HandledError):
    """An output could not be fetched or saved. `retryable` says if trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


class ReuseError(OutputError):
    """A saved output to be reused (--reuse) is gone or has changed since."""

    def __init__(self, message: str):
        super().__init__(message, retryable=False)


class OutputDirError(OutputError):
    """The outputs folder cannot be written (full, read-only, no permission): no
    download can succeed until the user acts, so the run stops submitting."""

    def __init__(self, path: Path, exc: OSError):
        reason = exc.strerror or type(exc).__name__
        super().__init__(f"cannot write {path}: {reason}", retryable=False)
        self.path = path


# How blocking file work is run: in a worker thread (anyio.to_thread.run_sync), or
# inline where nothing else may run meanwhile (the virtual-time tests).
BlockingRunner = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class SavedOutput:
    path: Path
    sha256: str
    size: int
    # What to keep as the output's URL: data URIs are not stored whole once saved.
    url: str


def is_folder_name(name: str) -> bool:
    """Whether `name` (a batch name, a job id) can be used verbatim as an output folder."""
    return _COMPONENT.fullmatch(name) is not None and not name.endswith(".")


def job_folder(root: Path, batch_id: str, job_id: str) -> Path:
    """OUT/<batch>/<job id>, with batch and id verbatim (never rewritten, so that two
    ids can never share a folder)."""
    for name in (batch_id, job_id):
        if not _COMPONENT.fullmatch(name):  # ids queued before trailing dots were refused
            raise OutputError(f"{name!r} cannot name an output folder", retryable=False)
    return root / batch_id / job_id


def output_path(root: Path, batch_id: str, job_id: str, index: int, ext: str) -> Path:
    return job_folder(root, batch_id, job_id) / f"{index}.{ext}"


def remove_partials(folder: Path) -> int:
    """Delete temporary files that a killed process left in a job's folder."""
    removed = 0
    if folder.is_dir():
        for stale in folder.glob(f".*{PARTIAL_SUFFIX}"):
            stale.unlink(missing_ok=True)
            removed += 1
    return removed


def remove_partials_of(paths: Iterable[Path]) -> int:
    """Delete the temporary files that a killed process left for these outputs (and
    only those: other jobs may be writing beside them)."""
    removed = 0
    for path in paths:
        pattern = f".{glob.escape(path.name)}.{'?' * 8}{PARTIAL_SUFFIX}"
        if path.parent.is_dir():
            for stale in path.parent.glob(pattern):
                stale.unlink(missing_ok=True)
                removed += 1
    return removed


def check_writable(root: Path) -> None:
    """Create `root` and write, sync and delete a probe file in it: a folder that is
    read-only or already full is found before any prediction is paid for."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=root, prefix=".probe-", suffix=PARTIAL_SUFFIX)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise OutputDirError(root, exc) from None


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """The bytes and media type of a `data:<type>;base64,<payload>` URI."""
    try:
        mime, data = parse_data_uri(uri)
    except DataURIError as exc:
        message = (
            "output data URI does not decode as base64"
            if exc.payload
            else "output is a data URI that is not base64"
        )
        raise OutputError(message, retryable=False) from None
    return data, mime or "application/octet-stream"


def extension(data: bytes) -> str:
    """The file extension for an output, from its bytes alone: what a server says
    (Content-Type, the URL) never names a file here. Unknown content is `.bin`."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if data[4:8] == b"ftyp":
        return "mp4"
    return "bin"


async def fetch(http: httpx.AsyncClient, url: str) -> bytes:
    """The bytes of an output: downloaded (http, https) or decoded (data:)."""
    if url.startswith("data:"):
        return decode_data_uri(url)[0]
    scheme = urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise OutputError(f"refusing output URL with scheme {scheme!r}", retryable=False)
    try:
        response = await http.get(url)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # Any failure of the request itself (not only transport errors: a body that
        # does not decode, a redirect loop) is one more failed try of this output.
        raise OutputError(f"download failed: {type(exc).__name__}") from None
    if response.status_code in (403, 404, 410):
        raise OutputError(f"output URL answered {response.status_code} (expired?)")
    if response.status_code >= 400:
        raise OutputError(f"output URL answered {response.status_code}")
    return response.content


def write_atomically(path: Path, data: bytes) -> SavedOutput:
    """Write to a temporary file beside `path`, fsync, then rename over it.

    A file system error (full, read-only, no permission) is an `OutputDirError`.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=PARTIAL_SUFFIX)
    except OSError as exc:
        raise OutputDirError(path.parent, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _FILE_MODE)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OutputDirError(path, exc) from None
        raise
    return SavedOutput(path, hashlib.sha256(data).hexdigest(), len(data), "")


async def save_output(
    http: httpx.AsyncClient,
    url: str,
    root: Path,
    batch_id: str,
    job_id: str,
    index: int,
    *,
    blocking: BlockingRunner = anyio.to_thread.run_sync,
) -> SavedOutput:
    """Save an output at the default place, OUT/<batch>/<job id>/<n>.<ext>."""

    def path_for(ext: str) -> Path:
        return output_path(root, batch_id, job_id, index, ext)

    return await save_output_to(http, url, path_for, blocking=blocking)


async def save_output_to(
    http: httpx.AsyncClient,
    url: str,
    path_for: Callable[[str], Path],
    *,
    blocking: BlockingRunner = anyio.to_thread.run_sync,
) -> SavedOutput:
    """Fetch an output and write it where `path_for(its extension)` says."""
    data = await fetch(http, url)
    path = path_for(extension(data))
    saved = await blocking(write_atomically, path, data)
    kept = url if not url.startswith("data:") else f"{url.partition(',')[0]},…"
    return SavedOutput(saved.path, saved.sha256, saved.size, kept)


def take_output(source: Path, sha256: str, path_for: Callable[[str], Path]) -> SavedOutput:
    """A saved output, checked against its recorded sha256, as another job's output:
    hard-linked where the file system allows it, else copied (atomically either way).
    """
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ReuseError(f"{source} cannot be read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise ReuseError(f"{source} has changed since it was saved (sha256 {digest[:12]}…)")
    path = path_for(extension(data))
    if not _same_file(source, path):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputDirError(path.parent, exc) from None
        if not _link_atomically(source, path):
            write_atomically(path, data)
    return SavedOutput(path, digest, len(data), "")


def _link_atomically(source: Path, path: Path) -> bool:
    """Hard-link `source` at `path` through a temporary name; False where links are
    not possible (another file system, a file system without them)."""
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}"
    try:
        os.link(source, tmp)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def _same_file(source: Path, path: Path) -> bool:
    """Already linked (a run killed after the link, before it was recorded)."""
    try:
        return os.path.samefile(source, path)
    except OSError:
        return False
