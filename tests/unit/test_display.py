"""The progress bar and the batch list as a person reads them: rendered by rich at 80
columns from a table of snapshots, every line within the width, every figure there."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console, Group

from orchestrator.display import batches_table, progress_line, progress_lines
from orchestrator.models import Progress
from orchestrator.store import BatchInfo


def snapshot(counts: dict[str, int], **kwargs: object) -> Progress:
    values: dict[str, object] = {
        "in_flight": 0,
        "credits": 0,
        "elapsed": 0.0,
        "finished_this_run": 0,
        "stopping": None,
    }
    values.update(kwargs)
    return Progress(counts=counts, **values)  # type: ignore[arg-type]


def render(p: Progress, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=io.StringIO())
    console.print(Group(*progress_lines(p, width)))
    return console.export_text().rstrip("\n").split("\n")


SNAPSHOTS = [
    # (snapshot, percentage shown, texts that must appear)
    (snapshot({"queued": 10}), "0.0%", ["0/10", "done 0", "queued 10", "eta -"]),
    (
        snapshot(
            {"completed": 45, "failed": 5, "running": 6, "queued": 44},
            in_flight=6,
            credits=90,
            elapsed=600.0,
            finished_this_run=50,
            rate_limited=3,
            retries=2,
        ),
        "50.0%",
        ["50/100", "done 45", "failed 5", "in flight 6", "credits 90", "5.0 jobs/min"],
    ),
    (
        snapshot(
            {"completed": 999_999, "queued": 1},
            in_flight=64,
            credits=12_345_678,
            elapsed=36_000.0,
            finished_this_run=999_999,
            rate_limited=123_456,
            retries=98_765,
        ),
        "99.9%",
        ["999,999/1,000,000", "credits 12,345,678", "429s 123,456", "retries 98,765"],
    ),
    (
        snapshot({"completed": 7, "canceled": 3}, elapsed=60.0, finished_this_run=7),
        "100.0%",
        ["10/10", "canceled 3", "eta 0m00s"],
    ),
    (
        snapshot(
            {"completed": 1, "queued": 9},
            in_flight=6,
            stopping="out of credits " + "x" * 120,
        ),
        "10.0%",
        ["stopping: out of credits", "…"],
    ),
    (snapshot({}), "0.0%", ["0/0", "done 0"]),
]


@pytest.mark.parametrize(("p", "percent", "texts"), SNAPSHOTS)
def test_the_progress_fits_80_columns_and_shows_every_figure(
    p: Progress, percent: str, texts: list[str]
) -> None:
    """Each snapshot renders within 80 columns: a bar with its percentage, then done,
    failed, in flight, credits, rate, ETA, 429s and retries."""
    lines = render(p)
    assert all(len(line) <= 80 for line in lines), lines
    assert re.match(rf"^[█░]{{10,}} +{re.escape(percent)}  ", lines[0]), lines[0]
    text = "\n".join(lines)
    for expected in [*texts, "in flight", "credits", "jobs/min", "eta", "429s", "retries"]:
        assert expected in text, (expected, lines)


@pytest.mark.parametrize(("finished", "total", "filled"), [(0, 10, 0), (5, 10, 25), (10, 10, 50)])
def test_the_bar_fills_in_proportion(finished: int, total: int, filled: int) -> None:
    """At 80 columns the bar is 50 cells wide, filled in proportion to the jobs finished."""
    p = snapshot({"completed": finished, "queued": total - finished})
    bar = render(p)[0].split(" ")[0]
    assert (bar.count("█"), len(bar)) == (filled, 50)


def test_a_narrow_terminal_still_gets_lines_within_its_width() -> None:
    """At 40 columns the figures wrap onto more lines, none wider than 40."""
    p = snapshot({"completed": 5, "queued": 5}, in_flight=6, credits=1234, rate_limited=2)
    lines = render(p, width=40)
    assert all(len(line) <= 40 for line in lines), lines
    assert len(lines) > 3


def test_the_plain_progress_line_counts_429s_and_retries() -> None:
    """Off a terminal, one log line carries the same figures."""
    p = snapshot({"completed": 3, "failed": 1}, rate_limited=4, retries=2, stopping="interrupted")
    line = progress_line(p)
    assert line.startswith("100.0% of 4 jobs finished")
    assert "429s 4" in line and "retries 2" in line and line.endswith("[stopping: interrupted]")


def test_the_batch_list_shows_canceled_as_a_state_of_its_own() -> None:
    """`list`: a column per state that some batch has, canceled included."""
    batches = [
        BatchInfo("spring", "spring.yaml", {"completed": 8, "canceled": 2}, 16, 0.0, 3600.0),
        BatchInfo("summer", "summer.csv", {"queued": 5}, 0, 60.0, 60.0),
    ]
    console = Console(width=80, record=True, color_system=None, file=io.StringIO())
    console.print(batches_table(batches))
    header, *rows = console.export_text().strip("\n").split("\n")
    assert header.split() == [
        "batch",
        "jobs",
        "queued",
        "completed",
        "canceled",
        "credits",
        "first",
        "last",
    ]
    assert rows[0].split()[:6] == ["spring", "10", "0", "8", "2", "16"]
