"""Thumbnails of at most 320 px, made with Pillow into OUT/<batch>/.thumbs/ and named
by the digest of the picture they show: a photo used by 5,000 jobs is shrunk once,
and a second report reuses what the first one made."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ..datauri import parse_data_uri
from ..outputs import is_folder_name

SIDE = 320  # the longest side of a thumbnail, in pixels
THUMBS = ".thumbs"
_SUFFIX = ".webp"  # small, keeps transparency (cut-outs), shown by every current browser
# Decoding a picture costs memory in proportion to its pixels: refuse absurd ones.
Image.MAX_IMAGE_PIXELS = 100_000_000


class Thumbnailer:
    """Makes and finds thumbnails for one page; paths are handed out relative to it."""

    def __init__(self, out_dir: Path, page_dir: Path):
        self.out_dir = out_dir
        self.page_dir = page_dir
        self._known: dict[str, str | None] = {}  # digest -> page-relative path (None: no image)
        self.made = 0

    def link(self, path: Path) -> str:
        """`path` as the page refers to it: relative, with forward slashes."""
        return Path(os.path.relpath(path.resolve(), self.page_dir.resolve())).as_posix()

    def of_file(self, batch_id: str, path: Path, digest: str | None) -> str | None:
        """The thumbnail of a saved output (None if it is no picture Pillow can read)."""
        key = digest or str(path)
        if key not in self._known:
            self._known[key] = self._make(batch_id, digest, path.read_bytes)
        return self._known[key]

    def of_data_uri(self, batch_id: str, uri: str) -> str | None:
        """The thumbnail of an input image given as a data URI (a local file's copy)."""
        key = hashlib.sha256(uri.encode()).hexdigest()
        if key not in self._known:
            self._known[key] = self._make(batch_id, None, lambda: parse_data_uri(uri).data)
        return self._known[key]

    def _make(self, batch_id: str, digest: str | None, read: Callable[[], bytes]) -> str | None:
        if not is_folder_name(batch_id):
            return None
        try:
            data = None
            if digest is None:
                data = read()
                digest = hashlib.sha256(data).hexdigest()
            target = self.out_dir / batch_id / THUMBS / f"{digest[:32]}{_SUFFIX}"
            if not target.exists():
                _write(target, shrink(data if data is not None else read()))
                self.made += 1
        except (OSError, ValueError, UnidentifiedImageError, Image.DecompressionBombError):
            return None  # not a picture (a video, a broken file): the page shows a link
        return self.link(target)


def shrink(data: bytes, side: int = SIDE) -> bytes:
    """A WEBP of the picture in `data`, its longest side at most `side` pixels,
    turned upright as its EXIF says; transparency is kept."""
    with Image.open(io.BytesIO(data)) as image:
        image.seek(0)  # the first frame of an animation
        picture = ImageOps.exif_transpose(image)
        picture.thumbnail((side, side), Image.Resampling.LANCZOS)
        alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
        picture = picture.convert("RGBA" if alpha else "RGB")
        buffer = io.BytesIO()
        picture.save(buffer, "WEBP", quality=82, method=4)
    return buffer.getvalue()


def _write(target: Path, data: bytes) -> None:
    """Whole or absent: a temporary file beside it, renamed over it. No fsync: a
    thumbnail lost to a power cut is made again by the next report."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)  # as readable as the outputs beside it
            fh.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
