"""the account's balance before and after each run

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 20:00:00

Two readings of GET /v1/credits per run, and what the run recorded meanwhile, so that
`status` can say what the night really cost.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "balance_checks",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("batches", sa.Text(), nullable=True),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("balance_before", sa.Integer(), nullable=False),
        sa.Column("finished_at", sa.Float(), nullable=True),
        sa.Column("balance_after", sa.Integer(), nullable=True),
        sa.Column("recorded", sa.Integer(), nullable=True),
        sa.Column("uncertain", sa.Integer(), nullable=True),
        sa.Column("uncertain_credits", sa.Integer(), nullable=True),
        sa.Column("earlier_refunds", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
    )


def downgrade() -> None:
    op.drop_table("balance_checks")
