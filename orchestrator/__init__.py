"""Push whole catalogs through the FASHN API: queued, within every limit, resumable.

The Python API (see library.py): `submit`, `resume` and their `RunResult`; `validate`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

__all__ = ["RunResult", "resume", "submit", "validate"]

# A library prints nothing unless its user configures logging.
logging.getLogger("orchestrator").addHandler(logging.NullHandler())

if TYPE_CHECKING:
    from .library import RunResult, resume, submit, validate


def __getattr__(name: str) -> Any:
    # Imported on first use: the command line and the sandbox do not need it.
    if name in __all__:
        from . import library

        return getattr(library, name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
