"""The money side as pure functions: the budget decision, cost estimates, the share of
a batch a balance pays for, and the words that reconcile a balance with a ledger."""

from __future__ import annotations

import logging

import pytest

from orchestrator.costs import CostTable, Estimate, Tally, affordable_share
from orchestrator.engine.balance import SHARED, how_to_log
from orchestrator.policy import within_budget
from orchestrator.reconcile import Reconciliation


@pytest.mark.parametrize(
    ("cap", "spent", "in_flight_most", "cost", "starts"),
    [
        (None, 10**9, 10**9, 10**9, True),  # no cap: today's behaviour
        (100, 0, 0, 1, True),
        (100, 98, 0, 2, True),  # exactly at the cap
        (100, 99, 0, 2, False),  # one over
        (100, 90, 8, 2, True),  # what /run requests on the wire may cost counts
        (100, 90, 9, 2, False),
        (100, 100, 0, 0, True),  # a free job fits a full budget
        (100, 100, 0, 1, False),
        (0, 0, 0, 1, False),  # a cap of 0 starts nothing that costs
        (50, 60, 0, 1, False),  # spent past a lowered cap (resume with a smaller one)
        (50, 0, 60, 0, False),  # reservations alone past the cap
    ],
)
def test_the_budget_decision(
    cap: int | None, spent: int, in_flight_most: int, cost: int, starts: bool
) -> None:
    """A prediction starts only when spent + what is in flight may cost + its cost fits."""
    assert within_budget(cap, spent, in_flight_most, cost) is starts


@pytest.mark.parametrize(
    ("model", "inputs", "learned", "cost"),
    [
        ("background-remove", {"image": "x"}, {}, 1),
        ("tryon-max", {}, {}, 2),
        ("tryon-max", {"num_images": 4}, {}, 8),  # per output
        ("tryon-v1.6", {"num_samples": 3}, {}, 3),  # num_samples counts too
        ("image-to-video", {}, {}, 6),
        ("a-model-from-next-year", {"num_images": 2}, {}, 2),  # unknown: 1 per output
        ("tryon-max", {"num_images": 2}, {"tryon-max": 3}, 6),  # the ledger wins
        ("edit", {}, {"tryon-max": 3}, 1),  # only for the model it charged
    ],
)
def test_cost_per_output_from_the_ledger_else_the_table(
    model: str, inputs: dict[str, object], learned: dict[str, int], cost: int
) -> None:
    """Credits = rate per output x outputs; the rate from the ledger where it has one."""
    table = CostTable(learned)
    assert table.cost(model, inputs) == cost
    assert table.source(model) == ("ledger" if model in learned else "table")


@pytest.mark.parametrize(
    ("buckets", "balance", "share"),
    [
        ([(100, 100)], 100, 1.0),
        ([(100, 100)], 1000, 1.0),
        ([(2400, 4800)], 3200, 3200 / 4800),
        ([(10, 100), (10, 10)], 100, 0.5),  # the expensive priority runs first
        ([(10, 10), (10, 100)], 60, (10 + 5) / 20),
        ([(10, 10)], 0, 0.0),
        ([], 5, 1.0),
    ],
)
def test_the_share_of_jobs_a_balance_pays_for(
    buckets: list[tuple[int, int]], balance: int, share: float
) -> None:
    """Jobs are paid for in run order (highest priority first) until the balance is spent."""
    assert affordable_share(buckets, balance) == pytest.approx(share)


def test_estimate_says_where_the_run_would_stop() -> None:
    """2,400 try-ons at 2 credits against 3,200: the issue's own sentence, and its JSON."""
    tally = Tally()
    for _ in range(2400):
        tally.add("tryon-max", 0, 2)
    estimate = Estimate.of(tally, CostTable(), 3200)
    assert estimate.verdict() == (
        "needs about 4,800 credits; you have 3,200: the run would stop after about 66 % of the jobs"
    )
    assert estimate.as_dict() == {
        "jobs": 2400,
        "by_model": {"tryon-max": {"jobs": 2400, "credits": 4800}},
        "estimated_credits": 4800,
        "balance": 3200,
    }
    assert Estimate.of(tally, CostTable(), 5000).verdict() == (
        "needs about 4,800 credits; you have 5,000: enough for every job"
    )
    assert Estimate.of(tally, CostTable(), None).verdict() is None


@pytest.mark.parametrize(
    ("check", "sentence", "explained"),
    [
        (
            Reconciliation(1000, 910, 90, 0, 0),
            "the account was charged 90; 90 are recorded: they agree",
            True,
        ),
        (
            Reconciliation(1000, 893, 90, 9, 18),
            "the account was charged 107; 90 are recorded; 17 are likely from 9 uncertain attempts",
            True,
        ),
        (
            Reconciliation(1000, 850, 90, 2, 4),
            "the account was charged 150; 90 are recorded; 60 are not explained by this run: "
            "the account may have been used by something else meanwhile (its 2 uncertain "
            "attempts could account for at most 4)",
            False,
        ),
        (
            Reconciliation(1000, 900, 90, 0, 0),
            "the account was charged 100; 90 are recorded; 10 are not explained by this run: "
            "the account may have been used by something else meanwhile",
            False,
        ),
        (
            Reconciliation(1000, 902, 90, 0, 0, earlier_refunds=8),
            "the account was charged 98; 90 are recorded; 8 are likely refunds of an earlier "
            "run's predictions, which the account may have made before this run began",
            True,
        ),
        (
            Reconciliation(1000, 940, 90, 0, 0),
            "the account was charged 60; 90 are recorded; 30 fewer were charged than "
            "recorded: credits were likely added to the account meanwhile",
            False,
        ),
        (
            Reconciliation(1000, 1410, 90, 0, 0),
            "the account's balance rose by 410 while 90 were recorded as spent: credits "
            "were likely added to the account meanwhile",
            False,
        ),
    ],
)
def test_the_balance_reconciled_in_words(
    check: Reconciliation, sentence: str, explained: bool
) -> None:
    """The balance's fall against the recorded spend: agreement, uncertain attempts,
    refunds an earlier run left, and what only another user of the account explains."""
    assert check.sentence() == sentence
    assert check.explained is explained
    assert check.as_dict()["difference"] == check.charged - check.recorded


@pytest.mark.parametrize(
    ("difference", "shared", "level", "noted"),
    [
        (0, False, logging.INFO, False),
        (0, True, logging.INFO, False),
        (-2, False, logging.WARNING, False),  # recorded more than charged, alone: warn
        (-2, True, logging.INFO, True),  # a fleet's other workers charged meanwhile
        (5, True, logging.INFO, True),
    ],
)
def test_a_fleet_worker_does_not_warn_of_what_other_workers_charged(
    difference: int, shared: bool, level: int, noted: bool
) -> None:
    """A difference a lone run cannot explain is a warning; for a worker whose account
    other workers share, it is expected and said so, at INFO."""
    check = Reconciliation(1000, 1000 - 100 - difference, 100, 0, 0)
    got_level, words = how_to_log(check, shared=shared)
    assert got_level == level
    assert words.startswith(check.sentence())
    assert (SHARED in words) is noted
