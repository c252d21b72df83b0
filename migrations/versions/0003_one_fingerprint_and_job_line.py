"""one fingerprint for a job, and the job's line in its manifest

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 23:50:00

The queue hashed a job its own way (model and slimmed inputs); it now stores the
fingerprint that names derived ids (orchestrator.models.fingerprint: each data URI
counted as its sha256). Existing rows are recomputed, so that submitting the same
manifest again still finds its jobs unchanged. A blob's key is already the sha256
of its data URI, so no blob is read. `line` says where a job is in its manifest,
for reports and logs; rows queued before it stay without one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# The encoding orchestrator.models.fingerprint used when this migration was written.
_encode = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode
_jobs = sa.table(
    "jobs",
    sa.column("pk", sa.Integer),
    sa.column("model_name", sa.String),
    sa.column("inputs", sa.Text),
    sa.column("fingerprint", sa.String),
)


def fingerprint(model_name: str, raw_inputs: str) -> str:
    basis: dict[str, Any] = {}
    for key, value in json.loads(raw_inputs).items():
        if isinstance(value, dict) and "$blob" in value:
            value = "sha256:" + value["$blob"]
        elif isinstance(value, str) and value.startswith("data:"):
            value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
        basis[key] = value
    return hashlib.sha256(_encode([model_name, basis]).encode()).hexdigest()


def earlier_fingerprint(model_name: str, raw_inputs: str) -> str:
    """What the queue stored before this revision."""
    return hashlib.sha256(f"{model_name}\n{raw_inputs}".encode()).hexdigest()


def _rehash(how: Callable[[str, str], str]) -> None:
    conn = op.get_bind()
    rows = conn.execute(sa.select(_jobs.c.pk, _jobs.c.model_name, _jobs.c.inputs)).all()
    update = sa.update(_jobs).where(_jobs.c.pk == sa.bindparam("key"))
    changes = [{"key": pk, "new": how(model, raw)} for pk, model, raw in rows]
    if changes:
        conn.execute(update.values(fingerprint=sa.bindparam("new")), changes)


def upgrade() -> None:
    op.add_column("jobs", sa.Column("line", sa.Integer(), nullable=True))
    _rehash(fingerprint)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("line")
    _rehash(earlier_fingerprint)
