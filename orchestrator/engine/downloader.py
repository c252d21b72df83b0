"""Downloads: each completed prediction's outputs are saved as soon as it completes,
where the batch's name template says. A reused output (--reuse) is linked from the
file it takes instead; one that is gone or changed sends its job back to the queue.

A download that fails is tried again (with backoff) without a new prediction; an
outputs folder that cannot be written stops the run's submissions (the outputs wait
for `resume`), since no later download could succeed either.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import httpx

from ..naming import JobNaming, NameTemplate, NamingProblem
from ..outputs import (
    EXTENSIONS,
    BlockingRunner,
    OutputDirError,
    OutputError,
    ReuseError,
    SavedOutput,
    remove_partials_of,
    save_output_to,
    take_output,
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
        # A free place is taken without a trip through the event loop (see api.py).
        self._gate = anyio.Semaphore(state.settings.download_concurrency, fast_acquire=True)

    def start(self, job_pk: int, outputs: list[PendingOutput] | None = None) -> None:
        """Save a job's outputs (those still pending, when `outputs` is None)."""
        self.state.downloading += 1
        self._spawn(self._job, job_pk, outputs)

    async def _job(self, job_pk: int, outputs: list[PendingOutput] | None) -> None:
        try:
            async with self._gate:
                pending = outputs if outputs is not None else self.store.pending_outputs(job_pk)
                if not pending:
                    return
                names = _Names(self.state.settings.out_dir, *self.store.naming.of_job(job_pk))
                try:
                    # A process killed while writing left temporary files beside them:
                    # removed in the thread of the job's first write (one trip, not two).
                    names.stale = names.every(pending)
                except NamingProblem as exc:
                    self._unnamed(pending[0], exc)
                    return
                try:
                    for output in pending:
                        # Failed for good (the job failed), or the folder cannot be
                        # written (the job waits for resume): its other outputs wait too.
                        if not await self._save(output, names):
                            return
                finally:
                    if names.stale:  # nothing was written: removed on their own
                        await self._blocking(remove_partials_of, names.take_stale())
        finally:
            self.state.downloading -= 1
            self.state.notify()

    async def _save(self, output: PendingOutput, names: _Names) -> bool:
        """Save one output, trying again on retryable failures; True when saved."""
        settings = self.state.settings
        while True:
            try:
                saved = await self._fetch(output, names)
            except OutputDirError as exc:
                log.error("%s: no more jobs are submitted", exc)
                self.state.request_stop(str(exc), StopReason.OUTPUTS_UNWRITABLE)
                return False
            except ReuseError as exc:
                log.warning("job %s: %s; it is queued for a prediction", output.job_id, exc)
                self.store.record_reuse_failed(output, str(exc))
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
            url = saved.url or output.url
            self.store.record_saved(
                output, path=str(saved.path), sha256=saved.sha256, size=saved.size, url=url
            )
            return True

    async def _fetch(self, output: PendingOutput, names: _Names) -> SavedOutput:
        """Download (or, for a reused output, link) one output to its path."""

        def path_for(ext: str) -> Path:
            return names.path(output.idx, ext)

        async def blocking(write: Callable[..., Any], *args: Any) -> Any:
            return await self._blocking(_after_stale_removed, names, write, *args)

        if output.source_path is not None and output.source_sha256 is not None:
            source = Path(output.source_path)
            return await blocking(take_output, source, output.source_sha256, path_for)
        return await save_output_to(self.cdn, output.url, path_for, blocking=blocking)

    def _unnamed(self, output: PendingOutput, exc: NamingProblem) -> None:
        """The template cannot name this job's outputs (checked when it was set, so
        only a bug gets here): the job fails, saying why, instead of writing elsewhere."""
        log.error("job %s: outputs not saved: %s", output.job_id, exc)
        self.store.record_download_failed(output, str(exc), final=True)


def _after_stale_removed(names: _Names, write: Callable[..., Any], *args: Any) -> Any:
    """In a worker thread: remove the job's stale partial files (once), then write."""
    remove_partials_of(names.take_stale())
    return write(*args)


class _Names:
    """Where one job's outputs go: the batch's template, rendered under --out; and
    the paths whose stale partial files are still to be removed."""

    def __init__(self, out: Path, template: NameTemplate, job: JobNaming):
        self.out, self.template, self.job = out, template, job
        self.stale: list[Path] = []

    def take_stale(self) -> list[Path]:
        stale, self.stale = self.stale, []
        return stale

    def path(self, index: int, ext: str) -> Path:
        return self.out / self.template.render(self.job, index, ext)

    def every(self, pending: list[PendingOutput]) -> list[Path]:
        """Each output's path with each extension it could have."""
        return [self.path(o.idx, ext) for o in pending for ext in EXTENSIONS]
