"""Outputs: the URLs a completed prediction reports, and the files behind them.

A file's bytes depend only on (seed, prediction id, index), so two runs with the
same seed download identical files; its type is the prediction's (PNG, JPEG or MP4).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from orchestrator.catalog import ModelSpec

from . import images
from .config import SandboxConfig
from .predictions import Prediction

_CDN_NAME = re.compile(r"(\d+)\.([a-z0-9]+)")


def output_mime(spec: ModelSpec, inputs: Mapping[str, object]) -> str:
    """The media type of a prediction's outputs: the model's, or JPEG for an image model
    that takes `output_format` when the job asks for "jpeg"."""
    if (
        spec.output_mime == "image/png"
        and "output_format" in spec.inputs
        and inputs.get("output_format") == "jpeg"
    ):
        return "image/jpeg"
    return spec.output_mime


class Cdn:
    """Output URLs under `public_url` (or the origin a client dialled), and their bytes."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config  # read live: a test may swap it on a running sandbox
        # Where output URLs point; the server sets it once it knows its port.
        self.public_url = "http://127.0.0.1"

    def outputs(self, prediction: Prediction, origin: str | None = None) -> list[str]:
        """A completed status answer's `output`: URLs, or data URIs with return_base64."""
        if prediction.base64:
            prefix = f"data:{prediction.mime};base64,"
            return [
                prefix + base64.b64encode(self.file(prediction, i)).decode()
                for i in range(prediction.outputs)
            ]
        return list(self.urls(prediction, origin))

    def urls(self, prediction: Prediction, origin: str | None = None) -> tuple[str, ...]:
        """The output URLs, rooted at `origin` (http://host:port), default `public_url`."""
        if prediction.base64:
            return ()
        ext = images.extension(prediction.mime)
        root = origin or self.public_url
        return tuple(f"{root}/cdn/{prediction.id}/{i}.{ext}" for i in range(prediction.outputs))

    def index(self, prediction: Prediction, name: str) -> int | None:
        """Which output the file name `<index>.<ext>` under /cdn/<id>/ is, if it is one."""
        match = _CDN_NAME.fullmatch(name)
        if match is None or prediction.base64:
            return None
        index = int(match.group(1))
        if not 0 <= index < prediction.outputs:
            return None
        return index if match.group(2) == images.extension(prediction.mime) else None

    def file(self, prediction: Prediction, index: int) -> bytes:
        """What the CDN serves for an output."""
        key = f"{self.config.seed}/{prediction.id}/{index}"
        return images.output_bytes(prediction.mime, key)
