"""The CSV report: a table a spreadsheet can use. One row per output (`per="output"`)
or per job (`per="job"`); a job without outputs (queued, failed) still has its row,
with empty output cells. Every cell holds one value: no lists joined with spaces.

Columns: where the job came from (batch, id, manifest, line), what it asked for
(model, one `inputs.<name>` per input name the jobs use, data URIs as their sha256
token), the catalog's own data (one `meta.<name>` per meta name), what happened
(state, attempts, credits, the prediction that made the outputs, uncertain attempts,
the job whose outputs it reused), the output (index, path, size, sha256), and when
(started, finished: ISO 8601 UTC).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from typing import IO, Any

from .models import canonical_json

PER = ("output", "job")
_LEADING = ("batch", "id", "manifest", "line", "model_name")
_TRAILING = (
    "state",
    "attempts",
    "credits",
    "prediction_id",
    "uncertain",
    "reused_batch",
    "reused_id",
    "output_index",
    "output_path",
    "output_size",
    "output_sha256",
    "started_at",
    "finished_at",
    "error",
)


def columns(input_names: Sequence[str], meta_names: Sequence[str]) -> list[str]:
    return [
        *_LEADING,
        *(f"inputs.{name}" for name in input_names),
        *(f"meta.{name}" for name in meta_names),
        *_TRAILING,
    ]


def write_csv(
    reports: Iterable[dict[str, Any]],
    out: IO[str],
    *,
    input_names: Sequence[str] = (),
    meta_names: Sequence[str] = (),
    per: str = "output",
) -> None:
    """Write the job reports (report.job_reports) as CSV, one job at a time."""
    if per not in PER:
        raise ValueError(f"per must be one of {PER}; got {per!r}")
    writer = csv.writer(out)
    writer.writerow(columns(input_names, meta_names))
    for job in reports:
        head = _job_cells(job, input_names, meta_names)
        tail = [job["started_at"] or "", job["finished_at"] or "", job["error"] or ""]
        outputs = job["outputs"] if per == "output" else []
        if not outputs:
            writer.writerow([*head, "", "", "", "", *tail])
        for output in outputs:
            cells = [output["index"], output["path"], output["size"], output["sha256"]]
            writer.writerow([*head, *(_cell(c) for c in cells), *tail])


def _job_cells(
    job: dict[str, Any], input_names: Sequence[str], meta_names: Sequence[str]
) -> list[str]:
    attempts = job["attempts"]
    reused = job["reused_from"] or {}
    inputs, meta = job["inputs"], job["meta"]
    return [
        job["batch"],
        job["id"],
        job["manifest"] or "",
        _cell(job["line"]),
        job["model_name"],
        *(_cell(inputs.get(name)) for name in input_names),
        *(_cell(meta.get(name)) for name in meta_names),
        job["state"],
        str(len(attempts)),
        str(job["credits"]),
        (attempts[-1]["prediction_id"] or "") if attempts else "",
        str(sum(1 for a in attempts if a["uncertain"])),
        reused.get("batch", ""),
        reused.get("id", ""),
    ]


def _cell(value: Any) -> str:
    """One value as one cell: text as it is, anything else as JSON (true, 2, {...})."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return canonical_json(value)
