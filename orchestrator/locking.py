"""One process runs a queue at a time: an exclusive lock beside the database file.

The lock is taken before anything is written, so that a command refused because
another process runs the queue has changed nothing. It is an flock(2) on its own
file: released by the kernel when the process dies, SIGKILL included, and
independent of SQLite's own byte-range locks on the database file.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import UsageError


def lock_path(db: Path) -> Path:
    return db.with_name(db.name + ".lock")


@contextmanager
def queue_lock(db: Path) -> Iterator[None]:
    """Hold the queue of `db` for this process, or raise UsageError at once."""
    try:
        fd = os.open(lock_path(db), os.O_CREAT | os.O_RDWR, 0o644)
    except OSError as exc:
        raise UsageError(
            f"cannot create the lock file {lock_path(db)}: {exc.strerror}; "
            "check that the folder of --db exists and is writable"
        ) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"another orchestrator process is running the queue {db}; nothing was "
                "changed: wait for it to finish, or stop it first"
            ) from None
        yield
    finally:
        os.close(fd)
