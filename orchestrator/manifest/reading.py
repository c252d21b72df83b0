"""A manifest file: which reader its suffix picks, what reading it yields, and the
listing of its problems for the callers that read them after the jobs."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Final

from orchestrator.errors import MAX_LISTED, Problem, ProblemList
from orchestrator.models import JobSpec

from .csv_reader import csv_entries
from .describe import unreadable
from .findings import Entry, Findings
from .images import ImageResolver, image_limit_from_environment
from .jsonl_reader import jsonl_entries
from .validation import JobValidator
from .yaml_document import YamlOutline, open_yaml, yaml_entries

# Suffix → format. Anything else is refused with a problem naming these.
FORMATS: Final[Mapping[str, str]] = {
    ".yaml": "yaml",
    ".yml": "yaml",
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}

# Past this many problems `problems` keeps only a count (read when a Manifest is created).
MAX_PROBLEMS: Final = MAX_LISTED


def read_manifest(path: str | os.PathLike[str], *, max_image_bytes: int | None = None) -> Manifest:
    """Open a manifest for reading; its format comes from the file suffix.

    YAML is parsed here (so `batch_name` is known at once); CSV and JSON Lines are
    read while `entries()` or `jobs()` is iterated. Problems found on opening are in
    `.problems` already. `max_image_bytes` caps local image files (default:
    MAX_IMAGE_MB, or the ORCHESTRATOR_MAX_IMAGE_MB environment variable).
    """
    manifest = Manifest(path, max_image_bytes=max_image_bytes)
    if manifest.format == "yaml":
        manifest._open_yaml()
    return manifest


class Manifest:
    """A manifest file: its entries (streamed), its batch name, its warnings; and, as
    an adapter for callers that take jobs and problems apart, `jobs()` and `problems`."""

    def __init__(self, path: str | os.PathLike[str], *, max_image_bytes: int | None = None):
        self.path = Path(path)
        self.file = str(path)  # as the user wrote it: that is what they recognise
        self.format: str | None = FORMATS.get(self.path.suffix.lower())
        self.batch_name = self.path.stem
        self.problems = ProblemList(MAX_PROBLEMS)
        self.warnings: list[Problem] = []
        # Image paths are relative to the manifest, not to the working directory.
        self._base = os.path.dirname(os.path.abspath(self.path))
        self._yaml: YamlOutline | None = None
        self._last: JobValidator | None = None
        # What opening the file found: reported again by every reading.
        self._opening = Findings(self.file, [])
        self._opened: tuple[Problem, ...] = ()
        setting_error = None
        if max_image_bytes is None:
            max_image_bytes, setting_error = image_limit_from_environment()
        elif max_image_bytes < 1:
            raise ValueError(f"max_image_bytes must be positive; got {max_image_bytes}")
        self.max_image_bytes = max_image_bytes
        if setting_error is not None:
            self._opening.problem(None, None, setting_error)
        if self.format is None:
            suffix = self.path.suffix or "(none)"
            self._opening.problem(
                None,
                None,
                f"unsupported manifest type {suffix!r}; name the file *.yaml, *.yml, "
                "*.csv, *.jsonl or *.ndjson to match its format",
            )
        self._list_opening()

    def __repr__(self) -> str:
        jobs_seen = self._last.jobs_seen if self._last is not None else 0
        return (
            f"<Manifest {self.file!r} format={self.format} jobs_seen={jobs_seen}"
            f" problems={self.problem_count} warnings={len(self.warnings)}>"
        )

    @property
    def problem_count(self) -> int:
        """Every problem found, including those past MAX_PROBLEMS that are not listed."""
        return self.problems.total

    def entries(self) -> Iterator[Entry]:
        """Yield what the manifest holds, in file order: each valid job as a JobSpec,
        each problem once (before the job it belongs to), and a RefusedJob after the
        problems of a refused job whose id is valid (for the store's duplicate check).

        Each call reads the file again. Warnings (unknown models, default inputs no
        model takes) are collected in `warnings`, afresh on each call.
        """
        opened = self._opened
        self.warnings[:] = self._opening.warnings
        # YAML is held in memory anyway; a streamed file need not remember every problem.
        remember = None if self.format == "yaml" else MAX_PROBLEMS
        findings = Findings(self.file, self.warnings, remember=remember, seen=opened)
        images = ImageResolver(self._base, self.max_image_bytes)
        validator = JobValidator(self.file, findings, images, check_values=self.format != "csv")
        self._last = validator
        # A chain, not one more generator in between: a million rows pass through it.
        return itertools.chain(opened, self._read(validator), _closing(validator))

    def jobs(self) -> Iterator[JobSpec]:
        """Yield every valid job in file order, and list the problems in `problems` as
        they are found (past MAX_PROBLEMS, only counted). Each call starts afresh.

        An adapter over entries() for callers that hand jobs and problems on apart.
        """
        problems = self.problems
        problems.reset()
        for entry in self.entries():
            if isinstance(entry, JobSpec):  # the common case first
                yield entry
            elif isinstance(entry, Problem):
                problems.add(entry)
            else:
                problems.add_rejected(entry.id, entry.line)

    def _read(self, validator: JobValidator) -> Iterator[Entry]:
        if self.format == "yaml" and self._yaml is not None:
            return yaml_entries(self._yaml, validator)
        if self.format == "csv":
            return csv_entries(self.path, validator)
        if self.format == "jsonl":
            return jsonl_entries(self.path, validator)
        return iter(())

    def _open_yaml(self) -> None:
        """Parse the whole file and check its outline; its jobs are read by entries()."""
        try:
            text = self.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            self._opening.problem(None, None, unreadable(exc))
        else:
            self._yaml = open_yaml(text, self._opening)
            if self._yaml.batch is not None:
                self.batch_name = self._yaml.batch
        self._list_opening()

    def _list_opening(self) -> None:
        """Show what opening found in `problems` and `warnings` before any reading."""
        self._opened = tuple(p for p in self._opening.pending if isinstance(p, Problem))
        self.problems.reset()
        for problem in self._opened:
            self.problems.add(problem)
        self.warnings[:] = self._opening.warnings


def _closing(validator: JobValidator) -> Iterator[Entry]:
    """After the last row: a manifest without any job, and without a problem that
    explains why, is a problem itself."""
    findings = validator.findings
    if validator.jobs_seen == 0 and not findings.found:
        findings.problem(None, "jobs", "the manifest has no jobs; add at least one job")
        yield from findings.drain()
