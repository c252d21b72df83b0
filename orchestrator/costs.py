"""What jobs will cost before they run, as pure arithmetic.

A prediction costs its model's credits per output times its outputs (`num_images` or
`num_samples`). The rate per output comes from a database's ledger where it has
charged that model before (the highest rate it recorded, so that an estimate errs
towards "needs more"), else from the built-in table in catalog.py, the one the
sandbox charges by too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .catalog import MODELS, output_count


@dataclass(frozen=True)
class CostTable:
    """Credits per output by model: learned from a ledger, else the catalog's."""

    learned: Mapping[str, int] = field(default_factory=dict)

    def per_output(self, model_name: str) -> int:
        learned = self.learned.get(model_name)
        if learned is not None:
            return learned
        spec = MODELS.get(model_name)
        return spec.credits_per_output if spec else 1

    def source(self, model_name: str) -> str:
        """Where the rate comes from: "ledger" or "table"."""
        return "ledger" if model_name in self.learned else "table"

    def cost(self, model_name: str, inputs: Mapping[str, object]) -> int:
        """The credits one prediction of this job is expected to cost."""
        return self.per_output(model_name) * output_count(model_name, inputs)


@dataclass
class ModelTally:
    jobs: int = 0
    credits: int = 0


@dataclass
class Tally:
    """Jobs and credits by model, and by priority (the order the queue runs them)."""

    by_model: dict[str, ModelTally] = field(default_factory=dict)
    by_priority: dict[int, ModelTally] = field(default_factory=dict)

    def add(self, model_name: str, priority: int, credits: int) -> None:
        for tally in (
            self.by_model.setdefault(model_name, ModelTally()),
            self.by_priority.setdefault(priority, ModelTally()),
        ):
            tally.jobs += 1
            tally.credits += credits

    @property
    def jobs(self) -> int:
        return sum(t.jobs for t in self.by_model.values())

    @property
    def credits(self) -> int:
        return sum(t.credits for t in self.by_model.values())

    def in_run_order(self) -> list[tuple[int, int]]:
        """(jobs, credits) per priority, highest priority first."""
        return [(t.jobs, t.credits) for _, t in sorted(self.by_priority.items(), reverse=True)]


def affordable_share(buckets: Iterable[tuple[int, int]], balance: int) -> float:
    """The share of the jobs (0..1) that `balance` pays for, taking `buckets` of
    (jobs, credits) in the order they run; within a bucket jobs cost its average."""
    total = paid = 0.0
    left = float(balance)
    for jobs, credits in buckets:
        total += jobs
        if credits <= left:
            paid += jobs
            left -= credits
        elif left > 0:
            paid += jobs * left / credits
            left = 0.0
    return paid / total if total else 1.0


@dataclass(frozen=True)
class Estimate:
    """What `validate` says a manifest will cost, and whether the balance covers it."""

    jobs: int
    by_model: dict[str, tuple[int, int]]  # model -> (jobs, credits)
    credits: int
    balance: int | None
    share: float | None  # of the jobs the balance pays for; None without a balance
    sources: dict[str, str]  # model -> "ledger" or "table"

    @classmethod
    def of(cls, tally: Tally, table: CostTable, balance: int | None) -> Estimate:
        share = None if balance is None else affordable_share(tally.in_run_order(), balance)
        return cls(
            jobs=tally.jobs,
            by_model={m: (t.jobs, t.credits) for m, t in sorted(tally.by_model.items())},
            credits=tally.credits,
            balance=balance,
            share=share,
            sources={m: table.source(m) for m in tally.by_model},
        )

    def as_dict(self) -> dict[str, Any]:
        """The `validate --json` object (a contract: keys are never renamed)."""
        return {
            "jobs": self.jobs,
            "by_model": {m: {"jobs": j, "credits": c} for m, (j, c) in self.by_model.items()},
            "estimated_credits": self.credits,
            "balance": self.balance,
        }

    def verdict(self) -> str | None:
        """What the balance means for the run, in words; None without a balance."""
        if self.balance is None or self.share is None:
            return None
        head = f"needs about {self.credits:,} credits; you have {self.balance:,}"
        if self.credits <= self.balance:
            return f"{head}: enough for every job"
        percent = math.floor(self.share * 100)
        return f"{head}: the run would stop after about {percent} % of the jobs"
