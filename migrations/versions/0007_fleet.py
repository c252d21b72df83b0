"""fleet: accounts, workers and their leases, and the shared windows

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 10:00:00

`jobs.account` names the account whose key runs a job (never the key); `jobs.worker`
the worker holding it. `requests` gain the account and the worker that sent each
request, so that a fleet counts each account's windows together. `workers` holds each
worker's lease, `accounts` each account's limits (and is the row a claim locks).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("account", sa.String(), server_default="default", nullable=False)
        )
        batch_op.add_column(sa.Column("worker", sa.String(), nullable=True))
    op.create_index(
        "ix_jobs_account_queue",
        "jobs",
        ["account", "state", sa.literal_column("priority DESC"), "pk"],
        unique=False,
    )
    op.create_index("ix_jobs_worker", "jobs", ["worker"], unique=False)
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("account", sa.String(), server_default="default", nullable=False)
        )
        batch_op.add_column(sa.Column("worker", sa.String(), nullable=True))
    op.create_index(
        "ix_requests_account", "requests", ["account", "endpoint", "done_at"], unique=False
    )
    op.create_table(
        "workers",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("lease_seconds", sa.Float(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "accounts",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("run_limit", sa.String(), nullable=True),
        sa.Column("status_limit", sa.String(), nullable=True),
        sa.Column("touched_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("accounts")
    op.drop_table("workers")
    op.drop_index("ix_requests_account", table_name="requests")
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("worker")
        batch_op.drop_column("account")
    op.drop_index("ix_jobs_worker", table_name="jobs")
    op.drop_index("ix_jobs_account_queue", table_name="jobs")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("worker")
        batch_op.drop_column("account")
