"""Part 7, sheet: the HTML contact sheet of a 10,000-job batch, opened in headless
Chromium (Debian's package, driven by playwright).

The batch is real: its jobs run through the sandbox (in its own process, six in
flight, limits lifted, predictions of 1-3 ms) and their outputs are saved; inputs are
20 local photos (data URIs) shared by the jobs, and 2 % of the jobs fail. Measured:
`orchestrator report --format html` as a child process, with no thumbnail made yet
and again with all of them made; the page's size; its first contentful paint and its
load event (median of 3 fresh pages); and how long the state filter takes.
"""

from __future__ import annotations

import base64
import io
import logging
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import anyio
from PIL import Image

from orchestrator.config import Settings
from orchestrator.engine import Engine
from orchestrator.models import JobSpec, Location
from orchestrator.store import Store

from .ours import bounded
from .procs import ORCHESTRATOR, run_child, sandbox_process
from .table import Row, Section

log = logging.getLogger("bench")
JOBS, QUICK_JOBS = 10_000, 1_000
FIRST_PAINT = 1.0  # seconds: the page shows its top at once, whatever its length
PAGES = 3
BATCH = "sheet"
CHROMIUM = "/usr/bin/chromium"
_PAINT = """() => new Promise(done => new PerformanceObserver((list, observer) => {
  const hit = list.getEntries().find(e => e.name === "first-contentful-paint");
  if (hit) { observer.disconnect(); done(hit.startTime); }
}).observe({type: "paint", buffered: true}))"""
_LOAD = "() => performance.getEntriesByType('navigation')[0].loadEventEnd"
_FILTER = """() => { const s = document.getElementById("f-state"); const t = performance.now();
  s.value = "failed"; s.dispatchEvent(new Event("change"));
  const shown = document.querySelectorAll(".card:not([hidden])").length;
  return [performance.now() - t, shown]; }"""


def _photos(n: int) -> list[str]:
    """`n` distinct 240x320 photos as PNG data URIs, as a manifest's local files become."""
    uris = []
    for i in range(n):
        image = Image.effect_noise((240, 320), 30 + i).convert("RGB")
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        uris.append("data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode())
    return uris


def _specs(jobs: int) -> list[JobSpec]:
    photos = _photos(20)
    specs = []
    for i in range(jobs):
        image = photos[i % len(photos)]
        if i % 50 == 7:  # 2 % fail for good
            image = f"https://cdn.example.com/sheet/{i}.jpg?sandbox:fail=PoseError"
        specs.append(
            JobSpec(
                f"sku-{i:05d}",
                "background-remove",
                {"image": image},
                location=Location("bench", i + 1),
            )
        )
    return specs


def _run_batch(tmp: Path, jobs: int) -> tuple[Path, Path]:
    """Run the batch to the end; returns the database and the outputs folder."""
    args = (
        "--port",
        "0",
        "--time-scale",
        "0.001",
        "--latency",
        "*=1-3",
        "--run-limit",
        "none",
        "--status-limit",
        "none",
        "--credits",
        str(jobs * 2),
    )
    db, out = tmp / "sheet.db", tmp / "outputs"
    with sandbox_process(args, log=tmp / "sandbox.log") as sandbox:
        settings = Settings(base_url=sandbox.base_url, api_key="sandbox", out_dir=out)
        settings = replace(settings, run_limit=None, status_limit=None)
        store = Store(db, durable=False)
        store.ingest(BATCH, "bench", _specs(jobs))
        anyio.run(bounded, Engine(store, settings, batches=[BATCH]).run, jobs * 0.5 + 120)
        store.close()
    return db, out


def _report(db: Path, out: Path, page: Path, tmp: Path) -> float:
    args = [
        *ORCHESTRATOR,
        "report",
        BATCH,
        "--db",
        str(db),
        "--out",
        str(out),
        "--format",
        "html",
        "-o",
        str(page),
    ]
    started = time.perf_counter()
    run_child(args, log=tmp / "report.log", timeout=600)
    return time.perf_counter() - started


def _browse(page_path: Path) -> tuple[list[float], list[float], float, int]:
    """First contentful paint and load (seconds) of PAGES fresh pages; the filter's ms."""
    from playwright.sync_api import sync_playwright

    paints, loads = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        for _ in range(PAGES):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
            paints.append(page.evaluate(_PAINT) / 1000)
            loads.append(page.evaluate(_LOAD) / 1000)
            page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(page_path.as_uri(), wait_until="load", timeout=120_000)
        filter_ms, shown = page.evaluate(_FILTER)
        browser.close()
    return paints, loads, float(filter_ms), int(shown)


def measure(*, quick: bool) -> Section:
    section = Section("sheet")
    jobs = QUICK_JOBS if quick else JOBS
    with tempfile.TemporaryDirectory(prefix="bench-sheet-") as name:
        tmp = Path(name)
        log.info("sheet: running %d jobs through the sandbox", jobs)
        db, out = _run_batch(tmp, jobs)
        page = out / "report.html"
        cold = _report(db, out, page, tmp)
        warm = _report(db, out, page, tmp)
        size = page.stat().st_size / 1e6
        log.info("sheet: %.1f MB page; opening it in Chromium", size)
        paints, loads, filter_ms, shown = _browse(page)
    paint, load = statistics.median(paints), statistics.median(loads)
    section.rows += [
        Row.check(
            f"sheet: first contentful paint, {jobs:,} jobs",
            f"{paint:.2f} s (median of {PAGES}; load event {load:.2f} s)",
            f"<= {FIRST_PAINT:g} s",
            paint <= FIRST_PAINT,
        ),
        Row(
            f"sheet: report --format html, {jobs:,} jobs",
            f"{cold:.1f} s (thumbnails made), {warm:.1f} s (thumbnails there); page {size:.1f} MB",
        ),
        Row(f"sheet: state filter on {jobs:,} cards", f"{filter_ms:.0f} ms ({shown} failed shown)"),
    ]
    section.notes.append(
        f"Sheet: {jobs:,} background-remove jobs run through the sandbox (six in flight, "
        "limits lifted, 1-3 ms predictions), 20 shared local photos as inputs, 2 % failing; "
        "the page opened from disk in Debian's headless Chromium at 1400x1000."
    )
    return section


__all__ = ["measure"]
