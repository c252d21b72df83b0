"""The bench's pure parts: the oracle's ideal schedule and the statistics it reports.

Fast and deterministic: no sandbox, no clock. The bench itself runs with `make bench`.
"""

from __future__ import annotations

import math

import pytest

from bench import stats
from bench.oracle import ideal_makespan, ideal_starts
from bench.polling_bound import best_schedule, least_delay, sparsest_price
from bench.table import FAIL, INFO, PASS, Row, render_markdown, render_text


@pytest.mark.parametrize(
    ("latencies", "concurrency", "expected"),
    [
        ([], 6, 0.0),
        ([5.0], 6, 5.0),
        ([10.0] * 6, 6, 10.0),  # one wave
        ([10.0] * 7, 6, 20.0),  # a seventh job waits for a slot
        ([10.0] * 12, 6, 20.0),
        ([4.0, 1.0, 1.0, 1.0], 2, 4.0),  # the short ones share the other slot
        ([1.0, 4.0, 1.0, 1.0], 2, 4.0),
        ([3.0, 3.0, 3.0], 1, 9.0),  # one slot: the latencies add up
    ],
)
def test_concurrency_bound(latencies: list[float], concurrency: int, expected: float) -> None:
    """Without a run limit, the cap alone shapes the schedule."""
    assert ideal_makespan(latencies, concurrency) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("jobs", "run_limit", "expected"),
    [
        (5, (2, 10.0), 21.0),  # starts 0, 0, 10, 10, 20; each lasts 1
        (50, (50, 60.0), 1.0),  # exactly N: all start at once
        (51, (50, 60.0), 61.0),  # N + 1: the last waits a whole window
        (150, (50, 60.0), 121.0),
        (3, (1, 0.5), 2.0),  # starts 0, 0.5, 1.0
    ],
)
def test_run_limit_bound(jobs: int, run_limit: tuple[int, float], expected: float) -> None:
    """With slots to spare, the sliding window alone decides: exact makespans."""
    assert ideal_makespan([1.0] * jobs, 1000, run_limit) == pytest.approx(expected)


def test_run_limit_boundary_is_half_open() -> None:
    """A run at t - W has left the window (t - W, t]: the next may start exactly at t."""
    assert ideal_starts([1.0] * 3, 10, (2, 10.0)) == [0.0, 0.0, 10.0]


@pytest.mark.parametrize(
    ("latencies", "concurrency", "run_limit", "expected_starts", "expected"),
    [
        # Slots bind job 2 (at 6), the window binds job 3 (at 10), slots again job 4 (12),
        # both at once job 5 (16): longer than either limit alone (18 and 16).
        ([6.0] * 6, 2, (3, 10.0), [0, 0, 6, 10, 12, 16], 22.0),
        ([4.0] * 5, 2, (3, 10.0), [0, 0, 4, 10, 10], 14.0),
    ],
)
def test_both_limits_bind(
    latencies: list[float],
    concurrency: int,
    run_limit: tuple[int, float],
    expected_starts: list[float],
    expected: float,
) -> None:
    """The cap and the window take turns; each start obeys both."""
    assert ideal_starts(latencies, concurrency, run_limit) == pytest.approx(expected_starts)
    assert ideal_makespan(latencies, concurrency, run_limit) == pytest.approx(expected)
    assert ideal_makespan(latencies, concurrency) < expected
    assert ideal_makespan(latencies, 1000, run_limit) <= expected


def test_starts_keep_the_given_order() -> None:
    """Jobs start in order even when a later one could have gone earlier."""
    starts = ideal_starts([10.0, 1.0, 1.0], 2)
    assert starts == sorted(starts) == [0.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("latencies", "concurrency", "run_limit"),
    [([1.0], 0, None), ([1.0], 1, (0, 1.0)), ([1.0], 1, (1, 0.0)), ([-1.0], 1, None)],
)
def test_oracle_refuses_nonsense(
    latencies: list[float], concurrency: int, run_limit: tuple[int, float] | None
) -> None:
    """A cap below 1, an empty window or a negative latency is an error, not a number."""
    with pytest.raises(ValueError):
        ideal_makespan(latencies, concurrency, run_limit)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([3.0], 95, 3.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([4.0, 1.0, 3.0, 2.0], 50, 2.5),  # order does not matter
        ([float(i) for i in range(1, 101)], 95, 95.05),  # numpy's default definition
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    """Linear interpolation between closest ranks, as numpy.percentile does by default."""
    assert stats.percentile(values, q) == pytest.approx(expected)


def test_mean_median_and_ratio() -> None:
    """The small helpers, including their empty and zero cases."""
    assert stats.mean([1.0, 2.0, 6.0]) == 3.0
    assert stats.median([5.0, 1.0, 3.0]) == 3.0
    assert stats.ratio(1.0, 4.0) == 0.25
    assert math.isnan(stats.ratio(1.0, 0.0))
    with pytest.raises(ValueError):
        stats.mean([])
    with pytest.raises(ValueError):
        stats.percentile([], 50)
    with pytest.raises(ValueError):
        stats.percentile([1.0], 101)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.9397, 0.939), (0.94, 0.94), (0.98, 0.98), (1.0, 1.0), (0.0, 0.0)],
)
def test_floor_to_never_rounds_up(value: float, expected: float) -> None:
    """A figure just under its target is never shown as meeting it."""
    assert stats.floor_to(value, 3) == pytest.approx(expected)
    assert math.isnan(stats.floor_to(math.nan, 3))


def test_delays_are_unscaled_and_skip_the_unseen() -> None:
    """(happened, seen) pairs become unscaled delays; never-seen pairs are left out."""
    pairs = [(1.0, 1.05), (2.0, None), (3.0, 3.2)]
    assert stats.delays(pairs, scale=0.1) == pytest.approx([0.5, 2.0])
    assert stats.delays([], scale=0.1) == []
    with pytest.raises(ValueError):
        stats.delays(pairs, scale=0.0)


def test_tables_have_fixed_columns() -> None:
    """Text rows line up column by column; Markdown has one row per figure, pipes escaped."""
    rows = [Row.check("a", "1", ">= 1", True), Row.check("longer name", "0", ">= 1", False)]
    rows.append(Row("c", "x|y"))
    header, _rule, *body = render_text(rows).splitlines()
    column = header.index("target")
    assert [line[column:].split()[0] for line in body] == [">=", ">=", "-"]
    assert [r.verdict for r in rows] == [PASS, FAIL, INFO]
    markdown = render_markdown(rows).splitlines()
    assert len(markdown) == 2 + len(rows)
    assert "x\\|y" in markdown[-1]


def test_polling_bound_at_one_request_is_one_poll_at_the_end() -> None:
    """One request per job: the only schedule that sees every finish polls at `high`."""
    assert least_delay(4.0, 12.0, 1.0) == pytest.approx(4.0)  # (12 - 4) / 2 on average
    single = best_schedule(4.0, 12.0, sparsest_price(4.0, 12.0))
    assert single.requests == pytest.approx(1.0)


def test_polling_bound_beats_even_spacing_and_falls_with_the_budget() -> None:
    """m evenly spaced polls on [4, 12] cost (m + 1) / 2 requests and (12 - 4) / (2 m)
    delay; the best schedule at that cost is strictly better, and more requests help."""
    for m in (4, 8, 16):
        even_requests, even_delay = (m + 1) / 2, 8.0 / (2 * m)
        assert least_delay(4.0, 12.0, even_requests) < even_delay
    bounds = [least_delay(4.0, 12.0, r) for r in (2.0, 4.0, 7.0, 10.0)]
    assert bounds == sorted(bounds, reverse=True)


def test_polling_bound_matches_exhaustive_search_on_a_small_grid() -> None:
    """Dynamic programming against every subset of poll ages on a 6-step grid."""
    from itertools import combinations

    low, high, steps, price = 0.0, 6.0, 6, 0.7
    best = math.inf
    for k in range(steps):
        for inner in combinations(range(1, steps), k):
            polls = [*inner, steps]  # the last poll, at `high`, sees every finish
            cost, previous = 0.0, 0
            for p in polls:
                cost += price * (steps - previous) / steps + (p - previous) ** 2 / (2 * steps)
                previous = p
            best = min(best, cost)
    found = best_schedule(low, high, price, steps)
    assert found.delay + price * found.requests == pytest.approx(best)
