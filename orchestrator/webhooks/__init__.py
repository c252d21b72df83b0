"""FASHN webhooks: the token, the receiver, and what a run needs of them.

With `--webhook-url URL` each `/run` asks FASHN to POST the prediction's terminal
status to URL/<token>/<attempt>; the receiver (on `--webhook-listen HOST:PORT`) checks
the token and hands the status to the poller, which acts on it as on a status answer.
Polling goes on as the net under them (polling.py): a lost webhook costs a poll's delay.
"""

from __future__ import annotations

from .inbox import MAX_BODY, Inbox, Notice, Refused
from .token import Token, digest

# The endpoint (orchestrator.webhooks.endpoint) brings in starlette and uvicorn: it is
# imported only by a run that uses webhooks.

__all__ = ["MAX_BODY", "Inbox", "Notice", "Refused", "Token", "digest"]
