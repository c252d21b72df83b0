"""The exception tree. Every error a user can see says what happened, where, and
what to do next; the CLI maps each class to an exit code in one place."""

from __future__ import annotations

from dataclasses import dataclass


class OrchestratorError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    exit_code = 1


class UsageError(OrchestratorError):
    """A flag, setting or argument is wrong: nothing was done."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest, located precisely."""

    file: str
    line: int | None  # 1-based line (YAML, JSONL) or row (CSV, header = 1)
    field: str | None  # e.g. "inputs.model_image"; None for the whole entry
    message: str  # what is wrong and what to do

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.field:
            where = f"{where}: {self.field}"
        return f"{where}: {self.message}"


class ManifestError(UsageError):
    """The manifest is invalid. Carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        count = len(problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the manifest; nothing was queued"
        super().__init__("\n".join([head, *(f"  {p}" for p in problems)]))


class ChangedJobError(UsageError):
    """A job id already queued now comes with other inputs."""


class StopRun(OrchestratorError):
    """The run stopped early and can be resumed (exit code 3)."""

    exit_code = 3


class AuthError(StopRun):
    """The API refused the key (401): nothing more is sent until it is fixed."""


class OutOfCredits(StopRun):
    """The account has no credits left: in-flight work was finished, the rest waits."""


class Interrupted(StopRun):
    """Ctrl-C or SIGTERM: submission stopped and state was recorded."""
