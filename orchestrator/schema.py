"""The queue's tables. Migrations under migrations/ must produce exactly this
schema (a test compares them); the store package is the only code that queries it."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

batches = Table(
    "batches",
    metadata,
    Column("id", String, primary_key=True),  # the batch name, safe as a directory name
    Column("manifest", Text, nullable=False),  # path of the manifest it came from
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    # Where its outputs go under --out (naming.NameTemplate); NULL: the default.
    Column("name_template", Text),
)

jobs = Table(
    "jobs",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("batch_id", String, ForeignKey("batches.id"), nullable=False),
    Column("job_id", String, nullable=False),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("model_name", String, nullable=False),
    Column("inputs", Text, nullable=False),  # canonical JSON; large data URIs live in blobs
    Column("fingerprint", String, nullable=False),  # models.fingerprint
    Column("state", String, nullable=False),
    Column("failures", Integer, nullable=False, server_default="0"),  # failed predictions
    Column("not_before", Float),  # backoff: not to be sent before this time
    Column("error", Text),
    Column("credits", Integer, nullable=False, server_default="0"),
    Column("created_at", Float, nullable=False),
    Column("updated_at", Float, nullable=False),
    Column("line", Integer),  # where the job is in its manifest (line, or CSV row)
    Column("meta", Text),  # the catalog's own data (canonical JSON): never sent, not hashed
    Column("reused_from", Integer),  # the job (pk) whose outputs this one took (--reuse)
    # Whose API key runs it (FASHN_API_KEY, or FASHN_API_KEY_<NAME>): never the key itself.
    Column("account", String, nullable=False, server_default="default"),
    # The worker (`orchestrator worker`) holding the job while it runs or downloads.
    Column("worker", String),
    UniqueConstraint("batch_id", "job_id", name="uq_jobs_batch_job"),
    Index("ix_jobs_batch_state", "batch_id", "state"),
)
# The submitter's "next job" query (highest priority first, then manifest order)
# reads this index in order and stops at the first row.
Index("ix_jobs_queue", jobs.c.state, jobs.c.priority.desc(), jobs.c.pk)
# The same order within given batches: a claim for one batch is then one probe,
# however many jobs of other batches wait.
Index("ix_jobs_batch_queue", jobs.c.batch_id, jobs.c.state, jobs.c.priority.desc(), jobs.c.pk)
# A worker's "next job" of one account: one probe, whatever other accounts queue.
Index("ix_jobs_account_queue", jobs.c.account, jobs.c.state, jobs.c.priority.desc(), jobs.c.pk)
Index("ix_jobs_worker", jobs.c.worker)
# --reuse looks up a completed job by what it asked for.
Index("ix_jobs_fingerprint", jobs.c.fingerprint, jobs.c.state)

attempts = Table(
    "attempts",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("job_pk", Integer, ForeignKey("jobs.pk"), nullable=False),
    Column("state", String, nullable=False),
    Column("prediction_id", String),
    Column("status", String),  # the last status the API reported
    Column("credits", Integer),
    Column("uncertain", Boolean, nullable=False, server_default="0"),
    Column("error_name", String),
    Column("error_message", Text),
    Column("sent_at", Float),
    Column("accepted_at", Float),
    Column("finished_at", Float),  # when the client first saw it terminal
    Column("seen_by", String),  # what showed it terminal: "status" (a poll) or "webhook"
    Index("ix_attempts_job", "job_pk"),
    Index("ix_attempts_state", "state"),
)

outputs = Table(
    "outputs",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("job_pk", Integer, ForeignKey("jobs.pk"), nullable=False),
    Column("attempt_pk", Integer, ForeignKey("attempts.pk"), nullable=False),
    Column("idx", Integer, nullable=False),
    Column("url", Text, nullable=False),  # a data URI is kept whole only until it is saved
    Column("state", String, nullable=False),  # pending, saved, failed
    Column("tries", Integer, nullable=False, server_default="0"),
    Column("path", Text),
    Column("sha256", String),
    Column("size", Integer),
    Column("error", Text),
    Column("saved_at", Float),
    # A reused output (--reuse): the saved output (pk) whose file it takes.
    Column("source_pk", Integer),
    UniqueConstraint("attempt_pk", "idx", name="uq_outputs_attempt_idx"),
    Index("ix_outputs_job", "job_pk"),
)

ledger = Table(
    "ledger",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("job_pk", Integer, ForeignKey("jobs.pk"), nullable=False),
    Column("attempt_pk", Integer, ForeignKey("attempts.pk"), nullable=False),
    Column("prediction_id", String, nullable=False),
    Column("credits", Integer, nullable=False),  # positive: charged; negative: refunded
    Column("kind", String, nullable=False),  # charge, refund
    Column("at", Float, nullable=False),
    Index("ix_ledger_job", "job_pk"),
)

events = Table(
    "events",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("at", Float, nullable=False),
    Column("batch_id", String),
    Column("job_pk", Integer),
    Column("kind", String, nullable=False),
    Column("message", Text, nullable=False),
    Index("ix_events_job", "job_pk"),
)

blobs = Table(
    "blobs",
    metadata,
    Column("sha256", String, primary_key=True),
    Column("data", Text, nullable=False),
)

# Every request to a limited endpoint, so that a restarted process can seed its
# sliding windows with what the previous one sent.
requests = Table(
    "requests",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("endpoint", String, nullable=False),
    Column("sent_at", Float, nullable=False),
    Column("done_at", Float),
    # A fleet shares each account's windows through these rows (orchestrator/fleet/).
    Column("account", String, nullable=False, server_default="default"),
    Column("worker", String),  # the worker that sent it; NULL: submit or resume
    Index("ix_requests_endpoint_sent", "endpoint", "sent_at"),
    Index("ix_requests_account", "account", "endpoint", "done_at"),
)

# The account's balance read before a run's first `/run` and after its end, with what
# the run recorded meanwhile: `status` compares the two (see reconcile.py).
balance_checks = Table(
    "balance_checks",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("batches", Text),  # JSON list of the run's batches; NULL: every batch
    Column("started_at", Float, nullable=False),  # when the first reading was answered
    Column("balance_before", Integer, nullable=False),
    Column("finished_at", Float),  # when the second reading was answered
    Column("balance_after", Integer),
    Column("recorded", Integer),  # ledger net of the run: charges minus refunds
    Column("uncertain", Integer),  # attempts of the run whose /run answer was lost
    Column("uncertain_credits", Integer),  # the most those attempts can have cost
    Column("earlier_refunds", Integer),  # refunds recorded for earlier runs' predictions
)

# The webhook tokens this database issued, one per run, by sha256 only (the token
# itself cannot be recovered from them: see orchestrator/webhooks/token.py).
webhook_tokens = Table(
    "webhook_tokens",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("digest", String, nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
)

# The workers of a fleet: each renews its lease (`heartbeat_at`) while it lives; one
# whose lease ran out is dead, and another worker takes over what it held.
workers = Table(
    "workers",
    metadata,
    Column("id", String, primary_key=True),  # host:pid:random, new for every process
    Column("started_at", Float, nullable=False),
    Column("heartbeat_at", Float, nullable=False),
    Column("lease_seconds", Float, nullable=False),
    Column("state", String, nullable=False),  # live, stopped, dead
)

# Each account's limits as the first worker recorded them (a worker with others is
# refused); its row is also the lock that orders the fleet's claims for the account.
accounts = Table(
    "accounts",
    metadata,
    Column("name", String, primary_key=True),
    Column("concurrency", Integer, nullable=False),
    Column("run_limit", String),  # "N/SECONDS", NULL: none
    Column("status_limit", String),
    Column("touched_at", Float, nullable=False),
)
