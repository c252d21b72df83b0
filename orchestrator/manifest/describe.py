"""How a manifest's messages name what they found: a bad value, a likely typo, a
file that cannot be read."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


def show(value: Any) -> str:
    """A short, typed description of a bad value for a message."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, str):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "…'"
    kind = {dict: "a mapping", list: "a list", int: "a number", float: "a number"}
    for cls, name in kind.items():
        if isinstance(value, cls):
            text = repr(value) if not isinstance(value, dict | list) else ""
            return f"{name} {text}".strip() if text else name
    return f"{type(value).__name__} {value!r}"[:60]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unreadable(exc: Exception) -> str:
    """Why the manifest file itself cannot be read."""
    if isinstance(exc, UnicodeDecodeError):
        return "cannot read the manifest: it is not valid UTF-8; save it as UTF-8"
    if isinstance(exc, FileNotFoundError):
        return "cannot read the manifest: no such file; check the path"
    if isinstance(exc, IsADirectoryError):
        return "cannot read the manifest: it is a folder; give a .yaml, .csv or .jsonl file"
    if isinstance(exc, OSError):
        return f"cannot read the manifest: {exc.strerror or exc}; check the path and permissions"
    return f"cannot read the manifest: {exc}"
