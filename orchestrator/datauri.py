"""The one parser of `data:<type>;base64,<payload>` URIs.

Manifests check the images they inline with it, and outputs decode what the API
returns with it; each says in its own words what is wrong.
"""

from __future__ import annotations

import binascii
from typing import NamedTuple


class DataURIError(ValueError):
    """The text is not a base64 data URI (`payload` False), or it is one whose
    payload is not valid base64 (`payload` True; the message says why)."""

    def __init__(self, message: str, *, payload: bool) -> None:
        super().__init__(message)
        self.payload = payload


class DataURI(NamedTuple):
    mime: str  # the media type as written; "" when the URI names none
    data: bytes


def parse_data_uri(uri: str, *, media_prefix: str = "") -> DataURI:
    """Split and decode a base64 data URI whose media type starts with `media_prefix`.

    The scheme may be written in any case (RFC 2397); the payload must be strict
    base64: padded, with no line breaks, spaces or other characters.
    """
    comma = uri.find(",")
    if comma < 0 or uri[:5].lower() != "data:" or not uri.endswith(";base64", 5, comma):
        raise DataURIError("not a data:<type>;base64,<payload> URI", payload=False)
    mime = uri[5 : comma - 7]
    if not mime.startswith(media_prefix):
        raise DataURIError(f"the media type is not {media_prefix}...", payload=False)
    try:
        data = binascii.a2b_base64(uri[comma + 1 :], strict_mode=True)
    except ValueError as exc:  # binascii.Error, or text that is not ASCII at all
        raise DataURIError(str(exc), payload=True) from None
    return DataURI(mime, data)
