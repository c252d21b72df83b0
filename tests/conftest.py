"""Shared fixtures: a real sandbox over loopback, a real database (a SQLite file, or a
fresh database on the PostgreSQL server: see tests/postgres.py), a scaled clock.

The `store` (and `database`) fixture runs on SQLite; in a module marked
`pytest.mark.both_databases`, on PostgreSQL too, but for tests marked
`pytest.mark.sqlite_only`."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from orchestrator.config import Settings
from orchestrator.engine import Engine, RunOutcome
from orchestrator.models import JobSpec, Location
from orchestrator.sandbox import Limits, SandboxConfig, SandboxServer
from orchestrator.store import DbLocation, Store

from .postgres import drop_template, fresh_database, template_name

# Sandbox time runs 50x faster than the API's: a 60 s window lasts 1.2 s.
SCALE = 0.02


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "database" not in metafunc.fixturenames:
        return
    node = metafunc.definition
    both = node.get_closest_marker("both_databases") and not node.get_closest_marker("sqlite_only")
    backends = ["sqlite", "postgresql"] if both else ["sqlite"]
    metafunc.parametrize("database", backends, indirect=True)


def pytest_configure(config: pytest.Config) -> None:
    template_name()  # named by the first process, so that xdist's workers share it


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not hasattr(session.config, "workerinput"):  # the run's first process, last
        drop_template()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite queue migrated to head, once per process: each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "queue.db"
    Store(DbLocation.of(path)).close()
    return path


@pytest.fixture
def database(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_sqlite: Path
) -> Iterator[DbLocation]:
    """Where the test's queue is, migrated to head: a SQLite file, or a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        yield DbLocation.of(shutil.copyfile(migrated_sqlite, tmp_path / "queue.db"))
        return
    with fresh_database(migrated=True) as location:
        yield location


@pytest.fixture
def store(database: DbLocation) -> Iterator[Store]:
    opened = Store(database)
    yield opened
    opened.close()


@pytest.fixture
def reopen(database: DbLocation) -> Iterator[Callable[[], Store]]:
    """Another store on the test's database (as another process would open it);
    every one is closed after the test."""
    opened: list[Store] = []

    def another() -> Store:
        opened.append(Store(database))
        return opened[-1]

    yield another
    for each in opened:
        each.close()


@pytest.fixture
def sandbox() -> Iterator[Callable[..., AbstractContextManager[SandboxServer]]]:
    """Start sandboxes with a given configuration; each is stopped after the test."""
    servers: list[SandboxServer] = []

    def start(**config: Any) -> SandboxServer:
        config.setdefault("time_scale", SCALE)
        server = SandboxServer(SandboxConfig(**config))
        server.start()
        servers.append(server)
        return server

    yield start  # type: ignore[misc]
    for server in servers:
        server.stop()


def settings_for(server: SandboxServer, out: Path, **overrides: Any) -> Settings:
    """The orchestrator's defaults, in the sandbox's scaled time, pointed at it."""
    scale = server.state.config.time_scale
    base = Settings(out_dir=out, api_key=server.state.config.api_key).scaled(scale)
    return replace(base, base_url=server.base_url, **overrides)


def jobs(
    n: int, model: str = "background-remove", prefix: str = "job", **inputs: Any
) -> list[JobSpec]:
    """`n` distinct valid jobs of one model."""
    base = {"background-remove": {"image": "https://cdn.example/{i}.png"}}.get(model, {})
    specs = []
    for i in range(n):
        values = {
            k: v.format(i=i) if isinstance(v, str) else v for k, v in {**base, **inputs}.items()
        }
        specs.append(JobSpec(f"{prefix}-{i}", model, values, location=Location("test.yaml", i + 2)))
    return specs


def scalar(store: Store, sql: str) -> Any:
    """One value that SQL reads on a connection of its own (what is committed)."""
    with store.engine.connect() as conn:
        return conn.execute(text(sql)).scalar_one()


def run(
    store: Store, settings: Settings, batches: list[str] | None = None, **kwargs: Any
) -> RunOutcome:
    return anyio.run(Engine(store, settings, batches=batches, **kwargs).run)


__all__ = ["SCALE", "Limits", "jobs", "run", "scalar", "settings_for"]
