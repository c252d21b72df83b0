"""CSV manifests, streamed row by row: memory does not grow with the number of rows.

The header names the fields: id, model_name, priority, one inputs.<name> column
per input and one meta.<name> column per name of the job's own data (kept as text).
Rows are numbered as file lines (a quoted cell may span lines, and the
header is line 1). An empty cell is an input not set; cells of counts, seeds and
flags are converted from text, as CSV has nothing but text.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from .describe import did_you_mean, unreadable
from .findings import Entry, Findings
from .meta import META_NAME, META_NAME_RULE
from .plans import ALL_INPUTS, BOOL_INPUTS, INT_INPUTS
from .validation import MISSING, JobValidator

_BOOL_WORDS: Final = {
    "true": True,
    "yes": True,
    "1": True,
    "false": False,
    "no": False,
    "0": False,
}
_CELL_LIMIT: Final = 64 * 1024 * 1024


class CsvColumns:
    """Which cell holds which field, from the header."""

    __slots__ = ("account", "id", "inputs", "meta", "model_name", "priority", "width")

    def __init__(self, width: int):
        self.width = width
        self.id: int | None = None
        self.model_name: int | None = None
        self.priority: int | None = None
        self.account: int | None = None
        # (cell index, input name, text → value converter or None)
        self.inputs: list[tuple[int, str, Callable[[str], Any] | None]] = []
        self.meta: list[tuple[int, str]] = []  # (cell index, meta name)


def csv_entries(path: Path, validator: JobValidator) -> Iterator[Entry]:
    """Each row of a CSV manifest, validated, with what was found on the way."""
    findings = validator.findings
    try:
        # utf-8-sig: spreadsheets often start the file with a byte-order mark.
        handle = open(path, newline="", encoding="utf-8-sig")  # noqa: SIM115
    except OSError as exc:
        findings.problem(None, None, unreadable(exc))
        yield from findings.drain()
        return
    _allow_large_cells()
    with handle:
        # strict: an unclosed quote is an error, not a cell that swallows the file.
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as exc:
            header = None
            findings.problem(1, None, _broken(exc))
        else:
            if header is None:
                findings.problem(
                    None,
                    None,
                    "the file is empty; the first row must be a header such as "
                    "id,model_name,inputs.image",
                )
        columns = None if header is None else _columns(header, findings)
        yield from findings.drain()
        if columns is not None:
            yield from _rows(reader, columns, validator)


def _columns(header: list[str], findings: Findings) -> CsvColumns | None:
    """Map header cells to fields; None (after reporting) when rows cannot be read."""
    cols = CsvColumns(len(header))
    seen: dict[str, int] = {}
    for index, raw in enumerate(header):
        name = raw.strip()
        if name in seen:
            findings.problem(
                1,
                name,
                f"column {name!r} appears twice (columns {seen[name] + 1} and {index + 1}); "
                "keep one",
            )
            continue
        seen[name] = index
        if name == "id":
            cols.id = index
        elif name == "model_name":
            cols.model_name = index
        elif name == "priority":
            cols.priority = index
        elif name == "account":
            cols.account = index
        elif name.startswith("inputs.") and len(name) > len("inputs."):
            key = name[len("inputs.") :]
            convert = _to_int if key in INT_INPUTS else _to_bool if key in BOOL_INPUTS else None
            cols.inputs.append((index, key, convert))
        elif name.startswith("meta."):
            key = name[len("meta.") :]
            if META_NAME.fullmatch(key):
                cols.meta.append((index, key))
            else:
                findings.problem(1, name, f"invalid meta name {key!r}; use {META_NAME_RULE}")
        else:
            findings.problem(1, name or None, _unknown_column(name, index))
    if cols.model_name is None:
        findings.problem(
            1,
            "model_name",
            "no model_name column; add a column named model_name (e.g. tryon-max per row)",
        )
        return None
    return cols


def _rows(reader: Any, cols: CsvColumns, validator: JobValidator) -> Iterator[Entry]:
    """The hot loop of a million-row import: keep per-row work flat and small."""
    width, model_col = cols.width, cols.model_name
    assert model_col is not None  # _columns returns None without it
    id_col, priority_col, input_cols, meta_cols = cols.id, cols.priority, cols.inputs, cols.meta
    account_col = cols.account
    findings, job = validator.findings, validator.job
    problem, pending = findings.problem, findings.pending
    previous = reader.line_num
    try:
        for row in reader:
            # A quoted cell may span lines: the row starts right after the last one.
            line = previous + 1
            previous = reader.line_num
            size = len(row)
            model_name: Any = row[model_col].strip() if size > model_col else ""
            if not model_name:
                if not any(row):
                    continue  # a blank line, or a row of empty cells as spreadsheets export
                model_name = MISSING
            ok = True
            if size > width and any(row[width:]):
                ok = False
                problem(line, None, _extra_cells(size, width))
            job_id: Any = _cell(row, id_col, size)
            priority: Any = MISSING
            if priority_col is not None and priority_col < size:
                cell = row[priority_col].strip()
                if cell:
                    try:
                        priority = int(cell)
                    except ValueError:
                        ok = False
                        problem(line, "priority", _bad_priority(cell))
            inputs: dict[str, Any] = {}
            for index, key, convert in input_cols:
                if index >= size:
                    break
                value: Any = row[index].strip()
                if not value:
                    continue  # empty cell: input not set
                if convert is not None:
                    try:
                        value = convert(value)
                    except ValueError as exc:
                        ok = False
                        problem(line, f"inputs.{key}", f"{value!r} {exc}")
                        continue
                inputs[key] = value
            meta = _meta(row, meta_cols, size) if meta_cols else None
            account: Any = _cell(row, account_col, size)
            spec = job(line, model_name, inputs, job_id, priority, None, ok, meta, account)
            if pending:
                yield from findings.drain()
            if spec is not None:
                yield spec
    except (csv.Error, UnicodeDecodeError) as exc:  # raised by the reader only
        problem(previous + 1, None, _broken(exc))
        yield from findings.drain()


def _meta(row: list[str], meta_cols: list[tuple[int, str]], size: int) -> dict[str, str] | None:
    """A row's meta cells as text (an empty cell sets nothing); None when all are empty."""
    meta = {key: row[i].strip() for i, key in meta_cols if i < size and row[i].strip()}
    return meta or None


def _to_int(cell: str) -> int:
    try:
        return int(cell)
    except ValueError:
        raise ValueError("is not a whole number; write digits, e.g. 2") from None


def _to_bool(cell: str) -> bool:
    value = _BOOL_WORDS.get(cell.lower())
    if value is None:
        raise ValueError("is not true or false; write true/false, yes/no or 1/0")
    return value


def _allow_large_cells() -> None:
    # An inline data URI easily exceeds csv's default 128 KiB cell limit. The limit
    # is process-wide; raising it only ever accepts more.
    if csv.field_size_limit() < _CELL_LIMIT:
        csv.field_size_limit(_CELL_LIMIT)


def _broken(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        # Decoding runs ahead in chunks: the bad byte is at or after this row.
        return "the file is not valid UTF-8 from here on; save it as CSV UTF-8"
    return f"cannot read this CSV row ({exc}); check quotes: a quoted cell must be closed"


def _cell(row: list[str], col: int | None, size: int) -> Any:
    """A cell's text, stripped; MISSING when the column is absent or the cell empty."""
    return (row[col].strip() or MISSING) if col is not None and col < size else MISSING


def _unknown_column(name: str, index: int) -> str:
    hint = (
        f" (did you mean 'inputs.{name}'?)"
        if name in ALL_INPUTS
        else did_you_mean(
            name,
            ["id", "model_name", "priority", "account", *(f"inputs.{n}" for n in ALL_INPUTS)],
        )
    )
    shown = repr(name) if name else f"number {index + 1} (no name)"
    return (
        f"unknown column {shown}{hint}; columns are id, model_name, priority, account, "
        "one inputs.<name> per input and meta.<name> for your own data: rename or delete it"
    )


def _extra_cells(size: int, width: int) -> str:
    return (
        f"this row has {size} cells but the header names {width} columns; "
        "quote cells that contain commas or add a header for the extra cells"
    )


def _bad_priority(cell: str) -> str:
    return f"priority {cell!r} is not a whole number; write e.g. 0, 5 or -1 (higher runs first)"
