"""The `orchestrator worker` command: one process of a fleet (orchestrator/fleet/).
Parse, call, print: the work is in fleet/worker.py."""

from __future__ import annotations

from typing import Any

import click

from .display import make_console
from .options import db_option, run_options, settings_from
from .store import DbLocation

stderr = make_console(stderr=True)


@click.command()
@click.option(
    "--batch",
    "batches",
    multiple=True,
    metavar="BATCH",
    help="Only this batch's jobs; repeatable.  [default: every batch]",
)
@click.option(
    "--account",
    "accounts",
    multiple=True,
    metavar="NAME",
    envvar="ORCHESTRATOR_ACCOUNTS",
    show_envvar=True,
    help="Only this account's jobs; repeatable.  [default: every account whose key is set]",
)
@click.option(
    "--burst", is_flag=True, help="Exit when no job is left, instead of waiting for more."
)
@click.option(
    "--lease-seconds",
    type=click.FloatRange(min=0.1),
    default=30.0,
    envvar="ORCHESTRATOR_LEASE_SECONDS",
    show_envvar=True,
    show_default=True,
    help="A worker silent this long is dead: others take over its jobs.",
)
@click.option("--idle-poll", type=click.FloatRange(min=0.001), default=1.0, hidden=True)
@db_option
@run_options
def worker(
    batches: tuple[str, ...],
    accounts: tuple[str, ...],
    burst: bool,
    lease_seconds: float,
    idle_poll: float,
    db: DbLocation,
    **opts: Any,
) -> int:
    """Run queued jobs, with any number of other workers on one database, until stopped.

    The fleet's way: `submit --queue-only`, then N workers (on any hosts). Each account's
    key is read from FASHN_API_KEY (account `default`) or FASHN_API_KEY_<NAME>; its
    limits are shared by the whole fleet.
    """
    from .service import check_outputs_writable, run_worker

    settings = settings_from(opts)
    check_outputs_writable(settings.out_dir)
    outcome = run_worker(
        db,
        settings,
        batches=list(batches) or None,
        accounts=list(accounts) or None,
        burst=burst,
        lease_seconds=lease_seconds,
        idle_poll=idle_poll,
        sandbox=(opts["sandbox"], opts["sandbox_scale"], opts["sandbox_seed"]),
    )
    for line in outcome.lines():
        stderr.print(line, markup=False, highlight=False)
    return 0 if outcome.succeeded else 1
