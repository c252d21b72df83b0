"""The Python API: what `orchestrator submit` and `resume` do, for scripts and
notebooks, with the same options as keyword arguments.

    import orchestrator
    result = orchestrator.submit("catalog.yaml", db="q.db", out="outputs")
    result.counts       # {"completed": 118, "failed": 2}
    result.outputs      # {"sku-1042": [PosixPath("outputs/catalog/sku-1042/1.png")], ...}

Limits are "N/SECONDS" strings, as on the command line (or None for no limit);
`api_key` and `base_url` fall back to FASHN_API_KEY and FASHN_BASE_URL. Nothing is
printed: what a run has to say goes to the "orchestrator" logger, and every failure
is one of the package's exceptions (orchestrator.errors): UsageError for bad input
(nothing was done), StopRun when the run stopped early and `resume` continues it.
Failed jobs are not an exception: they are in `counts` and the report.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, Unpack

from .config import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_DB,
    RUN_DEFAULTS,
    RateLimit,
    read_api_key,
)
from .costs import Estimate
from .errors import UsageError
from .models import SUCCESSFUL_STATES
from .naming import NameTemplate
from .store import IngestResult, Store


class RunOptions(TypedDict, total=False):
    """The run options of `submit` and `resume`, as the command line names them."""

    out: str | os.PathLike[str]
    concurrency: int
    run_limit: str | None
    status_limit: str | None
    max_attempts: int
    max_credits: int | None
    polling: str
    sandbox: bool
    sandbox_scale: float
    webhook_url: str | None
    webhook_listen: str | None  # "HOST:PORT"
    api_key: str
    base_url: str


@dataclass(frozen=True)
class RunResult:
    """Where the batches of a run stand once it has finished."""

    batches: list[str]
    counts: dict[str, int]  # state -> jobs
    credits: int  # spent, net of refunds
    uncertain: int  # attempts whose /run answer was lost (a charge that may be unrecorded)
    outputs: dict[str, list[Path]]  # job id ("batch/id" over several batches) -> files
    queued: IngestResult | None = field(default=None, compare=False)  # submit only

    @property
    def succeeded(self) -> bool:
        """Every job completed, or was canceled: what exit code 0 means."""
        return set(self.counts) <= SUCCESSFUL_STATES


def submit(
    manifest: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str] = DEFAULT_DB,
    batch: str | None = None,
    replace: bool = False,
    queue_only: bool = False,
    reuse: bool = False,
    name_template: str | None = None,
    **options: Unpack[RunOptions],
) -> RunResult:
    """Validate `manifest`, queue its jobs and (unless `queue_only`) run them; with
    `reuse`, jobs an earlier batch completed take its outputs; `name_template` says
    where outputs go (fields {batch} {id} {model} {n} {ext} {meta.<name>})."""
    from .service import check_can_run, open_queue, queue_manifest

    opts, credentials = _run_options(options)
    template = NameTemplate.parse(name_template) if name_template is not None else None
    target = _target(opts, credentials, skip=queue_only)
    with target as settings, open_queue(db, create=True) as store:
        if settings is not None:
            check_can_run(store, settings.out_dir)
        queued = queue_manifest(
            store,
            Path(manifest),
            batch=batch,
            replace_changed=replace,
            reuse=reuse,
            template=template,
        )
        batches = [queued.batch_id]
        if settings is not None:
            _run(store, settings, batches)
        return _result(store, batches, queued)


def resume(
    batch: str | None = None,
    *,
    db: str | os.PathLike[str] = DEFAULT_DB,
    retry_failed: bool = False,
    **options: Unpack[RunOptions],
) -> RunResult:
    """Continue the queue's batches (or `batch`) where they stopped."""
    from .service import check_can_run, open_queue

    opts, credentials = _run_options(options)
    with _target(opts, credentials) as settings, open_queue(db, create=False) as store:
        assert settings is not None
        named = store.resolve_batches(batch) if batch else None
        check_can_run(store, settings.out_dir)
        if retry_failed:
            store.retry_failed(named, url_ttl=settings.output_url_ttl)
        _run(store, settings, named)
        return _result(store, named or store.batch_ids(), None)


def validate(
    manifest: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str] = DEFAULT_DB,
    batch: str | None = None,
    replace: bool = False,
    api_key: str | None = None,
    base_url: str | None = None,
) -> Estimate:
    """Every check `submit` makes, then the jobs per model and the credits they need
    (`Estimate.as_dict()` is what `validate --json` prints); with a key, the balance.
    Sends no `/run` and writes nothing."""
    from .service import validate_manifest

    key = read_api_key() if api_key is None else read_api_key({API_KEY_ENV: api_key})
    return validate_manifest(
        db,
        Path(manifest),
        batch=batch,
        replace_changed=replace,
        api_key=key,
        base_url=base_url or os.environ.get("FASHN_BASE_URL") or DEFAULT_BASE_URL,
    )


def _run_options(options: RunOptions) -> tuple[dict[str, Any], dict[str, str | None]]:
    """The options as the command line's parser leaves them, and the credentials."""
    given: dict[str, Any] = dict(options)
    unknown = set(given) - set(RUN_DEFAULTS) - {"api_key", "base_url"}
    if unknown:
        raise UsageError(
            f"unknown option(s) {', '.join(sorted(unknown))}; the run options are "
            f"{', '.join(sorted(RunOptions.__annotations__))}"
        )
    credentials = {"api_key": given.pop("api_key", None), "base_url": given.pop("base_url", None)}
    opts = {**RUN_DEFAULTS, **given}
    opts["out"] = Path(opts["out"])
    for name in ("run_limit", "status_limit"):
        value = opts[name]
        opts[name] = None if value is None else RateLimit.parse(str(value), option=name)
    if opts["webhook_url"] is not None or opts["webhook_listen"] is not None:
        from .webhooks.address import check_url, parse_listen

        opts["webhook_url"] = opts["webhook_url"] and check_url(opts["webhook_url"])
        opts["webhook_listen"] = opts["webhook_listen"] and parse_listen(opts["webhook_listen"])
    return opts, credentials


def _target(opts: dict[str, Any], credentials: dict[str, str | None], *, skip: bool = False) -> Any:
    from .options import target

    return nullcontext(None) if skip else target(opts, **credentials)


def _run(store: Store, settings: Any, batches: Sequence[str] | None) -> None:
    from .service import run_queue

    run_queue(store, settings, batches)


def _result(store: Store, batches: list[str], queued: IngestResult | None) -> RunResult:
    from .report import job_reports, summarize

    summary = summarize(store, batches)
    outputs: dict[str, list[Path]] = {}
    for job in job_reports(store, batches):
        key = job["id"] if len(batches) == 1 else f"{job['batch']}/{job['id']}"
        outputs[key] = [Path(o["path"]) for o in job["outputs"] if o["path"]]
    return RunResult(
        batches=list(batches),
        counts=summary.counts,
        credits=summary.credits,
        uncertain=summary.uncertain,
        outputs=outputs,
        queued=queued,
    )
