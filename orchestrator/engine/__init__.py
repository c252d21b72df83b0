"""The scheduler: submit, poll, download and record, within every limit, resumably.

- run.py: the run (task group, recovery, stop reasons, progress from the store);
- submitter.py: fills free slots, one `POST /run` per job;
- poller.py: spends the status budget where finishes are due;
- downloader.py: saves every output of every completed prediction;
- state.py: what they share.
Which API answer leads to which action is decided in policy.py.
"""

from .run import Engine, RunOutcome
from .state import StopReason

__all__ = ["Engine", "RunOutcome", "StopReason"]
