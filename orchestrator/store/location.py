"""Where the queue is: a SQLite file (a plain path, or `sqlite:///PATH`) or a
PostgreSQL database (`postgresql+psycopg://USER@HOST/DB`), as `--db` names it.

A location prints without its password: `str()` and `repr()` are what messages, logs
and reports may show.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
# Spellings of PostgreSQL taken to mean psycopg 3, the one driver installed.
_POSTGRES = {"postgresql", "postgres", "postgresql+psycopg"}


@dataclass(frozen=True, repr=False)
class DbLocation:
    """A SQLite file (`path`), or a PostgreSQL database (`path` None)."""

    url: URL
    path: Path | None = None

    @classmethod
    def of(cls, value: str | os.PathLike[str] | DbLocation) -> DbLocation:
        """Parse what `--db` says; UsageError for a URL that names no usable database."""
        if isinstance(value, DbLocation):
            return value
        # SQLAlchemy only once a location is read: `--help` and the options' set-up without it.
        from sqlalchemy.engine import URL, make_url
        from sqlalchemy.exc import ArgumentError

        if isinstance(value, os.PathLike) or not _SCHEME.match(value):
            path = Path(value)
            return cls(URL.create("sqlite", database=str(path)), path)
        try:
            url = make_url(value)
        except ArgumentError:
            raise UsageError(_unusable(value.split("://")[0] + "://...")) from None
        if url.drivername.split("+")[0] == "sqlite":
            if not url.database or url.database == ":memory:":
                raise UsageError("--db sqlite:///PATH needs a file path")
            return cls(URL.create("sqlite", database=url.database), Path(url.database))
        if url.drivername not in _POSTGRES:
            raise UsageError(_unusable(url.render_as_string(hide_password=True)))
        if not url.database:
            raise UsageError("--db postgresql+psycopg://USER@HOST/DB needs a database name")
        return cls(url.set(drivername="postgresql+psycopg"))

    @property
    def postgres(self) -> bool:
        return self.path is None

    @property
    def password(self) -> str | None:
        """The password the URL carries, to be removed from any text that could hold it."""
        return None if self.url.password is None else str(self.url.password)

    def __str__(self) -> str:
        if self.path is not None:
            return str(self.path)
        return self.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"DbLocation({str(self)!r})"


def _unusable(shown: str) -> str:
    return (
        f"--db {shown}: not a database this release can use; give a SQLite file path "
        "(or sqlite:///PATH) or postgresql+psycopg://USER@HOST/DB"
    )
