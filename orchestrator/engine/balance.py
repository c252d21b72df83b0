"""The account's balance, read before a run's first `/run` and after its end.

Before: one `GET /credits`. A wrong key stops the run there, after that one request
and before any `/run` (six of which would otherwise go at once). The balance is logged.
After: a second reading; its fall is compared with the spend the run recorded
meanwhile (reconcile.py), and both readings are kept (`balance_checks`) for `status`.

The balance is information, not a condition: if the endpoint cannot be read (down, or
not answering), the run goes on without the check, and says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import anyio

from ..api import ApiError, FashnClient, RateLimited, Unauthorized
from ..costs import CostTable
from ..errors import AuthError
from ..reconcile import Reconciliation
from ..store import Store
from .state import RunState

log = logging.getLogger("orchestrator")

TRIES = 3  # readings refused by a rate limit are waited out and tried again, this often

BAD_KEY = (
    "the API refused the key (401 UnauthorizedAccess): set FASHN_API_KEY to a valid key, "
    "then run `orchestrator resume`"
)


SHARED = "other workers share the account: their charges and records overlap these readings"


def how_to_log(result: Reconciliation, *, shared: bool) -> tuple[int, str]:
    """The log level and words for a reconciliation. A difference the run cannot
    explain is a warning, unless workers of a fleet share the account: then every
    other worker's /run between this one's readings moves them, and it is expected."""
    sentence = result.sentence()
    if result.explained:
        return logging.INFO, sentence
    if shared:
        return logging.INFO, f"{sentence} ({SHARED})"
    return logging.WARNING, sentence


class BalanceCheck:
    """The two readings of one run and what they are compared with."""

    def __init__(
        self,
        store: Store,
        client: FashnClient,
        batches: Sequence[str] | None,
        state: RunState,
        *,
        shared: bool = False,
    ):
        self.store = store
        self.client = client
        self.batches = batches
        self.state = state
        self.shared = shared  # a fleet's worker: other workers use the account too
        self.check_pk: int | None = None
        self.started_at = 0.0  # wall time of the first reading
        self.balance_before = 0
        self.result: Reconciliation | None = None

    def __repr__(self) -> str:
        return f"<BalanceCheck check={self.check_pk} result={self.result}>"

    async def before(self) -> None:
        """The pre-flight reading: AuthError on a wrong key; else the balance is logged
        and recorded (or, if it cannot be read, the run goes on without it)."""
        balance = await self._read("before the run")
        if balance is None:
            return
        log.info("account balance: %s credits", f"{balance:,}")
        self.balance_before = balance
        self.check_pk, self.started_at = self.store.spend.start_check(self.batches, balance)

    async def after(self) -> Reconciliation | None:
        """The second reading, compared with what the run recorded since the first.
        Skipped when the run stopped at once (a wrong key, the API unreachable, a
        second Ctrl-C) or the first reading failed."""
        state = self.state
        if self.check_pk is None or state.abort_error is not None or state.hard_stop:
            return None
        balance = await self._read("after the run")
        if balance is None:
            return None
        spend = self.store.spend
        recorded, earlier = spend.recorded_since(self.started_at)
        uncertain = spend.uncertain_since(self.started_at)
        costs = CostTable(spend.learned_rates()) if uncertain else CostTable()
        values = {
            "balance_after": balance,
            "recorded": recorded,
            "uncertain": len(uncertain),
            "uncertain_credits": sum(costs.cost(m, i) for m, i in uncertain),
            "earlier_refunds": earlier,
        }
        spend.finish_check(self.check_pk, **values)
        result = Reconciliation(self.balance_before, **values, started_at=self.started_at)
        level, words = how_to_log(result, shared=self.shared)
        log.log(level, "account: %s", words)
        self.result = result
        return result

    async def _read(self, when: str) -> int | None:
        """One `GET /credits` (more only after a 429); None if it cannot be read."""
        for tries in range(TRIES):
            try:
                return await self.client.credits()
            except Unauthorized:
                if self.check_pk is None:  # before the run: stop before any /run
                    raise AuthError(BAD_KEY) from None
                log.warning("the balance could not be read %s: the key was refused", when)
                return None
            except RateLimited as exc:
                if tries + 1 < TRIES:
                    wait = exc.retry_after
                    await anyio.sleep(wait if wait is not None else self.state.backoff(tries))
                    continue
                log.warning("the balance could not be read %s: %s", when, exc)
            except ApiError as exc:
                log.warning("the balance could not be read %s (%s); going on without it", when, exc)
                return None
        return None
