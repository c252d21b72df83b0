"""What each model accepts, precomputed so that checking a row costs dict lookups only.

An input that a known model does not accept is a problem, not a warning: a typo such
as `modle_image` would otherwise be dropped silently. A model this release does not
know gets the generic plan: its image-named inputs are resolved, the rest is sent as
written, and the API has the last word.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from orchestrator.catalog import GENERIC_IMAGE_INPUTS, MAX_OUTPUTS, MODELS, ModelSpec

from .describe import show

Checker = Callable[[Any], "str | None"]  # value → what is wrong with it, or None

# Inputs whose CSV cells are converted from text, whatever the model.
COUNT_INPUTS: Final = frozenset(m.count_input for m in MODELS.values() if m.count_input)
INT_INPUTS: Final = frozenset({"seed", "duration"} | COUNT_INPUTS)
BOOL_INPUTS: Final = frozenset({"return_base64", "segmentation_free"})
# Every input some known model takes.
ALL_INPUTS: Final = frozenset(name for m in MODELS.values() for name in m.inputs)


class Plan:
    """How to check one model's inputs: which are images, and a checker for each other."""

    __slots__ = ("accepted", "checkers", "images", "spec")

    def __init__(
        self,
        spec: ModelSpec | None,
        images: frozenset[str],
        checkers: dict[str, Checker],
    ):
        self.spec = spec
        self.images = images
        self.checkers = checkers
        self.accepted: tuple[str, ...] = spec.inputs if spec else ()

    @classmethod
    def known(cls, spec: ModelSpec) -> Plan:
        checkers: dict[str, Checker] = {}
        for name in spec.inputs:
            if name in spec.image_inputs:
                continue
            if name in spec.choices:
                checkers[name] = _choice_checker(spec.choices[name])
            elif name in COUNT_INPUTS:
                checkers[name] = _check_count
            elif name in INT_INPUTS:
                checkers[name] = _check_int
            elif name in BOOL_INPUTS:
                checkers[name] = _check_bool
            else:
                checkers[name] = _check_text
        return cls(spec, frozenset(spec.image_inputs), checkers)

    @classmethod
    def generic(cls) -> Plan:
        # Unknown model: only resolve what looks like an image, pass the rest through.
        return cls(None, frozenset(GENERIC_IMAGE_INPUTS), {})

    def takes(self, name: str) -> bool:
        """Whether this model accepts the input `name`."""
        return name in self.checkers or name in self.images


def _check_count(value: Any) -> str | None:
    if type(value) is int and 1 <= value <= MAX_OUTPUTS:
        return None
    return f"must be a whole number from 1 to {MAX_OUTPUTS}; got {show(value)}"


def _check_int(value: Any) -> str | None:
    if type(value) is int:
        return None
    return f"must be a whole number, e.g. 42; got {show(value)}"


def _check_bool(value: Any) -> str | None:
    if type(value) is bool:
        return None
    return f"must be true or false; got {show(value)}"


def _check_text(value: Any) -> str | None:
    if type(value) is str:
        return None
    return f"must be text; got {show(value)} (in YAML, put it in quotes)"


def _choice_checker(allowed: tuple[object, ...]) -> Checker:
    # (type, value) pairs: 5.0 == 5 and True == 1 in Python, but not for the API.
    accepted = frozenset((type(a), a) for a in allowed)
    listed = ", ".join(str(a) for a in allowed)

    def check(value: Any) -> str | None:
        try:
            if (type(value), value) in accepted:
                return None
        except TypeError:  # unhashable: a list or mapping is never a choice
            pass
        return f"must be one of: {listed}; got {show(value)}"

    return check


# A plain dict, not a read-only proxy: it is looked up once per row.
PLANS: Final[Mapping[str, Plan]] = {name: Plan.known(spec) for name, spec in MODELS.items()}
GENERIC: Final = Plan.generic()
