"""the catalog's own data, output name templates, and reuse of completed outputs

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 12:00:00

`jobs.meta` keeps a job's free data (SKU, product page), never sent to the API.
`batches.name_template` says where a batch's outputs go (NULL: the default).
`jobs.reused_from` and `outputs.source_pk` record what `--reuse` took from an
earlier job, and `ix_jobs_fingerprint` finds such a job.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("batches", sa.Column("name_template", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("meta", sa.Text(), nullable=True))
    op.add_column("jobs", sa.Column("reused_from", sa.Integer(), nullable=True))
    op.add_column("outputs", sa.Column("source_pk", sa.Integer(), nullable=True))
    op.create_index("ix_jobs_fingerprint", "jobs", ["fingerprint", "state"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_fingerprint", table_name="jobs")
    for table, column in (
        ("outputs", "source_pk"),
        ("jobs", "reused_from"),
        ("jobs", "meta"),
        ("batches", "name_template"),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
