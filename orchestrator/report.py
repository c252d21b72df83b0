"""What was made, what failed and why, and what it cost: status and reports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

from .models import JobState, content_token
from .reconcile import Reconciliation
from .report_csv import write_csv
from .store import Store
from .store.blobs import BLOB_KEY


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


def summarize(store: Store, batches: Sequence[str] | None) -> Summary:
    """The counts of `batches`; None: of every batch, read without naming them (the
    credits and uncertain attempts from the ledger and attempts alone, never by way of
    each of a million jobs)."""
    named = list(batches) if batches is not None else store.batch_ids()
    return Summary(
        batches=named,
        counts=store.state_counts(batches),
        credits=store.credits_total(batches),
        uncertain=store.uncertain_count(batches),
        failure_reasons=store.failure_reasons(batches),
        balance_check=balance_check(store, named),
    )


def balance_check(store: Store, batches: Sequence[str]) -> Reconciliation | None:
    """The latest run's two balance readings compared with what it recorded, if any."""
    row = store.spend.latest_check(batches)
    return Reconciliation.from_row(row) if row else None


def job_reports(store: Store, batches: Sequence[str]) -> Iterator[dict[str, Any]]:
    """One object per job, as `report --format json` prints them."""
    for row in store.iter_report(batches):
        job, attempts = row["job"], row["attempts"]
        sent = [a["sent_at"] for a in attempts if a["sent_at"] is not None]
        terminal = JobState(job["state"]).terminal
        reused = job["reused_batch"]
        yield {
            "batch": job["batch_id"],
            "id": job["job_id"],
            "manifest": job["manifest"],
            "line": job["line"],
            "state": job["state"],
            "model_name": job["model_name"],
            "inputs": shown_inputs(job["inputs"]),
            "meta": json.loads(job["meta"]) if job["meta"] else {},
            "attempts": [
                {
                    "prediction_id": a["prediction_id"],
                    "status": a["status"] or a["state"],
                    "credits": a["credits"] or 0,
                    "error": _error(a["error_name"], a["error_message"]),
                    "uncertain": bool(a["uncertain"]),
                }
                for a in attempts
            ],
            "outputs": [
                {
                    "index": o["idx"],
                    "url": o["url"],
                    "path": o["path"],
                    "size": o["size"],
                    "sha256": o["sha256"],
                }
                for o in row["outputs"]
                if o["state"] == "saved" or o["path"]
            ],
            "credits": job["credits"],
            "error": job["error"],
            "reused_from": {"batch": reused, "id": job["reused_id"]} if reused else None,
            "started_at": iso_utc(min(sent)) if sent else None,
            "finished_at": iso_utc(job["updated_at"]) if terminal else None,
        }


def shown_inputs(raw: str) -> dict[str, Any]:
    """A job's stored inputs as a report shows them: each data URI as its sha256 token
    (a large one is stored as a blob whose key is that sha256)."""
    inputs: dict[str, Any] = json.loads(raw)
    for key, value in inputs.items():
        if isinstance(value, dict) and BLOB_KEY in value:
            inputs[key] = "sha256:" + value[BLOB_KEY]
        elif isinstance(value, str) and value.startswith("data:"):
            inputs[key] = content_token(value)
    return inputs


def iso_utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_report(
    store: Store, batches: Sequence[str], out: IO[str], *, fmt: str, per: str = "output"
) -> None:
    """The report of `batches` as JSON (one object per job) or CSV (report_csv)."""
    reports = job_reports(store, batches)
    if fmt == "json":
        write_json(reports, out)
        return
    input_names, meta_names = store.report_names(batches)
    write_csv(reports, out, input_names=input_names, meta_names=meta_names, per=per)


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
