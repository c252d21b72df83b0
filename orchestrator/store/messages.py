"""What the store tells people: what is wrong and what to do next. The queries find
the facts; the words are here."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .location import DbLocation

MIGRATIONS_MISSING = "the database migrations are not installed; reinstall the package"


def no_queue(path: Path | DbLocation) -> str:
    return (
        f"no queue at {path}: check --db (or ORCHESTRATOR_DB), or queue jobs "
        "there first with `orchestrator submit MANIFEST`"
    )


def cannot_connect(location: DbLocation, exc: BaseException) -> str:
    """The driver's reason, never the URL's password."""
    orig = getattr(exc, "orig", None) or exc
    reason = " ".join(str(orig).split()) or type(orig).__name__
    if location.password:
        reason = reason.replace(location.password, "***")
    return (
        f"cannot open the queue at {location}: {reason}; check --db (or ORCHESTRATOR_DB), "
        "that the server runs, and that the role may connect and create tables"
    )


def unknown_batch(batch: str, path: Path | DbLocation, known: Sequence[str]) -> str:
    hint = f"known batches: {', '.join(known)}" if known else "the database holds none"
    return f"no batch named {batch!r} in {path} ({hint})"


def changed_jobs(manifest: str, batch_id: str, changed: Sequence[Sequence[Any]]) -> str:
    """`changed`: (job id, manifest line, state) of jobs queued with other inputs."""
    shown = "\n".join(f"  {manifest}:{line}: id {job_id!r}" for job_id, line, _ in changed[:20])
    more = f"\n  ... and {len(changed) - 20} more" if len(changed) > 20 else ""
    return (
        f"{len(changed)} job(s) of batch {batch_id!r} already queued with other inputs:\n"
        f"{shown}{more}\n"
        "give changed jobs new ids, or pass --replace to queue them again with the new inputs"
    )


def jobs_in_flight(ids: Sequence[str]) -> str:
    return (
        f"cannot replace jobs with a prediction in flight ({', '.join(ids)}); "
        "run `orchestrator resume` until they finish, then submit again"
    )


def _on(line: int | None) -> str:
    return "an earlier job" if line is None else f"line {line}"


def duplicate_id(job_id: str, first_line: int | None) -> str:
    return (
        f"duplicate job id {job_id!r} (first used on {_on(first_line)}); "
        "give each job its own id or drop the repeated one"
    )


def case_twins(job_id: str, line: int | None, first_id: str, first_line: int | None) -> str:
    return (
        f"id {job_id!r} ({_on(line)}) and id {first_id!r} ({_on(first_line)}) "
        "differ only in case: they would share one output folder on "
        "case-insensitive file systems; rename one"
    )


def case_twin_queued(job_id: str, other: str, batch_id: str) -> str:
    return (
        f"id {job_id!r} differs only in case from id {other!r}, already queued "
        f"in batch {batch_id!r}: they would share one output folder on "
        "case-insensitive file systems; rename it"
    )


def unknown_jobs(batch: str, job_ids: Sequence[str]) -> str:
    shown = ", ".join(repr(j) for j in job_ids[:10])
    more = f" and {len(job_ids) - 10} more" if len(job_ids) > 10 else ""
    return (
        f"batch {batch!r} has no job with id {shown}{more}; nothing was changed: "
        f"check the ids with `orchestrator report {batch}`"
    )
