"""The page's own CSS and JS, shipped as package data and inlined: the page needs no
network for its code."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def stylesheet() -> str:
    return files(__package__).joinpath("sheet.css").read_text(encoding="utf-8")


@cache
def script() -> str:
    return files(__package__).joinpath("sheet.js").read_text(encoding="utf-8")
