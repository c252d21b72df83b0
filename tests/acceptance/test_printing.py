"""What the command prints: user data verbatim (never read as rich markup or emoji codes),
unwrapped lines off a terminal, ISO times, every request at -vv, and one error handler
that unwraps exception groups and never shows the key."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator import cli as cli_module
from orchestrator.display import print_summary
from orchestrator.errors import AuthError, UsageError
from orchestrator.logs import setup_logging
from orchestrator.report import Summary

from .test_cli import LIMITS, cli, write_manifest

HOSTILE = ":thumbs_up: :x: [bold]x[/bold] [/]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide loggers: put them back after the test."""
    root, ours = logging.getLogger(), logging.getLogger("orchestrator")
    saved = (root.handlers[:], root.level, ours.handlers[:], ours.level, ours.propagate)
    yield
    root.handlers[:], root.level, ours.handlers[:], ours.level, ours.propagate = saved


def terminal() -> tuple[Console, io.StringIO]:
    """A console that believes it is a terminal, with rich's defaults (markup, emoji on)."""
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=True, width=200), buffer


# ------------------------------------------------------------- user data verbatim


def test_a_manifest_problem_is_printed_verbatim(tmp_path: Path) -> None:
    """A file name with emoji codes and markup is echoed as written, not as 👍 or ❌."""
    manifest = tmp_path / "m.csv"
    image = f"shots/{HOSTILE}/front:x:.png"
    manifest.write_text(f"id,model_name,inputs.image\na,background-remove,{image}\n")
    done = cli("submit", str(manifest), "--queue-only", "--db", str(tmp_path / "q.db"))
    assert done.returncode == 2, done.stderr
    assert image in done.stderr
    assert "👍" not in done.stderr and "❌" not in done.stderr


def test_a_failure_reason_is_printed_verbatim_by_status(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The API's message for a failed job (it quotes the model name) reaches `status`,
    the log and the summary exactly as the API wrote it."""
    server = sandbox(api_key="k")
    env = {"FASHN_API_KEY": "k", "FASHN_BASE_URL": server.base_url}
    manifest = tmp_path / "m.jsonl"
    job = {"id": "odd", "model_name": HOSTILE, "inputs": {"image": "https://x/a.png"}}
    manifest.write_text(json.dumps(job) + "\n")
    db = tmp_path / "q.db"
    done = cli("submit", str(manifest), "--db", str(db), "--out", str(tmp_path), *LIMITS, env=env)
    assert done.returncode == 1, done.stderr
    assert f"unknown model {HOSTILE!r}" in done.stderr
    status = cli("status", "--db", str(db))
    assert status.returncode == 0, status.stderr
    assert f"unknown model {HOSTILE!r}" in status.stdout
    assert "👍" not in status.stdout + done.stderr


def test_the_summary_is_verbatim_even_on_a_terminal_console() -> None:
    """print_summary builds Text, so even a console with markup and emoji on prints
    failure reasons and batch names as they are."""
    console, buffer = terminal()
    summary = Summary(
        batches=["b"],
        counts={"failed": 2},
        credits=0,
        uncertain=0,
        failure_reasons=[(f"BadRequest: {HOSTILE}", 2)],
    )
    print_summary(console, summary)
    text = ANSI.sub("", buffer.getvalue())
    assert f"2 failed: BadRequest: {HOSTILE}" in text, text


def test_log_lines_on_a_terminal_are_verbatim_with_iso_times(restore_logging: None) -> None:
    """The rich handler: no markup, no emoji codes, times as 2026-12-01 20:31:05."""
    console, buffer = terminal()
    setup_logging(0, console=console, secret="")
    logging.getLogger("orchestrator").warning("job %s failed: %s", "a", HOSTILE)
    text = ANSI.sub("", buffer.getvalue())
    assert f"job a failed: {HOSTILE}" in text, text
    assert ISO_TIME.search(text), text


def test_plain_log_lines_have_iso_times(restore_logging: None) -> None:
    """Off a terminal: one plain line per record, ISO time first."""
    buffer = io.StringIO()
    setup_logging(0, console=Console(file=buffer), secret="", stream=buffer)
    logging.getLogger("orchestrator").info("%s", HOSTILE)
    line = buffer.getvalue()
    assert ISO_TIME.match(line) and line.rstrip().endswith(f"INFO {HOSTILE}"), line


# ------------------------------------------------------------- no wrapping off a terminal


def test_a_long_error_message_stays_on_one_line_off_a_terminal(tmp_path: Path) -> None:
    """Piped stderr is not hard-wrapped at 80 columns: a message is one line."""
    name = "batch-" + "x" * 200
    write_manifest(tmp_path / "catalog.csv", 1)
    cli("submit", str(tmp_path / "catalog.csv"), "--queue-only", "--db", str(tmp_path / "q.db"))
    done = cli("status", name, "--db", str(tmp_path / "q.db"), env={"COLUMNS": "80"})
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and f"no batch named {name!r}" in lines[0], done.stderr


# ------------------------------------------------------------- -vv: every request


def test_vv_logs_every_api_request(sandbox, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """-vv: a line per request with method, path and status, never a header."""
    server = sandbox(api_key="sk-vv-secret", latency={"*": (1.0, 2.0)})
    env = {"FASHN_API_KEY": "sk-vv-secret", "FASHN_BASE_URL": server.base_url}
    manifest = write_manifest(tmp_path / "catalog.csv", 3)
    args = ["submit", str(manifest), "--db", str(tmp_path / "q.db"), "--out", str(tmp_path)]
    done = cli("-vv", *args, *LIMITS, env=env)
    assert done.returncode == 0, done.stderr
    runs = re.findall(r"POST /run -> 200", done.stderr)
    statuses = re.findall(r"GET /status/\S+ -> 200", done.stderr)
    arrivals = server.state.stats()["arrivals"]
    assert len(runs) == arrivals["run"] == 3, done.stderr
    assert len(statuses) == arrivals["status"], done.stderr
    assert "Bearer" not in done.stderr and "sk-vv-secret" not in done.stderr
    quiet = cli(*args, *LIMITS, env=env)
    assert "POST /run" not in quiet.stderr


# ------------------------------------------------------------- one error handler


def fail_with(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    """The `status` command raises `exc`, as a task group would."""

    def boom(**_params: object) -> None:
        raise exc

    monkeypatch.setattr(cli_module.status, "callback", boom)


def run_main(tmp_path: Path, *args: str) -> int:
    with pytest.raises(SystemExit) as exited:
        cli_module.main([*args, "status", "--db", str(tmp_path / "q.db")])
    return int(exited.value.code or 0)


@pytest.mark.usefixtures("restore_logging")
def test_an_error_inside_exception_groups_is_handled_as_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """anyio raises groups: the OrchestratorError inside gives its exit code and message."""
    inner = ExceptionGroup("tasks", [AuthError("the API refused the key: set FASHN_API_KEY")])
    fail_with(monkeypatch, ExceptionGroup("outer", [inner]))
    assert run_main(tmp_path) == 3
    err = capsys.readouterr().err
    assert "error: the API refused the key: set FASHN_API_KEY" in err
    assert "ExceptionGroup" not in err and "Traceback" not in err


@pytest.mark.usefixtures("restore_logging")
def test_the_chain_of_causes_is_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        try:
            raise OSError(28, "No space left on device")
        except OSError as cause:
            raise UsageError("cannot write the queue") from cause
    except UsageError as exc:
        fail_with(monkeypatch, ExceptionGroup("tasks", [exc]))
    assert run_main(tmp_path) == 2
    err = capsys.readouterr().err
    assert "error: cannot write the queue\n  caused by: OSError: [Errno 28] No space" in err


@pytest.mark.usefixtures("restore_logging")
def test_an_unexpected_exception_exits_4_with_the_traceback_only_at_v(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bug: exit 4, its type and message, the key redacted; the traceback with -v."""
    key = "fa-GROUPLEAK-1234"
    monkeypatch.setenv("FASHN_API_KEY", key + "\r\n")
    fail_with(monkeypatch, ExceptionGroup("tasks", [RuntimeError(f"boom {key!r}")]))
    assert run_main(tmp_path) == 4
    err = capsys.readouterr().err
    assert "internal error: RuntimeError: boom" in err
    assert "run with -v for the traceback, and report it" in err
    assert "Traceback" not in err and key not in err
    assert run_main(tmp_path, "-v") == 4
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError" in err and key not in err


@pytest.mark.usefixtures("restore_logging")
def test_ctrl_c_inside_a_group_is_an_interruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fail_with(monkeypatch, BaseExceptionGroup("tasks", [KeyboardInterrupt()]))
    assert run_main(tmp_path) == 3
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
def test_an_api_error_that_escapes_the_run_is_an_internal_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Errors the run handles itself (API answers, failed downloads) share the one
    exception root; one that reaches the command line is a bug: exit 4, not exit 1."""
    from orchestrator.api import Transient
    from orchestrator.errors import OrchestratorError
    from orchestrator.outputs import OutputError

    assert issubclass(Transient, OrchestratorError) and issubclass(OutputError, OrchestratorError)
    fail_with(monkeypatch, ExceptionGroup("tasks", [Transient("GET /status/x timed out")]))
    assert run_main(tmp_path) == 4
    assert "internal error: Transient: GET /status/x timed out" in capsys.readouterr().err
