"""Render a contact sheet with Debian's Chromium and save a PNG of its top:
`python docs/screenshot.py outputs/report.html docs/report.png` (`make screenshot`)."""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright


def main(page_path: str, png: str, width: int = 1360, height: int = 1560) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(Path(page_path).resolve().as_uri())
        page.wait_for_load_state("load")
        # Lazy images in view have loaded once every pending image says so.
        page.wait_for_function("[...document.images].every(i => i.complete)")
        page.screenshot(path=png)
        browser.close()
    print(png)


if __name__ == "__main__":
    main(*sys.argv[1:3])
