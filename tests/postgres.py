"""The real PostgreSQL server for the tests: one fresh database per test, dropped
afterwards, under a name no other worker uses. It is empty (created from template0),
or already migrated: a copy of one database per test run migrated once, which spares
each test the migrations (a copy takes a fraction of their time).

The server is `ORCHESTRATOR_TEST_POSTGRES` (default: postgres on 127.0.0.1:5432, trust
authentication, as `.ci/run` starts it). Unreachable, the PostgreSQL tests skip with
the reason, except under CI (CI set), where they fail.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from orchestrator.store import DbLocation, Store

ADMIN = os.environ.get(
    "ORCHESTRATOR_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_url() -> URL:
    return make_url(ADMIN)


@cache
def unreachable() -> str | None:
    """Why the server cannot be used, or None when it can."""
    engine = create_engine(_admin_url(), connect_args={"connect_timeout": 5})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        return " ".join(str(exc.orig).split())
    finally:
        engine.dispose()
    return None


def require() -> None:
    """Skip (fail under CI) when the server cannot be used."""
    reason = unreachable()
    if reason is None:
        return
    message = f"PostgreSQL at {_admin_url().render_as_string()} is unreachable: {reason}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must start it: see .ci/run)", pytrace=False)
    pytest.skip(message + "; start it to run the PostgreSQL tests")


def _admin(sql: str) -> None:
    engine = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


# Set by the first process of a test run (the xdist controller), inherited by its workers.
RUN_VARIABLE = "ORCHESTRATOR_TEST_RUN"


def _location(name: str) -> DbLocation:
    return DbLocation.of(_admin_url().set(database=name).render_as_string(hide_password=False))


def template_name() -> str:
    """The migrated database this test run copies (one per run: a run never sees
    another run's schema)."""
    run = os.environ.setdefault(RUN_VARIABLE, uuid.uuid4().hex[:12])
    return f"orchestrator_template_{run}"


@cache
def _migrated_template() -> str:
    """Create and migrate this run's template once, whichever worker comes first (the
    others wait on an advisory lock, then find it made)."""
    name = template_name()
    engine = create_engine(_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(hashtext(:name))"), {"name": name})
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).first()
            if found is None:
                conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
                Store(_location(name)).close()  # migrates it, then leaves it
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:name))"), {"name": name})
    finally:
        engine.dispose()
    return name


def _copy_of(template: str, name: str) -> None:
    """CREATE DATABASE from a template, which fails while another session is on the
    template; only a copy under way can be, for a moment: try again."""
    for wait in (0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 0):
        try:
            _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            return
        except OperationalError as exc:
            if "being accessed by other users" not in str(exc) or not wait:
                raise
            time.sleep(wait)


@contextmanager
def fresh_database(*, migrated: bool = False) -> Iterator[DbLocation]:
    """A new database for one test, empty or `migrated` to head; dropped afterwards,
    whoever is still on it."""
    require()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"orchestrator_test_{worker}_{uuid.uuid4().hex[:12]}"
    _copy_of(_migrated_template() if migrated else "template0", name)
    try:
        yield _location(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_template() -> None:
    """At the end of a run: its template goes (when the server was there at all)."""
    if RUN_VARIABLE in os.environ and unreachable() is None:
        _admin(f'DROP DATABASE IF EXISTS "{template_name()}" WITH (FORCE)')
