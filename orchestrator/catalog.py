"""What is known about each FASHN model: its inputs, their allowed values, its cost.

One table serves the manifest validator, the sandbox and the report, so that the
three never disagree. Source: the official SDK 0.9.0 request types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

ASPECT_RATIOS = ("21:9", "1:1", "4:3", "3:2", "2:3", "5:4", "4:5", "3:4", "16:9", "9:16")
RESOLUTIONS = ("1k", "2k", "4k")
GENERATION_MODES = ("fast", "balanced", "quality")
OUTPUT_FORMATS = ("png", "jpeg")
MAX_OUTPUTS = 4  # num_images / num_samples upper bound


@dataclass(frozen=True)
class ModelSpec:
    """One FASHN model as the API accepts it."""

    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    # Inputs that carry an image: an http(s) URL or a data:image/...;base64 URI.
    image_inputs: tuple[str, ...]
    # Inputs restricted to a fixed set of values.
    choices: Mapping[str, tuple[object, ...]] = field(default_factory=dict)
    # The input that multiplies outputs and cost (num_images or num_samples).
    count_input: str | None = None
    credits_per_output: int = 1
    # Median seconds a prediction takes on the real service (sandbox default).
    typical_seconds: tuple[float, float] = (5.0, 15.0)
    output_mime: str = "image/png"

    @property
    def inputs(self) -> tuple[str, ...]:
        return self.required + self.optional


_COMMON_GEN = ("generation_mode", "output_format", "seed", "return_base64")
_GEN_CHOICES: dict[str, tuple[object, ...]] = {
    "generation_mode": GENERATION_MODES,
    "output_format": OUTPUT_FORMATS,
    "aspect_ratio": ASPECT_RATIOS,
    "resolution": RESOLUTIONS,
}


def _spec(
    name: str,
    required: tuple[str, ...],
    optional: tuple[str, ...],
    images: tuple[str, ...],
    *,
    count: str | None = "num_images",
    credits: int = 1,
    seconds: tuple[float, float] = (8.0, 20.0),
    choices: Mapping[str, tuple[object, ...]] | None = None,
    mime: str = "image/png",
) -> ModelSpec:
    every = required + optional
    picked = {k: v for k, v in _GEN_CHOICES.items() if k in every}
    picked.update(choices or {})
    return ModelSpec(
        name=name,
        required=required,
        optional=optional,
        image_inputs=images,
        choices=MappingProxyType(picked),
        count_input=count if count in every else None,
        credits_per_output=credits,
        typical_seconds=seconds,
        output_mime=mime,
    )


_MODELS = (
    _spec(
        "tryon-max",
        ("model_image", "product_image"),
        ("prompt", "resolution", "aspect_ratio", "num_images") + _COMMON_GEN,
        ("model_image", "product_image"),
        credits=2,
        seconds=(20.0, 45.0),
        choices={"generation_mode": ("balanced", "quality")},
    ),
    _spec(
        "tryon-v1.6",
        ("model_image", "garment_image"),
        (
            "category",
            "mode",
            "garment_photo_type",
            "moderation_level",
            "num_samples",
            "segmentation_free",
            "output_format",
            "seed",
            "return_base64",
        ),
        ("model_image", "garment_image"),
        count="num_samples",
        seconds=(8.0, 20.0),
        choices={
            "category": ("auto", "tops", "bottoms", "one-pieces"),
            "mode": ("performance", "balanced", "quality"),
            "garment_photo_type": ("auto", "flat-lay", "model"),
            "moderation_level": ("conservative", "permissive", "none"),
        },
    ),
    _spec(
        "product-to-model",
        ("product_image",),
        ("model_image", "prompt", "image_prompt", "aspect_ratio", "resolution") + _COMMON_GEN,
        ("product_image", "model_image", "image_prompt"),
        count=None,
        seconds=(12.0, 30.0),
    ),
    _spec(
        "face-to-model",
        ("face_image",),
        ("prompt", "num_images", "aspect_ratio", "resolution") + _COMMON_GEN,
        ("face_image",),
        seconds=(12.0, 30.0),
    ),
    _spec(
        "model-create",
        ("prompt",),
        (
            "face_reference",
            "face_reference_mode",
            "image_reference",
            "num_images",
            "aspect_ratio",
            "resolution",
        )
        + _COMMON_GEN,
        ("face_reference", "image_reference"),
        seconds=(10.0, 25.0),
        choices={"face_reference_mode": ("match_base", "match_reference")},
    ),
    _spec(
        "model-swap",
        ("model_image",),
        (
            "prompt",
            "face_reference",
            "face_reference_mode",
            "num_images",
            "aspect_ratio",
            "resolution",
        )
        + _COMMON_GEN,
        ("model_image", "face_reference"),
        seconds=(10.0, 25.0),
        choices={"face_reference_mode": ("match_base", "match_reference")},
    ),
    _spec(
        "reframe",
        ("image", "aspect_ratio"),
        ("num_images",) + _COMMON_GEN,
        ("image",),
        seconds=(10.0, 25.0),
    ),
    _spec(
        "background-change",
        ("image", "prompt"),
        ("num_images", "resolution") + _COMMON_GEN,
        ("image",),
        seconds=(6.0, 15.0),
    ),
    _spec(
        "background-remove",
        ("image",),
        ("return_base64",),
        ("image",),
        count=None,
        seconds=(2.0, 5.0),
    ),
    _spec(
        "image-to-video",
        ("image",),
        ("prompt", "negative_prompt", "duration", "resolution", "end_image", "seed"),
        ("image", "end_image"),
        count=None,
        credits=6,
        seconds=(60.0, 150.0),
        choices={"duration": (5, 10), "resolution": ("480p", "720p", "1080p")},
        mime="video/mp4",
    ),
    _spec(
        "edit",
        ("image", "prompt"),
        ("mask", "image_context", "num_images", "aspect_ratio", "resolution") + _COMMON_GEN,
        ("image", "mask", "image_context"),
        seconds=(8.0, 20.0),
    ),
    _spec(
        "packshot",
        ("product_image",),
        ("prompt", "image_context", "num_images", "aspect_ratio", "resolution") + _COMMON_GEN,
        ("product_image", "image_context"),
        seconds=(8.0, 20.0),
    ),
)

MODELS: Mapping[str, ModelSpec] = MappingProxyType({m.name: m for m in _MODELS})

# Image inputs of models this table does not know yet: recognised by name so that
# local files still become data URIs for a model FASHN added after this release.
GENERIC_IMAGE_INPUTS = frozenset(name for m in _MODELS for name in m.image_inputs) | {
    "mask",
    "end_image",
}


def output_count(model_name: str, inputs: Mapping[str, object]) -> int:
    """How many outputs (and so how many units of cost) a prediction yields."""
    spec = MODELS.get(model_name)
    key = spec.count_input if spec else None
    value = inputs.get(key) if key else inputs.get("num_images", inputs.get("num_samples", 1))
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


def credits_for(model_name: str, inputs: Mapping[str, object]) -> int:
    """Credits the API charges for one prediction with these inputs."""
    spec = MODELS.get(model_name)
    per_output = spec.credits_per_output if spec else 1
    return per_output * output_count(model_name, inputs)
