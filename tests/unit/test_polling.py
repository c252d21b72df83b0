"""Which prediction to poll next: the learned durations and the choice."""

from __future__ import annotations

import math

import pytest

from orchestrator.polling import (
    Candidate,
    Distribution,
    Durations,
    earliest_chance,
    hazard,
    pick,
    spread,
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
    assert Distribution(samples).cdf(age) == pytest.approx(expected)


def _durations(model: str, samples: list[float]) -> Durations:
    d = Durations()
    for s in samples:
        d.observe(model, s)
    return d


def test_a_young_prediction_has_no_hazard() -> None:
    """A prediction younger than any plausible duration is not finishing yet."""
    d = _durations("m", [10.0, 11.0, 12.0])
    assert hazard(d, "m", 5.0) == 0.0
    cand = Candidate(key=1, model="m", accepted_at=0.0)
    assert earliest_chance(d, cand, now=5.0) == pytest.approx(7.5)


def test_hazard_grows_towards_the_end() -> None:
    """Among survivors, the chance of finishing now grows as the last durations near."""
    d = _durations("m", [8.0, 10.0, 12.0])
    assert 0 < hazard(d, "m", 8.0) < hazard(d, "m", 10.0) < hazard(d, "m", 12.0)  # type: ignore[operator]


def test_older_than_anything_seen_keeps_a_finite_high_hazard() -> None:
    """A prediction past every observed duration is asked about often, not infinitely."""
    d = _durations("m", [10.0, 10.0, 10.0])
    h = hazard(d, "m", 20.0)
    assert h is not None and 0.3 < h < 1e3


def test_nothing_learned_means_no_hazard() -> None:
    """Before any observation the hazard is unknown (round robin then)."""
    assert hazard(Durations(), "m", 5.0) is None


def test_spread_narrows_with_evidence() -> None:
    """The smoothing of each sample shrinks as samples accumulate."""
    assert spread(1) == spread(3) == pytest.approx(0.25)
    assert spread(24) == pytest.approx(0.125)


def test_models_with_few_samples_borrow_from_all() -> None:
    """Below three samples of its own, a model uses every model's durations."""
    d = _durations("fast", [2.0, 2.0, 2.0])
    d.observe("slow", 40.0)
    assert d.samples("slow") == [2.0, 2.0, 2.0, 40.0]
    assert d.samples("fast") == [2.0, 2.0, 2.0]


def test_without_samples_polling_is_round_robin_at_the_budget() -> None:
    """Before anything is learned, each prediction is due n/rate after its last poll."""
    a = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=9.5)
    b = Candidate(key=2, model="m", accepted_at=0.0, last_polled_at=9.0)
    chosen, _ = pick([a, b], Durations(), now=9.4, rate=5.0)
    assert chosen is b  # due at 9.4
    chosen, wake = pick([a, b], Durations(), now=9.2, rate=5.0)
    assert chosen is None and wake == pytest.approx(9.4)


def test_budget_goes_to_predictions_that_can_have_finished() -> None:
    """A young prediction gets no share: the ripe one is due sooner and chosen."""
    d = _durations("m", [8.0, 9.0, 10.0])
    young = Candidate(key=1, model="m", accepted_at=9.0)
    ripe = Candidate(key=2, model="m", accepted_at=0.0, last_polled_at=8.0)
    chosen, _ = pick([young, ripe], d, now=9.5, rate=5.0)
    assert chosen is ripe


def test_without_a_limit_every_finishing_prediction_is_due_now() -> None:
    """With no status limit, anything that may have finished is asked about at once."""
    d = _durations("m", [1.0, 1.0, 1.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=0.99)
    chosen, _ = pick([cand], d, now=1.0, rate=math.inf)
    assert chosen is cand


@pytest.mark.parametrize(
    ("busy", "not_before", "expect_wake"),
    [(True, 0.0, float("inf")), (False, 50.0, 50.0)],
)
def test_pick_skips_busy_and_backed_off(busy: bool, not_before: float, expect_wake: float) -> None:
    """A candidate with a request under way, or backing off, is not chosen."""
    cand = Candidate(key=1, model="m", accepted_at=0.0, busy=busy, not_before=not_before)
    chosen, wake = pick([cand], Durations(), now=10.0, rate=5.0)
    assert chosen is None
    assert wake == expect_wake


def test_pick_wakes_when_the_first_chance_appears() -> None:
    """With nothing worth polling, the planner says when to look again."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cands = [
        Candidate(key=1, model="m", accepted_at=2.0),
        Candidate(key=2, model="m", accepted_at=0.0),
    ]
    chosen, wake = pick(cands, d, now=1.0, rate=5.0)
    assert chosen is None
    assert wake == pytest.approx(7.5)


def test_a_never_polled_prediction_is_due_one_interval_after_it_could_finish() -> None:
    """The first poll waits one share-interval past the earliest plausible finish."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0)
    chosen, wake = pick([cand], d, now=7.6, rate=5.0)
    assert chosen is None and wake == pytest.approx(7.7)
    chosen, _ = pick([cand], d, now=7.7, rate=5.0)
    assert chosen is cand


def test_eager_spends_budget_that_would_be_lost() -> None:
    """When saving is impossible, the prediction due soonest is asked about now."""
    d = _durations("m", [10.0, 10.0, 10.0])
    cand = Candidate(key=1, model="m", accepted_at=0.0, last_polled_at=9.0)
    assert pick([cand], d, now=9.05, rate=5.0)[0] is None
    assert pick([cand], d, now=9.05, rate=5.0, eager=True)[0] is cand


def test_a_prediction_older_than_every_sample_is_always_worth_asking_about() -> None:
    """Past the last observed duration the hazard stays positive, even where the
    smoothed CDF, by rounding, stops a hair below 1: the planner never gets a wake-up
    time in the past with nothing to ask (which would make it spin)."""
    durations = Durations()
    for seconds in (0.1, 0.3, 0.7, 1.1, 1.3, 1.9, 2.3, 2.9, 3.1, 3.7):
        durations.observe("m", seconds)
    dist = durations.distribution("m")
    assert dist is not None
    for age in (dist.end, dist.end + 1e-9, dist.end * 2, 1e6):
        h = hazard(durations, "m", age)
        assert h is not None and h > 0
