"""The picture of the night: an inline SVG with one lane per slot, each prediction a
bar from its acceptance to its completion (coloured by outcome) with its downloads
after it, and the moments the run stopped or resumed, the 429s and the transport
errors marked above the lanes.

Lanes are not recorded: they are assigned from the recorded times by greedy interval
packing (each bar goes to the lowest lane free at its start), which needs no more
lanes than predictions were ever in flight at once, as the client saw them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

SLOTS = 6  # the API's predictions in flight per account: lanes drawn at least
_LEFT, _WIDTH = 64.0, 1000.0  # the plot's x offset and width, in SVG units
_MARK_ROW, _LANE, _GAP = 22.0, 16.0, 5.0
_AXIS = 26.0


@dataclass(frozen=True)
class Bar:
    job_id: str
    model_name: str
    prediction_id: str
    outcome: str  # completed, failed, running
    start: float
    end: float  # completion as the client saw it (the report's end while in flight)
    saved: float | None  # the last output saved, after completion
    error: str | None


def pack_lanes(spans: Sequence[tuple[float, float]]) -> list[int]:
    """The lane of each (start, end) span, spans taken by start: the lowest lane whose
    last span ended at or before this one's start, else a new lane."""
    order = sorted(range(len(spans)), key=lambda i: (spans[i][0], spans[i][1]))
    ends: list[float] = []
    lanes = [0] * len(spans)
    for i in order:
        start, end = spans[i]
        lane = next((k for k, free_at in enumerate(ends) if free_at <= start), len(ends))
        if lane == len(ends):
            ends.append(end)
        else:
            ends[lane] = end
        lanes[i] = lane
    return lanes


def bars(predictions: Sequence[dict[str, Any]], until: float) -> list[Bar]:
    """One bar per accepted prediction; one still in flight runs to `until`."""
    made = []
    for p in predictions:
        finished = p["finished_at"]
        outcome = "running" if finished is None else str(p["state"])
        made.append(
            Bar(
                job_id=str(p["job_id"]),
                model_name=str(p["model_name"]),
                prediction_id=str(p["prediction_id"]),
                outcome=outcome if outcome in ("completed", "failed") else "running",
                start=float(p["accepted_at"]),
                end=float(finished if finished is not None else until),
                saved=p["saved_at"],
                error=p["error_name"],
            )
        )
    return made


def span(
    predictions: Sequence[dict[str, Any]], marks: Sequence[dict[str, Any]]
) -> tuple[float, float] | None:
    """The first and last moment recorded: acceptances, completions, saves and marks."""
    times = [m["at"] for m in marks]
    for p in predictions:
        times += [t for t in (p["accepted_at"], p["finished_at"], p["saved_at"]) if t is not None]
    return (min(times), max(times)) if times else None


def render(predictions: Sequence[dict[str, Any]], marks: Sequence[dict[str, Any]]) -> str:
    """The timeline's SVG (or a line saying there is nothing to draw yet)."""
    extent = span(predictions, marks)
    if extent is None or not predictions:
        return '<p class="empty">No prediction has been accepted yet: nothing to draw.</p>'
    t0, t1 = extent
    drawn = bars(predictions, t1)
    lanes = pack_lanes([(b.start, b.end) for b in drawn])
    count = max(SLOTS, max(lanes) + 1)
    scale = _WIDTH / max(t1 - t0, 1e-9)
    height = _MARK_ROW + count * (_LANE + _GAP) + _AXIS
    x = lambda t: _LEFT + (t - t0) * scale  # noqa: E731
    parts = [
        f'<svg class="timeline" viewBox="0 0 {_LEFT + _WIDTH + 8:.0f} {height:.0f}" '
        f'role="img" aria-label="Predictions over time, one lane per slot">'
    ]
    parts += _lanes(count)
    parts += _stops(marks, x, height)
    for bar, lane in zip(drawn, lanes, strict=True):
        parts.append(_bar(bar, x, _MARK_ROW + lane * (_LANE + _GAP)))
    parts += _marks(marks, x)
    parts += _axis(t0, t1, x, height - _AXIS)
    parts.append("</svg>")
    return "".join(parts)


def _lanes(count: int) -> list[str]:
    out = []
    for lane in range(count):
        y = _MARK_ROW + lane * (_LANE + _GAP)
        extra = " over" if lane >= SLOTS else ""
        out.append(
            f'<rect class="lane{extra}" x="{_LEFT}" y="{y:.1f}" width="{_WIDTH}" '
            f'height="{_LANE}"/><text class="lane-label" x="{_LEFT - 8}" '
            f'y="{y + _LANE - 4:.1f}">slot {lane + 1}</text>'
        )
    return out


def _bar(bar: Bar, x: Any, y: float) -> str:
    left, right = x(bar.start), x(bar.end)
    width = max(right - left, 1.0)
    seconds = bar.end - bar.start
    what = f"{bar.job_id} · {bar.model_name} · {bar.outcome} after {seconds:.1f} s"
    if bar.error:
        what += f" ({bar.error})"
    out = [
        f'<g data-job="{escape(bar.job_id)}"><title>{escape(what)}</title>'
        f'<rect class="bar {bar.outcome}" x="{left:.2f}" y="{y:.1f}" '
        f'width="{width:.2f}" height="{_LANE}" rx="2"/>'
    ]
    if bar.saved is not None and bar.saved > bar.end:
        dl = max(x(bar.saved) - right, 1.0)
        out.append(
            f'<rect class="download" x="{right:.2f}" y="{y + _LANE - 5:.1f}" '
            f'width="{dl:.2f}" height="5"/>'
        )
    out.append("</g>")
    return "".join(out)


def _stops(marks: Sequence[dict[str, Any]], x: Any, height: float) -> list[str]:
    """Runs: each start, end and early stop a line; the time between a run and the
    next one (a resume) shaded."""
    out = []
    bottom = height - _AXIS
    idle: dict[str, Any] | None = None  # the last stop or end, until a run starts
    first = True
    for m in marks:
        at, kind = x(m["at"]), m["kind"]
        if kind in ("run-stop", "run-end"):
            idle = m
            why = f"stopped: {m['message']}" if kind == "run-stop" else "run finished"
            out.append(_rule(kind, at, bottom, why))
        elif kind == "run-start":
            if idle is not None and at > x(idle["at"]):
                out.append(
                    f'<rect class="stopped" x="{x(idle["at"]):.2f}" y="{_MARK_ROW - 4}" '
                    f'width="{at - x(idle["at"]):.2f}" height="{bottom - _MARK_ROW + 4:.1f}">'
                    "<title>not running</title></rect>"
                )
            out.append(_rule(kind, at, bottom, "run started" if first else "resumed"))
            idle, first = None, False
    return out


def _rule(kind: str, at: float, bottom: float, label: str) -> str:
    return (
        f'<line class="{kind}" x1="{at:.2f}" x2="{at:.2f}" y1="{_MARK_ROW - 6}" y2="{bottom:.1f}">'
        f"<title>{escape(label)}</title></line>"
    )


def _marks(marks: Sequence[dict[str, Any]], x: Any) -> list[str]:
    """429s (red) and lost answers (orange) as ticks above the lanes."""
    out = []
    for m in marks:
        kind = {"rate-limited": "m429", "uncertain": "mlost"}.get(m["kind"])
        if kind is None:
            continue
        at = x(m["at"])
        what = f"{m['job_id']}: {m['message']}"
        out.append(
            f'<path class="mark {kind}" d="M{at:.2f} {_MARK_ROW - 3} l-3 -8 h6 z">'
            f"<title>{escape(what)}</title></path>"
        )
    return out


def _axis(t0: float, t1: float, x: Any, y: float) -> list[str]:
    """Elapsed time since the first record, at a round step."""
    total = t1 - t0
    step = next((s for s in _STEPS if total / s <= 8), _STEPS[-1])
    out = [f'<line class="axis" x1="{_LEFT}" x2="{_LEFT + _WIDTH}" y1="{y + 2}" y2="{y + 2}"/>']
    for n in range(int(total / step + 1e-9) + 1):
        tick = n * step  # multiplied, not summed: 0.1 + 0.1 + 0.1 drifts
        at = x(t0 + tick)
        out.append(
            f'<line class="tick" x1="{at:.2f}" x2="{at:.2f}" y1="{y + 2}" y2="{y + 6}"/>'
            f'<text class="tick-label" x="{at:.2f}" y="{y + 18}">{_elapsed(tick)}</text>'
        )
    return out


_STEPS = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
)


def _elapsed(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.1f} s".replace(".0 s", " s")
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d}" if rest else f"{hours} h"
