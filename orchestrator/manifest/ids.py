"""Job ids and batch names: the rule they follow, and the id a job without one gets.

Ids name output folders: no separators, no hidden names, no `.` or `..`, and no
trailing '.', which Windows drops (`shoe.` would be `shoe`'s folder). Ids of one
batch that differ only in letter case share a folder on case-insensitive file
systems: the store checks that, as it needs every id of the batch.

A job without an `id` gets the first ID_HEX_DIGITS hex digits of the fingerprint
(models.fingerprint) of its model and *resolved* inputs, where each image that
became a data URI is represented by its content token, the sha256 of that URI. So
the id depends on image content, not on how the image was written (path, folder,
inline data URI), it is the same in every format, and a changed image gives a new
id. Hashing a digest instead of the whole URI keeps a million rows that share one
big image cheap.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from orchestrator.models import fingerprint

ID_HEX_DIGITS: Final = 16  # 64 bits: P(any collision among 1M ids) ~ 3e-8
MAX_ID_LENGTH: Final = 128
SAFE_NAME: Final = re.compile(
    rf"[A-Za-z0-9_-](?:[A-Za-z0-9._-]{{0,{MAX_ID_LENGTH - 2}}}[A-Za-z0-9_-])?"
)
ID_RULE: Final = (
    f"1-{MAX_ID_LENGTH} letters, digits, '.', '_' or '-', not starting or ending with '.'"
    " (it names the job's output folder, so the ids of a batch must also differ in more"
    " than letter case), e.g. 'sku-1042_front'"
)
BATCH_RULE: Final = ID_RULE.split(" (")[0]


def derived_id(model_name: str, inputs: Mapping[str, Any], tokens: Mapping[str, str] | None) -> str:
    """The id of a job written without one; `tokens` replace the data URIs in `inputs`."""
    return fingerprint(model_name, inputs, tokens)[:ID_HEX_DIGITS]
