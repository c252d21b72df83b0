"""What was made, what failed and why, and what it cost: status and reports."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from .models import JobState
from .reconcile import Reconciliation
from .store import Store


@dataclass(frozen=True)
class Summary:
    batches: list[str]
    counts: dict[str, int]
    credits: int
    uncertain: int
    failure_reasons: list[tuple[str, int]]
    # The latest run's balance before and after, against its recorded spend.
    balance_check: Reconciliation | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "batches": self.batches,
            "total": self.total,
            "counts": {s.value: self.counts.get(s.value, 0) for s in JobState},
            "credits": self.credits,
            "uncertain_attempts": self.uncertain,
            "failure_reasons": [{"error": e, "jobs": n} for e, n in self.failure_reasons],
            "balance_check": self.balance_check.as_dict() if self.balance_check else None,
        }


def summarize(store: Store, batches: Sequence[str]) -> Summary:
    return Summary(
        batches=list(batches),
        counts=store.state_counts(batches),
        credits=store.credits_total(batches),
        uncertain=store.uncertain_count(batches),
        failure_reasons=store.failure_reasons(batches),
        balance_check=_balance_check(store, batches),
    )


def _balance_check(store: Store, batches: Sequence[str]) -> Reconciliation | None:
    row = store.spend.latest_check(batches)
    return Reconciliation.from_row(row) if row else None


def job_reports(store: Store, batches: Sequence[str]) -> Iterator[dict[str, Any]]:
    """One object per job, as `report --format json` prints them."""
    for row in store.iter_report(batches):
        job = row["job"]
        yield {
            "batch": job["batch_id"],
            "id": job["job_id"],
            "state": job["state"],
            "model_name": job["model_name"],
            "attempts": [
                {
                    "prediction_id": a["prediction_id"],
                    "status": a["status"] or a["state"],
                    "credits": a["credits"] or 0,
                    "error": _error(a["error_name"], a["error_message"]),
                    "uncertain": bool(a["uncertain"]),
                }
                for a in row["attempts"]
            ],
            "outputs": [
                {"url": o["url"], "path": o["path"], "sha256": o["sha256"]}
                for o in row["outputs"]
                if o["state"] == "saved" or o["path"]
            ],
            "credits": job["credits"],
            "error": job["error"],
        }


def _error(name: str | None, message: str | None) -> str | None:
    if name and message:
        return f"{name}: {message}"
    return name or message or None


def write_json(reports: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """A JSON array written one job at a time, so a large batch needs no large memory."""
    out.write("[")
    count = 0
    for count, item in enumerate(reports, start=1):
        out.write(",\n  " if count > 1 else "\n  ")
        out.write(json.dumps(item, ensure_ascii=False))
    out.write("\n]\n" if count else "]\n")


CSV_COLUMNS = (
    "batch",
    "id",
    "state",
    "model_name",
    "attempts",
    "prediction_ids",
    "uncertain",
    "credits",
    "outputs",
    "sha256",
    "error",
)


def write_csv(reports: Iterable[dict[str, Any]], out: IO[str]) -> None:
    """One row per job; lists are joined with spaces."""
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in reports:
        attempts = r["attempts"]
        writer.writerow(
            [
                r["batch"],
                r["id"],
                r["state"],
                r["model_name"],
                len(attempts),
                " ".join(a["prediction_id"] or "-" for a in attempts),
                sum(1 for a in attempts if a["uncertain"]),
                r["credits"],
                " ".join(o["path"] or "" for o in r["outputs"]),
                " ".join(o["sha256"] or "" for o in r["outputs"]),
                r["error"] or "",
            ]
        )
