"""The command line's shared options (with their environment fallbacks) and the run
settings they make. Declarations only: the commands are in cli.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from .config import DEFAULT_BASE_URL, DEFAULT_DB, DEFAULT_OUT, RateLimit, Settings, read_api_key
from .errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
SANDBOX_SCALE = 0.05  # --sandbox runs 20x faster than the real API by default


def db_option(f: F) -> F:
    return click.option(
        "--db",
        type=click.Path(dir_okay=False, path_type=Path),
        default=DEFAULT_DB,
        envvar="ORCHESTRATOR_DB",
        show_envvar=True,
        show_default=True,
        help="The SQLite queue.",
    )(f)


def parse_limit(_ctx: Any, param: click.Parameter, value: str | None) -> RateLimit | None:
    if value is None or value.lower() == "none":
        return None
    return RateLimit.parse(value, option=f"--{param.name.replace('_', '-')}" if param.name else "")


def _env_option(name: str, env: str, **kwargs: Any) -> Callable[[F], F]:
    return click.option(name, envvar=env, show_envvar=True, show_default=True, **kwargs)


# What every command that runs the queue takes (submit, resume).
RUN_OPTIONS: tuple[Callable[[F], F], ...] = (
    _env_option(
        "--out",
        "ORCHESTRATOR_OUT",
        type=click.Path(file_okay=False, path_type=Path),
        default=DEFAULT_OUT,
        help="Outputs go to OUT/<batch>/<job-id>/<n>.<ext>.",
    ),
    _env_option(
        "--concurrency",
        "ORCHESTRATOR_CONCURRENCY",
        type=click.IntRange(1, 64),
        default=6,
        help="Most predictions in flight at once (the API allows 6 per account).",
    ),
    _env_option(
        "--run-limit",
        "ORCHESTRATOR_RUN_LIMIT",
        default="50/60",
        callback=parse_limit,
        help="Most POST /run requests in any window: N/SECONDS, or 'none'.",
    ),
    _env_option(
        "--status-limit",
        "ORCHESTRATOR_STATUS_LIMIT",
        default="50/10",
        callback=parse_limit,
        help="Most GET /status requests in any window: N/SECONDS, or 'none'.",
    ),
    _env_option(
        "--max-attempts",
        "ORCHESTRATOR_MAX_ATTEMPTS",
        type=click.IntRange(1, 20),
        default=3,
        help="Predictions per job before a retryable failure becomes final.",
    ),
    click.option(
        "--polling",
        type=click.Choice(["adaptive", "uniform"]),
        default="adaptive",
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
        default=SANDBOX_SCALE,
        show_default=True,
        help="With --sandbox: multiplies every duration (latencies, windows).",
    ),
    click.option("--sandbox-seed", type=int, default=0, show_default=True, hidden=True),
)


def _webhook_url(value: str | None) -> str | None:
    from .webhooks.address import check_url  # only when given: it imports the HTTP client

    return check_url(value) if value else None


def _webhook_listen(value: str | None) -> tuple[str, int] | None:
    from .webhooks.address import parse_listen

    return parse_listen(value) if value else None


def run_options(f: F) -> F:
    for option in reversed(RUN_OPTIONS):
        f = option(f)
    return f


def settings_from(opts: dict[str, Any], api_key: str = "") -> Settings:
    return Settings(
        base_url=os.environ.get("FASHN_BASE_URL") or DEFAULT_BASE_URL,
        api_key=api_key,
        out_dir=opts["out"],
        concurrency=opts["concurrency"],
        run_limit=opts["run_limit"],
        status_limit=opts["status_limit"],
        max_attempts=opts["max_attempts"],
        polling=opts["polling"],
        **_webhooks(opts),
    )


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
def target(opts: dict[str, Any]) -> Iterator[Settings]:
    """The settings to run with: the real API (key required) or the sandbox."""
    if opts["sandbox"]:
        from .service import sandbox_settings  # the sandbox: not needed to run the real API

        # The sandbox's own key is used: FASHN_API_KEY is neither read nor checked.
        with sandbox_settings(
            settings_from(opts), time_scale=opts["sandbox_scale"], seed=opts["sandbox_seed"]
        ) as sandboxed:
            yield sandboxed
        return
    api_key = read_api_key()  # stripped, or refused if unprintable: before any request
    if not api_key:
        raise UsageError(
            "FASHN_API_KEY is not set: export your API key (or use --sandbox to rehearse "
            "against the local sandbox, or --queue-only to queue without running)"
        )
    yield settings_from(opts, api_key)
