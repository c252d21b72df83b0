"""JSON Lines manifests, streamed line by line: one job per line as a JSON object.
Blank lines are skipped but counted, so a problem's line is the file's line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from orchestrator.models import JobSpec

from .describe import show, unreadable
from .findings import Entry
from .validation import JOB_KEYS, MISSING, JobValidator, unknown_keys


def jsonl_entries(path: Path, validator: JobValidator) -> Iterator[Entry]:
    """Each line of a JSON Lines manifest, validated, with what was found on the way."""
    findings = validator.findings
    try:
        # Bytes, decoded line by line: a bad byte is then reported at its own line.
        handle = open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        findings.problem(None, None, unreadable(exc))
        yield from findings.drain()
        return
    with handle:
        for number, raw in enumerate(handle, 1):
            spec = None
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError:
                validator.jobs_seen += 1
                findings.problem(number, None, "this line is not valid UTF-8; save as UTF-8")
            else:
                spec = _line(number, text, validator)
            if findings.pending:
                yield from findings.drain()
            if spec is not None:
                yield spec


def _line(number: int, text: str, validator: JobValidator) -> JobSpec | None:
    if not text or text.isspace():
        return None
    problem = validator.findings.problem
    try:
        obj = json.loads(text)
    except RecursionError:
        validator.jobs_seen += 1
        problem(
            number,
            None,
            "this line is nested too deeply (lists or objects inside each other, past "
            "what can be read); a job needs only a few levels: flatten it",
        )
        return None
    except ValueError as exc:
        where = ""
        if isinstance(exc, json.JSONDecodeError):
            where = f" ({exc.msg} at column {exc.pos + 1})"
        validator.jobs_seen += 1
        problem(
            number,
            None,
            f"not valid JSON{where}; write one job per line as a JSON object, e.g. "
            '{"model_name": "background-remove", "inputs": {"image": "a.jpg"}}',
        )
        return None
    if not isinstance(obj, dict):
        validator.jobs_seen += 1
        problem(
            number,
            None,
            f"each line must be a JSON object with model_name and inputs; got {show(obj)}",
        )
        return None
    keys_ok = unknown_keys(validator.findings, obj, JOB_KEYS, number, "", None, "a job")
    return validator.job(
        number,
        obj.get("model_name", MISSING),
        obj.get("inputs", MISSING),
        obj.get("id", MISSING),
        obj.get("priority", MISSING),
        None,
        keys_ok,
        obj.get("meta"),
        obj.get("account", MISSING),
    )
