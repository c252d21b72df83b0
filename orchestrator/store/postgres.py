"""What only PostgreSQL says (dialect.py and staging.py choose between this module
and sqlite.py for each connection):

- how a connection is opened (psycopg 3; notices below warnings are not sent);
- ingest's bulk load through `COPY ... FROM STDIN`, and the staging table emptied
  with TRUNCATE and analyzed once loaded (autovacuum never sees a TEMP table);
- `INSERT ... ON CONFLICT DO NOTHING`, and a new row's key read with `RETURNING pk`;
- the keys of a JSON object as a table: `json_each` of the text cast to JSON;
- advisory locks: one that serializes migrations, and the queue's presence lock (a
  run holds it shared for as long as its connection lives, and recovers the queue
  only when it could take it alone: see recovery.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, Insert, Table, create_engine, func, select
from sqlalchemy.engine import URL

from .statements import Prepared

# Advisory lock keys (bigint), per database: the server scopes them to it.
MIGRATIONS_KEY = 0x6F72_6368_6D69_6701  # held (per transaction) while migrating
QUEUE_KEY = 0x6F72_6368_7175_6501  # the presence of the processes running the queue


def engine(url: URL) -> Engine:
    return create_engine(
        url,
        connect_args={
            "connect_timeout": 10,
            "application_name": "orchestrator",
            "options": "-c client_min_messages=warning",
        },
    )


def load(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
    """Bulk-load tuples into `columns` of `table` with COPY, in the open transaction."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with raw.cursor() as cur, cur.copy(sql) as copy:  # type: ignore[attr-defined]
        for row in rows:
            copy.write_row(row)


def truncate(conn: Connection, table: str) -> None:
    conn.exec_driver_sql(f"TRUNCATE {table}")


def analyze(conn: Connection, table: str) -> None:
    conn.exec_driver_sql(f"ANALYZE {table}")


def or_ignore(table: Table, values: dict[str, Any]) -> Insert:
    """The INSERT of `values`, skipping a row whose key is already there."""
    from sqlalchemy.dialects.postgresql import insert as pg_insert  # not for SQLite's runs

    return pg_insert(table).values(values).on_conflict_do_nothing()


_LOCK_MIGRATIONS = Prepared(select(func.pg_advisory_xact_lock(MIGRATIONS_KEY)))
_TRY_ALONE = Prepared(select(func.pg_try_advisory_lock(QUEUE_KEY)))
_SHARE = Prepared(select(func.pg_advisory_lock_shared(QUEUE_KEY)))
_UNLOCK = Prepared(select(func.pg_advisory_unlock(QUEUE_KEY)))
_UNSHARE = Prepared(select(func.pg_advisory_unlock_shared(QUEUE_KEY)))


def lock_migrations(conn: Connection) -> None:
    """Wait until no other process migrates this database (released at commit)."""
    _LOCK_MIGRATIONS(conn).all()


def try_alone(conn: Connection) -> bool:
    """Take the queue's presence lock exclusively (for this connection's life), if no
    other connection holds it in any mode."""
    return bool(_TRY_ALONE(conn).scalar_one())


def attend(conn: Connection, *, alone: bool) -> None:
    """Hold the presence lock shared from now on (waiting for a process that holds it
    alone to finish its recovery); give up the exclusive hold `try_alone` took."""
    _SHARE(conn).all()
    if alone:
        _UNLOCK(conn).all()


def leave(conn: Connection) -> None:
    """Give up one shared hold of the presence lock (`attend` took it)."""
    _UNSHARE(conn).all()
