"""The README's command reference is the CLI's own --help: it cannot drift.

Run `python -m tests.unit.test_readme` (or `make docs`) to regenerate it."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from orchestrator.cli import cli

README = Path(__file__).resolve().parents[2] / "README.md"
START, END = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"


def help_text(*args: str) -> str:
    result = CliRunner().invoke(
        cli,
        [*args, "--help"],
        prog_name="orchestrator",  # what `python -m orchestrator` and the script print
        terminal_width=100,
        env={"COLUMNS": "100"},
    )
    assert result.exit_code == 0, result.output
    return result.output.rstrip()


def reference() -> str:
    parts = ["```text", "$ orchestrator --help", help_text()]
    for name in sorted(cli.commands):  # type: ignore[attr-defined]
        parts += ["", f"$ orchestrator {name} --help", help_text(name)]
    parts.append("```")
    return "\n".join(parts)


def current() -> str:
    text = README.read_text()
    match = re.search(re.escape(START) + r"\n(.*)\n" + re.escape(END), text, re.S)
    return match.group(1) if match else ""


def test_readme_command_reference_matches_help() -> None:
    """Every command's --help appears verbatim in the README, as the command prints it."""
    assert current() == reference(), "README is stale: run `make docs`"
    assert "Usage: orchestrator [OPTIONS] COMMAND" in current()
    assert "Usage: cli " not in current()


def test_readme_exit_codes_match_the_code() -> None:
    """The exit-code table lists every code the command can end with."""
    table = README.read_text().split("## Exit codes", 1)[1].split("##", 1)[0]
    codes = set(re.findall(r"^\| (\d) \|", table, re.M))
    assert codes == {"0", "1", "2", "3", "4"}


def test_readme_opens_with_the_two_setup_commands() -> None:
    """The two set-up commands come first, and .ci/run runs the test one."""
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert "make demo" in first_block and "make test" in first_block
    ci = (README.parent / ".ci" / "run").read_text()
    # `make test`, alone or among other targets (e.g. `make lint mypy test`).
    assert re.search(r"^make( [\w-]+)* test\b", ci, re.M), ci


if __name__ == "__main__":
    text = README.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{reference()}\n{END}{tail}")
