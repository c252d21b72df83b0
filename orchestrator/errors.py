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
        text = f"{where}: {self.message}"
        # A field named by the manifest may hold half a surrogate pair: print it escaped.
        return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode()


# A broken million-row file should not build a million-line report: past this many
# problems a ProblemList keeps only a count.
MAX_LISTED = 1000


@dataclass(frozen=True, slots=True)
class RefusedJob:
    """A manifest's job refused for the problems listed before it; its id is valid,
    so that the queue still checks it for duplicates and reports them in the same run."""

    id: str
    line: int


class ProblemList(list[Problem]):
    """A manifest's problems as listed (past `limit` they are only counted), with what
    the listing leaves out. It is the one object a reader hands to the store, which
    adds the problems only SQL can find (duplicate ids) and raises ManifestError."""

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.limit = limit  # None: list every problem
        self.unlisted = 0  # found but not listed: only counted
        # (id, line) of jobs refused for other problems whose id itself was valid, so
        # that a duplicate id is reported in the same run (bounded like the listing).
        self.rejected: list[tuple[str, int]] = []

    @property
    def total(self) -> int:
        return len(self) + self.unlisted

    def add(self, problem: Problem) -> None:
        """List `problem`, or only count it once `limit` problems are listed."""
        if self.limit is None or len(self) < self.limit:
            self.append(problem)
        else:
            self.unlisted += 1

    def add_rejected(self, job_id: str, line: int) -> None:
        """Remember a refused job's valid id for the store's duplicate check."""
        if self.limit is None or len(self.rejected) < self.limit:
            self.rejected.append((job_id, line))

    def reset(self) -> None:
        """Empty the listing, the count and the refused ids, in place."""
        self.clear()
        self.unlisted = 0
        self.rejected = []


class ManifestError(UsageError):
    """The manifest is invalid. Carries every problem found (`total`) and lists them,
    or the first of them when there are very many (`problems`)."""

    def __init__(self, problems: list[Problem], total: int | None = None):
        self.problems = problems
        if total is None:
            total = problems.total if isinstance(problems, ProblemList) else len(problems)
        self.total = max(total, len(problems))
        listed, hidden = len(problems), self.total - len(problems)
        head = f"{self.total} problem{'s' if self.total != 1 else ''} in the manifest; "
        head += f"the first {listed} are listed; " if hidden else ""
        lines = [head + "nothing was queued", *(f"  {p}" for p in problems)]
        if hidden:
            lines.append(f"  ... {hidden} more problems not listed; fix the ones above and retry")
        super().__init__("\n".join(lines))


class ChangedJobError(UsageError):
    """A job id already queued now comes with other inputs."""


class HandledError(OrchestratorError):
    """An answer or a failure that the orchestrator acts on itself (an API error, a
    failed download): one that escapes to the command line is a bug (exit 4)."""

    exit_code = 4


class StopRun(OrchestratorError):
    """The run stopped early and can be resumed (exit code 3)."""

    exit_code = 3


class AuthError(StopRun):
    """The API refused the key (401): nothing more is sent until it is fixed."""


class OutOfCredits(StopRun):
    """The account has no credits left: in-flight work was finished, the rest waits."""


class BudgetReached(StopRun):
    """The next job would pass `--max-credits`: submission stopped, the predictions in
    flight were finished; a higher cap on `resume` continues."""


class OutputsUnwritable(StopRun):
    """The outputs folder is full, read-only or not ours: submission stopped, the
    predictions in flight were finished, their downloads wait for `resume`."""


class Interrupted(StopRun):
    """Ctrl-C or SIGTERM: submission stopped and state was recorded."""
