"""The account's credits: charged when a prediction is accepted, refunded when it fails."""

from __future__ import annotations

from typing import Any

from .answers import Answer, error
from .config import SandboxConfig
from .predictions import Prediction


class Account:
    """The balance and the credits charged net of refunds."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config  # read live: a test may swap it on a running sandbox
        self.balance = config.credits
        self.charged = 0

    def refusal(self, cost: int) -> Answer | None:
        """The out-of-credits answer when `cost` is more than the balance, else None."""
        if self.balance >= cost:
            return None
        message = f"This prediction costs {cost} credits; the balance is {self.balance}."
        if self.config.out_of_credits == "429":
            return error(429, "OutOfCredits", message)
        return error(402, "InsufficientCredits", message)

    def charge(self, cost: int) -> None:
        self.balance -= cost
        self.charged += cost

    def settle(self, prediction: Prediction) -> None:
        """A finished prediction: a failure's credits come back, once."""
        if prediction.error_name and not prediction.refunded:
            prediction.refunded = True
            self.balance += prediction.cost
            self.charged -= prediction.cost

    def credits_body(self) -> dict[str, Any]:
        """What GET /v1/credits answers: every credit counted as subscription credit."""
        total = self.balance
        return {"credits": {"total": total, "subscription": total, "on_demand": 0}}
