"""The HTML contact sheet: one self-contained page per report, with a summary, a
timeline of the night and a card per job; thumbnails in OUT/<batch>/.thumbs/."""

from __future__ import annotations

from .page import SheetResult, write_page

__all__ = ["SheetResult", "write_page"]
