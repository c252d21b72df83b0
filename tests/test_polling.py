"""Which prediction to poll next: the learned durations and the choice."""

from __future__ import annotations

import pytest

from orchestrator.polling import (
    Candidate,
    Durations,
    earliest_chance,
    finish_chance,
    pick,
    smoothed_cdf,
)


@pytest.mark.parametrize(
    ("samples", "age", "expected"),
    [
        ([10.0], 7.0, 0.0),  # below the spread of every sample
        ([10.0], 7.5, 0.0),
        ([10.0], 10.0, 0.5),  # the middle of the only sample's spread
        ([10.0], 12.5, 1.0),
        ([10.0, 20.0], 12.5, 0.5),  # one sample fully below, one fully above
        ([10.0, 20.0], 20.0, 0.75),
        ([4.0, 8.0, 12.0], 100.0, 1.0),
    ],
)
def test_smoothed_cdf(samples: list[float], age: float, expected: float) -> None:
    """Each observed duration counts as uniform over ±25 % of itself."""
    assert smoothed_cdf(samples, age) == pytest.approx(expected)


def _durations(model: str, samples: list[float]) -> Durations:
    d = Durations()
    for s in samples:
        d.observe(model, s)
    return d


def test_a_young_prediction_has_no_chance() -> None:
    """A prediction younger than any plausible duration is not worth a request."""
    d = _durations("m", [10.0, 11.0, 12.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0)
    assert finish_chance(d, cand, now=5.0) == 0.0
    assert earliest_chance(d, cand, now=5.0) == pytest.approx(7.5)


def test_chance_is_conditional_on_the_last_poll() -> None:
    """Having been seen unfinished at 10 s, half the remaining mass is gone by 10 s."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=10.0)
    assert finish_chance(d, cand, now=11.0) == pytest.approx((0.7 - 0.5) / 0.5)


def test_older_than_anything_seen_is_always_worth_asking() -> None:
    """A prediction past every observed duration has chance 1: it may be stuck or slow."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=20.0)
    assert finish_chance(d, cand, now=20.5) == 1.0


def test_models_with_few_samples_borrow_from_all() -> None:
    """Below three samples of its own, a model uses every model's durations."""
    d = _durations("fast", [2.0, 2.0, 2.0])
    d.observe("slow", 40.0)
    assert d.samples("slow") == [2.0, 2.0, 2.0, 40.0]
    assert d.samples("fast") == [2.0, 2.0, 2.0]


def test_without_samples_the_longest_unpolled_wins() -> None:
    """Before anything is learned, polling is round robin by time since the last poll."""
    d = Durations()
    a = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=9.0)
    b = Candidate(key=2, model="m", accepted_at=0.0, last_polled_at=5.0)
    chosen, _ = pick([a, b], d, now=10.0)
    assert chosen is b


def test_pick_prefers_the_likeliest_finished() -> None:
    """The prediction near its expected end beats one that just started."""
    d = _durations("m", [8.0, 9.0, 10.0])
    young = Candidate(key=1, model="m", accepted_at=9.0)
    ripe = Candidate(key=2, model="m", accepted_at=0.0, last_polled_at=8.0)
    chosen, _ = pick([young, ripe], d, now=9.5)
    assert chosen is ripe


@pytest.mark.parametrize(
    ("busy", "not_before", "expect_wake"),
    [(True, 0.0, float("inf")), (False, 50.0, 50.0)],
)
def test_pick_skips_busy_and_backed_off(busy: bool, not_before: float, expect_wake: float) -> None:
    """A candidate with a request under way, or backing off, is not chosen."""
    cand = Candidate(key=1, model="m", accepted_at=0.0, busy=busy, not_before=not_before)
    chosen, wake = pick([cand], Durations(), now=10.0)
    assert chosen is None
    assert wake == expect_wake


def test_pick_wakes_when_the_first_chance_appears() -> None:
    """With nothing worth polling, the planner says when to look again."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cands = [
        Candidate(key=1, model="m", accepted_at=2.0),
        Candidate(key=2, model="m", accepted_at=0.0),
    ]
    chosen, wake = pick(cands, d, now=1.0)
    assert chosen is None
    assert wake == pytest.approx(7.5)
