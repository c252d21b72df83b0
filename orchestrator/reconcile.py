"""What the night really cost: the account's balance before and after a run, against
the spend the run recorded, in numbers and in words. Pure: no I/O.

The balance's fall and the recorded spend differ when the account charged what the
run could not record: a `/run` whose answer was lost after the charge (an uncertain
attempt; the job was sent again). They also differ when something else used the
account meanwhile, or credits were added; nothing here can tell those apart, so the
words say what is likely and what may be.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any


def _attempts(n: int) -> str:
    return f"{n} uncertain attempt{'s' if n != 1 else ''}"


@dataclass(frozen=True)
class Reconciliation:
    balance_before: int
    balance_after: int
    recorded: int  # the ledger's net over the run: charges minus refunds
    uncertain: int  # attempts of the run whose `/run` answer was lost
    uncertain_credits: int  # the most those attempts can have been charged
    earlier_refunds: int = 0  # refunds recorded for predictions of an earlier run
    started_at: float | None = None
    finished_at: float | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Reconciliation:
        """From a finished `balance_checks` row."""
        return cls(
            balance_before=int(row["balance_before"]),
            balance_after=int(row["balance_after"]),
            recorded=int(row["recorded"] or 0),
            uncertain=int(row["uncertain"] or 0),
            uncertain_credits=int(row["uncertain_credits"] or 0),
            earlier_refunds=int(row["earlier_refunds"] or 0),
            started_at=row["started_at"],
            finished_at=row["finished_at"],
        )

    @property
    def charged(self) -> int:
        """What the account was charged over the run: the balance's fall."""
        return self.balance_before - self.balance_after

    @property
    def difference(self) -> int:
        """Charged but not recorded (negative: recorded but not charged)."""
        return self.charged - self.recorded

    @property
    def explained(self) -> bool:
        """Whether what the run itself did can account for the difference."""
        d = self.difference
        return d == 0 or 0 < d <= self.uncertain_credits + self.earlier_refunds

    def sentence(self) -> str:
        head = f"the account was charged {self.charged}; {self.recorded} are recorded"
        d = self.difference
        if d == 0:
            return f"{head}: they agree"
        if self.charged < 0:
            return (
                f"the account's balance rose by {-self.charged} while {self.recorded} were "
                "recorded as spent: credits were likely added to the account meanwhile"
            )
        if d < 0:
            return (
                f"{head}; {-d} fewer were charged than recorded: credits were likely added "
                "to the account meanwhile"
            )
        return f"{head}; {self._why(d)}"

    def _why(self, d: int) -> str:
        earlier = (
            "refunds of an earlier run's predictions, which the account may have made "
            "before this run began"
        )
        if not self.explained:
            text = f"{d} are not explained by this run: the account may have been used by "
            text += "something else meanwhile"
            if self.uncertain:
                text += (
                    f" (its {_attempts(self.uncertain)} could account for at most "
                    f"{self.uncertain_credits})"
                )
            return text
        if self.uncertain and d <= self.uncertain_credits:
            return f"{d} are likely from {_attempts(self.uncertain)}"
        if self.uncertain:
            return f"{d} are likely from {_attempts(self.uncertain)} and {earlier}"
        return f"{d} are likely {earlier}"

    def as_dict(self) -> dict[str, Any]:
        """The `balance_check` object of `status --json`."""
        return {
            **asdict(self),
            "charged": self.charged,
            "difference": self.difference,
            "explained": self.explained,
            "summary": self.sentence(),
        }
