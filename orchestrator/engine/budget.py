"""The credit cap (`--max-credits`) as a run applies it.

The batch's spend (charged net of refunds) must never pass the cap, as the account
charges it. So a prediction starts only when what is spent, plus the most that the
`/run` requests still unanswered can cost, plus its own cost, fits (policy.within_budget).
A prediction in flight is already charged (its charge is in the ledger from the
moment its `/run` is answered), and can only be refunded. An attempt whose `/run`
answer was lost counts as charged: it may have been.

The spend is read from the store when the run starts and each time the next job does
not fit; between those reads it only grows by the charges the submitter records, so
it is never below what the store says (refunds are seen at the next read).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .. import policy
from ..costs import CostTable
from ..errors import BudgetReached
from ..store import ClaimedJob, Store

log = logging.getLogger("orchestrator")


class Budget:
    """What the run's batches may still spend, and what is on its way to being spent."""

    def __init__(self, cap: int, store: Store, batches: Sequence[str] | None, costs: CostTable):
        self.cap = cap
        self.store = store
        self.batches = batches
        self.costs = costs
        self.spent = 0  # recorded: charges minus refunds
        self.exposure = 0  # what attempts with a lost answer may have been charged
        self.held: int | None = None  # the cost of the job that did not fit, if one did not
        self._sending: dict[int, int] = {}  # attempt pk -> the most its /run can cost
        self.refresh()

    def __repr__(self) -> str:
        return (
            f"<Budget cap={self.cap} spent={self.spent} exposure={self.exposure}"
            f" sending={sum(self._sending.values())} held={self.held}>"
        )

    @classmethod
    def for_run(cls, store: Store, cap: int | None, batches: Sequence[str] | None) -> Budget | None:
        """The run's budget; None without a cap (then nothing is counted)."""
        if cap is None:
            return None
        return cls(cap, store, batches, CostTable(store.spend.learned_rates()))

    @property
    def committed(self) -> int:
        return self.spent + self.exposure

    def refresh(self) -> bool:
        """Read the spend and the uncertain attempts from the store; True when what is
        committed fell (refunds came in since the last read)."""
        before = self.committed
        self.spent = self.store.credits_total(self.batches)
        uncertain = self.store.spend.uncertain_jobs(self.batches)
        self.exposure = sum(self.costs.cost(model, inputs) for model, inputs in uncertain)
        return self.committed < before

    # -- the submitter's calls ----------------------------------------------------

    def admits(self, model_name: str, inputs: dict[str, Any]) -> bool:
        """Whether the next job may start; if not, `held` is its cost."""
        cost = self.costs.cost(model_name, inputs)
        sending = sum(self._sending.values())
        fits = policy.within_budget(self.cap, self.committed, sending, cost)
        self.held = None if fits else cost
        return fits

    def sending(self, claimed: ClaimedJob) -> None:
        """Its `/run` is about to go: its cost is reserved until the answer."""
        self._sending[claimed.attempt_pk] = self.costs.cost(claimed.model_name, claimed.inputs)

    def accepted(self, attempt_pk: int, credits: int) -> None:
        """Charged: what the answer announced is spent."""
        self._sending.pop(attempt_pk, None)
        self.spent += credits

    def lost(self, attempt_pk: int) -> None:
        """No usable answer: the prediction may exist, and may have been charged."""
        self.exposure += self._sending.pop(attempt_pk, 0)

    def released(self, attempt_pk: int) -> None:
        """The `/run` was refused (or never sent): nothing was charged."""
        self._sending.pop(attempt_pk, None)

    def detail(self) -> str:
        held = self.held or 0
        return f"the next job ({held} credits) would pass the cap of {self.cap} credits"

    # -- the end --------------------------------------------------------------------

    def reached(self) -> BudgetReached:
        """The error a run stopped by the cap ends with: what was spent, what is left."""
        self.refresh()
        left = cost = 0
        for model, inputs in self.store.spend.unfinished_jobs(self.batches):
            left += 1
            cost += self.costs.cost(model, inputs)
        text = f"spent {self.spent:,} of {self.cap:,}; {left:,} jobs left (about {cost:,} credits)"
        if self.exposure:
            text += (
                f"; up to {self.exposure:,} more may have been charged for attempts whose "
                "answer was lost"
            )
        return BudgetReached(
            f"{text}. The predictions in flight were finished and saved; to continue, run "
            "`orchestrator resume --max-credits N` with a higher cap"
        )
