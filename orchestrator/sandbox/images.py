"""Small, valid, deterministic output files: a PNG or a JPEG per image, an MP4 header per
video.

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


# Canonical Huffman tables as JPEG's DHT segment states them: (count of codes of each
# length 1..16, symbols). DC: the standard luminance table (ITU T.81 Annex K.3), every
# difference category 0..11. AC: one code, end-of-block, since every AC coefficient is 0.
_DC_TABLE = ((0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0), tuple(range(12)))
_AC_TABLE = ((1,) + (0,) * 15, (0x00,))


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _huffman_codes(counts: tuple[int, ...], symbols: tuple[int, ...]) -> dict[int, str]:
    """Symbol -> code bits, assigned as T.81 Annex C does from the DHT counts."""
    codes, code, k = {}, 0, 0
    for length, count in enumerate(counts, start=1):
        for _ in range(count):
            codes[symbols[k]] = format(code, f"0{length}b")
            code, k = code + 1, k + 1
        code <<= 1
    return codes


def _scan(levels: tuple[int, int, int]) -> bytes:
    """The entropy-coded data of one 8x8 block per component, each a flat level."""
    dc, ac = _huffman_codes(*_DC_TABLE), _huffman_codes(*_AC_TABLE)
    bits = ""
    for level in levels:
        # Level shift, then the DCT's DC term of a flat block is 8x it (quantizer 1); it is
        # coded as a difference from the previous block of the component: here from 0.
        value = 8 * (level - 128)
        size = abs(value).bit_length()
        extra = value if value >= 0 else value + (1 << size) - 1
        bits += dc[size] + (format(extra, f"0{size}b") if size else "") + ac[0x00]
    bits += "1" * (-len(bits) % 8)  # pad the last byte with 1s
    data = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return data.replace(b"\xff", b"\xff\x00")  # byte stuffing


def jpeg_bytes(key: str) -> bytes:
    """An 8x8 baseline JFIF JPEG of one colour derived from `key`, with `key` in a COM
    segment: starts with FF D8 FF, ends with FF D9, decodes with any JPEG decoder."""
    red, green, blue = hashlib.sha256(key.encode()).digest()[:3]
    luma = round(0.299 * red + 0.587 * green + 0.114 * blue)
    cb = round(128 - 0.168736 * red - 0.331264 * green + 0.5 * blue)
    cr = round(128 + 0.5 * red - 0.418688 * green - 0.081312 * blue)
    levels = (luma, max(0, min(cb, 255)), max(0, min(cr, 255)))
    components = b"".join(bytes((n, 0x11, 0)) for n in (1, 2, 3))  # 1x1 sampling, table 0
    tables = b"".join(
        bytes((kind,) + counts + symbols)
        for kind, (counts, symbols) in ((0x00, _DC_TABLE), (0x10, _AC_TABLE))
    )
    return b"".join(
        (
            b"\xff\xd8",  # SOI
            _segment(0xE0, b"JFIF\x00\x01\x01\x00" + struct.pack(">HHBB", 1, 1, 0, 0)),
            _segment(0xFE, key.encode()),  # COM
            _segment(0xDB, b"\x00" + b"\x01" * 64),  # DQT: table 0, every step 1
            _segment(0xC0, struct.pack(">BHHB", 8, _SIDE, _SIDE, 3) + components),  # SOF0
            _segment(0xC4, tables),  # DHT
            _segment(
                0xDA, b"\x03" + b"".join(bytes((n, 0x00)) for n in (1, 2, 3)) + b"\x00\x3f\x00"
            ),
            _scan(levels),
            b"\xff\xd9",  # EOI
        )
    )


def output_bytes(mime: str, key: str) -> bytes:
    if mime == "video/mp4":
        return mp4_bytes(key)
    return jpeg_bytes(key) if mime == "image/jpeg" else png_bytes(key)


def extension(mime: str) -> str:
    return {"video/mp4": "mp4", "image/jpeg": "jpg"}.get(mime, "png")
