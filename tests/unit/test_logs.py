"""Log set-up: a log file beside the console, JSON lines, -q, and the key redacted in
every one of them (message, fields, traceback)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.errors import UsageError
from orchestrator.logs import FIELDS, PROGRESS, setup_logging

SECRET = "sk-live-LOGS-0123456789abcdef"
log = logging.getLogger("orchestrator")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide loggers: put them back after each test."""
    root, ours = logging.getLogger(), logging.getLogger("orchestrator")
    saved = (root.handlers[:], root.level, ours.handlers[:], ours.level, ours.propagate)
    yield
    for handler in root.handlers:
        if handler not in saved[0]:
            handler.close()
    root.handlers[:], root.level, ours.handlers[:], ours.level, ours.propagate = saved


def plain_console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer), buffer


def emit_with_secret() -> None:
    """A message, a field and a traceback that each carry the key."""
    log.error("job failed: %s", f"Bearer {SECRET}", extra={FIELDS: {"job": "a", "error": SECRET}})
    try:
        raise RuntimeError(f"key {SECRET!r} refused")
    except RuntimeError:
        log.exception("while sending")


def test_json_lines_on_stderr_and_in_the_file_carry_fields_and_never_the_key(
    tmp_path: Path,
) -> None:
    """--log-format json: one object per line on stderr (not a terminal) and in the
    file, with the record's fields as keys; the key is masked everywhere."""
    console, buffer = plain_console()
    path = tmp_path / "run.log"
    setup_logging(
        0, console=console, secret=SECRET, stream=buffer, log_file=path, log_format="json"
    )
    emit_with_secret()
    for text in (buffer.getvalue(), path.read_text()):
        assert SECRET not in text
        first, second = (json.loads(line) for line in text.splitlines())
        assert first["level"] == "ERROR" and first["logger"] == "orchestrator"
        assert first["job"] == "a" and first["error"] == "***"
        assert first["message"] == "job failed: Bearer ***"
        assert first["time"].endswith("Z")
        assert "RuntimeError" in second["traceback"] and "***" in second["traceback"]


def test_text_lines_in_the_file_are_redacted(tmp_path: Path) -> None:
    """--log-file with the text format: ISO time, level, message; the key masked."""
    console, buffer = plain_console()
    path = tmp_path / "run.log"
    setup_logging(0, console=console, secret=SECRET, stream=buffer, log_file=path)
    emit_with_secret()
    text = path.read_text()
    assert SECRET not in text
    assert " ERROR job failed: Bearer ***" in text.splitlines()[0]
    assert "RuntimeError" in text


def test_quiet_keeps_warnings_on_the_console_and_everything_in_the_file(tmp_path: Path) -> None:
    """-q: info lines (progress included) leave the console, not the log file."""
    console, buffer = plain_console()
    path = tmp_path / "run.log"
    setup_logging(0, console=console, secret="", stream=buffer, log_file=path, quiet=True)
    log.info("saved 3 outputs")
    logging.getLogger(PROGRESS).info("50.0% of 10 jobs finished")
    log.warning("stopping: interrupted")
    assert buffer.getvalue().splitlines()[-1].endswith("WARNING stopping: interrupted")
    assert len(buffer.getvalue().splitlines()) == 1
    assert len(path.read_text().splitlines()) == 3


def test_a_terminal_leaves_progress_lines_to_the_bar(tmp_path: Path) -> None:
    """On a terminal the progress logger is not printed (the live bar shows it), but
    the log file still gets it."""
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    path = tmp_path / "run.log"
    setup_logging(0, console=console, secret="", log_file=path)
    logging.getLogger(PROGRESS).info("50.0% of 10 jobs finished")
    log.info("another line")
    assert "jobs finished" not in buffer.getvalue() and "another line" in buffer.getvalue()
    assert "50.0% of 10 jobs finished" in path.read_text()


def test_a_log_file_that_cannot_be_written_is_a_usage_error(tmp_path: Path) -> None:
    """A missing folder: UsageError naming the path and what to do."""
    console, _ = plain_console()
    with pytest.raises(UsageError, match="--log-file"):
        setup_logging(0, console=console, secret="", log_file=tmp_path / "no" / "run.log")


def test_setting_up_again_replaces_the_handlers_and_closes_the_file(tmp_path: Path) -> None:
    """A second set-up leaves one console handler and no second copy of the file's."""
    console, buffer = plain_console()
    path = tmp_path / "run.log"
    setup_logging(0, console=console, secret="", stream=buffer, log_file=path)
    setup_logging(0, console=console, secret="", stream=buffer, log_file=path)
    log.info("once")
    assert path.read_text().count("once") == 1
    assert buffer.getvalue().count("once") == 1
