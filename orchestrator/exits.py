"""How the command ends when something is raised: one exception in, a message and an
exit code out. This is the only place exit codes are decided for errors.

anyio's task groups wrap what their tasks raise in exception groups, so a group is
unwrapped to the errors inside it: an `OrchestratorError` is handled as itself, Ctrl-C
as an interruption, anything else as a bug (exit 4). Every message is redacted.
"""

from __future__ import annotations

import io
import sys
import traceback
from collections.abc import Callable, Iterator

import click
from rich.console import Console

from .errors import HandledError, OrchestratorError, StopRun, UsageError

INTERRUPTED = StopRun.exit_code  # resumable
USAGE = UsageError.exit_code
INTERNAL = 4  # a bug

Redact = Callable[[str], str]


def handle(exc: BaseException, console: Console, *, redact: Redact, verbose: int) -> int:
    """Print what ended the command on `console`; return the exit code."""
    try:
        return _handle(exc, console, redact=redact, verbose=verbose)
    except Exception as failure:
        # Never let Python print the raw exception instead: its text may hold the key.
        names = f"{type(exc).__name__}, then {type(failure).__name__} while reporting it"
        _say(console, f"internal error: {names}; please report it", redact)
        return INTERNAL


def _handle(exc: BaseException, console: Console, *, redact: Redact, verbose: int) -> int:
    if isinstance(exc, click.ClickException):
        return _click_error(exc, console, redact)
    errors = list(_leaves(exc))
    if any(isinstance(e, (KeyboardInterrupt, click.Abort)) for e in errors):
        _say(console, "interrupted: run `orchestrator resume` to continue", redact)
        return INTERRUPTED
    bugs = [e for e in errors if not isinstance(e, OrchestratorError) or _escaped(e)]
    if bugs:
        if verbose:
            _say(console, "".join(traceback.format_exception(exc)).rstrip(), redact)
        advice = "please report it" if verbose else "run with -v for the traceback, and report it"
        message = f"internal error: {_describe(bugs[0])}; {advice}"
        _say(console, "\n".join([message, *_causes(bugs[0])]), redact)
        _also(console, [e for e in errors if e is not bugs[0]], redact)
        return INTERNAL
    first = errors[0]
    assert isinstance(first, OrchestratorError)
    console.print("error:", style="bold red", end=" ")
    _say(console, "\n".join([str(first), *_causes(first)]), redact)
    _also(console, errors[1:], redact)
    return first.exit_code


def _escaped(exc: OrchestratorError) -> bool:
    """An error meant to be handled inside the run that reached the command line."""
    return isinstance(exc, HandledError)


def _leaves(exc: BaseException) -> Iterator[BaseException]:
    """The errors inside (nested) groups, in order; cancellations only if alone."""
    if not isinstance(exc, BaseExceptionGroup):
        yield exc
        return
    found = [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    # A task cancelled because its sibling failed is not an error of its own.
    real = [e for e in found if not _cancellation(e)]
    yield from real or found


def _cancellation(exc: BaseException) -> bool:
    # anyio.run's default backend is asyncio (the event loop is gone by now, so anyio
    # cannot be asked which class it uses). Not imported: nothing ran, nothing was
    # cancelled (and a command that runs nothing starts without it).
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)


def _causes(exc: BaseException) -> Iterator[str]:
    """'caused by:' lines for each explicit cause (`raise ... from ...`)."""
    seen = {id(exc)}
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        yield f"  caused by: {_describe(cause)}"
        cause = cause.__cause__


def _describe(exc: BaseException) -> str:
    """Our own errors speak for themselves; others need their type to make sense."""
    if isinstance(exc, OrchestratorError) and not _escaped(exc):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _also(console: Console, others: list[BaseException], redact: Redact) -> None:
    for other in others:
        _say(console, f"  also: {_describe(other)}", redact)


def _click_error(exc: click.ClickException, console: Console, redact: Redact) -> int:
    buffer = io.StringIO()
    exc.show(file=buffer)
    _say(console, buffer.getvalue().rstrip("\n"), redact)
    return USAGE


def _say(console: Console, text: str, redact: Redact) -> None:
    """Print verbatim: user data is never markup, and the key is never shown."""
    console.print(redact(text), markup=False, emoji=False, highlight=False)
