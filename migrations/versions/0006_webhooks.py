"""webhooks: the tokens a database issued, and what showed each attempt terminal

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

`webhook_tokens` keeps the sha256 of each run's webhook token (never the token), so
that a resumed run still accepts the webhooks of predictions an earlier run sent.
`attempts.seen_by` says whether a poll ("status") or a webhook ("webhook") first
showed an attempt terminal; attempts finished before this revision have none.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "webhook_tokens",
        sa.Column("pk", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("digest"),
    )
    op.add_column("attempts", sa.Column("seen_by", sa.String(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts", schema=None) as batch_op:
        batch_op.drop_column("seen_by")
    op.drop_table("webhook_tokens")
