"""What only SQLite says (dialect.py and staging.py choose between this module and
postgres.py for each connection):

- the PRAGMAs every connection gets, and the durable sync that turns on
  `synchronous=FULL` for one transaction;
- ingest's bulk load: rows loaded through the driver's own `executemany` of plain
  tuples (SQLAlchemy's executemany of dicts is five times slower: some 10 s more on a
  million rows);
- `INSERT OR IGNORE`;
- a new row's key read from the cursor's `lastrowid` (`RETURNING pk` costs SQLite
  some 40 us more per INSERT);
- the keys of a JSON object as a table: `json_each` of the text itself.

Everything else the store runs is SQLAlchemy Core over the tables of schema.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, CursorResult, Insert


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


def load(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Any]) -> None:
    """Bulk-load tuples into `columns` of `table`: executemany on the raw connection."""
    raw = conn.connection.dbapi_connection
    assert raw is not None
    marks = ", ".join("?" * len(columns))
    raw.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def or_ignore(statement: Insert) -> Insert:
    """The INSERT, skipping a row whose key is already there."""
    return statement.prefix_with("OR IGNORE")


def new_pk(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The primary key of the row an INSERT just added."""
    return int(result.lastrowid)
