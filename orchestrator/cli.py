"""The `orchestrator` command: parse, call, print. Errors become messages and exit codes
in one place (exits.py): 0 all completed; 1 finished with failed jobs; 2 invalid input
or usage; 3 stopped early and resumable; 4 internal error. The options shared by the
commands are declared in options.py."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import exits
from .config import (
    Settings,
    raw_api_key,
)
from .display import ProgressView, make_console, print_batches, print_estimate, print_summary
from .errors import StopRun, UsageError
from .logs import Redactor, quiet, setup_logging, verbosity
from .naming import NameTemplate
from .options import (
    api_target,
    db_option,
    log_options,
    name_template_option,
    out_option,
    reuse_option,
    run_options,
    target,
)
from .sandbox_command import sandbox as sandbox_command
from .store import DbLocation
from .worker_command import worker as worker_command

if TYPE_CHECKING:  # each command imports what it uses: `--help` starts without them
    from .store import Store

log = logging.getLogger("orchestrator")
F = TypeVar("F", bound=Callable[..., Any])

# User data (file names, ids, API messages) is printed verbatim: no markup, no emoji.
stdout = make_console()
stderr = make_console(stderr=True)


def _run(store: Store, settings: Settings, batches: list[str] | None) -> int:
    from . import report as reports
    from .service import run_queue

    view = ProgressView(stderr, interval=settings.progress_interval, quiet=quiet())
    try:
        with view:
            outcome = run_queue(
                store,
                settings,
                batches,
                on_progress=view,
                progress_every=view.refresh_every,
                handle_signals=True,
            )
    except StopRun:
        print_summary(stderr, reports.summarize(store, batches))
        raise
    print_summary(stderr, reports.summarize(store, batches))
    stderr.print(f"outputs in {settings.out_dir.resolve()}", markup=False, highlight=False)
    return 0 if outcome.succeeded else 1


# ---------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@log_options
@click.version_option(package_name="fashn-orchestrator")
def cli(verbose: int, quiet: bool, log_file: Path | None, log_format: str) -> None:
    """Push whole catalogs through the FASHN API: queued, within every limit, resumable.

    The API key is read from FASHN_API_KEY and the API from FASHN_BASE_URL
    (default https://api.fashn.ai/v1).
    """
    if quiet and verbose:
        raise UsageError("-q and -v contradict each other: give one of them")
    # Redact the key as set, stray whitespace and all: that is how httpx would quote it.
    setup_logging(
        verbose,
        console=stderr,
        secret=raw_api_key(),
        quiet=quiet,
        log_file=log_file,
        log_format=log_format,
    )


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--batch", help="Batch name (default: the manifest's `batch:` or file name).")
@click.option("--queue-only", is_flag=True, help="Validate and queue, but do not run.")
@click.option("--replace", is_flag=True, help="Queue changed jobs (same id, new inputs) again.")
@reuse_option
@name_template_option
@db_option
@run_options
def submit(
    manifest: Path,
    batch: str | None,
    queue_only: bool,
    replace: bool,
    reuse: bool,
    name_template: NameTemplate | None,
    db: DbLocation,
    **opts: Any,
) -> int:
    """Validate MANIFEST (YAML, CSV or JSON Lines), queue its jobs, and run them."""
    from .service import check_can_run, open_queue, queue_manifest

    # Everything that can refuse the run is checked before the first write.
    settings_or_none = nullcontext(None) if queue_only else target(opts)
    with settings_or_none as settings, open_queue(db, create=True) as store:
        if settings is not None:
            check_can_run(store, settings.out_dir)
        result = queue_manifest(
            store,
            manifest,
            batch=batch,
            replace_changed=replace,
            reuse=reuse,
            template=name_template,
        )
        reused = f", {result.reused} reuse earlier outputs" if reuse else ""
        stderr.print(
            f"batch {result.batch_id}: {result.added} job(s) queued, "
            f"{result.unchanged} already known, {result.replaced} replaced{reused}",
            markup=False,
            highlight=False,
        )
        if settings is None:
            return 0
        return _run(store, settings, [result.batch_id])


@cli.command()
@click.argument("batch", required=False)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="Run failed jobs again: downloaded again while their output URLs are valid, else"
    " predicted again.",
)
@name_template_option
@db_option
@run_options
def resume(
    batch: str | None,
    retry_failed: bool,
    name_template: NameTemplate | None,
    db: DbLocation,
    **opts: Any,
) -> int:
    """Continue where a run stopped: poll what is in flight, save outputs, submit the rest."""
    from .service import check_can_run, open_queue

    with target(opts) as settings, open_queue(db, create=False) as store:
        batches = store.resolve_batches(batch) if batch else None
        check_can_run(store, settings.out_dir)
        if name_template is not None:
            store.naming.set(batches, name_template)
        if retry_failed:
            again = store.retry_failed(batches, url_ttl=settings.output_url_ttl).total
            stderr.print(f"{again} failed job(s) run again")
        return _run(store, settings, batches)


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--batch", help="Batch name (default: the manifest's `batch:` or file name).")
@click.option("--replace", is_flag=True, help="Check as `submit --replace` would.")
@db_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def validate(
    manifest: Path, batch: str | None, replace: bool, db: DbLocation, as_json: bool
) -> int:
    """Check MANIFEST as `submit` would and estimate its credits; queue nothing, send no /run.

    With FASHN_API_KEY set, the account's balance is read (GET /v1/credits) and compared.
    """
    from .service import validate_manifest

    base_url, api_key = api_target()
    estimate = validate_manifest(
        db, manifest, batch=batch, replace_changed=replace, api_key=api_key, base_url=base_url
    )
    if as_json:
        import json

        click.echo(json.dumps(estimate.as_dict()))
    else:
        print_estimate(stdout, manifest, estimate)
    return 0


@cli.command()
@click.argument("batch", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def status(batch: str | None, as_json: bool, db: DbLocation) -> int:
    """How many jobs are queued, running, done and failed, and the credits spent."""
    from . import report as reports
    from .store import Store

    store = Store(db, create=False)
    summary = reports.summarize(store, store.resolve_batches(batch) if batch else None)
    if as_json:
        import json

        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(stdout, summary)
    return 0


@cli.command()
@click.argument("batch", required=False)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "html"]),
    default="json",
    show_default=True,
    help="html: a contact sheet, to open in a browser (its links are relative to -o).",
)
@click.option(
    "--per",
    type=click.Choice(["output", "job"]),
    default="output",
    show_default=True,
    help="CSV: a row per output (a job without outputs still gets one), or per job.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@db_option
@out_option
def report(
    batch: str | None, fmt: str, per: str, output: Path | None, db: DbLocation, out: Path
) -> int:
    """Every job: its state, attempts (prediction id, status, credits, error), outputs."""
    from . import report as reports
    from .store import Store

    store = Store(db, create=False)
    batches = store.resolve_batches(batch)
    with (
        open(output, "w", newline="", encoding="utf-8") if output else nullcontext(sys.stdout) as fh
    ):
        if fmt == "html":
            from .contact_sheet import write_page

            page = output if output else Path.cwd() / "report.html"
            write_page(store, batches, out_dir=out, page=page, out=fh)
        else:
            reports.write_report(store, batches, fh, fmt=fmt, per=per)
    return 0


@cli.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def list_(as_json: bool, db: DbLocation) -> int:
    """Every batch: its jobs by state, credits, and first and last activity."""
    from .batches import batch_dict, list_batches

    found = list_batches(db)
    if as_json:
        import json

        click.echo(json.dumps([batch_dict(b) for b in found], indent=2))
    else:
        print_batches(stdout, found)
    return 0


@cli.command()
@click.argument("batch")
@click.option(
    "--error",
    "errors",
    multiple=True,
    metavar="NAME",
    help="Only jobs that failed with this error (e.g. PipelineError, DownloadError,"
    " PoseError); repeatable. Without it, every failure but the permanent ones"
    " (moderation, pose, image load, bad request).",
)
@click.option("--job", "job_ids", multiple=True, metavar="ID", help="Only this job; repeatable.")
@click.option("--queue-only", is_flag=True, help="Queue them again, but do not run.")
@db_option
@run_options
def retry(
    batch: str,
    errors: tuple[str, ...],
    job_ids: tuple[str, ...],
    queue_only: bool,
    db: DbLocation,
    **opts: Any,
) -> int:
    """Run a batch's failed jobs again; a completed prediction is only downloaded again.

    Jobs whose prediction completed are downloaded again while the outputs' URLs are
    valid (72 hours); the others are predicted again with a fresh set of attempts.
    Permanent failures (moderation, pose, image load, bad request) are skipped, and
    counted, unless --error names them. The run options are those of `resume`.
    """
    from .batches import retry as retry_failed
    from .config import Settings as Defaults
    from .service import check_can_run, open_queue

    settings_or_none = nullcontext(None) if queue_only else target(opts)
    with settings_or_none as settings, open_queue(db, create=False) as store:
        if settings is not None:
            check_can_run(store, settings.out_dir)
        ttl = settings.output_url_ttl if settings is not None else Defaults.output_url_ttl
        retried = retry_failed(store, batch, url_ttl=ttl, errors=errors, job_ids=job_ids)
        for line in retried.lines():
            stderr.print(line, markup=False, highlight=False)
        if settings is None:
            return 0
        return _run(store, settings, [batch])


@cli.command()
@click.argument("batch")
@click.option("--job", "job_ids", multiple=True, metavar="ID", help="Only this job; repeatable.")
@db_option
def cancel(batch: str, job_ids: tuple[str, ...], db: DbLocation) -> int:
    """Cancel a batch's queued jobs: they are never sent.

    Predictions in flight finish and are saved. A run going on meanwhile (in another
    process) never sends the canceled jobs, and exits 0 when all the others completed.
    """
    from .batches import cancel as cancel_jobs
    from .batches import describe_cancel

    result = cancel_jobs(db, batch, job_ids or None)
    stderr.print(describe_cancel(batch, result), markup=False, highlight=False)
    return 0


cli.add_command(sandbox_command)
cli.add_command(worker_command)


def main(argv: list[str] | None = None) -> None:
    try:
        code = cli.main(args=argv, prog_name="orchestrator", standalone_mode=False)
    except (Exception, KeyboardInterrupt, BaseExceptionGroup) as exc:
        # The one error handler: exit codes and messages are decided in exits.handle.
        redact = Redactor(raw_api_key())
        code = exits.handle(exc, stderr, redact=redact, verbose=verbosity())
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
