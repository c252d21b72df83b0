"""How the store runs its SQL: statements written in SQLAlchemy Core, each compiled
once for the connection's dialect, then run on the driver (`exec_driver_sql`).

Why not `conn.execute(stmt)`: SQLAlchemy caches the compiled form too, but its work
on every execution (parameter processing, result typing) costs about 50 us for a
one-row UPDATE that takes 12 us this way, and the scheduler runs some twenty
statements per job. The columns of schema.py need no type processing: the driver
binds and returns numbers and text itself, and the one boolean reads back as 0/1
(SQLite) or as a bool (PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ClauseElement,
    ColumnElement,
    Connection,
    CursorResult,
    Dialect,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    false,
    insert,
)
from sqlalchemy.sql.compiler import SQLCompiler

from .. import schema as t


class Prepared:
    """A Core statement with named parameters (`bindparam`), compiled on first use.
    Values fixed in the statement (`state="queued"`, `.limit(1)`) are bound for you.
    `variants` names another statement for a dialect (`postgresql=...`): one that
    says the same in that dialect's own words (see dialect.py), or a function that
    builds it on first use (so that SQLite never imports PostgreSQL's dialect)."""

    __slots__ = ("_compiled", "statement", "variants")

    def __init__(
        self, statement: ClauseElement, **variants: ClauseElement | Callable[[], ClauseElement]
    ):
        self.statement = statement
        self.variants = variants
        self._compiled: dict[str, tuple[str, Sequence[str] | None, dict[str, Any]]] = {}

    def __call__(self, conn: Connection, /, **params: Any) -> CursorResult[*tuple[Any, ...]]:
        compiled = self._compiled.get(conn.dialect.name)
        if compiled is None:
            compiled = self._compiled[conn.dialect.name] = self._compile(conn.dialect)
        sql, order, fixed = compiled
        if fixed:
            params.update(fixed)
        if order is None:  # a named paramstyle (PostgreSQL's drivers)
            return conn.exec_driver_sql(sql, params)
        return conn.exec_driver_sql(sql, tuple(map(params.__getitem__, order)))

    def _compile(self, dialect: Dialect) -> tuple[str, Sequence[str] | None, dict[str, Any]]:
        statement = self.variants.get(dialect.name, self.statement)
        if not isinstance(statement, ClauseElement):
            statement = statement()
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.post_compile_params:  # `in_(list)`: name one bindparam per item instead
            raise TypeError(f"values rendered per execution are not supported: {compiled}")
        sqlite = dialect.name == "sqlite"
        fixed = {
            name: _plain(bind.effective_value, sqlite=sqlite)
            for bind, name in compiled.bind_names.items()
            if not bind.required
        }
        return compiled.string, compiled.positiontup, fixed


def _plain(value: Any, *, sqlite: bool) -> Any:
    """An enum member as the str it stands for, and for SQLite a bool as an int:
    sqlite3 binds exact str and int at once, but tries (and fails) to adapt their
    subclasses, raising and catching two AttributeErrors per parameter. PostgreSQL
    keeps its bools: its boolean column takes no integer."""
    if isinstance(value, Enum):
        return value.value
    return int(value) if sqlite and isinstance(value, bool) else value


S = TypeVar("S", Select[*tuple[Any, ...]], Update)


class Scoped(Generic[S]):
    """A statement over every batch, or over the batches named (one `IN` placeholder
    per batch, compiled once for each number of batches).

    `some`, when given, is the statement to filter for named batches (one that joins
    `jobs`, say, where every batch needs no join); `column` holds the batch id.
    """

    def __init__(
        self, stmt: S, *, some: S | None = None, column: ColumnElement[str] = t.jobs.c.batch_id
    ):
        self._every = Prepared(stmt)
        self._filtered: S = stmt if some is None else some
        self._column = column
        self._some: dict[int, tuple[Prepared, list[str]]] = {}

    def __call__(
        self, conn: Connection, batches: Sequence[str] | None, /, **params: Any
    ) -> CursorResult[*tuple[Any, ...]]:
        """Run it; `batches` None means every batch."""
        if batches is None:
            return self._every(conn, **params)
        some = self._some.get(len(batches))
        if some is None:
            some = self._some[len(batches)] = self._for(len(batches))
        prepared, names = some
        params.update(zip(names, batches, strict=True))
        return prepared(conn, **params)

    def _for(self, count: int) -> tuple[Prepared, list[str]]:
        names = [f"batch_{i}" for i in range(count)]
        if not count:
            return Prepared(self._filtered.where(false())), names
        binds = [bindparam(name, type_=self._column.type) for name in names]
        return Prepared(self._filtered.where(self._column.in_(binds))), names


def inserting(table: Table, *columns: str) -> Insert:
    """An INSERT of the columns named, each bound by its own name."""
    return insert(table).values({name: bindparam(name) for name in columns})
