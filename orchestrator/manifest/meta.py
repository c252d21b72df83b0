"""A job's `meta`: the catalog's own data (SKU, product page, season), carried with
the job into the queue and every report, never sent to the API and not part of the
fingerprint (so changing it never makes a job "changed").

What it may hold: a mapping of names to text, numbers, true/false or mappings of
the same (nested at most MAX_META_DEPTH levels), at most MAX_META_BYTES as JSON.
Names are what a CSV header (`meta.<name>`) and a name template (`{meta.<name>}`)
can spell: letters, digits, `_` and `-`. `null` means "not set", as for inputs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from orchestrator.models import canonical_json
from orchestrator.naming import META_NAME, META_NAME_RULE

from .describe import show
from .findings import Findings
from .values import NOT_UNICODE, is_unicode

MAX_META_BYTES: Final = 8 * 1024
MAX_META_DEPTH: Final = 4

Lines = Mapping[str, int] | None


def checked_meta(
    findings: Findings, meta: Any, line: int, lines: Lines
) -> tuple[dict[str, Any] | None, bool]:
    """(the meta to keep, or None when there is none; whether it was valid)."""
    if meta is None:
        return None, True
    if not isinstance(meta, Mapping):
        findings.problem(
            _line(lines, "meta", line),
            "meta",
            f"meta must be a mapping of names to values, e.g. meta: {{sku: A-1042}}; "
            f"got {show(meta)}",
        )
        return None, False
    kept, ok = _mapping(findings, meta, "meta", line, lines, MAX_META_DEPTH)
    if not ok:
        return None, False
    size = len(canonical_json(kept).encode())
    if size > MAX_META_BYTES:
        findings.problem(
            _line(lines, "meta", line),
            "meta",
            f"meta is {size:,} bytes as JSON, more than {MAX_META_BYTES:,}; keep product "
            "data short (a SKU, a URL) and leave the rest in your catalog",
        )
        return None, False
    return kept or None, True


def _mapping(
    findings: Findings, meta: Mapping[Any, Any], path: str, line: int, lines: Lines, depth: int
) -> tuple[dict[str, Any], bool]:
    ok = True
    kept: dict[str, Any] = {}
    for key, value in meta.items():
        field = f"{path}.{key}"
        at = _line(lines, field, line)
        if type(key) is not str or not META_NAME.fullmatch(key):
            findings.problem(at, field, f"invalid meta name {show(key)}; use {META_NAME_RULE}")
            ok = False
            continue
        if value is None:
            continue  # null: not set
        if isinstance(value, Mapping):
            if depth <= 1:
                findings.problem(
                    at, field, f"meta nests more than {MAX_META_DEPTH} levels here; flatten it"
                )
                ok = False
                continue
            inner, inner_ok = _mapping(findings, value, field, line, lines, depth - 1)
            ok = ok and inner_ok
            kept[key] = inner
            continue
        wrong = _bad_scalar(value)
        if wrong is not None:
            findings.problem(at, field, wrong)
            ok = False
            continue
        kept[key] = value
    return kept, ok


def _bad_scalar(value: Any) -> str | None:
    """What is wrong with a meta value that is not a mapping, or None."""
    if type(value) is str:
        return None if is_unicode(value) else f"{show(value)} {NOT_UNICODE}"
    if type(value) in (int, bool):
        return None
    if type(value) is float:
        return None if math.isfinite(value) else f"{value} is not a number JSON can carry"
    return (
        f"meta values are text, numbers, true/false or mappings; got {show(value)}"
        " (write a list as text, e.g. 'summer, sale')"
    )


def _line(lines: Lines, field: str, default: int) -> int:
    return lines.get(field, default) if lines else default
