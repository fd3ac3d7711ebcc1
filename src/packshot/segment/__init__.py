"""Segmentation stage: photo (+ hints) -> soft alpha matte.

One protocol, one registry. Engines register by name with a lazy import path; ``auto`` is
resolved by :func:`resolve_engine` (SAM when its weights are present, classic otherwise) and the
chosen engine is named in the matte's ``engine`` and notes.
"""
from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..registry import Registry
from ..types import Hints, Matte, Photo, ProgressFn, no_progress


@runtime_checkable
class Segmenter(Protocol):
    name: str

    def segment(self, photo: Photo, hints: Hints = Hints(), progress: ProgressFn = no_progress) -> Matte:
        """Return a matte the photo's size. Raise NoProductFoundError when nothing is found."""
        ...


SEGMENTERS: Registry[Segmenter] = Registry("segmentation engine")
SEGMENTERS.register("classic", "packshot.segment.classic:ClassicSegmenter",
                    "Backdrop colour model + GrabCut + narrow-band matting; no weights.",
                    points=True, boxes=True, text=False)
SEGMENTERS.register("sam", "packshot.segment.sam:SamSegmenter",
                    "Segment Anything (transformers) with points/boxes; CLIP-ranked text prompts.",
                    extra="ai", points=True, boxes=True, text=True)

ENGINE_CHOICES = ("classic", "sam", "auto")


def resolve_engine(requested: str, settings, model: str | None = None) -> tuple[str, str | None]:
    """The segmenter to run for ``requested`` and a note when the choice is worth telling.

    ``auto`` -> ``sam`` when its weights are present locally (cheap check, no torch import), else
    ``classic`` (the expected case with no weights: no note). Unknown names raise UnknownNameError
    listing the valid ones. Called once per request, by ``packshot.resolve.check_inputs``.
    """
    if requested not in ENGINE_CHOICES:
        SEGMENTERS.entry(requested)  # raises UnknownNameError listing the valid names
    if requested != "auto":
        return requested, None
    from .sam import sam_available
    if sam_available(settings, model):
        return "sam", "auto: SAM weights found, used sam"
    return "classic", None
