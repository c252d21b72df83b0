"""Ingest's staging table: a manifest's jobs, loaded here before one set-based write
into `jobs`. TEMP: each connection has its own, and it never reaches the database's
tables. `seq` (SQLite's rowid; PostgreSQL's serial) keeps the manifest's order.
Loaded by the driver's fastest path: executemany on SQLite, COPY on PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Column, Connection, Index, Integer, MetaData, Table, Text, delete, func
from sqlalchemy.schema import CreateIndex, CreateTable, DropIndex

from . import postgres, sqlite
from .dialect import is_postgres
from .statements import Prepared

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
    Column("account", Text),
    prefixes=["TEMPORARY"],
)
# Ids folded to lower case (ids are ASCII, which both lower() fold alike): built once
# the rows are in, for the duplicate checks, and dropped again so that the next
# manifest's inserts do not maintain it.
staging_folded = Index("staging_folded", func.lower(staging.c.job_id))

_COLUMNS = ("job_id", "model_name", "inputs", "fingerprint", "priority", "line", "meta", "account")
_CLEAR = Prepared(delete(staging))


def open_staging(conn: Connection) -> None:
    """An empty staging table on this connection."""
    conn.execute(CreateTable(staging, if_not_exists=True))
    clear_staging(conn)


def clear_staging(conn: Connection) -> None:
    if is_postgres(conn):
        postgres.truncate(conn, staging.name)
    else:
        _CLEAR(conn)


def stage(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Bulk-load (job_id, model_name, inputs, fingerprint, priority, line, meta, account)
    rows."""
    (postgres if is_postgres(conn) else sqlite).load(conn, staging.name, _COLUMNS, rows)


def stage_refused(conn: Connection, rows: Sequence[tuple[str, int]]) -> None:
    """(job_id, line) of jobs the manifest reader refused: only their ids are checked."""
    (postgres if is_postgres(conn) else sqlite).load(conn, staging.name, ("job_id", "line"), rows)


def fold_index(conn: Connection, *, present: bool) -> None:
    if present:
        conn.execute(CreateIndex(staging_folded, if_not_exists=True))
        if is_postgres(conn):  # the planner's figures for the checks that follow
            postgres.analyze(conn, staging.name)
    else:
        conn.execute(DropIndex(staging_folded, if_exists=True))
