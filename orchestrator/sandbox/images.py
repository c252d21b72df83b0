"""Small, valid, deterministic output files: a PNG per image, an MP4 header per video.

The bytes depend only on a key string (the sandbox uses "seed/prediction/index"),
so two runs with the same seed download identical files.
"""

from __future__ import annotations

import hashlib
import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_SIDE = 8  # pixels: enough to be a real image, small enough to serve thousands a second


def _chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def png_bytes(key: str) -> bytes:
    """An 8x8 RGB PNG whose colours are derived from `key`."""
    digest = hashlib.sha256(key.encode()).digest()
    top, bottom = digest[0:3], digest[3:6]
    rows = b"".join(b"\x00" + (top if y < _SIDE // 2 else bottom) * _SIDE for y in range(_SIDE))
    header = struct.pack(">IIBBBBB", _SIDE, _SIDE, 8, 2, 0, 0, 0)  # 8-bit truecolour
    return b"".join(
        (
            PNG_SIGNATURE,
            _chunk(b"IHDR", header),
            _chunk(b"tEXt", b"Comment\x00" + key.encode()),
            _chunk(b"IDAT", zlib.compress(rows)),
            _chunk(b"IEND", b""),
        )
    )


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(key: str) -> bytes:
    """An ISO-BMFF file (ftyp + free + mdat) that file-type sniffers accept as MP4."""
    digest = hashlib.sha256(key.encode()).digest()
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + _box(b"free", key.encode()) + _box(b"mdat", digest * 4)


def output_bytes(mime: str, key: str) -> bytes:
    return mp4_bytes(key) if mime == "video/mp4" else png_bytes(key)


def extension(mime: str) -> str:
    return "mp4" if mime == "video/mp4" else "png"
