"""Segment Anything (transformers ``SamModel``) with point, box and text prompts.

Works with any checkpoint in the transformers SAM format (``config.json`` ``model_type: "sam"``):
facebook/sam-vit-base/-large/-huge, SlimSAM, MedSAM... Weights come only from a local folder,
``settings.model_dir`` or the Hugging Face cache (:func:`packshot.models.resolve`); a missing
checkpoint raises MissingWeightsError naming ``packshot models pull ID``.

Embed once, prompt many times (segment-anything's predictor): the ViT image embedding is the
expensive part (seconds for ViT-B on a CPU), the prompt encoder + mask decoder are cheap (tens of
ms). :class:`SamSegmenter` keeps a small LRU of embeddings keyed by a hash of the photo's pixels,
and :class:`SamSession` holds one photo's embedding and click state for one user.

The model core (loading, embeddings, automatic masks) is :mod:`packshot.segment.sam_core`.

Nothing in this module imports torch at import time; :func:`sam_available` never imports it.
"""
from __future__ import annotations

import time
from dataclasses import replace

import numpy as np

from ..config import Settings
from ..errors import InvalidInputError, NoProductFoundError
from ..types import Box, Hints, Matte, Photo, ProgressFn, no_progress
from .learned import LearnedSegmenter, learned_available
from .refine import refine_matte
from .sam_core import (DEFAULT_SAM_MODEL, SAM_MODEL_TYPES, Embedding, MaskProposal, Prediction, SamBundle,
                       SamPredictor, load_sam, mask_nms, photo_key, resolve_sam, restrict_to_boxes,
                       sam_available, union_box)
from .text import text_candidates

__all__ = ["DEFAULT_SAM_MODEL", "SAM_MODEL_TYPES", "Embedding", "MaskProposal", "Prediction", "SamBundle",
           "SamPredictor", "SamSegmenter", "SamSession", "load_sam", "mask_nms", "photo_key", "resolve_sam",
           "sam_available"]


class SamSegmenter(SamPredictor):
    """Segmentation engine ``sam``: points / negative points / boxes as SAM prompts; a text prompt
    ranks SAM's automatic masks with CLIP (or CLIPSeg), see :mod:`packshot.segment.text`.

    ``model``: SAM registry id, HF repo id or folder (default ``sam-vit-base``).
    ``text_model``: CLIP or CLIPSeg id/folder for text prompts (default: ``settings.clip_model``
    when that field exists, else ``clip-vit-base-patch32``, then ``clipseg``).
    ``refine``: run the classic engine's edge refinement on committed mattes when available.
    ``embed_cache``: how many photo embeddings this instance keeps (LRU).

    Thread-safe: the embedding cache is locked; click state lives only in :class:`SamSession`.
    """

    name = "sam"

    @staticmethod
    def check(settings: Settings, model: str | None = None) -> None:
        """Up-front check (``packshot.resolve.check_inputs``): the SAM weights resolve locally; one-line
        MissingWeightsError / ModelError naming the model. Cheap: no torch import, no load."""
        resolve_sam(settings, model)

    # -- the Segmenter protocol --------------------------------------------------------------
    def segment(self, photo: Photo, hints: Hints = Hints(), progress: ProgressFn = no_progress) -> Matte:
        """Photo + hints -> soft matte the photo's size (engine ``sam``).

        * points / negative points / boxes: SAM prompts (boxes also bound the matte);
        * text only (or text + box): the best of :func:`packshot.segment.text.text_candidates`;
        * no hints: the automatic mask that looks most like a product (stable, central, not
          touching the photo's border).
        """
        t0 = time.perf_counter()
        progress("segment", 0.05, "SAM image embedding")
        computed = self.stats["embeddings"]
        emb = self.embed(photo)
        timings = {"sam_embed": emb.seconds if self.stats["embeddings"] > computed else 0.0}
        notes: list[str] = []
        if hints.points or hints.neg_points:
            if hints.text:
                notes.append(f"sam: text {hints.text!r} ignored: clicks given")
            alpha = self._prompted(emb, hints, None, timings)
        elif hints.text:
            cands = text_candidates(photo, hints.text, k=5, segmenter=self, region=union_box(hints.boxes),
                                    progress=progress)
            alpha, score = cands[0]
            notes.append(f"sam: text {hints.text!r}: picked the best of {len(cands)} candidates "
                         f"(score {score:.3f})")
        elif hints.boxes:
            alpha = self._prompted(emb, hints, None, timings)
        else:
            box = _learned_box(photo, self.settings)
            if box is not None:  # the trained cut-out model's product box as SAM's prompt
                alpha = self._prompted(emb, Hints(boxes=(box,)), None, timings)
                notes.append("sam: no hints: prompted with the box of the trained cut-out model's mask")
            else:
                alpha, note = self._salient(photo, emb)
                notes.append(note)
        alpha = restrict_to_boxes(alpha, hints.boxes)
        foreground = None
        if self.refine and (alpha >= 0.5).any():
            progress("segment", 0.8, "refining the edges")
            t = time.perf_counter()
            refined, foreground = _refine(photo, alpha)
            alpha = restrict_to_boxes(refined, hints.boxes)
            notes.append("sam: edges refined at full resolution (narrow band, decontaminated)")
            timings["sam_refine"] = time.perf_counter() - t
        if not (alpha >= 0.5).any():
            raise NoProductFoundError(f"{photo.source}: SAM found no product for these hints")
        timings["sam_total"] = time.perf_counter() - t0
        progress("segment", 1.0, "SAM done")
        return Matte(alpha=alpha, engine=self.name, foreground=foreground, notes=tuple(notes), timings=timings)

    def _prompted(self, emb: Embedding, hints: Hints, size, timings: dict) -> np.ndarray:
        pred = self.predict(emb, hints)
        t = time.perf_counter()
        alphas = self.upsample(emb, pred.logits, size)
        timings["sam_decode"] = pred.seconds
        timings["sam_upsample"] = time.perf_counter() - t
        return alphas.max(axis=0)  # union over boxes

    def _salient(self, photo: Photo, emb: Embedding) -> tuple[np.ndarray, str]:
        # a product is a large object: an 8x8 grid (64 prompts, one decoder batch) finds it
        props = self.automatic_masks(emb, points_per_side=8)
        if not props:
            raise NoProductFoundError(f"{photo.source}: SAM proposed no mask")
        H, W = emb.original

        def productness(p: MaskProposal) -> float:
            x0, y0, x1, y1 = p.box
            touches = (x0 <= 1) + (y0 <= 1) + (x1 >= W - 1) + (y1 >= H - 1)
            cx, cy = (x0 + x1) / 2 / W - 0.5, (y0 + y1) / 2 / H - 0.5
            return p.quality * (0.5 ** touches) * (1.0 - min(1.0, (cx * cx + cy * cy) ** 0.5))

        best = max(props, key=productness)
        alpha = self.upsample(emb, best.logits[None])[0]
        return alpha, f"sam: no hints: picked the most product-like of {len(props)} automatic masks"

    # -- interactive -------------------------------------------------------------------------
    def session(self, photo: Photo, preview_side: int = 1024) -> "SamSession":
        """A new interactive session for one photo and one user (embedding from this cache)."""
        return SamSession(photo, segmenter=self, preview_side=preview_side)


def _learned_box(photo: Photo, settings: Settings, margin: float = 0.03) -> Box | None:
    """The box (grown by ``margin``) of the learned engine's map on ``photo`` when its default model
    is present, else None."""
    if not learned_available(settings):
        return None
    from .refine import flattened_rgb

    rgb = flattened_rgb(photo)
    h, w = rgb.shape[:2]
    prob = LearnedSegmenter(settings).prob_map(rgb, (w, h))
    ys, xs = np.nonzero(prob >= 0.5)
    if len(xs) == 0:
        return None
    mx, my = margin * w, margin * h
    return (max(0, int(xs.min() - mx)), max(0, int(ys.min() - my)),
            min(w, int(xs.max() + 1 + mx)), min(h, int(ys.max() + 1 + my)))


def _refine(photo: Photo, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Edge refinement shared with the classic engine (``segment/refine.py``: threshold on a
    preview, soft alpha in a thin band at full resolution, decontaminated colour)."""
    out = refine_matte(photo.rgb, alpha)
    return np.asarray(out.alpha, np.float32), out.foreground


# --------------------------------------------------------------------------------------------
# interactive session: one photo, one user
# --------------------------------------------------------------------------------------------
class SamSession:
    """Click state for ONE photo and ONE user; the embedding is computed once, at construction.

    Same shape as the classic engine's ``InteractiveCutout``: ``preview(hints)`` -> float32 alpha
    at ``preview_size`` (width, height; the photo scaled to at most ``preview_side``), cheap
    (prompt encoder + mask decoder + one upsample): call it on every click. ``commit(hints)`` ->
    the full-resolution, refined Matte. ``hints`` may be omitted: the session's own click state
    (``add_point`` / ``set_box`` / ``undo`` / ``reset``) is used. Sessions share nothing with each
    other (the segmenter's embedding cache holds tensors derived from pixels only, no clicks).
    """

    def __init__(self, photo: Photo, segmenter: SamSegmenter | None = None, *,
                 settings: Settings | None = None, model: str | None = None, preview_side: int = 1024):
        self.photo = photo
        self.segmenter = segmenter or SamSegmenter(settings, model)
        w, h = photo.size
        s = min(1.0, preview_side / max(w, h))
        self.scale = s
        self.preview_size = (max(1, round(w * s)), max(1, round(h * s)))
        self.embedding = self.segmenter.embed(photo)
        self.hints = Hints()
        self._history: list[Hints] = []
        self.timings: dict[str, float] = {"embed": self.embedding.seconds}

    # click state
    def add_point(self, x: int, y: int, positive: bool = True) -> Hints:
        self._history.append(self.hints)
        if positive:
            self.hints = replace(self.hints, points=(*self.hints.points, (int(x), int(y))))
        else:
            self.hints = replace(self.hints, neg_points=(*self.hints.neg_points, (int(x), int(y))))
        return self.hints

    def set_box(self, box: Box | None) -> Hints:
        self._history.append(self.hints)
        self.hints = replace(self.hints, boxes=() if box is None else (tuple(int(v) for v in box),))
        return self.hints

    def undo(self) -> Hints:
        if self._history:
            self.hints = self._history.pop()
        return self.hints

    def reset(self) -> Hints:
        self._history.clear()
        self.hints = Hints()
        return self.hints

    def preview(self, hints: Hints | None = None) -> np.ndarray:
        """Soft alpha (float32 in [0, 1]) at ``preview_size``, no refinement; ``timings['preview']``."""
        hints = self.hints if hints is None else hints
        t0 = time.perf_counter()
        alpha = self.segmenter._prompted(self.embedding, hints, self.preview_size, self.timings)
        if hints.boxes:
            pw, ph = self.preview_size
            sx, sy = pw / self.photo.size[0], ph / self.photo.size[1]
            boxes = tuple((int(b[0] * sx), int(b[1] * sy), max(int(b[0] * sx) + 1, round(b[2] * sx)),
                           max(int(b[1] * sy) + 1, round(b[3] * sy))) for b in hints.boxes)
            alpha = restrict_to_boxes(alpha, boxes)
        self.timings["preview"] = time.perf_counter() - t0
        return alpha

    def text_candidates(self, text: str, k: int = 5) -> list[tuple[np.ndarray, float]]:
        """``k`` (alpha at photo size, score) for ``text``, best first, inside the session's box
        if one is set; reuses this session's embedding (see :mod:`packshot.segment.text`)."""
        return text_candidates(self.photo, text, k, segmenter=self.segmenter, region=union_box(self.hints.boxes))

    def commit(self, hints: Hints | None = None, progress: ProgressFn = no_progress) -> Matte:
        """The final matte: photo size, refined. Raises NoProductFoundError when empty."""
        hints = self.hints if hints is None else hints
        if not (hints.points or hints.neg_points or hints.boxes):
            raise InvalidInputError("nothing to commit: click on the product or draw a box first")
        return self.segmenter.segment(self.photo, hints, progress)
