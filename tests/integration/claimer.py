"""A claiming process for tests/integration/test_postgres.py: opens the queue at
argv[1], says "ready", waits until the file argv[2] exists, then claims jobs until
none is left and prints the job pk of each claim, one per line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from orchestrator.store import Store


def main(url: str, go: Path) -> None:
    store = Store(url, create=False)
    store.takeover.attend()
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    claimed = []
    while (job := store.claim_next(None)) is not None:
        claimed.append(job.job_pk)
    store.close()
    print("\n".join(map(str, claimed)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
