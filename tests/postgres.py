"""The real PostgreSQL server for the tests: one fresh database per test, created
from template0 and dropped afterwards, under a name no other worker uses.

The server is `ORCHESTRATOR_TEST_POSTGRES` (default: postgres on 127.0.0.1:5432, trust
authentication, as `.ci/run` starts it). Unreachable, the PostgreSQL tests skip with
the reason, except under CI (CI set), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from orchestrator.store import DbLocation

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


@contextmanager
def fresh_database() -> Iterator[DbLocation]:
    """A new, empty database for one test; dropped afterwards, whoever is still on it."""
    require()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"orchestrator_test_{worker}_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield DbLocation.of(_admin_url().set(database=name).render_as_string(hide_password=False))
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
