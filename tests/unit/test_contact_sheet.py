"""The contact sheet's pure parts: lanes, bars, the SVG, errors in words, thumbnails."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from orchestrator.contact_sheet.thumbs import SIDE, shrink
from orchestrator.contact_sheet.timeline import bars, pack_lanes, render
from orchestrator.contact_sheet.words import in_words


@pytest.mark.parametrize(
    ("spans", "lanes"),
    [
        ([], []),
        ([(0, 10)], [0]),
        ([(0, 10), (10, 20)], [0, 0]),  # a bar may start where the last one ended
        ([(0, 10), (5, 20), (12, 14)], [0, 1, 0]),  # the lowest free lane
        ([(5, 20), (0, 10), (12, 14)], [1, 0, 0]),  # taken by start, answered in order
        ([(0, 9)] * 7, [0, 1, 2, 3, 4, 5, 6]),  # more at once than slots: a 7th lane
    ],
)
def test_pack_lanes(spans: list[tuple[float, float]], lanes: list[int]) -> None:
    """Greedy interval packing: the lowest lane free at each bar's start."""
    assert pack_lanes(spans) == lanes


def _prediction(i: int, accepted: float, finished: float | None, **extra: Any) -> dict[str, Any]:
    return {
        "job_id": f"job-{i}",
        "model_name": "background-remove",
        "prediction_id": f"p-{i}",
        "state": "completed" if finished is not None else "submitted",
        "error_name": None,
        "accepted_at": accepted,
        "finished_at": finished,
        "saved_at": None,
        **extra,
    }


def test_a_prediction_in_flight_runs_to_the_end_of_the_record() -> None:
    """No completion recorded: the bar is 'running' and ends at the last moment known."""
    (done, flying) = bars([_prediction(0, 0.0, 4.0), _prediction(1, 1.0, None)], until=9.0)
    assert (done.outcome, done.end) == ("completed", 4.0)
    assert (flying.outcome, flying.end) == ("running", 9.0)


def test_svg_has_a_bar_per_prediction_and_a_mark_per_refusal() -> None:
    """Bars, downloads, 429s, lost answers and a resume's shaded gap are all drawn."""
    predictions = [
        _prediction(0, 0.0, 4.0, saved_at=5.0),
        _prediction(1, 1.0, 30.0, state="failed", error_name="PoseError"),
        _prediction(2, 40.0, None),
    ]
    marks = [
        {"at": 0.0, "kind": "run-start", "message": "run started", "job_id": None},
        {"at": 0.5, "kind": "rate-limited", "message": "/run refused: 429", "job_id": "job-1"},
        {"at": 2.0, "kind": "uncertain", "message": "/run answer lost", "job_id": "job-2"},
        {"at": 31.0, "kind": "run-stop", "message": "received SIGINT", "job_id": None},
        {"at": 39.0, "kind": "run-start", "message": "run started", "job_id": None},
    ]
    svg = render(predictions, marks)
    assert svg.count('class="bar ') == 3
    assert svg.count('class="bar failed"') == 1 and svg.count('class="bar running"') == 1
    assert svg.count('class="download"') == 1
    assert svg.count("mark m429") == 1 and svg.count("mark mlost") == 1
    assert svg.count('class="stopped"') == 1 and "resumed" in svg
    assert svg.count('class="lane"') == 6  # one lane per slot, however few are used


def test_nothing_accepted_draws_no_timeline() -> None:
    """A batch not yet run says so instead of drawing empty lanes."""
    assert "<svg" not in render([], [])


@pytest.mark.parametrize(
    ("error", "words"),
    [
        ("PoseError: Unable to detect a body pose", "No body pose was found"),
        ("NSFWError: flagged", "moderation flagged"),  # an older name, the newer advice
        ("PipelineError", "resume --retry-failed"),
        ("download of output 0 failed: HTTP 500", "could not be downloaded"),
        ("BadRequest: image is required", "FASHN refused the job: BadRequest"),
        (None, None),
    ],
)
def test_errors_in_words(error: str | None, words: str | None) -> None:
    """Each recorded error becomes a sentence saying what to do."""
    said = in_words(error)
    assert said == words if words is None else words in (said or "")


def _png(size: tuple[int, int], mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 0) if mode == "RGBA" else (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("size", "mode", "expected"),
    [
        ((1200, 600), "RGB", (SIDE, 160)),
        ((600, 1600), "RGBA", (120, SIDE)),
        ((32, 48), "RGB", (32, 48)),  # never enlarged
    ],
)
def test_thumbnails_fit_320_pixels_and_keep_transparency(
    size: tuple[int, int], mode: str, expected: tuple[int, int]
) -> None:
    """The longest side is at most 320 px; a cut-out keeps its alpha channel."""
    with Image.open(io.BytesIO(shrink(_png(size, mode)))) as thumb:
        assert thumb.format == "WEBP" and thumb.size == expected
        assert ("A" in thumb.getbands()) == (mode == "RGBA")
