"""What only SQLite says, kept in one place for a later PostgreSQL port.

- the PRAGMAs every connection gets, and the durable sync that turns on
  `synchronous=FULL` for one transaction;
- ingest's bulk load: the TEMP `staging` table filled through the driver's own
  `executemany` of plain tuples (SQLAlchemy's executemany of dicts is five times
  slower: some 10 s more on a million rows);
- `INSERT OR IGNORE` (PostgreSQL: `INSERT ... ON CONFLICT DO NOTHING`);
- a new row's key read from the cursor's `lastrowid` (PostgreSQL: `RETURNING pk`,
  which on SQLite costs some 40 us more per INSERT);
- the keys of a JSON object as a table, `json_each` (PostgreSQL: `jsonb_object_keys`).

Everything else the store runs is SQLAlchemy Core over the tables of schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    CursorResult,
    Index,
    Insert,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
)
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex
from sqlalchemy.sql.selectable import TableValuedAlias

from .statements import Prepared, inserting


def url(path: str) -> str:
    return f"sqlite:///{path}"


def on_connect(dbapi_conn: Any, _record: Any) -> None:
    """WAL lets `status` read while a run writes; NORMAL sync is durable against a
    crash (a power cut may lose the last commits, see `synchronous`); SQLite checks
    foreign keys only when asked; a reader waits for a writer instead of failing."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def synchronous(conn: Connection, *, full: bool) -> None:
    """FULL syncs each commit to disk before it returns (survives a power cut)."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.execute("PRAGMA synchronous=FULL" if full else "PRAGMA synchronous=NORMAL")


# ------------------------------------------------------------------ ingest staging

# A manifest's jobs, loaded here before one set-based write into `jobs`. TEMP: each
# connection has its own, and it never reaches the database file. `seq` (an alias
# of SQLite's rowid) keeps the manifest's order.
staging = Table(
    "staging",
    MetaData(),
    Column("seq", Integer, primary_key=True),
    Column("job_id", Text),
    Column("model_name", Text),
    Column("inputs", Text),
    Column("fingerprint", Text),
    Column("priority", Integer),
    Column("line", Integer),
    Column("meta", Text),
    prefixes=["TEMPORARY"],
)
# Ids folded to lower case (ids are ASCII, which SQLite's lower() folds): built once
# the rows are in, for the duplicate checks, and dropped again so that the next
# manifest's inserts do not maintain it.
staging_folded = Index("staging_folded", func.lower(staging.c.job_id))

# The driver's qmark SQL: executemany on the raw sqlite3 connection.
_STAGE = (
    "INSERT INTO staging (job_id, model_name, inputs, fingerprint, priority, line, meta)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_STAGE_REFUSED = "INSERT INTO staging (job_id, line) VALUES (?, ?)"
_CLEAR = Prepared(delete(staging))


def open_staging(conn: Connection) -> None:
    """An empty staging table on this connection."""
    conn.execute(CreateTable(staging, if_not_exists=True))
    clear_staging(conn)


def clear_staging(conn: Connection) -> None:
    _CLEAR(conn)


def stage(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Bulk-load (job_id, model_name, inputs, fingerprint, priority, line, meta) rows."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.executemany(_STAGE, rows)


def stage_refused(conn: Connection, rows: Sequence[tuple[str, int]]) -> None:
    """(job_id, line) of jobs the manifest reader refused: only their ids are checked."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    raw.executemany(_STAGE_REFUSED, rows)


def fold_index(conn: Connection, *, present: bool) -> None:
    if present:
        conn.execute(CreateIndex(staging_folded, if_not_exists=True))
    else:
        conn.execute(DropIndex(staging_folded, if_exists=True))


def json_keys(column: ColumnElement[str]) -> TableValuedAlias:
    """The keys of the JSON object in `column`, as a table to join (PostgreSQL:
    `jsonb_object_keys`)."""
    return func.json_each(column).table_valued("key")


def insert_or_ignore(table: Table, *columns: str) -> Insert:
    """An INSERT of the columns named (bound by name) that skips a row whose key is
    already there."""
    return inserting(table, *columns).prefix_with("OR IGNORE")


def new_pk(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The primary key of the row an INSERT just added."""
    return int(result.lastrowid)
