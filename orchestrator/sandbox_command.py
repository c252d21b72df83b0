"""The `orchestrator sandbox` command: a local FASHN API, served in front, with every
option that shapes it. The sandbox itself (and uvicorn) is imported only when it runs."""

from __future__ import annotations

import click

from .display import make_console
from .errors import UsageError
from .options import parse_limit

stderr = make_console(stderr=True)


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


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8787, show_default=True, help="0 picks a free port.")
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    default=["sandbox"],
    show_default=True,
    help="A key accepted; repeatable: each key is an account of its own (limits, credits).",
)
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
    api_keys: tuple[str, ...],
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
    FASHN_API_KEY=<--api-key> (FASHN_API_KEY_<NAME> for the accounts of the other keys).
    Inspection: GET /_sandbox/stats (the first key's account).
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
            api_key=api_keys[0],
            extra_keys=tuple(api_keys[1:]),
            seed=seed,
            time_scale=time_scale,
            credits=credits,
            out_of_credits=out_of_credits,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    server = SandboxServer(config, host=host, port=port)

    def ready(s: SandboxServer) -> None:
        keys = ", ".join(map(repr, api_keys))
        stderr.print(
            f"FASHN sandbox on {s.base_url} (key {keys}, time scale {time_scale:g}); "
            "Ctrl-C stops it"
        )
        warning = exposure_warning(host, s.port)
        if warning:
            stderr.print(warning, style="bold yellow")

    server.run_forever(on_ready=ready)
    return 0
