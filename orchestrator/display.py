"""How progress and status look on a terminal, and as plain lines elsewhere.

Everything printed may carry user data (file names, ids, batch names, the API's
messages), so nothing here is ever read as rich markup or emoji codes: the consoles
have both off, and tables and lines are built as `Text`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from .costs import Estimate
from .models import JobState, Progress
from .report import Summary

log = logging.getLogger("orchestrator")


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


def progress_line(p: Progress) -> str:
    c = p.counts
    return (
        f"done {c.get(JobState.COMPLETED, 0)}/{p.total}  failed {c.get(JobState.FAILED, 0)}  "
        f"in flight {p.in_flight}  queued {c.get(JobState.QUEUED, 0)}  "
        f"saving {c.get(JobState.DOWNLOADING, 0)}  credits {p.credits}  "
        f"{p.rate * 60:.1f} jobs/min  eta {_duration(p.eta)}"
        + (f"  [stopping: {p.stopping}]" if p.stopping else "")
    )


def progress_table(p: Progress) -> Table:
    table = Table.grid(padding=(0, 2))
    c = p.counts
    table.add_row(
        Text.assemble((f"done {c.get(JobState.COMPLETED, 0)}", "green"), f"/{p.total}"),
        Text(f"failed {c.get(JobState.FAILED, 0)}", "red"),
        Text(f"in flight {p.in_flight}", "cyan"),
        Text(f"queued {c.get(JobState.QUEUED, 0)}"),
        Text(f"saving {c.get(JobState.DOWNLOADING, 0)}"),
        Text(f"credits {p.credits}"),
        Text(f"{p.rate * 60:.1f}/min"),
        Text(f"eta {_duration(p.eta)}"),
        Text(f"elapsed {_duration(p.elapsed)}"),
    )
    if p.stopping:
        table.add_row(Text(f"stopping: {p.stopping}", "yellow"))
    return table


class ProgressView:
    """A live line on a terminal; otherwise a log line every `interval` seconds."""

    def __init__(self, console: Console, *, interval: float):
        self.console = console
        self.interval = interval
        self.live: Live | None = None
        self._last_line = 0.0

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal:
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
            self.live.update(progress_table(p))
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            log.info("%s", progress_line(p))


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
