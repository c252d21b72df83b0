"""How progress and status look on a terminal, and as plain lines elsewhere."""

from __future__ import annotations

import logging
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from .models import JobState, Progress
from .report import Summary

log = logging.getLogger("orchestrator")


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
        f"[green]done {c.get(JobState.COMPLETED, 0)}[/]/{p.total}",
        f"[red]failed {c.get(JobState.FAILED, 0)}[/]",
        f"[cyan]in flight {p.in_flight}[/]",
        f"queued {c.get(JobState.QUEUED, 0)}",
        f"saving {c.get(JobState.DOWNLOADING, 0)}",
        f"credits {p.credits}",
        f"{p.rate * 60:.1f}/min",
        f"eta {_duration(p.eta)}",
        f"elapsed {_duration(p.elapsed)}",
    )
    if p.stopping:
        table.add_row(f"[yellow]stopping: {p.stopping}[/]")
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
    table = Table(title=f"batch {', '.join(summary.batches) or '(none)'}", show_header=False)
    for state in JobState:
        table.add_row(state.value, str(summary.counts.get(state.value, 0)))
    table.add_row("total", str(summary.total))
    table.add_row("credits", str(summary.credits))
    if summary.uncertain:
        table.add_row(
            "uncertain /run", f"{summary.uncertain} (a prediction may have been charged twice)"
        )
    return table


def print_summary(console: Console, summary: Summary) -> None:
    console.print(status_table(summary))
    for error, count in summary.failure_reasons:
        console.print(f"  [red]{count} failed[/]: {error}")
