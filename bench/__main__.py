"""`python -m bench [--only PART] [--quick]`: run the parts, print one table, save it.

Exit code: 0 when every target is met, 1 when any row FAILs, 2 on usage errors.
bench/results.md is written only by a full run (neither --only nor --quick), so a
smoke check never overwrites the figures the README quotes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import compare, detection, efficiency, fleet, overhead, resume, scale, sheet, webhooks
from .runs import Runs
from .table import (
    FAIL,
    Row,
    Section,
    code_version,
    command_line,
    machine_line,
    render_markdown,
    render_text,
)

RESULTS = Path(__file__).with_name("results.md")
Part = Callable[[Runs, bool], Section]

PARTS: dict[str, Part] = {
    "efficiency": lambda runs, quick: efficiency.measure(runs),
    "detection": lambda runs, quick: detection.measure(runs),
    "webhooks": lambda runs, quick: webhooks.measure(runs),
    "peer": lambda runs, quick: compare.measure(
        runs, ("middle",) if quick else ("middle", "short")
    ),
    "overhead": lambda runs, quick: overhead.measure(quick=quick),
    "scale": lambda runs, quick: scale.measure(quick=quick),
    "resume": lambda runs, quick: resume.measure(quick=quick),
    "sheet": lambda runs, quick: sheet.measure(quick=quick),
    "fleet": lambda runs, quick: fleet.measure(quick=quick),
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only", choices=list(PARTS), action="append", help="run only this part (repeatable)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes: a smoke check")
    return parser.parse_args(argv)


def _logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[bench %(asctime)s] %(message)s", "%H:%M:%S"))
    bench = logging.getLogger("bench")
    bench.handlers[:] = [handler]
    bench.setLevel(logging.INFO)
    bench.propagate = False
    logging.getLogger("orchestrator").setLevel(logging.ERROR)  # its warnings are expected noise


def _run_part(name: str, runs: Runs, quick: bool) -> Section:
    """One part; if it breaks, a FAIL row says how, and the other parts still run."""
    try:
        return PARTS[name](runs, quick)
    except Exception as exc:  # a broken part is a result too: the table must still print
        logging.getLogger("bench").exception("%s failed", name)
        lines = str(exc).strip().splitlines()
        what = f"{type(exc).__name__}: {lines[0] if lines else ''}"[:120]
        return Section(name, [Row(f"{name}: part did not complete", what, "completes", FAIL)])


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _logging()
    names = args.only or list(PARTS)
    runs = Runs(quick=args.quick)
    version = code_version()
    sections: list[Section] = []
    started = time.monotonic()
    for name in names:
        part_started = time.monotonic()
        sections.append(_run_part(name, runs, args.quick))
        logging.getLogger("bench").info("%s done in %.0f s", name, time.monotonic() - part_started)
    rows = [row for s in sections for row in s.rows]
    notes = [note for s in sections for note in s.notes]
    minutes, seconds = divmod(time.monotonic() - started, 60)
    measured = f"Code measured: {version}."
    if code_version() != version:
        measured += (
            f" It changed during the run (now {code_version()}): child processes ran newer code."
        )
    footer = [
        measured,
        "Numbers are noisy: the machine is shared, and each figure is one run.",
        f"{machine_line(command_line())} Took {minutes:.0f} min {seconds:.0f} s.",
    ]
    print(render_text(rows))
    print()
    for line in [*notes, *footer]:
        print(f"- {line}")
    if args.only or args.quick:
        print(f"\n(partial run: {RESULTS.name} not written)")
    else:
        markdown = [render_markdown(rows), "", *(f"- {line}" for line in [*notes, *footer]), ""]
        RESULTS.write_text("\n".join(markdown))
        print(f"\nwritten to {RESULTS}")
    return 1 if any(row.verdict == FAIL for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
