"""Headless Chromium from Debian's package, driven by playwright-python: never a
downloaded browser. `make test` installs the package when it is missing."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots; ignored by git


@contextmanager
def chromium() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser: Browser, path: Path, *, width: int = 1400, height: int = 1000) -> Page:
    """The page at `path` (a file), with any script error raised in the test."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(path.resolve().as_uri())
    page.wait_for_load_state("load")
    assert not errors, errors
    return page


def every_image_loads(page: Page) -> int:
    """Scroll each image into view (they load lazily), wait for it, and return how
    many loaded; an image that fails to load fails the wait."""
    images = page.locator("img")
    count = images.count()
    for i in range(count):
        image = images.nth(i)
        image.scroll_into_view_if_needed()
        loaded = image.evaluate(
            "img => img.complete ? img.naturalWidth > 0 : new Promise(done => {"
            " img.addEventListener('load', () => done(img.naturalWidth > 0));"
            " img.addEventListener('error', () => done(false)); })"
        )
        assert loaded, f"not loaded: {image.get_attribute('src')}"
    return count
