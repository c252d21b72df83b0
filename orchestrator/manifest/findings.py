"""What reading a manifest yields besides jobs: problems, refused jobs, warnings.

`Manifest.entries()` yields an `Entry` for each thing found, in file order: a valid
job's JobSpec; each Problem once, before the job it belongs to; and, after the
problems of a refused job whose id is itself valid, a RefusedJob, so that the store
still checks that id for duplicates and reports them in the same run.
"""

from __future__ import annotations

from typing import Final

from orchestrator.errors import Problem, RefusedJob
from orchestrator.models import JobSpec

MAX_WARNINGS: Final = 100
__all__ = ["MAX_WARNINGS", "Entry", "Findings", "RefusedJob"]


Entry = JobSpec | Problem | RefusedJob


class Findings:
    """What one reading has found and not yet handed on, in file order.

    A problem is kept once however often it is found: a bad `defaults` entry is found
    again in every job. A YAML file (held in memory anyway) remembers every problem
    for that; a streamed file remembers its first `remember`, as each of its problems
    is at its own row. Warnings go straight to `warnings`, up to MAX_WARNINGS.
    """

    __slots__ = ("_remember", "_seen", "file", "found", "pending", "warnings")

    def __init__(
        self,
        file: str,
        warnings: list[Problem],
        *,
        remember: int | None = None,
        seen: tuple[Problem, ...] = (),
    ):
        self.file = file
        self.warnings = warnings
        self.pending: list[Problem | RefusedJob] = []
        self._remember = remember  # None: every problem
        self._seen: set[Problem] = set(seen)
        self.found = bool(seen)  # any problem at all, handed on or not

    def problem(self, line: int | None, field: str | None, message: str) -> None:
        problem = Problem(self.file, line, field, message)
        if problem in self._seen:
            return
        if self._remember is None or len(self._seen) < self._remember:
            self._seen.add(problem)
        self.found = True
        self.pending.append(problem)

    def refused(self, job_id: str, line: int) -> None:
        self.pending.append(RefusedJob(job_id, line))

    def warning(self, line: int | None, field: str | None, message: str) -> None:
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(Problem(self.file, line, field, message))

    def drain(self) -> list[Problem | RefusedJob]:
        """What was found since the last drain; `pending` is emptied in place."""
        found = self.pending[:]
        self.pending.clear()
        return found
