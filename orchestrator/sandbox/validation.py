"""A /run body checked as the API checks it, against the catalog's models."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any
from urllib.parse import urlsplit

from orchestrator.catalog import MAX_OUTPUTS, MODELS, ModelSpec

_DATA_URI = re.compile(r"data:image/[A-Za-z0-9.+-]+;base64,")
_IMAGE_FORMS = "must be an http(s) URL or a data:image/<format>;base64,<data> URI"


class BadRequest(Exception):
    """A /run body the API would refuse; the message names the field."""


def validate_run(body: object) -> tuple[ModelSpec, dict[str, Any]]:
    """Check a /run body as the API does; raise BadRequest naming the field."""
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    model_name = body.get("model_name")
    if not isinstance(model_name, str):
        raise BadRequest("model_name: required, must be a string")
    spec = MODELS.get(model_name)
    if spec is None:
        raise BadRequest(f"model_name: unknown model {model_name!r}; known: {', '.join(MODELS)}")
    inputs = body.get("inputs")
    if not isinstance(inputs, dict):
        raise BadRequest("inputs: required, must be a JSON object")
    _check_inputs(spec, inputs)
    return spec, inputs


def _check_inputs(spec: ModelSpec, inputs: dict[str, Any]) -> None:
    for name in spec.required:
        if inputs.get(name) in (None, ""):
            raise BadRequest(f"inputs.{name}: required by {spec.name}")
    for name, allowed in spec.choices.items():
        if name in inputs and inputs[name] not in allowed:
            listed = ", ".join(map(str, allowed))
            raise BadRequest(f"inputs.{name}: must be one of {listed}, got {inputs[name]!r}")
    for name in spec.image_inputs:
        if inputs.get(name) is not None:
            problem = _image_problem(inputs[name])
            if problem:
                raise BadRequest(f"inputs.{name}: {problem}")
    count = spec.count_input
    if count and count in inputs:
        value = inputs[count]
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_OUTPUTS:
            raise BadRequest(f"inputs.{count}: must be an integer from 1 to {MAX_OUTPUTS}")
    if "return_base64" in inputs and not isinstance(inputs["return_base64"], bool):
        raise BadRequest("inputs.return_base64: must be true or false")


def _image_problem(value: object) -> str | None:
    if not isinstance(value, str):
        return _IMAGE_FORMS
    if value.startswith("data:"):
        prefix = _DATA_URI.match(value)
        if not prefix:
            return "a data URI must look like data:image/<format>;base64,<data>"
        try:
            payload = base64.b64decode(value[prefix.end() :], validate=True)
        except (binascii.Error, ValueError):
            return "the data URI's base64 payload does not decode"
        return None if payload else "the data URI's payload is empty"
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc:
        return None
    return _IMAGE_FORMS
