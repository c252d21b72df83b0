"""The database: one engine, one long-lived connection, the schema migrated on open,
and transactions (SQLite's durable ones synced to disk before they return)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, column, inspect, select, table
from sqlalchemy.exc import OperationalError

from ..clock import Clock
from ..errors import OrchestratorError, UsageError
from . import dialect, messages, sqlite
from .location import DbLocation


def _migrations_dir() -> Path:
    """The alembic scripts: in a checkout beside the package, installed inside it
    (as `orchestrator.migrations`)."""
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "migrations", package / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    spec = importlib.util.find_spec("orchestrator.migrations")
    for location in (spec.submodule_search_locations or []) if spec else []:
        if (Path(location) / "env.py").exists():
            return Path(location)
    raise OrchestratorError(messages.MIGRATIONS_MISSING)


def _newest_revision(scripts: Path) -> str:
    """Migrations are named `NNNN_what.py` with revision id `NNNN`, in order."""
    names = sorted(p.name for p in (scripts / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
    return names[-1][:4] if names else ""


_alembic_version = table("alembic_version", column("version_num"))


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):  # a new database
        return None
    return conn.execute(select(_alembic_version.c.version_num)).scalar()


class NoQueue(UsageError):
    """The database holds no queue (and was not to be given one)."""


def check_exists(location: DbLocation) -> None:
    """A missing SQLite file is NoQueue (PostgreSQL's tables are looked for on open)."""
    if location.path is not None and not location.path.is_file():
        raise NoQueue(messages.no_queue(location.path))


def discard(location: DbLocation) -> None:
    """Delete a SQLite database and the files beside it (closed first)."""
    for suffix in ("", "-wal", "-shm", "-journal", ".lock") if location.path else ():
        Path(f"{location.path}{suffix}").unlink(missing_ok=True)


def migrate(engine: Engine, location: DbLocation, *, create: bool = True) -> None:
    """Bring the schema to the newest migration; a no-op costs one query. With
    create=False, a database without the queue's tables is NoQueue."""
    scripts = _migrations_dir()
    with engine.begin() as conn:
        current = _current_revision(conn)
        if current is None and not create:
            raise NoQueue(messages.no_queue(location))
        if current == _newest_revision(scripts):
            return
        dialect.lock_migrations(conn)
        if _current_revision(conn) == _newest_revision(scripts):
            return  # another process migrated it meanwhile
        # Imported here: alembic takes longer to import than `status` takes to run.
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(scripts))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


class Database:
    """The engine, the store's own connection, and the clock whose wall time is
    every time the database records."""

    def __init__(self, location: DbLocation, *, durable: bool, clock: Clock, create: bool = True):
        self.location = location
        self.clock = clock
        if not create:
            check_exists(location)
        elif location.path is not None:
            location.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = dialect.engine_for(location)
        self.conn: Connection | None = None
        self.attending = 0  # holds of PostgreSQL's presence lock (see recovery.recover)
        # PostgreSQL's commits are durable as they are (synchronous_commit).
        self._sync_durable = durable and not location.postgres
        try:
            migrate(self.engine, location, create=create)
        except OperationalError as exc:
            self.engine.dispose()
            if not location.postgres:
                raise
            raise UsageError(messages.cannot_connect(location, exc)) from None
        except BaseException:
            self.engine.dispose()
            raise

    @contextmanager
    def tx(self, *, durable: bool = False) -> Iterator[Connection]:
        """One transaction on the store's own connection (kept open: the scheduler
        commits several times per job, and a pool checkout each time costs more
        than the statements).

        `durable` transactions are synced to disk before they return, so that they
        survive a power cut. Only the attempt row written before `POST /run` needs
        that: losing it would hide a possible double charge. Losing any later write
        to a power cut (never to a crash) only means asking or downloading again.
        """
        if self.conn is None:
            self.conn = self.engine.connect()
        conn = self.conn
        sync = durable and self._sync_durable
        if sync:
            sqlite.synchronous(conn, full=True)
        try:
            with conn.begin():
                yield conn
        finally:
            if sync:
                sqlite.synchronous(conn, full=False)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()  # which releases the presence lock with the session
            self.conn = None
            self.attending = 0
        self.engine.dispose()
