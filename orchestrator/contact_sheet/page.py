"""The page: head (inline CSS), summary, timeline, filters, one card per job, inline
JS. Written as it goes, one job at a time, so 10,000 jobs need no large memory."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import IO

from ..models import JobState
from ..report import balance_check
from ..store import Store
from . import timeline
from .assets import script, stylesheet
from .cards import CardMaker
from .thumbs import Thumbnailer


@dataclass(frozen=True)
class SheetResult:
    jobs: int
    thumbnails_made: int


@dataclass(frozen=True)
class Summary:
    batches: list[str]
    counts: dict[str, int]
    by_model: list[tuple[str, int, int]]
    credits: int
    uncertain: int
    start: float | None
    end: float | None
    balance: str | None  # what the account was charged, against what was recorded


def write_page(
    store: Store, batches: Sequence[str], *, out_dir: Path, page: Path, out: IO[str]
) -> SheetResult:
    """Write the contact sheet of `batches` to `out`; links are relative to `page`'s
    folder, thumbnails go to `out_dir`/<batch>/.thumbs/."""
    predictions = store.sheet.predictions(batches)
    marks = store.sheet.marks(batches)
    extent = timeline.span(predictions, marks)
    summary = Summary(
        batches=list(batches),
        counts=store.state_counts(batches),
        by_model=store.sheet.credits_by_model(batches),
        credits=store.credits_total(batches),
        uncertain=store.uncertain_count(batches),
        start=extent[0] if extent else None,
        end=extent[1] if extent else None,
        balance=_balance_sentence(store, batches),
    )
    thumbs = Thumbnailer(out_dir, page.parent)
    cards = CardMaker(thumbs, store.sheet.blob, out_dir)
    out.write(_head(summary))
    out.write(_summary(summary))
    out.write('<section class="night"><h2>The night</h2>')
    out.write(_legend())
    out.write(timeline.render(predictions, marks))
    out.write("</section>")
    out.write(_filters(summary))
    out.write('<main id="cards">')
    count = 0
    for count, row in enumerate(store.iter_report(batches), start=1):
        out.write(cards.card(row, count))
    out.write("</main>")
    out.write(f"<script>{script()}</script></body></html>\n")
    return SheetResult(jobs=count, thumbnails_made=thumbs.made)


def _head(s: Summary) -> str:
    title = ", ".join(s.batches) or "no batch"
    made = time.strftime("%Y-%m-%d %H:%M %Z")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Contact sheet · {escape(title)}</title><style>{stylesheet()}</style></head>"
        f'<body><header class="top"><div><p class="kicker">Contact sheet</p>'
        f'<h1>{escape(title)}</h1></div><p class="made">report made {escape(made)}</p></header>'
    )


def _balance_sentence(store: Store, batches: Sequence[str]) -> str | None:
    check = balance_check(store, batches)
    return check.sentence() if check is not None else None


def _balance(sentence: str | None) -> str:
    if sentence is None:
        return ""
    return f'<p class="balance">Last run: {escape(sentence)}</p>'


def _summary(s: Summary) -> str:
    total = sum(s.counts.values())
    states = "".join(
        f'<button type="button" class="chip {st.value}" data-filter-state="{st.value}">'
        f"<b>{s.counts.get(st.value, 0)}</b> {st.value}</button>"
        for st in JobState
        if s.counts.get(st.value)
    )
    models = "".join(
        f"<tr><td>{escape(m)}</td><td>{n}</td><td>{c}</td></tr>" for m, c, n in s.by_model
    )
    uncertain = (
        f'<p class="warn">{s.uncertain} uncertain attempt(s): sent, answer lost, '
        "perhaps charged (see the cards marked uncertain)</p>"
        if s.uncertain
        else '<p class="ok">No uncertain attempt: nothing can have been charged twice.</p>'
    )
    return (
        '<section class="summary">'
        f'<div class="tile jobs"><h2>{total} job{"" if total == 1 else "s"}</h2>'
        f'<div class="chips">{states}</div>{uncertain}</div>'
        f'<div class="tile credits"><h2>{s.credits} credits</h2>'
        "<table><thead><tr><th>model</th><th>jobs</th><th>credits</th></tr></thead>"
        f"<tbody>{models}</tbody></table>{_balance(s.balance)}</div>"
        f'<div class="tile when"><h2>{_duration(s.start, s.end)}</h2><dl>'
        f"<dt>start</dt><dd>{_when(s.start)}</dd><dt>end</dt><dd>{_when(s.end)}</dd></dl></div>"
        "</section>"
    )


def _legend() -> str:
    items = (
        ("completed", "completed"),
        ("failed", "failed"),
        ("running", "in flight"),
        ("download", "download"),
        ("stopped", "stopped"),
        ("m429", "429 on /run"),
        ("mlost", "/run answer lost"),
    )
    keys = "".join(f'<li><i class="key {k}"></i>{label}</li>' for k, label in items)
    return f'<ul class="legend">{keys}</ul>'


def _filters(s: Summary) -> str:
    states = "".join(
        f'<option value="{st.value}">{st.value} ({s.counts[st.value]})</option>'
        for st in JobState
        if s.counts.get(st.value)
    )
    models = "".join(f'<option value="{escape(m)}">{escape(m)}</option>' for m, _, _ in s.by_model)
    return (
        '<nav class="filters" aria-label="Filters">'
        '<label>State <select id="f-state"><option value="">every state</option>'
        f"{states}</select></label>"
        '<label>Model <select id="f-model"><option value="">every model</option>'
        f"{models}</select></label>"
        '<label class="search">Job id <input id="f-search" type="search" placeholder="search…" '
        'autocomplete="off"></label><output id="f-count"></output></nav>'
    )


def _when(at: float | None) -> str:
    return "-" if at is None else escape(time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)))


def _duration(start: float | None, end: float | None) -> str:
    if start is None or end is None:
        return "not run yet"
    if end - start < 10:
        return f"{end - start:.1f} s"
    seconds = round(end - start)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


__all__ = ["SheetResult", "Summary", "write_page"]
