"""Image inputs → what the API takes: an http(s) URL as written, a data URI checked,
a local file read into a data URI.

Local images must be regular files under a size cap (MAX_IMAGE_MB, or the
ORCHESTRATOR_MAX_IMAGE_MB environment variable), opened without blocking; their
type comes from their first bytes, not from their name. URLs may not hold spaces or
control characters. Each file is read once per manifest read (an LRU bounded by
entries and characters), whatever path spells it.
"""

from __future__ import annotations

import base64
import math
import os
import stat
from collections import OrderedDict
from typing import Any, Final

from orchestrator.datauri import DataURIError, parse_data_uri
from orchestrator.models import content_token

from .describe import show

# A local image larger than this is refused before it is read (it is sent inline, as
# base64, in every request). The environment variable, read when a Manifest is
# created, overrides it; the `max_image_bytes` argument overrides both.
MAX_IMAGE_MB: Final = 25
IMAGE_LIMIT_ENV: Final = "ORCHESTRATOR_MAX_IMAGE_MB"
_MIB: Final = 1024 * 1024

# Local images are read once per manifest read; both bounds keep the cache small
# even when every file is large.
IMAGE_CACHE_FILES: Final = 64
IMAGE_CACHE_CHARS: Final = 256 * 1024 * 1024

# Magic bytes → MIME type. FASHN takes PNG, JPEG, WEBP and GIF.
_IMAGE_MAGIC: Final = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
# Formats recognised only to say precisely what to convert.
_OTHER_MAGIC: Final = (
    (b"BM", "a BMP image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
)
_WEB: Final = ("https://", "http://")  # schemes in any case, as written or lower-cased
_IMAGE_KINDS: Final = "give a PNG, JPEG, WEBP or GIF file"
_KIND_OF_MODE: Final = {
    stat.S_IFCHR: "a device",
    stat.S_IFBLK: "a device",
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFSOCK: "a socket",
}

# (value to send, content token for a derived id, error). The token is the value
# itself for a URL; for a data URI, its digest (see ids.py).
Resolved = tuple[str, str, "str | None"]


def image_limit_from_environment() -> tuple[int, str | None]:
    """The image size cap in bytes, and what is wrong with the setting if anything."""
    default = MAX_IMAGE_MB * _MIB
    text = os.environ.get(IMAGE_LIMIT_ENV, "").strip()
    if not text:
        return default, None
    try:
        megabytes = float(text)
    except ValueError:
        megabytes = math.nan
    if not 0 < megabytes < math.inf:  # also refuses nan
        return default, (
            f"{IMAGE_LIMIT_ENV} must be a size in MB such as {MAX_IMAGE_MB} (the largest "
            f"local image file to send); got {text!r}: fix it or unset it"
        )
    return max(1, int(megabytes * _MIB)), None


def sniff(data: bytes) -> str | None:
    """The MIME type of an image FASHN takes, from its first bytes; None otherwise."""
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class LRU:
    """Least-recently-used results, bounded by entries and by total characters."""

    __slots__ = ("_chars", "_items", "max_chars", "max_items")

    def __init__(self, max_items: int, max_chars: int):
        self.max_items = max_items
        self.max_chars = max_chars
        self._items: OrderedDict[str, Resolved] = OrderedDict()
        self._chars = 0

    def get(self, key: str) -> Resolved | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, value: Resolved) -> None:
        size = len(value[0]) + len(key)
        if size > self.max_chars:
            return  # larger than the whole budget: read again when needed
        old = self._items.pop(key, None)
        if old is not None:
            self._chars -= len(old[0]) + len(key)
        self._items[key] = value
        self._chars += size
        while len(self._items) > self.max_items or self._chars > self.max_chars:
            gone_key, gone = self._items.popitem(last=False)
            self._chars -= len(gone[0]) + len(gone_key)


class ImageResolver:
    """Turns an image input into what the API takes: URL as is, local file → data URI.
    Relative paths are relative to `base`, the manifest's folder."""

    def __init__(self, base: str, max_bytes: int):
        self.base = base
        self.max_bytes = max_bytes
        self._by_text = LRU(IMAGE_CACHE_FILES, IMAGE_CACHE_CHARS)  # as written
        self._by_path = LRU(IMAGE_CACHE_FILES, IMAGE_CACHE_CHARS)  # "a.png" = "./a.png"

    def resolve(self, value: Any) -> Resolved:
        if type(value) is not str:
            return _bad(
                "must be an image: an https:// URL, a data:image/...;base64, URI or a file "
                f"path; got {show(value)}"
            )
        if value.startswith(_WEB) or value[:8].lower().startswith(_WEB):
            start = 8 if value[4] in "sS" else 7
            if len(value) == start or value[start] in "/?#":
                return _bad(
                    f"URL {value!r} has no host; give a full URL such as "
                    "https://shop.example/images/shirt.jpg"
                )
            # The API would reject or misread these; both tests run at C speed.
            if " " in value or not value.isprintable():
                return _bad(_url_not_encoded(value))
            return value, value, None
        cached = self._by_text.get(value)
        if cached is None:
            is_data = value[:5].lower() == "data:"
            cached = _data_uri(value) if is_data else self._other(value)
            self._by_text.put(value, cached)
        return cached

    def _other(self, value: str) -> Resolved:
        if not value.strip():
            return _bad(
                "is empty; give an https:// URL, a data:image/...;base64, URI or a file path"
            )
        scheme_end = value.find(":")
        scheme = value[:scheme_end]
        # "ftp://host/x", "file:///x", "s3://b/k" (a drive letter "C:" is one char long)
        if (
            scheme_end > 1
            and scheme.isascii()
            and scheme.replace("+", "").isalnum()
            and (value.startswith("://", scheme_end) or scheme.lower() == "file")
        ):
            return _bad(
                f"unsupported URL scheme '{scheme}:'; FASHN fetches only http(s) URLs. Use an "
                "https:// URL, or a local file path (sent as a data URI)"
            )
        path = os.path.normpath(os.path.join(self.base, os.path.expanduser(value)))
        cached = self._by_path.get(path)
        if cached is None:
            cached = self._read(value, path)
            self._by_path.put(path, cached)
        return cached

    def _read(self, value: str, path: str) -> Resolved:
        try:
            # O_NONBLOCK: opening a FIFO that has no writer would otherwise wait for ever.
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return _bad(
                f"{value!r} is not an http(s) URL, a data:image URI or an existing file "
                f"(looked for {path}; paths are relative to the manifest's folder)"
            )
        except IsADirectoryError:
            return _bad(f"{path} is a folder; give an image file")
        except OSError as exc:
            kind = _special_file(path)  # a socket cannot be opened at all
            if kind is not None:
                return _bad(f"{path} is {kind}, not an image file; {_IMAGE_KINDS}")
            reason = exc.strerror or exc
            return _bad(f"cannot read image file {path}: {reason}; check its permissions")
        except ValueError:  # a NUL character, or text the file system cannot encode
            return _bad(f"{value!r} cannot be a file name; give an image file's path or a URL")
        try:
            data = self._read_regular(fd, path)
        finally:
            os.close(fd)
        if isinstance(data, str):
            return _bad(data)
        return _encode(path, data)

    def _read_regular(self, fd: int, path: str) -> bytes | str:
        """The bytes of an open image file, or why they cannot be sent."""
        try:
            info = os.fstat(fd)
            if stat.S_ISDIR(info.st_mode):
                return f"{path} is a folder; give an image file"
            if not stat.S_ISREG(info.st_mode):
                kind = _KIND_OF_MODE.get(stat.S_IFMT(info.st_mode), "not a regular file")
                return f"{path} is {kind}, not an image file; {_IMAGE_KINDS}"
            if info.st_size > self.max_bytes:
                return _too_large(path, info.st_size, self.max_bytes)
            data = _read_at_most(fd, self.max_bytes + 1)
        except OSError as exc:
            return f"cannot read image file {path}: {exc.strerror or exc}"
        if len(data) > self.max_bytes:  # it grew, or its size was not told (/proc)
            return _too_large(path, len(data), self.max_bytes)
        return data


def _bad(message: str) -> Resolved:
    return "", "", message


def _encode(path: str, data: bytes) -> Resolved:
    """A file's bytes as a data URI, when they are an image FASHN takes."""
    mime = sniff(data)
    if mime is None:
        if not data:
            return _bad(f"image file {path} is empty; {_IMAGE_KINDS}")
        kind = next((k for magic, k in _OTHER_MAGIC if data.startswith(magic)), None)
        found = kind or f"not an image (it starts with {data[:8]!r})"
        return _bad(f"file {path} is {found}; FASHN takes PNG, JPEG, WEBP or GIF: convert it")
    uri = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return uri, content_token(uri), None


def _data_uri(value: str) -> Resolved:
    try:
        parsed = parse_data_uri(value, media_prefix="image/")
    except DataURIError as exc:
        if exc.payload:
            return _bad(f"data URI is not valid base64 ({exc}); re-encode the image")
        return _bad(
            "data URI must look like data:image/png;base64,<data>; got "
            f"{value[:40]!r}…; or give an https:// URL or a file path instead"
        )
    if not parsed.data:
        return _bad("data URI holds no data; re-encode the image")
    return value, content_token(value), None


def _special_file(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return _KIND_OF_MODE.get(stat.S_IFMT(mode))


def _read_at_most(fd: int, limit: int) -> bytes:
    # In bounded chunks: one read(limit) would allocate the whole limit up front.
    chunks: list[bytes] = []
    left = limit
    while left > 0:
        chunk = os.read(fd, min(left, 4 * _MIB))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _too_large(path: str, size: int, limit: int) -> str:
    return (
        f"image file {path} is {_size(size, up=True)}; the limit is {_size(limit)} "
        f"({IMAGE_LIMIT_ENV}): resize or compress it, or send it as an https:// URL"
    )


def _size(count: int, *, up: bool = False) -> str:
    if count < _MIB // 10:
        return f"{count:,} bytes"
    # Rounded up for a file, so one just over the limit never reads as equal to it.
    tenths = math.ceil(count * 10 / _MIB) if up else round(count * 10 / _MIB)
    return f"{tenths / 10:g} MB"


def _url_not_encoded(url: str) -> str:
    char = next(c for c in url if c == " " or not c.isprintable())
    what = {" ": "a space", "\n": "a line break", "\r": "a line break", "\t": "a tab"}
    return (
        f"URL {show(url)} contains {what.get(char, f'the character {char!r}')}; "
        "percent-encode it (a space is %20, a line break %0A) or remove it"
    )
