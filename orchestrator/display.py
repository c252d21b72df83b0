"""How progress and status look on a terminal, and as plain lines elsewhere.

Everything printed may carry user data (file names, ids, batch names, the API's
messages), so nothing here is ever read as rich markup or emoji codes: the consoles
have both off, and tables and lines are built as `Text`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .costs import Estimate
from .logs import PROGRESS
from .models import JobState, Progress

if TYPE_CHECKING:  # the store (SQLAlchemy) only for the commands that open a queue
    from .report import Summary
    from .store import BatchInfo

progress_log = logging.getLogger(PROGRESS)


def make_console(*, stderr: bool = False) -> Console:
    """A console that prints text exactly as given: no markup, no emoji codes, no
    highlighting; and off a terminal (a pipe, a log file) no hard wrapping at 80
    columns, so that a message stays one line for grep."""
    console = Console(stderr=stderr, markup=False, emoji=False, highlight=False)
    console.soft_wrap = not console.is_terminal
    return console


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _parts(p: Progress) -> tuple[list[Text], list[Text]]:
    """The figures of a snapshot as short pieces of text: the jobs, then the run."""
    c = p.counts
    jobs = [
        Text(f"done {c.get(JobState.COMPLETED, 0):,}", "green"),
        Text(f"failed {c.get(JobState.FAILED, 0):,}", "red"),
        Text(f"in flight {p.in_flight}", "cyan"),
        Text(f"queued {c.get(JobState.QUEUED, 0):,}"),
        Text(f"saving {c.get(JobState.DOWNLOADING, 0):,}"),
    ]
    if c.get(JobState.CANCELED):
        jobs.append(Text(f"canceled {c[JobState.CANCELED]:,}"))
    run = [
        Text(f"credits {p.credits:,}"),
        Text(f"{p.rate * 60:.1f} jobs/min"),
        Text(f"eta {_duration(p.eta)}"),
        Text(f"elapsed {_duration(p.elapsed)}"),
        Text(f"429s {p.rate_limited:,}", "yellow" if p.rate_limited else ""),
        Text(f"retries {p.retries:,}", "yellow" if p.retries else ""),
    ]
    return jobs, run


def _packed(parts: list[Text], width: int) -> list[Text]:
    """Pieces joined by two spaces, on as few lines of at most `width` as they fit."""
    lines: list[Text] = []
    for part in parts:
        if lines and len(lines[-1]) + 2 + len(part) <= width:
            lines[-1] = Text.assemble(lines[-1], "  ", part)
        else:
            lines.append(part.copy())
    return lines


def progress_line(p: Progress) -> str:
    """One plain line, for logs."""
    jobs, run = _parts(p)
    figures = "  ".join(t.plain for t in [*jobs, *run])
    line = f"{_percent(p)} of {p.total:,} jobs finished  {figures}"
    return line + (f"  [stopping: {p.stopping}]" if p.stopping else "")


def _percent(p: Progress) -> str:
    share = p.finished / p.total if p.total else 0.0
    # Never "100%" while a job is left: rounding up would claim the run is over.
    return f"{min(share * 100, 99.9 if p.finished < p.total else 100):.1f}%"


def progress_lines(p: Progress, width: int) -> list[Text]:
    """The bar with its percentage and count, then the jobs' figures and the run's,
    each packed into as few lines as fit `width` columns; a stop reason last, cut to
    the width."""
    head = f" {_percent(p):>6}  {p.finished:,}/{p.total:,}"
    room = max(10, min(50, width - len(head)))
    filled = room * p.finished // p.total if p.total else 0  # full only when all are
    lines = [Text.assemble(("█" * filled, "green"), ("░" * (room - filled), "dim"), head)]
    jobs, run = _parts(p)
    lines += _packed(jobs, width) + _packed(run, width)
    if p.stopping:
        lines.append(Text(f"stopping: {p.stopping}", "yellow"))
    for text in lines:
        text.truncate(width, overflow="ellipsis")
    return lines


class ProgressView:
    """A live bar on a terminal; a progress log line every `interval` seconds (which
    a terminal's log handler leaves to the bar, and a log file keeps). `quiet`: no bar."""

    def __init__(self, console: Console, *, interval: float, quiet: bool = False):
        self.console = console
        self.interval = interval
        self.quiet = quiet
        self.live: Live | None = None
        self._last_line = -math.inf

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal and not self.quiet:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    @property
    def refresh_every(self) -> float:
        return 0.25 if self.live is not None else min(self.interval, 5.0)

    def __call__(self, p: Progress) -> None:
        if self.live is not None:
            self.live.update(Group(*progress_lines(p, self.console.width)))
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            progress_log.info("%s", progress_line(p))


def status_table(summary: Summary) -> Table:
    title = Text(f"batch {', '.join(summary.batches) or '(none)'}")
    table = Table(title=title, show_header=False)
    rows = [(state.value, summary.counts.get(state.value, 0)) for state in JobState]
    rows += [("total", summary.total), ("credits", summary.credits)]
    for name, value in rows:
        table.add_row(Text(name), Text(str(value)))
    if summary.uncertain:
        table.add_row(
            Text("uncertain /run"),
            Text(f"{summary.uncertain} (a prediction may have been charged twice)"),
        )
    return table


def print_summary(console: Console, summary: Summary) -> None:
    # A table is laid out to the console's width even where lines are not wrapped.
    console.print(status_table(summary), soft_wrap=False)
    for error, count in summary.failure_reasons:
        console.print(Text.assemble("  ", (f"{count} failed", "red"), ": ", error))
    check = summary.balance_check
    if check is not None:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(check.finished_at or 0))
        console.print(Text(f"last run (ended {when}): {check.sentence()}"))


def _local_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M")


def batches_table(batches: Sequence[BatchInfo]) -> Table:
    """One row per batch: jobs by state, credits, first and last activity."""
    table = Table(box=None, padding=(0, 1))
    states = [s for s in JobState if any(b.counts.get(s.value) for b in batches)]
    for name in ["batch", "jobs", *(s.value for s in states), "credits", "first", "last"]:
        table.add_column(
            Text(name), justify="left" if name in ("batch", "first", "last") else "right"
        )
    for b in batches:
        table.add_row(
            Text(b.id),
            Text(f"{b.total:,}"),
            *(Text(f"{b.counts.get(s.value, 0):,}") for s in states),
            Text(f"{b.credits:,}"),
            Text(_local_time(b.first_activity)),
            Text(_local_time(b.last_activity)),
        )
    return table


def print_batches(console: Console, batches: Sequence[BatchInfo]) -> None:
    if not batches:
        console.print("no batches: queue one with `orchestrator submit MANIFEST`")
        return
    console.print(batches_table(batches), soft_wrap=False)


def print_estimate(console: Console, manifest: object, estimate: Estimate) -> None:
    """What `validate` found: the jobs per model, their credits, and the balance."""
    console.print(Text(f"{manifest}: valid, {estimate.jobs:,} jobs"))
    table = Table(show_header=True, box=None, padding=(0, 2))
    for name in ("model", "jobs", "credits", "rate from"):
        table.add_column(name, justify="left" if name in ("model", "rate from") else "right")
    for model, (jobs, credits) in estimate.by_model.items():
        source = "this database" if estimate.sources[model] == "ledger" else "built-in table"
        table.add_row(Text(model), Text(f"{jobs:,}"), Text(f"{credits:,}"), Text(source))
    console.print(table, soft_wrap=False)
    console.print(Text(f"estimated: about {estimate.credits:,} credits"))
    verdict = estimate.verdict()
    if verdict:
        console.print(Text(verdict))
