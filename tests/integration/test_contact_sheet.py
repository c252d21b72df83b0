"""The HTML contact sheet of a real sandbox batch, opened in headless Chromium."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser

from orchestrator.contact_sheet import write_page
from orchestrator.report import job_reports
from orchestrator.sandbox import Limits
from orchestrator.store import BLOB_THRESHOLD, Store

from ..browser import ARTIFACTS, chromium, every_image_loads, open_page
from ..conftest import jobs, run, settings_for


def _photo(size: tuple[int, int], colour: tuple[int, int, int]) -> str:
    """A local photo as the manifest reader sends it: a PNG data URI."""
    image = Image.effect_noise(size, 40).convert("RGB")
    image = Image.blend(image, Image.new("RGB", size, colour), 0.6)
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def night(sandbox, store: Store, tmp_path: Path) -> tuple[Store, Any, Path]:
    """A batch with completed, failed and multi-output jobs, run against a sandbox that
    allows 2 predictions in flight (so some /run requests get 429s), then its page."""
    server = sandbox(latency={"*": (1.0, 3.0)}, limits=Limits(concurrency=2))
    person, garment = _photo((480, 640), (190, 150, 120)), _photo((64, 64), (30, 40, 90))
    swatch = _photo((8, 8), (200, 60, 60))
    assert len(swatch) < BLOB_THRESHOLD < len(garment)
    specs = [
        *jobs(3, image=person),  # a large data URI: stored once, as a blob
        *jobs(1, prefix="tiny", image=swatch),  # a small one: kept in the job's inputs
        *jobs(2, prefix="pose", image="https://cdn.example/{i}.png?sandbox:fail=PoseError"),
        *jobs(
            2, "tryon-max", prefix="duo", model_image=person, product_image=garment, num_images=2
        ),
        *jobs(1, "image-to-video", prefix="clip", image=garment),
    ]
    store.ingest("spring", "m.yaml", specs)
    out = tmp_path / "out"
    outcome = run(store, settings_for(server, out), ["spring"])
    assert outcome.counts == {"completed": 7, "failed": 2}
    page = out / "report.html"
    with page.open("w", encoding="utf-8") as fh:
        result = write_page(store, ["spring"], out_dir=out, page=page, out=fh)
    assert result.jobs == 9
    return store, server, page


def test_contact_sheet_in_chromium(night, tmp_path: Path) -> None:
    """Outputs shown and loaded, errors in words, the state filter, one bar per
    prediction and a 429 mark per refusal; every image loads after the folder moves."""
    with chromium() as browser:  # after the run: playwright's loop is the thread's own
        _check(browser, *night, tmp_path)


def _check(browser: Browser, store: Store, server: Any, path: Path, tmp_path: Path) -> None:
    reports = {r["id"]: r for r in job_reports(store, ["spring"])}
    page = open_page(browser, path)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "contact-sheet.png"), full_page=True)

    for job_id, report in reports.items():
        card = page.locator(f'.card[data-id="{job_id}"]')
        assert card.get_attribute("data-state") == report["state"]
        if job_id == "clip-0":  # a video, with its input as the poster
            (video,) = report["outputs"]
            poster = card.locator("video").get_attribute("poster")
            assert poster and (path.parent / poster).is_file()
            src = card.locator("video").get_attribute("src")
            assert src == f"spring/clip-0/{Path(video['path']).name}"
        elif report["state"] == "completed":
            assert card.locator(".out img").count() == len(report["outputs"]) > 0
        else:
            assert "No body pose was found" in card.locator(".error").inner_text()
    assert page.locator('.card[data-id="duo-0"] .out img').count() == 2
    assert every_image_loads(page) == 6 * 1 + 2 * 2 + 7  # outputs, then input thumbnails

    charged = server.state.credits_charged
    balance = page.locator(".summary .balance").inner_text()
    assert f"the account was charged {charged}; {charged} are recorded" in balance

    assert page.locator("svg.timeline rect.bar").count() == len(server.state.predictions())
    refused = server.state.rejections.get("ConcurrencyLimitExceeded", 0)
    assert refused > 0 and page.locator("svg.timeline .mark.m429").count() == refused

    page.select_option("#f-state", "failed")
    assert page.locator(".card:visible").count() == 2
    assert page.locator('.card[data-state="completed"]:visible').count() == 0
    assert page.locator("#f-count").inner_text() == "2 of 9 jobs"
    page.close()

    moved = tmp_path / "elsewhere" / "night"
    shutil.move(path.parent, moved)
    again = open_page(browser, moved / path.name)
    assert every_image_loads(again) == 17
    again.close()
