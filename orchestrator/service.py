"""The operations behind the commands, usable from Python and from tests alike."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import httpx

from .api import ApiError, FashnClient, Unauthorized
from .config import DEFAULT_BASE_URL, SANDBOX_SCALE, Settings
from .costs import CostTable, Estimate, Tally
from .engine import Engine, RunOutcome
from .errors import UsageError
from .locking import queue_lock
from .models import JobSpec, JobState, Progress
from .naming import NameTemplate
from .outputs import OutputDirError, check_writable, is_folder_name
from .store import DbLocation, IngestResult, NoQueue, Store

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
    batch_id = _batch_name(batch or manifest.batch_name)
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


def _batch_name(batch_id: str) -> str:
    if not is_folder_name(batch_id):
        raise UsageError(
            f"batch name {batch_id!r} cannot be a directory name; "
            "pass --batch with letters, digits, '.', '_' or '-'"
        )
    return batch_id


def validate_manifest(
    db: DbLocation | str | os.PathLike[str],
    path: Path,
    *,
    batch: str | None = None,
    replace_changed: bool = False,
    api_key: str = "",
    base_url: str = DEFAULT_BASE_URL,
) -> Estimate:
    """Every check `submit` makes (the same errors), then the credits the jobs need:
    per output, at this database's ledger rates where it has them, else the catalog's.
    With an API key, the balance too. Sends no `/run`; writes nothing, and creates no
    database where there is none (the checks then run on a scratch one)."""
    from .manifest import Entry, read_manifest

    manifest = read_manifest(path)
    batch_id = _batch_name(batch or manifest.batch_name)
    tally = Tally()
    with _checking_store(db) as (store, costs):

        def counted() -> Iterator[Entry]:
            for entry in manifest.entries():
                if isinstance(entry, JobSpec):
                    cost = costs.cost(entry.model_name, entry.inputs)
                    tally.add(entry.model_name, entry.priority, cost)
                yield entry

        store.check_manifest(batch_id, str(path), counted(), replace=replace_changed)
    for warning in manifest.warnings:
        log.warning("%s", warning)
    balance = anyio.run(read_balance, base_url, api_key) if api_key else None
    return Estimate.of(tally, costs, balance)


@contextmanager
def _checking_store(db: DbLocation | str | os.PathLike[str]) -> Iterator[tuple[Store, CostTable]]:
    """The queue at `db` with its ledger's rates, or a scratch queue (built-in rates)."""
    try:
        queue: Store | None = Store(db, create=False)
    except NoQueue:
        queue = None
    if queue is not None:
        try:
            yield queue, CostTable(queue.spend.learned_rates())
        finally:
            queue.close()
        return
    with tempfile.TemporaryDirectory(prefix="orchestrator-validate-") as scratch:
        store = Store(Path(scratch) / "scratch.db", durable=False)
        try:
            yield store, CostTable()
        finally:
            store.close()


async def read_balance(base_url: str, api_key: str, timeout: float = 30.0) -> int | None:
    """The account's balance (`GET /credits`), or None with a warning saying why not."""
    async with httpx.AsyncClient(timeout=timeout) as http:
        try:
            return await FashnClient(http, base_url, api_key).credits()
        except Unauthorized:
            log.warning(
                "the API refused the key (401): the balance is unknown; check FASHN_API_KEY"
            )
        except ApiError as exc:
            log.warning("the balance could not be read: %s", exc)
    return None


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
def open_queue(db: DbLocation | str | os.PathLike[str], *, create: bool) -> Iterator[Store]:
    """Hold the queue's lock, then open it: a command refused because another process
    runs the queue has written nothing. A SQLite file created here is deleted again if
    the block fails on bad input (UsageError), so a rejected manifest leaves no file.
    A PostgreSQL queue has no such lock: several processes may run it at once (see
    the store's docstring for what keeps them apart)."""
    location = DbLocation.of(db)
    path = location.path
    if path is not None and create:
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not create:
        Store.check_exists(location)
    with queue_lock(path) if path is not None else nullcontext():
        created = path is not None and not path.exists()
        store = Store(location, create=create)
        try:
            yield store
        except UsageError:
            if created:
                store.discard()
            raise
        finally:
            store.close()


def check_can_run(store: Store, out_dir: Path) -> None:
    """What a run in this process needs before anything is written or paid: a writable
    outputs folder, and no fleet of workers on the queue (their limits are shared
    through the database; this process's would be its own)."""
    check_outputs_writable(out_dir)
    if store.fleet.others_live():
        raise UsageError(
            "workers run this queue (their leases are live): queue jobs with "
            "`submit --queue-only` and let them run them, or start one more "
            "`orchestrator worker`; stop the workers to run it here"
        )


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


@dataclass(frozen=True)
class WorkerResult:
    """Where the worker's batches stand when it exits."""

    worker: str
    accounts: list[str]
    counts: dict[str, int]
    credits: int

    @property
    def succeeded(self) -> bool:
        return JobState.FAILED not in self.counts

    def lines(self) -> list[str]:
        states = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items())) or "no jobs"
        accounts = ", ".join(self.accounts) or "none"
        return [
            f"worker {self.worker} (accounts {accounts}) exits: {states}; credits {self.credits}"
        ]


def run_worker(
    db: DbLocation,
    settings: Settings,
    *,
    batches: Sequence[str] | None,
    accounts: Sequence[str] | None,
    burst: bool,
    lease_seconds: float,
    idle_poll: float = 1.0,
    sandbox: tuple[bool, float, int] = (False, SANDBOX_SCALE, 0),
) -> WorkerResult:
    """One worker of a fleet on the queue at `db` (which `submit --queue-only` made)."""
    from .accounts import every_raw_key
    from .fleet.worker import Worker
    from .logs import redact_also

    for key in every_raw_key():
        redact_also(key)
    Store.check_exists(db)
    with _worker_target(settings, sandbox) as (target, keys):
        store = Store(db, create=False)
        try:
            if batches:
                for batch in batches:
                    store.resolve_batches(batch)  # UsageError for a batch it does not hold
            worker = Worker(
                store,
                target,
                batches=batches,
                accounts=accounts,
                burst=burst,
                lease_seconds=lease_seconds,
                idle_poll=idle_poll,
                keys=keys,
            )
            ran = worker.prepare()
            anyio.run(worker.run)
            counts, credits = store.progress(batches)
            return WorkerResult(worker.id, sorted(set(ran) | set(worker.engines)), counts, credits)
        finally:
            store.close()


@contextmanager
def _worker_target(
    settings: Settings, sandbox: tuple[bool, float, int]
) -> Iterator[tuple[Settings, dict[str, str] | None]]:
    """The API to run against; with the sandbox, its key for the default account."""
    on, scale, seed = sandbox
    if not on:
        yield (
            replace(settings, base_url=os.environ.get("FASHN_BASE_URL") or settings.base_url),
            None,
        )
        return
    with sandbox_settings(settings, time_scale=scale, seed=seed) as sandboxed:
        yield sandboxed, {"default": sandboxed.api_key}
