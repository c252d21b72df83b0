"""What `--db` names: a SQLite file or a PostgreSQL database, printed without a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import UsageError
from orchestrator.store import DbLocation


@pytest.mark.parametrize(
    ("given", "path", "shown"),
    [
        ("queue.db", Path("queue.db"), "queue.db"),
        ("sqlite:///queue.db", Path("queue.db"), "queue.db"),
        ("sqlite:////var/q.db", Path("/var/q.db"), "/var/q.db"),
        (Path("a/b.db"), Path("a/b.db"), "a/b.db"),
        ("postgresql+psycopg://me@db/q", None, "postgresql+psycopg://me@db/q"),
        ("postgresql://me@db:5433/q", None, "postgresql+psycopg://me@db:5433/q"),
        ("postgres://me:secret@db/q", None, "postgresql+psycopg://me:***@db/q"),
    ],
)
def test_a_location_is_a_file_or_a_database(given: str, path: Path | None, shown: str) -> None:
    """Paths and sqlite:/// URLs are files; PostgreSQL URLs use psycopg 3, masked."""
    location = DbLocation.of(given)
    assert (location.path, str(location), location.postgres) == (path, shown, path is None)
    assert "secret" not in repr(location)


@pytest.mark.parametrize(
    "given",
    [
        "mysql://me:secret@db/q",
        "postgresql+psycopg2://me:secret@db/q",
        "sqlite://",
        "postgresql://me:secret@db",
    ],
)
def test_an_unusable_url_is_a_usage_error_without_its_password(given: str) -> None:
    """Another database, another driver, no file or no database name: exit 2, masked."""
    with pytest.raises(UsageError) as caught:
        DbLocation.of(given)
    assert "secret" not in str(caught.value)
