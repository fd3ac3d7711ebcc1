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

SEGMENTERS.register("learned", "packshot.segment.learned:LearnedSegmenter",
                    "Trained cut-out model (u2netp by default, ONNX) fused with the classic refinement.",
                    points=True, boxes=True, text=False)

ENGINE_CHOICES = ("classic", "learned", "sam", "auto")
NO_MODEL_NOTE = ("no trained cut-out model here: used the classic engine; for better cut-outs of photos in "
                 "context run: packshot models pull u2netp")


def resolve_engine(requested: str, settings, model: str | None = None) -> tuple[str, str | None]:
    """The segmenter to run for ``requested`` and a note when the choice is worth telling.

    ``auto`` -> ``learned`` when the default cut-out model (u2netp) is present (the expected case
    after ``make``: no note), else ``sam`` when its weights are present, else ``classic`` with one
    note saying how to get better cut-outs. Cheap checks: no onnxruntime or torch import. Unknown
    names raise UnknownNameError listing the valid ones. Called once per request, by
    ``packshot.resolve.check_inputs``.
    """
    if requested not in ENGINE_CHOICES:
        SEGMENTERS.entry(requested)  # raises UnknownNameError listing the valid names
    if requested != "auto":  # the engine's weights present and of the right kind: checked up front (cheap)
        check = getattr(SEGMENTERS.entry(requested).load(), "check", None)
        if check is not None:
            check(settings, model)
        return requested, None
    from .learned import learned_available
    if learned_available(settings, model):
        return "learned", None
    from .sam import sam_available
    if sam_available(settings, model):
        return "sam", "auto: no trained cut-out model (packshot models pull u2netp); used sam"
    return "classic", NO_MODEL_NOTE
