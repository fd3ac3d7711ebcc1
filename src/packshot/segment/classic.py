"""Classic segmentation, no model weights: a fitted backdrop model for product photos on plain
backdrops, GrabCut for hints (see :mod:`packshot.segment.interactive`), soft edges computed at full
resolution in a thin band (:mod:`packshot.segment.refine`).

Automatic cut-out, step by step (all on a preview whose long side is ``preview_side`` px):

1. **Backdrop model.** Each colour channel of the backdrop is a low-order polynomial of (x, y),
   fitted robustly to a ring along the image border, then refitted on every pixel that looks like
   backdrop. It follows white sweeps, paper, pastels and gradients.
2. **Shadow-invariant features.** A shadow scales the backdrop colour without changing its chroma,
   so each pixel ``p`` is compared with the model ``b`` as ``p ~ k b``: the shading ratio
   ``k = <p, b> / |b|^2`` and the chroma residual ``r = |p - k b| / |b|``. Backdrop: r ~ 0, k ~ 1;
   cast/contact shadow: r ~ 0, 0.45 < k < 1, and smooth; product: r large, or k very low (dark)
   or above 1 (brighter than the backdrop), or textured. Noise levels are measured on the ring.
3. **Markers + watershed.** Sure product = strong colour/brightness evidence or strong texture;
   sure backdrop = smooth backdrop-like pixels connected to the border (shadows included) plus the
   enclosed backdrop-like regions that pass the *real hole* test (they match the backdrop model
   to within its noise: a mug handle's hole, a wicker ball's gaps). A watershed on the image
   gradient decides the rest, so boundaries land on edges and smooth shadows go to the backdrop.
4. **Clean-up.** Specks are dropped, the product's sizeable parts kept (a pair of shoes).
5. **Soft edges at full resolution.** Alpha in a thin band from ``I = a F + (1 - a) B`` with B
   the (shadow-corrected) backdrop model, and the colour of soft pixels decontaminated.
"""
from __future__ import annotations

import time
from dataclasses import replace

from ..errors import NoProductFoundError
from ..types import Hints, Matte, Photo, ProgressFn, no_progress
from . import refine as R
from .backdrop import AutoResult, Backdrop, ClassicParams, auto_mask, finish_matte, fit_backdrop, texture
from .confidence import assess
from .interactive import INSET, InteractiveCutout

__all__ = ["AutoResult", "Backdrop", "ClassicParams", "ClassicSegmenter", "auto_mask", "finish_matte",
           "fit_backdrop", "texture"]


class ClassicSegmenter:
    """Weights-free segmentation. Without hints: automatic cut-out against a plain backdrop.
    With hints (points, negative points, boxes): the interactive machinery's ``commit``."""

    name = "classic"

    def __init__(self, settings=None, params: ClassicParams | None = None):
        self.settings = settings
        self.params = params or ClassicParams()

    def segment(self, photo: Photo, hints: Hints = Hints(), progress: ProgressFn = no_progress) -> Matte:
        """Matte the photo's size; with points/boxes the interactive session's ``commit``."""
        if hints.points or hints.neg_points or hints.boxes:
            matte = InteractiveCutout(photo, classic=self.params).commit(hints, progress)
        else:
            matte = self.auto(photo, progress)
        if hints.text:
            matte = replace(matte, notes=matte.notes + (
                f"classic: the text prompt {hints.text!r} is not used (the sam engine reads text)",))
        return matte

    def _in_context(self, photo: Photo, progress: ProgressFn, res: AutoResult) -> Matte:
        """A photo in context (kitchen table, shelf), not on a plain backdrop: the colour model of a
        backdrop does not hold, so cut out the main object with the box machinery (GrabCut + band
        matting) from the frame inset by ``interactive.INSET``, the usual framing of a product photo.
        ``res`` (this photo's backdrop analysis) is handed over so it is not computed twice."""
        # no hints: the session uses its implicit box, the frame inset by interactive.INSET
        matte = InteractiveCutout(photo, classic=self.params, auto=res).commit(Hints(), progress)
        conf = assess(matte.alpha, penalties=((0.45, "no plain backdrop and no trained model: the cut-out is "
                                               "GrabCut's guess of the main object"),))
        return replace(matte, confidence=conf.value, reasons=conf.reasons, notes=matte.notes + (
            f"the backdrop is not plain: cut out the main object inside the frame inset {INSET:.0%} (GrabCut); "
            "give a box or clicks to choose another object",))

    def auto(self, photo: Photo, progress: ProgressFn = no_progress) -> Matte:
        """Automatic cut-out of a product on a plain backdrop (see the module docstring)."""
        prm = self.params
        t0 = time.perf_counter()
        rgb = R.flattened_rgb(photo)
        h, w = rgb.shape[:2]
        scale = R.preview_scale((w, h), prm.preview_side)
        p = R.downscale(rgb, scale)
        progress("segment", 0.1, "fitting the backdrop")
        res = auto_mask(p, prm)
        if not res.backdrop.plain:
            return self._in_context(photo, progress, res)
        t1 = time.perf_counter()
        if res.mask.sum() < max(4, prm.min_area * res.mask.size):
            raise NoProductFoundError(f"{photo.source}: no product found: nothing stands out from a "
                                      "plain backdrop (give a box or clicks, or use --engine sam)")
        progress("segment", 0.6, "refining the edges")
        alpha, fg = finish_matte(rgb, res, res.mask, prm)
        t2 = time.perf_counter()
        if not (alpha >= 0.5).any():
            raise NoProductFoundError(f"{photo.source}: no product found against the backdrop")
        return Matte(alpha=alpha, engine=self.name, foreground=fg, notes=res.notes,
                     timings={"segment.preview": t1 - t0, "segment.refine": t2 - t1})
