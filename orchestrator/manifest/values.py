"""What can be stored and sent as JSON: valid Unicode text, finite numbers, and
lists or mappings nested at most MAX_NESTING levels deep."""

from __future__ import annotations

import math
import re
from typing import Any, Final

from .describe import show

# Lists and mappings inside one input value: deeper is never a real input, and a
# few hundred levels break JSON encoding when the job is stored.
MAX_NESTING: Final = 32

_SURROGATE: Final = re.compile("[\ud800-\udfff]")
NOT_UNICODE: Final = (
    "is not valid Unicode text: it holds half of a surrogate pair (an escape such as "
    "\\ud800), which cannot be stored or sent; write the character itself"
)


def is_unicode(text: str) -> bool:
    """False when `text` holds a lone surrogate (only a JSON or YAML escape makes one)."""
    return text.isascii() or _SURROGATE.search(text) is None


def unstorable_input(key: Any, value: Any) -> tuple[str, str] | None:
    """(field, message) when an input's name or value cannot be stored or sent as JSON."""
    if type(key) is str and not is_unicode(key):
        return "inputs", f"input name {show(key)} {NOT_UNICODE}"
    if type(value) is str:  # the common case first
        return None if is_unicode(value) else (f"inputs.{key}", f"{show(value)} {NOT_UNICODE}")
    if type(value) is float and not math.isfinite(value):
        return f"inputs.{key}", f"{value} is not a number JSON can carry; write a number"
    if isinstance(value, dict | list):
        error = nested_error(value, MAX_NESTING)
        if error is not None:
            return f"inputs.{key}", error
    return None


def nested_error(value: Any, depth: int) -> str | None:
    """What makes a list or mapping unstorable: text or a number inside it, or depth."""
    if type(value) is str:
        return None if is_unicode(value) else f"holds {show(value)}, which {NOT_UNICODE}"
    if type(value) is float and not math.isfinite(value):
        return f"holds {value}, which is not a number JSON can carry; write a number"
    if not isinstance(value, dict | list):
        return None
    if depth == 0:
        return f"nests lists or mappings more than {MAX_NESTING} levels deep; flatten it"
    if isinstance(value, dict):
        for key in value:
            if type(key) is str and not is_unicode(key):
                return f"holds the key {show(key)}, which {NOT_UNICODE}"
        value = value.values()
    for item in value:
        error = nested_error(item, depth - 1)
        if error is not None:
            return error
    return None
