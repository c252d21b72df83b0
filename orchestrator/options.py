"""The command line's shared options (with their environment fallbacks) and the run
settings they make. Declarations only: the commands are in cli.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_DB,
    RUN_DEFAULTS,
    RateLimit,
    Settings,
    read_api_key,
)
from .errors import UsageError
from .naming import DEFAULT_TEMPLATE, NameTemplate
from .store.location import DbLocation

F = TypeVar("F", bound=Callable[..., Any])


class DatabaseParam(click.ParamType):
    """`--db`: a SQLite file, or a PostgreSQL URL (shown without its password)."""

    name = "PATH|URL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return DbLocation.of(value)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def db_option(f: F) -> F:
    return click.option(
        "--db",
        type=DatabaseParam(),
        default=DEFAULT_DB,
        envvar="ORCHESTRATOR_DB",
        show_envvar=True,
        show_default=True,
        help="The queue: a SQLite file, or postgresql+psycopg://USER@HOST/DB.",
    )(f)


def parse_limit(_ctx: Any, param: click.Parameter, value: str | None) -> RateLimit | None:
    if value is None or value.lower() == "none":
        return None
    return RateLimit.parse(value, option=f"--{param.name.replace('_', '-')}" if param.name else "")


def _env_option(name: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(name, envvar=env, show_envvar=True, show_default=True, **kwargs)


def log_options(f: F) -> F:
    """The group's options: how much is logged, and where (see logs.setup_logging)."""
    options = (
        click.option("-v", "--verbose", count=True, help="More log output (-vv: every request)."),
        click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors; no progress."),
        _env_option(
            "--log-file",
            "ORCHESTRATOR_LOG_FILE",
            type=click.Path(dir_okay=False, path_type=Path),
            help="Also append every log line here (progress included, whatever -q says).",
        ),
        _env_option(
            "--log-format",
            "ORCHESTRATOR_LOG_FORMAT",
            type=click.Choice(["text", "json"]),
            default="text",
            help="json: one object per line (time, level, message, fields), in the log file"
            " and on stderr when it is not a terminal.",
        ),
    )
    for option in reversed(options):
        f = option(f)
    return f


def out_option(f: F) -> F:
    """Where outputs are (and, for the HTML report, where thumbnails go)."""
    return _env_option(
        "--out",
        "ORCHESTRATOR_OUT",
        type=click.Path(file_okay=False, path_type=Path),
        default=RUN_DEFAULTS["out"],
        help="Outputs go under OUT, named by the batch's --name-template.",
    )(f)


# What every command that runs the queue takes (submit, resume, retry).
RUN_OPTIONS: tuple[Callable[[F], F], ...] = (
    out_option,
    _env_option(
        "--concurrency",
        "ORCHESTRATOR_CONCURRENCY",
        type=click.IntRange(1, 64),
        default=RUN_DEFAULTS["concurrency"],
        help="Most predictions in flight at once (the API allows 6 per account).",
    ),
    _env_option(
        "--run-limit",
        "ORCHESTRATOR_RUN_LIMIT",
        default=RUN_DEFAULTS["run_limit"],
        callback=parse_limit,
        help="Most POST /run requests in any window: N/SECONDS, or 'none'.",
    ),
    _env_option(
        "--status-limit",
        "ORCHESTRATOR_STATUS_LIMIT",
        default=RUN_DEFAULTS["status_limit"],
        callback=parse_limit,
        help="Most GET /status requests in any window: N/SECONDS, or 'none'.",
    ),
    _env_option(
        "--max-attempts",
        "ORCHESTRATOR_MAX_ATTEMPTS",
        type=click.IntRange(1, 20),
        default=RUN_DEFAULTS["max_attempts"],
        help="Predictions per job before a retryable failure becomes final.",
    ),
    _env_option(
        "--max-credits",
        "ORCHESTRATOR_MAX_CREDITS",
        type=click.IntRange(min=0),
        default=RUN_DEFAULTS["max_credits"],
        help="Most credits the batch may spend (charged net of refunds); no more jobs start"
        " once the next one would pass it.  [default: no cap]",
    ),
    click.option(
        "--polling",
        type=click.Choice(["adaptive", "uniform"]),
        default=RUN_DEFAULTS["polling"],
        show_default=True,
        help="adaptive: ask about the prediction likeliest to be done; uniform: round robin.",
    ),
    _env_option(
        "--webhook-url",
        "ORCHESTRATOR_WEBHOOK_URL",
        metavar="URL",
        callback=lambda _ctx, _param, value: _webhook_url(value),
        help="Have FASHN POST each finished prediction to URL/<token>/<attempt>: a public "
        "URL that reaches --webhook-listen. Polling stays on as the net.",
    ),
    _env_option(
        "--webhook-listen",
        "ORCHESTRATOR_WEBHOOK_LISTEN",
        metavar="HOST:PORT",
        callback=lambda _ctx, _param, value: _webhook_listen(value),
        help="Where the webhook receiver listens (with --webhook-url).",
    ),
    click.option(
        "--sandbox",
        is_flag=True,
        help="Run against an in-process FASHN sandbox: no API key, no credits spent.",
    ),
    click.option(
        "--sandbox-scale",
        type=click.FloatRange(min=0.001, max=10),
        default=RUN_DEFAULTS["sandbox_scale"],
        show_default=True,
        help="With --sandbox: multiplies every duration (latencies, windows).",
    ),
    click.option(
        "--sandbox-seed",
        type=int,
        default=RUN_DEFAULTS["sandbox_seed"],
        show_default=True,
        hidden=True,
    ),
)


def parse_template(_ctx: Any, _param: click.Parameter, value: str | None) -> NameTemplate | None:
    return None if value is None else NameTemplate.parse(value)


def name_template_option(f: F) -> F:
    """Where outputs go; stored with the batch, so `resume` and reports keep it."""
    return click.option(
        "--name-template",
        envvar="ORCHESTRATOR_NAME_TEMPLATE",
        show_envvar=True,
        callback=parse_template,
        metavar="TEMPLATE",
        help=f"Output paths under --out (default: the batch's own, at first {DEFAULT_TEMPLATE});"
        " fields {batch} {id} {model} {n} {ext} {meta.<name>}.",
    )(f)


def reuse_option(f: F) -> F:
    return click.option(
        "--reuse",
        is_flag=True,
        envvar="ORCHESTRATOR_REUSE",
        show_envvar=True,
        help="A job whose model and inputs already completed in this database takes those"
        " outputs (linked, sha256 checked) instead of a new prediction.",
    )(f)


def _webhook_url(value: str | None) -> str | None:
    if not value:
        return None
    from .webhooks.address import check_url  # only when given: it imports the HTTP client

    return check_url(value)


def _webhook_listen(value: str | None) -> tuple[str, int] | None:
    if not value:
        return None
    from .webhooks.address import parse_listen

    return parse_listen(value)


def run_options(f: F) -> F:
    for option in reversed(RUN_OPTIONS):
        f = option(f)
    return f


def settings_from(opts: dict[str, Any], api_key: str = "", base_url: str | None = None) -> Settings:
    return Settings(
        base_url=base_url or os.environ.get("FASHN_BASE_URL") or DEFAULT_BASE_URL,
        api_key=api_key,
        out_dir=opts["out"],
        concurrency=opts["concurrency"],
        run_limit=opts["run_limit"],
        status_limit=opts["status_limit"],
        max_attempts=opts["max_attempts"],
        max_credits=opts["max_credits"],
        polling=opts["polling"],
        **_webhooks(opts),
    )


def api_target() -> tuple[str, str]:
    """The API's base URL and the key (stripped and checked; "" when not set)."""
    return os.environ.get("FASHN_BASE_URL") or DEFAULT_BASE_URL, read_api_key()


def _webhooks(opts: dict[str, Any]) -> dict[str, Any]:
    """The webhook settings: both options, or neither."""
    url, listen = opts.get("webhook_url"), opts.get("webhook_listen")
    if (url is None) != (listen is None):
        raise UsageError(
            "--webhook-url and --webhook-listen go together: the URL that FASHN POSTs to, "
            "and the HOST:PORT behind it where the receiver listens"
        )
    return {"webhook_url": url, "webhook_listen": listen}


@contextmanager
def target(
    opts: dict[str, Any], *, api_key: str | None = None, base_url: str | None = None
) -> Iterator[Settings]:
    """The settings to run with: the real API (key required) or the sandbox. The key
    and the API root are FASHN_API_KEY and FASHN_BASE_URL unless given."""
    if opts["sandbox"]:
        from .service import sandbox_settings  # the sandbox: not needed to run the real API

        # The sandbox's own key is used: FASHN_API_KEY is neither read nor checked.
        with sandbox_settings(
            settings_from(opts), time_scale=opts["sandbox_scale"], seed=opts["sandbox_seed"]
        ) as sandboxed:
            yield sandboxed
        return
    # Stripped, or refused if unprintable: before any request.
    api_key = read_api_key() if api_key is None else read_api_key({API_KEY_ENV: api_key})
    if not api_key:
        raise UsageError(
            "FASHN_API_KEY is not set: export your API key (or use --sandbox to rehearse "
            "against the local sandbox, or --queue-only to queue without running)"
        )
    yield settings_from(opts, api_key, base_url)
