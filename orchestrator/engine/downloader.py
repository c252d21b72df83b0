"""Downloads: each completed prediction's outputs are saved as soon as it completes.

A download that fails is tried again (with backoff) without a new prediction; an
outputs folder that cannot be written stops the run's submissions (the outputs wait
for `resume`), since no later download could succeed either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import anyio
import httpx

from ..outputs import (
    BlockingRunner,
    OutputDirError,
    OutputError,
    job_folder,
    remove_partials,
    save_output,
)
from ..store import PendingOutput, Store
from .failures import log_failure
from .state import RunState, StopReason

log = logging.getLogger("orchestrator")


class Downloader:
    def __init__(
        self,
        state: RunState,
        store: Store,
        cdn: httpx.AsyncClient,
        *,
        spawn: Callable[..., Any],
        blocking: BlockingRunner,
    ):
        self.state = state
        self.store = store
        self.cdn = cdn
        self._spawn = spawn
        self._blocking = blocking  # runs file writes off the event loop
        self._gate = anyio.Semaphore(state.settings.download_concurrency)

    def start(self, job_pk: int, outputs: list[PendingOutput] | None = None) -> None:
        """Save a job's outputs (those still pending, when `outputs` is None)."""
        self.state.downloading += 1
        self._spawn(self._job, job_pk, outputs)

    async def _job(self, job_pk: int, outputs: list[PendingOutput] | None) -> None:
        try:
            async with self._gate:
                pending = outputs if outputs is not None else self.store.pending_outputs(job_pk)
                if pending:
                    # A process killed while writing left temporary files here.
                    first, out = pending[0], self.state.settings.out_dir
                    folder = job_folder(out, first.batch_id, first.job_id)
                    await self._blocking(remove_partials, folder)
                for output in pending:
                    # Failed for good (the job failed), or the folder cannot be written
                    # (the job waits for resume): its other outputs wait too.
                    if not await self._save(output):
                        return
        finally:
            self.state.downloading -= 1
            self.state.notify()

    async def _save(self, output: PendingOutput) -> bool:
        """Save one output, trying again on retryable failures; True when saved."""
        settings = self.state.settings
        while True:
            try:
                saved = await save_output(
                    self.cdn,
                    output.url,
                    settings.out_dir,
                    output.batch_id,
                    output.job_id,
                    output.idx,
                    blocking=self._blocking,
                )
            except OutputDirError as exc:
                log.error("%s: no more jobs are submitted", exc)
                self.state.request_stop(str(exc), StopReason.OUTPUTS_UNWRITABLE)
                return False
            except OutputError as exc:
                final = not exc.retryable or output.tries + 1 >= settings.download_tries
                self.store.record_download_failed(output, str(exc), final=final)
                if final:
                    log_failure(self.store, output.job_pk, f"output {output.idx} not saved: {exc}")
                    return False
                self.state.retries += 1
                await anyio.sleep(self.state.backoff(output.tries))
                output = replace(output, tries=output.tries + 1)
                continue
            self.store.record_saved(
                output, path=str(saved.path), sha256=saved.sha256, size=saved.size, url=saved.url
            )
            return True
