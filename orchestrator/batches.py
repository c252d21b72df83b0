"""The batch commands' operations: list the batches, cancel queued jobs, and pick the
failed jobs that run again. What they did comes back as records with the words that
describe it; the command line only prints them."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import policy
from .errors import UsageError
from .models import JobState
from .store import BatchInfo, Canceled, DbLocation, Requeued, Store, messages


def list_batches(db: DbLocation | str | os.PathLike[str]) -> list[BatchInfo]:
    """Every batch of the queue at `db` (which must exist): read only, at any time."""
    store = Store(db, create=False)
    try:
        return store.batches.list()
    finally:
        store.close()


def batch_dict(info: BatchInfo) -> dict[str, Any]:
    """A batch as `list --json` prints it: every state counted (0 included), times in
    ISO 8601 UTC."""
    return {
        "batch": info.id,
        "manifest": info.manifest,
        "total": info.total,
        "counts": {s.value: info.counts.get(s.value, 0) for s in JobState},
        "credits": info.credits,
        "first_activity": iso_time(info.first_activity),
        "last_activity": iso_time(info.last_activity),
    }


def iso_time(seconds: float) -> str:
    return (
        datetime.fromtimestamp(seconds, tz=UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def cancel(
    db: DbLocation | str | os.PathLike[str], batch: str, job_ids: Sequence[str] | None = None
) -> Canceled:
    """Cancel the queued jobs of `batch` (or only those named). It does not take the
    queue's lock: a run going on meanwhile never sends them, and finishes the rest."""
    store = Store(db, create=False)
    try:
        store.resolve_batches(batch)  # an unknown batch is a UsageError
        return store.batches.cancel(batch, list(job_ids) if job_ids else None)
    finally:
        store.close()


def describe_cancel(batch: str, result: Canceled) -> str:
    done = f"batch {batch}: {result.canceled} queued job(s) canceled"
    if not result.others:
        return done
    left = sum(result.others.values())
    return f"{done}; {left} other(s) left as they are ({_by_state(result.others)})"


@dataclass(frozen=True)
class Retried:
    """What `orchestrator retry` queued again, what it left failed, and the named jobs
    that were not failed at all."""

    batch: str
    requeued: Requeued
    errors: frozenset[str] | None
    not_failed: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        r = self.requeued
        lines = [
            f"batch {self.batch}: {r.total} failed job(s) run again: {r.downloads} only "
            f"downloaded again (their predictions completed), {r.predictions} predicted again"
        ]
        for name, count in sorted(r.skipped.items()):
            lines.append(f"skipped {count} that failed with {name}: {self._why(name)}")
        if self.not_failed:
            lines.append(
                f"{sum(self.not_failed.values())} named job(s) are not failed "
                f"({_by_state(self.not_failed)}): left as they are"
            )
        return lines

    def _why(self, name: str) -> str:
        if self.errors:
            return "not named by --error"
        return f"a permanent failure (the same inputs fail again); add --error {name} to run them"


def retry(
    store: Store,
    batch: str,
    *,
    url_ttl: float,
    errors: Sequence[str] = (),
    job_ids: Sequence[str] = (),
) -> Retried:
    """Failed jobs of `batch` run again: those that failed of `errors` if given, else
    all but the permanent failures; only `job_ids` if given. A job whose prediction
    completed is only downloaded again while its URLs are valid (`url_ttl`)."""
    store.resolve_batches(batch)
    named = frozenset(errors) or None
    ids = frozenset(job_ids) or None
    not_failed: dict[str, int] = {}
    if ids is not None:
        states = store.batches.job_states(batch, sorted(ids))
        unknown = sorted(ids - states.keys())
        if unknown:
            raise UsageError(messages.unknown_jobs(batch, unknown))
        for state in states.values():
            if state != JobState.FAILED:
                not_failed[state] = not_failed.get(state, 0) + 1

    def chosen(job_id: str, name: str) -> bool | None:
        if ids is not None and job_id not in ids:
            return None
        return policy.chosen_for_retry(name, named)

    requeued = store.retry_failed([batch], url_ttl=url_ttl, chosen=chosen)
    return Retried(batch, requeued, named, not_failed)


def _by_state(counts: dict[str, int]) -> str:
    return ", ".join(f"{state} {n}" for state, n in sorted(counts.items()))
