"""Log set-up, and the redaction that keeps the API key out of every line printed.

The key can surface in more shapes than its plain text: httpx quotes a refused header
as bytes (`b'Bearer fa-...\\r'`), a repr escapes its control characters, JSON escapes
them differently. A `Redactor` knows every shape of one key and masks them all; the
`RedactFilter` applies it to each record's message, arguments, traceback and stack
before any handler formats it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from rich.console import Console
from rich.logging import RichHandler

from .errors import UsageError

ISO_TIME = "%Y-%m-%d %H:%M:%S"
MASK = "***"
# Any bearer token in a header dump, whether or not it is the configured key.
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+")
# Shorter keys are test or sandbox keys (real ones are far longer): they are masked only
# where they stand as a whole word, so that a key "k" leaves "packshot" alone.
_SHORT_KEY = 8
# Marks the handler set up here, so a second set-up replaces it instead of adding one.
_MARK = "_orchestrator_handler"


class Redactor:
    """Masks every printed form of a secret (and any bearer token) in a text."""

    def __init__(self, secret: str):
        forms = sorted(_forms(secret), key=len, reverse=True)  # longest first
        pattern = "|".join(map(re.escape, forms))
        if forms and len(secret.strip()) < _SHORT_KEY:
            pattern = rf"(?<![\w-])(?:{pattern})(?![\w-])"
        self._pattern = re.compile(pattern) if forms else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _BEARER.sub(rf"\g<1>{MASK}", text)


def _forms(secret: str) -> set[str]:
    """The secret as printed plainly, by repr (of str and of bytes), by JSON and by
    unicode_escape: with and without the whitespace around it."""
    forms = set()
    for value in {secret, secret.strip()}:
        if not value:
            continue
        forms |= {
            value,
            repr(value)[1:-1],
            repr(value.encode("utf-8", "backslashreplace"))[2:-1],
            json.dumps(value)[1:-1],
            json.dumps(value, ensure_ascii=False)[1:-1],
            value.encode("unicode_escape").decode("ascii"),
        }
    return forms


class RedactFilter(logging.Filter):
    """Last line of defence: no record leaves a handler with the key in it.

    The message is formatted here (arguments included) and the traceback rendered to
    text, then both are redacted; `exc_info` is dropped so that no handler renders the
    exception again from the live object.
    """

    _formatter = logging.Formatter()

    def __init__(self, redact: Redactor):
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # wrong arguments: show the format, never crash the caller
            message = f"{record.msg} (unformattable log arguments)"
        record.msg, record.args = self.redact(message), ()
        if record.exc_info:
            record.exc_text = record.exc_text or self._formatter.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class _Verbosity:
    level = 0
    quiet = False


def verbosity() -> int:
    """The -v count of this run (0 until logging is set up)."""
    return _Verbosity.level


def quiet() -> bool:
    """Whether -q was given: no progress, only warnings and errors on the console."""
    return _Verbosity.quiet


# A record's structured fields (`extra={FIELDS: {...}}`): written as keys of their own
# in JSON logs, redacted like the message.
FIELDS = "log_fields"
# Progress lines go to this logger: a terminal shows the live bar instead.
PROGRESS = "orchestrator.progress"
FORMATS = ("text", "json")


class FieldsRedactFilter(RedactFilter):
    """RedactFilter, and the record's structured fields redacted too."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            setattr(
                record,
                FIELDS,
                {k: self.redact(v) if isinstance(v, str) else v for k, v in fields.items()},
            )
        return super().filter(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the
    record's fields, and the traceback if any. The whole line is redacted once more,
    so that no escaping of the key's characters can slip through."""

    def __init__(self, redact: Redactor):
        super().__init__()
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        data = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, FIELDS, None)
        if isinstance(fields, dict):
            data.update(fields)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["traceback"] = record.exc_text
        return self.redact(json.dumps(data, ensure_ascii=False, default=str))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        moment = datetime.fromtimestamp(record.created, tz=UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _NotProgress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name != PROGRESS


def _formatter(log_format: str, redact: Redactor) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(redact)
    return logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt=ISO_TIME)


def _console_handler(
    console: Console, log_format: str, redact: Redactor, stream: IO[str] | None
) -> logging.Handler:
    handler: logging.Handler
    if console.is_terminal:
        # markup off: messages carry file names and API text, printed as they are.
        handler = RichHandler(
            console=console, show_path=False, markup=False, log_time_format=ISO_TIME
        )
        handler.addFilter(_NotProgress())  # the live bar shows it
    else:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(_formatter(log_format, redact))
    return handler


def _file_handler(path: Path, log_format: str, redact: Redactor) -> logging.Handler:
    try:
        handler = logging.FileHandler(path, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the log file {path}: {exc.strerror or exc}; "
            "give --log-file a path in a folder that exists and can be written"
        ) from None
    handler.setFormatter(_formatter(log_format, redact))
    return handler


def setup_logging(
    verbose: int,
    *,
    console: Console,
    secret: str,
    stream: IO[str] | None = None,
    quiet: bool = False,
    log_file: Path | None = None,
    log_format: str = "text",
) -> logging.Handler:
    """Handlers on the root logger, so that every library's records are redacted too:
    rich on a terminal, plain lines (`stream`, default stderr) elsewhere, and
    `log_file` (appended to) when given; `log_format` json makes the plain lines and
    the file one JSON object per line. Returns the console's handler.

    The orchestrator logs at INFO (DEBUG with -vv: every API request); other libraries
    only their warnings. `quiet` leaves only warnings and errors on the console; the
    file keeps everything.
    """
    if log_format not in FORMATS:
        raise UsageError(f"--log-format {log_format!r}: use one of {', '.join(FORMATS)}")
    _Verbosity.level, _Verbosity.quiet = verbose, quiet
    redact = Redactor(secret)
    handler = _console_handler(console, log_format, redact, stream)
    if quiet:
        handler.setLevel(logging.WARNING)
    handlers = [handler]
    if log_file is not None:
        handlers.append(_file_handler(log_file, log_format, redact))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _MARK, False)]:
        root.removeHandler(old)
        old.close()
    for h in handlers:
        h.addFilter(FieldsRedactFilter(redact))
        setattr(h, _MARK, True)
        root.addHandler(h)
    root.setLevel(logging.WARNING)
    ours = logging.getLogger("orchestrator")
    ours.handlers[:] = []
    ours.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    ours.propagate = True
    return handler


def redact_also(secret: str) -> None:
    """Mask `secret` too (a run's webhook token), in every record of the handler that
    `setup_logging` installed. Nothing logs the token; this is the last line of defence."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, _MARK, False):
            handler.addFilter(RedactFilter(Redactor(secret)))
