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
from typing import Any, TypeVar

import click

from . import exits
from . import report as reports
from .config import (
    Settings,
    raw_api_key,
)
from .display import ProgressView, make_console, print_summary
from .errors import StopRun, UsageError
from .logs import Redactor, setup_logging, verbosity
from .models import JobState
from .options import db_option, parse_limit, run_options, target
from .store import Store

log = logging.getLogger("orchestrator")
F = TypeVar("F", bound=Callable[..., Any])

# User data (file names, ids, API messages) is printed verbatim: no markup, no emoji.
stdout = make_console()
stderr = make_console(stderr=True)


def _setup_logging(verbose: int) -> None:
    # Redact the key as set, stray whitespace and all: that is how httpx would quote it.
    setup_logging(verbose, console=stderr, secret=raw_api_key())


def _run(store: Store, settings: Settings, batches: list[str] | None) -> int:
    from .service import run_queue

    view = ProgressView(stderr, interval=settings.progress_interval)
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
        print_summary(stderr, reports.summarize(store, batches or store.batch_ids()))
        raise
    print_summary(stderr, reports.summarize(store, batches or store.batch_ids()))
    stderr.print(f"outputs in {settings.out_dir.resolve()}", markup=False, highlight=False)
    every_job_done = set(outcome.counts) <= {JobState.COMPLETED}
    return 0 if every_job_done else 1


# ---------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", count=True, help="More log output (-vv: every request).")
@click.version_option(package_name="fashn-orchestrator")
def cli(verbose: int) -> None:
    """Push whole catalogs through the FASHN API: queued, within every limit, resumable.

    The API key is read from FASHN_API_KEY and the API from FASHN_BASE_URL
    (default https://api.fashn.ai/v1).
    """
    _setup_logging(verbose)


@cli.command()
@click.argument("manifest", type=click.Path(path_type=Path))
@click.option("--batch", help="Batch name (default: the manifest's `batch:` or file name).")
@click.option("--queue-only", is_flag=True, help="Validate and queue, but do not run.")
@click.option("--replace", is_flag=True, help="Queue changed jobs (same id, new inputs) again.")
@db_option
@run_options
def submit(
    manifest: Path, batch: str | None, queue_only: bool, replace: bool, db: Path, **opts: Any
) -> int:
    """Validate MANIFEST (YAML, CSV or JSON Lines), queue its jobs, and run them."""
    from .service import check_outputs_writable, open_queue, queue_manifest

    # Everything that can refuse the run is checked before the first write.
    settings_or_none = nullcontext(None) if queue_only else target(opts)
    with settings_or_none as settings, open_queue(db, create=True) as store:
        if settings is not None:
            check_outputs_writable(settings.out_dir)
        result = queue_manifest(store, manifest, batch=batch, replace_changed=replace)
        stderr.print(
            f"batch {result.batch_id}: {result.added} job(s) queued, "
            f"{result.unchanged} already known, {result.replaced} replaced",
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
@db_option
@run_options
def resume(batch: str | None, retry_failed: bool, db: Path, **opts: Any) -> int:
    """Continue where a run stopped: poll what is in flight, save outputs, submit the rest."""
    from .service import check_outputs_writable, open_queue, requeue_failed

    with target(opts) as settings, open_queue(db, create=False) as store:
        batches = store.resolve_batches(batch) if batch else None
        check_outputs_writable(settings.out_dir)
        if retry_failed:
            again = requeue_failed(store, batches, url_ttl=settings.output_url_ttl)
            stderr.print(f"{again} failed job(s) run again")
        return _run(store, settings, batches)


@cli.command()
@click.argument("batch", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@db_option
def status(batch: str | None, as_json: bool, db: Path) -> int:
    """How many jobs are queued, running, done and failed, and the credits spent."""
    store = Store(db, create=False)
    summary = reports.summarize(store, store.resolve_batches(batch))
    if as_json:
        import json

        click.echo(json.dumps(summary.as_dict(), indent=2))
    else:
        print_summary(stdout, summary)
    return 0


@cli.command()
@click.argument("batch", required=False)
@click.option(
    "--format", "fmt", type=click.Choice(["json", "csv"]), default="json", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here.")
@db_option
def report(batch: str | None, fmt: str, output: Path | None, db: Path) -> int:
    """Every job: its state, attempts (prediction id, status, credits, error), outputs."""
    store = Store(db, create=False)
    rows = reports.job_reports(store, store.resolve_batches(batch))
    writer = reports.write_json if fmt == "json" else reports.write_csv
    with open(output, "w", newline="") if output else nullcontext(sys.stdout) as fh:
        writer(rows, fh)
    return 0


def _window(value: str | None) -> tuple[int, float] | None:
    limit = parse_limit(None, click.Option(["--limit"]), value)
    return (limit.count, limit.seconds) if limit else None


def _latency(values: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    spans = {}
    for value in values:
        model, _, span = value.partition("=")
        low, _, high = span.partition("-")
        try:
            spans[model] = (float(low), float(high or low))
        except ValueError:
            raise UsageError(
                f"--latency {value!r} is not MODEL=MIN-MAX (seconds), e.g. tryon-max=20-45"
            ) from None
    return spans


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8787, show_default=True, help="0 picks a free port.")
@click.option("--api-key", default="sandbox", show_default=True, help="The one key accepted.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seeds every random draw.")
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Multiplies every duration: latencies, windows, Retry-After, expiry.",
)
@click.option("--credits", type=click.IntRange(min=0), default=10_000, show_default=True)
@click.option(
    "--out-of-credits",
    type=click.Choice(["402", "429"]),
    default="402",
    show_default=True,
    help="Answer 402 (the spec) or 429 OutOfCredits (the docs).",
)
@click.option("--run-limit", default="50/60", show_default=True, help="N/SECONDS or 'none'.")
@click.option("--status-limit", default="50/10", show_default=True, help="N/SECONDS or 'none'.")
@click.option("--credits-limit", default="30/10", show_default=True, help="N/SECONDS or 'none'.")
@click.option(
    "--concurrency",
    type=click.IntRange(min=0),
    default=6,
    show_default=True,
    help="Predictions in flight per account (0: no limit).",
)
@click.option(
    "--latency",
    multiple=True,
    metavar="MODEL=MIN-MAX",
    help="A model's lifetime in seconds ('*' for every model); repeatable.",
)
@click.option("--failure-rate", type=click.FloatRange(0, 1), default=0.0, help="Retryable.")
@click.option("--permanent-failure-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--error-as-string", type=click.FloatRange(0, 1), default=0.0)
@click.option("--http-500", type=click.FloatRange(0, 1), default=0.0, help="Any endpoint.")
@click.option("--drop", type=click.FloatRange(0, 1), default=0.0, help="Dropped connections.")
@click.option("--slow", type=click.FloatRange(0, 1), default=0.0, help="Slow answers (1-5 s).")
@click.option("--lost-answer", type=click.FloatRange(0, 1), default=0.0, help="Charged, unseen.")
@click.option(
    "--webhook-drop", type=click.FloatRange(0, 1), default=0.0, help="Webhooks never sent."
)
@click.option("--webhook-delay", type=click.FloatRange(0, 1), default=0.0, help="Sent 1-10 s late.")
@click.option("--webhook-duplicate", type=click.FloatRange(0, 1), default=0.0, help="Sent twice.")
def sandbox(
    host: str,
    port: int,
    api_key: str,
    seed: int,
    time_scale: float,
    credits: int,
    out_of_credits: str,
    run_limit: str,
    status_limit: str,
    credits_limit: str,
    concurrency: int,
    latency: tuple[str, ...],
    **rates: float,
) -> int:
    """Serve a local FASHN API: limits, credits, lifecycles and faults, for rehearsals.

    Point the orchestrator at it with FASHN_BASE_URL=http://HOST:PORT/v1 and
    FASHN_API_KEY=<--api-key>. Inspection: GET /_sandbox/stats.
    """
    from .sandbox import SandboxServer
    from .sandbox.config import from_options
    from .sandbox.server import exposure_warning

    try:
        windows = {"run": run_limit, "status": status_limit, "credits": credits_limit}
        config = from_options(
            windows={endpoint: _window(value) for endpoint, value in windows.items()},
            concurrency=concurrency,
            latency=_latency(latency),
            rates=rates,
            api_key=api_key,
            seed=seed,
            time_scale=time_scale,
            credits=credits,
            out_of_credits=out_of_credits,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server = SandboxServer(config, host=host, port=port)

    def ready(s: SandboxServer) -> None:
        stderr.print(
            f"FASHN sandbox on {s.base_url} (key {api_key!r}, time scale {time_scale:g}); "
            "Ctrl-C stops it"
        )
        warning = exposure_warning(host, s.port)
        if warning:
            stderr.print(warning, style="bold yellow")

    server.run_forever(on_ready=ready)
    return 0


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
