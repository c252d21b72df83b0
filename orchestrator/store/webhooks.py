"""The webhook tokens a database issued, by digest: one per run, kept a day."""

from __future__ import annotations

from sqlalchemy import Connection, bindparam, delete, select

from .. import schema as t
from .connection import Database
from .statements import Prepared, inserting

_w = t.webhook_tokens
_ADD = Prepared(inserting(_w, "digest", "created_at"))
_FORGET = Prepared(delete(_w).where(_w.c.created_at < bindparam("before")))
_ALL = Prepared(select(_w.c.digest).order_by(_w.c.pk))
_VALID = Prepared(select(_w.c.digest).where(_w.c.created_at >= bindparam("since")))

# A run's token stays valid this long after the run began: its predictions finish
# within the prediction timeout (15 minutes) and FASHN retries a webhook for about 5
# minutes, so a day covers a run that is resumed the next morning many times over.
KEEP_SECONDS = 24 * 3600.0


def add_token(db: Database, digest: str) -> list[str]:
    """Record a run's token (its digest); returns the digests still valid, this one
    included, after forgetting those past KEEP_SECONDS."""
    now = db.clock.wall()
    with db.tx() as conn:
        _FORGET(conn, before=now - KEEP_SECONDS)
        _ADD(conn, digest=digest, created_at=now)
        return [row[0] for row in _ALL(conn)]


def valid_digests(conn: Connection, now: float) -> list[str]:
    """The digests of the tokens still valid (those of runs begun since KEEP_SECONDS)."""
    return [row[0] for row in _VALID(conn, since=now - KEEP_SECONDS)]
