"""The queue, in a SQLite file or a PostgreSQL database. Every query the orchestrator
makes lives in this package, behind the facade `Store`, whose methods delegate to the
module that runs them: ingest (with duplicates, blobs and staging), queue, outputs,
recovery, requests, journal or reads. Beneath them: location (what `--db` names),
connection (engine, transactions, migrations), dialect (what SQLite and PostgreSQL say
differently: sqlite.py, postgres.py), statements (Core, compiled once per dialect),
records (what is handed out), messages (what people are told).

Durability rules the engine relies on:
- an attempt row (and its request log entry) is committed before `POST /run` is sent;
- the prediction id and its credits are committed in the transaction that reads the answer;
- a prediction's output URLs are committed with its completion, so a crash before the
  download only means downloading later, never predicting again.

Many processes. On SQLite one process runs a queue (locking.queue_lock); `status`,
`report`, `list` and `cancel` read and write beside it. On PostgreSQL any number of
processes may run one queue at once, under this contract:
- `claim_next` takes the next queued job with `SELECT ... FOR UPDATE SKIP LOCKED` and
  marks it running, with its attempt and request rows, in that one transaction: two
  processes never claim one job;
- every later transition names the attempt (or job) its process claimed or took over:
  a process changes only what it holds;
- `recover()` recovers the whole queue only when no other process runs it: it tries
  the queue's presence lock (an advisory lock) alone, then holds it shared for as long
  as the store's connection lives. With another process alive it changes nothing and
  says so (`Recovery.others`): what a dead process left is then for
- `takeover.attempts(pks)`, which recovers the attempts named and nothing else. The
  caller must know that no live process holds them (a fleet's expired leases); an
  attempt sent without an answer is marked uncertain and its job queued again, one with
  a prediction id comes back to be polled, and its job's downloads to be resumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .location import DbLocation

# The facade and every module of the store (SQLAlchemy, each module's statements) are
# imported on first use of one of these names: `orchestrator --help`, and the commands
# that never open a queue, start without them.
if TYPE_CHECKING:
    from .facade import (
        BLOB_THRESHOLD,
        BatchInfo,
        Canceled,
        Chooser,
        ClaimedJob,
        Fleet,
        Flight,
        Gate,
        Holding,
        IngestResult,
        JobOrigin,
        NoQueue,
        OrchestratorError,
        PendingOutput,
        Recovery,
        Relay,
        Requeued,
        Spend,
        Store,
        Takeover,
        _changed_message,
        _current_revision,
        _migrations_dir,
        _newest_revision,
    )


def __getattr__(name: str) -> Any:
    if name in __all__ and name != "DbLocation":  # the facade's, loaded on first use
        from . import facade

        return getattr(facade, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BLOB_THRESHOLD",
    "BatchInfo",
    "Canceled",
    "Chooser",
    "ClaimedJob",
    "DbLocation",
    "Fleet",
    "Flight",
    "Gate",
    "Holding",
    "IngestResult",
    "JobOrigin",
    "NoQueue",
    "OrchestratorError",
    "PendingOutput",
    "Recovery",
    "Relay",
    "Requeued",
    "Spend",
    "Store",
    "Takeover",
    "_changed_message",
    "_current_revision",
    "_migrations_dir",
    "_newest_revision",
]
