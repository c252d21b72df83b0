"""One store, two dialects: what the store says differently to SQLite (sqlite.py) and
to PostgreSQL (postgres.py), chosen per engine or per connection. The statements of
the other modules are SQLAlchemy Core that both compile alike; the few that differ
are built here as a `Prepared` with a PostgreSQL variant.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Insert,
    Table,
    bindparam,
    create_engine,
    event,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import TableValuedAlias

from . import postgres, sqlite
from .location import DbLocation
from .statements import Prepared, inserting


def engine_for(location: DbLocation) -> Engine:
    if location.postgres:
        return postgres.engine(location.url)
    engine = create_engine(sqlite.url(str(location.path)))
    event.listen(engine, "connect", sqlite.on_connect)
    return engine


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def insert_or_ignore(table: Table, *columns: str) -> Prepared:
    """An INSERT of the columns named (bound by name) that skips a row whose key is
    already there: `INSERT OR IGNORE`, or `ON CONFLICT DO NOTHING`."""
    binds: dict[str, Any] = {name: bindparam(name) for name in columns}
    return Prepared(
        sqlite.or_ignore(inserting(table, *columns)),
        postgresql=lambda: postgres.or_ignore(table, binds),
    )


def adding(statement: Insert) -> Prepared:
    """An INSERT of one row whose key `new_pk` then reads: from the cursor on SQLite,
    from `RETURNING pk` on PostgreSQL."""
    table = statement.table
    assert isinstance(table, Table)
    return Prepared(statement, postgresql=statement.returning(table.c.pk))


def new_pk(result: CursorResult[*tuple[Any, ...]]) -> int:
    """The primary key of the row a statement of `adding` just added."""
    if result.returns_rows:
        return int(result.scalar_one())
    return sqlite.new_pk(result)


def lock_migrations(conn: Connection) -> None:
    """Two processes opening one new PostgreSQL database migrate it one after the
    other (the second then finds it done); SQLite's write lock does that itself."""
    if is_postgres(conn):
        postgres.lock_migrations(conn)


def try_alone(conn: Connection) -> bool:
    """Whether no other process runs this queue. On SQLite, always (the queue lock,
    locking.py, keeps any other runner out); on PostgreSQL, whether the presence
    lock could be taken alone (held until `attend`)."""
    return postgres.try_alone(conn) if is_postgres(conn) else True


def attend(conn: Connection, *, alone: bool) -> bool:
    """Mark this connection's process as running the queue (PostgreSQL), until `leave`
    or until it closes; whether there was anything to mark."""
    if is_postgres(conn):
        postgres.attend(conn, alone=alone)
        return True
    return False


def leave(conn: Connection) -> None:
    if is_postgres(conn):
        postgres.leave(conn)


class _JsonEach(FunctionElement[Any]):
    """`json_each(text)`: one row per key of a JSON object, in column `key`."""

    name = "json_each"
    inherit_cache = True


@compiles(_JsonEach)
def _json_each(element: _JsonEach, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_each({compiler.process(element.clauses, **kw)})"


@compiles(_JsonEach, "postgresql")
def _json_each_pg(element: _JsonEach, compiler: SQLCompiler, **kw: Any) -> str:
    return f"json_each(CAST({compiler.process(element.clauses, **kw)} AS JSON))"


def json_keys(column: ColumnElement[str]) -> TableValuedAlias:
    """The keys of the JSON object in the text `column`, as a table to join."""
    return _JsonEach(column).table_valued("key")
