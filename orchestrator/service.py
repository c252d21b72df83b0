"""The operations behind the commands, usable from Python and from tests alike."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import anyio

from .config import Settings
from .engine import Engine, RunOutcome
from .errors import UsageError
from .locking import queue_lock
from .models import Progress
from .naming import NameTemplate
from .outputs import OutputDirError, check_writable, is_folder_name
from .store import IngestResult, Store

log = logging.getLogger("orchestrator")


def queue_manifest(
    store: Store,
    path: Path,
    *,
    batch: str | None = None,
    replace_changed: bool = False,
    reuse: bool = False,
    template: NameTemplate | None = None,
) -> IngestResult:
    """Validate a manifest and queue its jobs: all of them, or (on any error) none.
    `template` (None: the batch's own) names the outputs; with `reuse`, a job that an
    earlier one already made takes its outputs instead of a prediction."""
    from .manifest import read_manifest  # YAML and CSV readers: not needed to run a queue

    manifest = read_manifest(path)
    batch_id = batch or manifest.batch_name
    if not is_folder_name(batch_id):
        raise UsageError(
            f"batch name {batch_id!r} cannot be a directory name; "
            "pass --batch with letters, digits, '.', '_' or '-'"
        )
    result = store.ingest(
        batch_id,
        str(path),
        manifest.entries(),
        replace=replace_changed,
        reuse=reuse,
        template=template,
    )
    for warning in manifest.warnings:
        log.warning("%s", warning)
    return result


def run_queue(
    store: Store,
    settings: Settings,
    batches: Sequence[str] | None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    progress_every: float = 1.0,
    handle_signals: bool = False,
) -> RunOutcome:
    """Run the queue until every job of `batches` is finished, or the run must stop."""
    engine = Engine(
        store,
        settings,
        batches=batches,
        on_progress=on_progress,
        progress_every=progress_every,
        handle_signals=handle_signals,
    )
    return anyio.run(engine.run)


@contextmanager
def open_queue(db: Path, *, create: bool) -> Iterator[Store]:
    """Hold the queue's lock, then open it: a command refused because another process
    runs the queue has written nothing. A database created here is deleted again if
    the block fails on bad input (UsageError), so a rejected manifest leaves no file.
    """
    if create:
        db.parent.mkdir(parents=True, exist_ok=True)
    else:
        Store.check_exists(db)
    with queue_lock(db):
        created = not db.exists()
        store = Store(db, create=create)
        try:
            yield store
        except UsageError:
            if created:
                store.discard()
            raise
        finally:
            store.close()


def check_outputs_writable(out_dir: Path) -> None:
    """A read-only, full or blocked outputs folder is refused before anything is paid."""
    try:
        check_writable(out_dir)
    except OutputDirError as exc:
        raise UsageError(
            f"{exc}; give --out a folder where files can be written (and space is free)"
        ) from None


@contextmanager
def sandbox_settings(settings: Settings, *, time_scale: float, seed: int) -> Iterator[Settings]:
    """Run against an in-process FASHN sandbox: its URL and key, its scaled time."""
    from .sandbox import SandboxConfig, SandboxServer

    config = SandboxConfig(seed=seed, time_scale=time_scale)
    with SandboxServer(config) as server:
        log.info("sandbox listening on %s (time scale %g)", server.base_url, time_scale)
        scaled = settings.scaled(time_scale)
        yield replace(scaled, base_url=server.base_url, api_key=config.api_key)


def requeue_failed(
    store: Store, batches: Sequence[str] | None, *, url_ttl: float = Settings.output_url_ttl
) -> int:
    """Failed jobs run again: downloaded again while their output URLs are valid,
    predicted again otherwise. Returns how many."""
    return store.requeue_failed(batches, url_ttl=url_ttl)
