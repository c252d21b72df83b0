"""The one results table: rows of (measure, value, target, verdict), as text and Markdown."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PASS, FAIL, INFO = "PASS", "FAIL", "info"
HEADERS = ("measure", "value", "target", "result")


@dataclass(frozen=True)
class Row:
    """One measured figure; `target` is empty and `verdict` "info" when nothing is asked of it."""

    name: str
    value: str
    target: str = ""
    verdict: str = INFO

    @classmethod
    def check(cls, name: str, value: str, target: str, ok: bool) -> Row:
        return cls(name, value, target, PASS if ok else FAIL)

    def cells(self) -> tuple[str, str, str, str]:
        return (self.name, self.value, self.target or "-", self.verdict)


@dataclass
class Section:
    """What one part of the bench measured: its rows, and notes that qualify them."""

    part: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def render_text(rows: Sequence[Row]) -> str:
    """A plain table with fixed columns, as wide as their widest cell."""
    cells = [HEADERS, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEADERS))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def render_markdown(rows: Sequence[Row]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    out = [line(HEADERS), "|" + "|".join(["---"] * len(HEADERS)) + "|"]
    out.extend(line(r.cells()) for r in rows)
    return "\n".join(out)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_line(command: str) -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} cores, {cpu_model()}, Python {platform.python_version()} "
        f"({platform.system()} {platform.release()}); load average at the end: {load}. "
        f"Command: {command}"
    )


def _git(*args: str) -> str:
    root = Path(__file__).resolve().parent.parent
    found = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
    )
    return found.stdout


def code_version() -> str:
    """The commit measured; for a dirty tree, also a hash of the uncommitted diff, so
    that a change made while the bench runs shows."""
    try:
        version = _git("describe", "--always", "--dirty", "--abbrev=7").strip()
        if version.endswith("-dirty"):
            digest = hashlib.sha1(_git("diff", "HEAD").encode()).hexdigest()[:7]
            version += f" (uncommitted diff {digest})"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return version or "unknown"


def command_line() -> str:
    args = " ".join(sys.argv[1:])
    return f"python -m bench {args}".rstrip()


__all__ = [
    "FAIL",
    "INFO",
    "PASS",
    "Row",
    "Section",
    "code_version",
    "command_line",
    "machine_line",
    "render_markdown",
    "render_text",
]
