"""Large data URIs, stored once in `blobs` and referenced from jobs by digest, so a
catalog that puts one local photo into 5,000 jobs stores it once."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, select

from .. import schema as t
from ..models import canonical_json
from .dialect import insert_or_ignore
from .statements import Prepared

# Data URIs longer than this go to `blobs`.
BLOB_THRESHOLD = 512
BLOB_KEY = "$blob"

_ADD = insert_or_ignore(t.blobs, "sha256", "data")
_DATA = Prepared(select(t.blobs.c.data).where(t.blobs.c.sha256 == bindparam("digest")))


def slim(
    conn: Connection, inputs: Mapping[str, Any], digests: dict[str, str], *, store: bool = True
) -> str:
    """Canonical JSON of `inputs`, with large data URIs moved to `blobs` (only
    referenced by digest, with store=False: a check that writes nothing).

    `digests` remembers URIs already stored; rows that share a photo share one
    string object, so the lookup costs no rehash of the photo.
    """
    slimmed: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, str) and len(value) > BLOB_THRESHOLD and value.startswith("data:"):
            digest = digests.get(value)
            if digest is None:
                digest = hashlib.sha256(value.encode()).hexdigest()
                if store:
                    _ADD(conn, sha256=digest, data=value)
                digests[value] = digest
            slimmed[key] = {BLOB_KEY: digest}
        else:
            slimmed[key] = value
    return canonical_json(slimmed)


def inflate(conn: Connection, raw_inputs: str) -> dict[str, Any]:
    """A job's inputs as the API takes them: blobs back in place."""
    inputs: dict[str, Any] = json.loads(raw_inputs)
    for key, value in inputs.items():
        if isinstance(value, dict) and BLOB_KEY in value:
            inputs[key] = _DATA(conn, digest=value[BLOB_KEY]).scalar_one()
    return inputs
