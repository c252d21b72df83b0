"""A failed job's error in words a catalog team can act on, from what the queue recorded
(`Name: API message`, a download failure, a /run refusal)."""

from __future__ import annotations

from ..runtime_errors import RUNTIME_ERRORS

# What each runtime error means for the photos, and what to do about it.
_ADVICE = {
    "ImageLoadError": "FASHN could not load one of the input images: check that its URL "
    "is public and that the file is a JPEG, PNG or WEBP.",
    "ContentModerationError": "FASHN's moderation flagged one of the inputs; this job will "
    "not run as it is.",
    "PoseError": "No body pose was found in the model photo: use a photo that shows the "
    "person's body clearly.",
    "InputValidationError": "FASHN refused this combination of settings: check the job's "
    "values against the model's documentation.",
    "ThirdPartyError": "An external processor refused the inputs; changing the images or "
    "the prompt may help.",
    "PipelineError": "FASHN's pipeline failed every time it was tried (not charged); "
    "run it again later with `resume --retry-failed`.",
    "3rdPartyProviderError": "An external provider failed every time it was tried; run it "
    "again later with `resume --retry-failed`.",
    "InternalServerError": "FASHN failed every time it was tried; run it again later with "
    "`resume --retry-failed`.",
    "PollingTimeout": "The prediction did not finish in time on any try; run it again "
    "later with `resume --retry-failed`.",
    "NotFound": "FASHN no longer knew the prediction when it was asked about it.",
}
_MEANING = {e.name: e.meaning for e in RUNTIME_ERRORS}


def in_words(error: str | None) -> str | None:
    """A sentence for a failed job's recorded error (None when there is none)."""
    if not error:
        return None
    name = error.split(":", 1)[0].strip()
    older = next((e.older_name_of for e in RUNTIME_ERRORS if e.name == name), None)
    advice = _ADVICE.get(older or name)
    if advice:
        return advice
    if name in _MEANING:
        return f"The prediction failed: {_MEANING[name]}."
    if error.startswith("download of output"):
        return (
            "The picture was made (and paid for) but could not be downloaded; "
            "`resume --retry-failed` downloads it again while its URL is valid (72 hours)."
        )
    return f"FASHN refused the job: {error}"
