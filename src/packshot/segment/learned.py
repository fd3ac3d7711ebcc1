"""Learned cut-out: a trained salient-object model (default u2netp, ONNX) fused with the classical
machinery. Registry name ``learned``.

Fusion, not replacement (all decisions on the interactive session's preview):

1. **The model's map** ``P`` (:mod:`packshot.segment.onnx_model`) is computed on the whole photo,
   or on the box + ``box_margin`` when a box is given (the product then fills the model's input),
   and pasted back at the photo's geometry.
2. **The classical analysis** of the same photo (:func:`packshot.segment.backdrop.auto_mask`) runs
   once. On a plain backdrop its mask ``C`` is the reference: when ``P >= 0.5`` agrees with it
   (IoU >= ``plain_agree``) the backdrop model's cut-out is used as it is (it is sharper there and
   knows cast shadows); otherwise the result better supported by the backdrop model is used: the
   model's extra pixels count when they do not look like the backdrop (a white label on a white
   sweep is kept only if the backdrop model also sees it as different).
   In context (kitchen table, rug), ``C`` is GrabCut from the frame inset. Salient-object models
   tend to keep only the most salient part (the pot of a plant, the head of a teddy); when ``C``
   and the model disagree strongly (IoU < ``context_agree``) both are kept (union) and the
   disagreement lowers the cut-out's confidence (:mod:`packshot.segment.confidence`).
3. **The result is the prior** of an :class:`~packshot.segment.interactive.InteractiveCutout`
   session: clicks select its parts or run GrabCut where they contradict it; the existing
   full-resolution band matting, decontamination, backdrop shadow handling and real-hole tests
   finish the edge (``commit``).

Which source was used is said in the matte's notes only when it is noteworthy.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from ..config import Settings
from ..errors import MissingWeightsError, ModelError, NoProductFoundError
from ..types import Box, Hints, Matte, Photo, ProgressFn, no_progress
from . import refine as R
from .backdrop import AutoResult, ClassicParams, auto_mask
from .confidence import assess
from .interactive import InteractiveCutout
from .onnx_model import CutoutModel, upsample

DEFAULT_MODEL = "u2netp"


@dataclass(frozen=True)
class LearnedParams:
    """Fusion thresholds (measured on ../shared/data/matting and the backdrop set, see benchmarks/)."""

    box_margin: float = 0.10      # the model sees the box grown by this fraction per side
    plain_agree: float = 0.85     # plain backdrop: IoU above which the backdrop model's cut-out is kept
    backdrop_like: float = 0.5    # ... the model's extra pixels count if fewer than this look like backdrop
    context_agree: float = 0.6    # in context: IoU below which the model and GrabCut are united ...
    grabcut_fill: float = 0.75    # ... unless GrabCut kept more than this of its box (background too)
    threshold: float = 0.5        # the model's map -> mask
    missed_area: float = 0.005    # plain backdrop, agreeing: a model-only part this big (of the mask) ...
    missed_prob: float = 0.9      # ... where the model is this sure ...
    missed_shade: float = 0.6     # ... and the photo this much darker than the backdrop (or another hue) is kept


def resolve_model(settings: Settings, ref: str | None = None) -> tuple[Path, dict]:
    """Model reference (catalog id or path to an ``.onnx`` file) -> (file, catalog extra). No load."""
    from ..models import MODELS, resolve
    from ..models.download import single_file

    ref = ref or DEFAULT_MODEL
    path = Path(ref).expanduser()
    if path.suffix == ".onnx" or path.is_file():
        if not path.is_file():
            raise MissingWeightsError(f"cut-out model file {ref} does not exist")
        return path, {}
    spec = MODELS.get(ref)
    if spec is not None and spec.kind != "cutout":
        raise ModelError(f"model {ref!r} is a {spec.kind} model; the learned engine needs a cut-out model "
                         f"(e.g. {DEFAULT_MODEL})")
    try:
        folder = resolve(ref, settings, kinds=("cutout",))
    except MissingWeightsError:
        raise MissingWeightsError(f"cut-out model {ref!r} is not present in {settings.model_dir}; fetch it "
                                  f"with: packshot models pull {ref}") from None
    if spec is None:
        raise ModelError(f"{ref!r} is not a cut-out model id or .onnx file (see 'packshot models list')")
    file = single_file(spec, folder)
    if not file.is_file():
        raise MissingWeightsError(f"cut-out model {ref!r}: {file} is missing; fetch it with: "
                                  f"packshot models pull {ref}")
    return file, dict(spec.extra)


def learned_available(settings: Settings | None = None, model: str | None = None) -> bool:
    """True when the (default) cut-out model's file is present. Cheap: no onnxruntime import."""
    try:
        resolve_model(settings or Settings(), model)
        return True
    except (MissingWeightsError, ModelError):
        return False


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    u = int((a | b).sum())
    return float((a & b).sum() / u) if u else 1.0


def _model_edge(matte: Matte, full: np.ndarray, model_only: bool, rgb: np.ndarray,
                reach: float = 0.006) -> Matte:
    """Near the matte's edge (within ``reach`` of the long side), where the full-resolution model
    map and the band matting disagree on which side of 0.5 a pixel is, take the model's value: its
    map, upsampled from the model's input size, places the edge more precisely than the preview mask
    the band was built around. Pixels the model calls background are only overridden when the
    prior was the model's own mask (not united with GrabCut's, whose extra parts must stay)."""
    a = matte.alpha
    inside, model = a >= 0.5, full >= 0.5
    r = max(1, int(round(reach * max(a.shape))))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    m8 = inside.astype(np.uint8)
    near = cv2.dilate(m8, k) != cv2.erode(m8, k)
    take = near & (model & ~inside | (~model & inside if model_only else False))
    if not take.any():
        return matte
    return _take_model(matte, a, full, take, rgb)


def _restored_edge(matte: Matte, full: np.ndarray, restored: np.ndarray | None, rgb: np.ndarray) -> Matte:
    """Around parts the model restored on a plain backdrop (preview-size mask ``restored``), alpha is
    at least the full-resolution model map: the band matting, fitted to the backdrop model that
    missed them, leaves their edge ragged and half transparent where the model's edge is crisp."""
    if restored is None or not restored.any():
        return matte
    h, w = matte.alpha.shape
    near = cv2.resize(cv2.dilate(restored.astype(np.uint8), R.disk(2)), (w, h),
                      interpolation=cv2.INTER_NEAREST) > 0
    take = near & (full > matte.alpha)
    return _take_model(matte, matte.alpha, full, take, rgb)


class LearnedSegmenter:
    """Segmentation engine ``learned`` (see the module docstring). ``model``: catalog id or .onnx."""

    name = "learned"

    def __init__(self, settings: Settings | None = None, model: str | None = None, *,
                 params: LearnedParams | None = None, classic: ClassicParams | None = None):
        self.settings = settings or Settings()
        self.model_ref = model or DEFAULT_MODEL
        self.params = params or LearnedParams()
        self.classic = classic or ClassicParams()
        self._file, self._extra = resolve_model(self.settings, model)  # fail early: missing / wrong kind
        self._model: CutoutModel | None = None

    @staticmethod
    def check(settings: Settings, model: str | None = None) -> None:
        """Up-front check (``packshot.resolve.check_inputs``): the cut-out model's file is present and
        of the right kind; one-line MissingWeightsError / ModelError naming it. No load."""
        resolve_model(settings, model)

    def model(self) -> CutoutModel:
        """The loaded model (onnxruntime session cached per file: loaded once per process)."""
        if self._model is None:
            self._model = CutoutModel.load(self._file, self._extra)
        return self._model

    # -- the model's map -----------------------------------------------------------------------
    def prob_map(self, rgb: np.ndarray, size: tuple[int, int], box: Box | None = None) -> np.ndarray:
        """The model's foreground map at ``size`` (w, h) for the photo ``rgb`` (full size), on the
        whole photo or on ``box`` grown by ``box_margin`` (zero outside that crop)."""
        h, w = rgb.shape[:2]
        sw, sh = size
        if box is None:
            return upsample(self.model().predict(rgb), (sw, sh))
        x0, y0, x1, y1 = box
        mx, my = self.params.box_margin * (x1 - x0), self.params.box_margin * (y1 - y0)
        cx0, cy0 = max(0, int(x0 - mx)), max(0, int(y0 - my))
        cx1, cy1 = min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my)))
        crop = self.model().predict(np.ascontiguousarray(rgb[cy0:cy1, cx0:cx1]))
        fx, fy = sw / w, sh / h
        px0, py0 = int(round(cx0 * fx)), int(round(cy0 * fy))
        px1, py1 = max(px0 + 1, int(round(cx1 * fx))), max(py0 + 1, int(round(cy1 * fy)))
        out = np.zeros((sh, sw), np.float32)
        out[py0:py1, px0:px1] = upsample(crop, (px1 - px0, py1 - py0))
        return out

    # -- fusion ------------------------------------------------------------------------------------
    def _missed_parts(self, res: AutoResult, lm: np.ndarray, prob: np.ndarray, k: np.ndarray,
                      r: np.ndarray, like: np.ndarray) -> np.ndarray:
        """Parts of the model's mask the backdrop model missed although they are clearly product: a
        connected part (at least ``missed_area`` of the mask) where the model is confident and the
        photo is far from the backdrop's colour (much darker than a soft shadow, or another hue).
        A global IoU hides such a band (a shoe's upper edge lost: IoU still 0.96)."""
        prm = self.params
        n, lab, st, _ = cv2.connectedComponentsWithStats((lm & ~res.mask & ~like).astype(np.uint8))
        out = np.zeros_like(lm)
        min_area = max(16, prm.missed_area * res.mask.sum())
        for i in np.flatnonzero(st[1:, cv2.CC_STAT_AREA] >= min_area) + 1:
            m = lab == i
            if np.median(prob[m]) >= prm.missed_prob and (
                    np.median(k[m]) < prm.missed_shade or np.median(r[m]) > 2 * res.backdrop.t_r):
                out |= m
        return out

    def _fuse_plain(self, res: AutoResult, learned: np.ndarray,
                    prob: np.ndarray) -> tuple[np.ndarray | None, str, float]:
        """Plain backdrop: (prior or None = the backdrop model's own cut-out, which, agreement)."""
        size = res.mask.shape[::-1]
        lm = cv2.resize(learned.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
        agree = _iou(lm, res.mask)
        k, r = res.backdrop.features(res.p)
        like = (r < res.backdrop.t_r) & (np.abs(k - 1) < res.backdrop.t_k)
        if agree >= self.params.plain_agree:
            pr = cv2.resize(prob, size, interpolation=cv2.INTER_LINEAR)
            missed = self._missed_parts(res, lm, pr, k, r, like)
            if not missed.any():
                return None, "", agree
            return res.mask | missed, ("plain backdrop: the trained model restored product parts the backdrop "
                                       "model missed"), agree
        extra = lm & ~res.mask
        if extra.any() and like[extra].mean() < self.params.backdrop_like:
            return lm | res.mask, ("plain backdrop: the trained model found product parts the backdrop model "
                                   "missed; used both"), agree
        return None, ("plain backdrop: the trained model and the backdrop model disagree; used the backdrop "
                      "model (better supported here)"), agree

    def _fuse_context(self, session: InteractiveCutout, learned: np.ndarray,
                      boxes: tuple = ()) -> tuple[np.ndarray, str, float]:
        """Photo in context (or a box): the model's mask, or its union with GrabCut from the frame
        inset (from the boxes) when the two disagree strongly (the model kept only the most
        salient part)."""
        grabcut = session.preview_mask(Hints(boxes=boxes))
        agree = _iou(learned, grabcut)
        if agree >= self.params.context_agree:
            return learned, "", agree
        region = np.zeros_like(grabcut)
        for x0, y0, x1, y1 in (session.preview_box(b) for b in boxes) if boxes else (session.inset_box(),):
            region[y0:y1, x0:x1] = True
        if grabcut[region].mean() > self.params.grabcut_fill:
            # GrabCut kept nearly all of its region: background came with it; trust the model
            return learned, ("the trained model and GrabCut disagree; GrabCut kept nearly all of the "
                             "region (background?), so the model's cut-out is used"), agree
        return learned | grabcut, ("the trained model and GrabCut disagree on what the product is: kept both; "
                                   "check the cut-out, or give a box or clicks"), agree

    def _nothing_stands_out(self, res: AutoResult | None, learned: np.ndarray) -> bool:
        """A plain backdrop from which nothing stands out (the classic "no product found") and a
        model mask that is empty or mostly backdrop-coloured: salient-object models always return
        *something*, even on a blank sweep, so their mask alone is no evidence of a product."""
        if res is None or not res.backdrop.plain or res.mask.sum() >= max(4, self.classic.min_area * res.mask.size):
            return False
        lm = cv2.resize(learned.astype(np.uint8), res.mask.shape[::-1], interpolation=cv2.INTER_NEAREST) > 0
        if not lm.any():
            return True
        k, r = res.backdrop.features(res.p)
        like = (r < res.backdrop.t_r) & (np.abs(k - 1) < res.backdrop.t_k)
        return bool(like[lm].mean() >= self.params.backdrop_like)

    def _prior(self, base: InteractiveCutout, rgb: np.ndarray, hints: Hints, timings: dict,
               auto: AutoResult | None = None) -> tuple[np.ndarray | None, list[str], float | None, np.ndarray, tuple]:
        t = time.perf_counter()
        box = None
        if hints.boxes:
            b = np.array(hints.boxes)
            box = (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))
        full = self.prob_map(rgb, (rgb.shape[1], rgb.shape[0]), box)
        prob = cv2.resize(full, base.preview_size, interpolation=cv2.INTER_AREA)
        timings["segment.model"] = time.perf_counter() - t
        learned = R.drop_specks(prob >= self.params.threshold, min_area=4, min_fraction=0.02)
        notes: list[str] = []
        plain = base.plain_backdrop()
        if box is None and self._nothing_stands_out(auto, learned):
            prior, note, agree = np.zeros_like(learned), "", None
        elif box is not None:
            prior, note, agree = self._fuse_context(base, learned, tuple(hints.boxes))
        elif plain is not None:
            prior, note, agree = self._fuse_plain(plain, learned, prob)
        else:
            prior, note, agree = self._fuse_context(base, learned)
        if note:
            notes.append(note)
        restored = prior & ~plain.mask if (plain is not None and prior is not None
                                           and prior.shape == plain.mask.shape) else None
        return prior, notes, agree, prob, (full, prior is learned, restored)

    # -- the Segmenter protocol ------------------------------------------------------------------
    def segment(self, photo: Photo, hints: Hints = Hints(), progress: ProgressFn = no_progress) -> Matte:
        """Photo + hints -> soft matte the photo's size (see the module docstring)."""
        t0 = time.perf_counter()
        progress("segment", 0.05, "trained cut-out model")
        rgb = R.flattened_rgb(photo)
        h, w = rgb.shape[:2]
        p = R.downscale(rgb, R.preview_scale((w, h), self.classic.preview_side))
        res = auto_mask(p, self.classic)
        timings: dict[str, float] = {}
        session = InteractiveCutout(photo, classic=self.classic, auto=res)
        prior, notes, agree, prob, full_map = self._prior(session, rgb, hints, timings, res)
        if prior is not None and not prior.any():
            raise NoProductFoundError(f"{photo.source}: no product found: nothing stands out from the "
                                      "backdrop (give a box or clicks)")
        progress("segment", 0.5, "refining the edges")
        session.set_prior(prior)
        matte = session.commit(Hints(points=hints.points, neg_points=hints.neg_points, boxes=hints.boxes))
        if hints.text:
            notes.append(f"learned: the text prompt {hints.text!r} is not used (the sam engine reads text)")
        if prior is not None and not (hints.points or hints.neg_points):
            matte = _model_edge(matte, *full_map[:2], rgb)
            matte = _restored_edge(matte, full_map[0], full_map[2], rgb)
        matte = replace(matte, alpha=R.clear_haze(matte.alpha))  # faint haze off the product: not product
        if (matte.alpha >= 0.5).sum() < max(4, self.classic.min_area * matte.alpha.size):
            raise NoProductFoundError(f"{photo.source}: no product found: the cut-out is empty "
                                      "(give a box or clicks)")
        conf = assess(matte.alpha, prob=prob, agreement=agree, box=bool(hints.boxes))
        timings.update(matte.timings)
        timings["segment.total"] = time.perf_counter() - t0
        progress("segment", 1.0, "cut-out done")
        return replace(matte, engine=self.name, notes=tuple(notes), timings=timings,
                       confidence=conf.value, reasons=conf.reasons)

    # -- interactive ---------------------------------------------------------------------------------
    def session(self, photo: Photo) -> "LearnedSession":
        """An interactive session for one photo and one user (the model runs once per box)."""
        return LearnedSession(self, photo)


class LearnedSession:
    """Clicks on top of the learned cut-out, for ONE photo and ONE user.

    The fused prior is computed once per set of boxes (the model runs once for the whole photo,
    once per box); ``preview(hints)`` is then the interactive session's cheap update (clicks select
    the prior's parts, GrabCut only where a click contradicts it). ``commit(hints)`` is the engine's
    full-resolution ``segment`` (with confidence).
    """

    def __init__(self, segmenter: LearnedSegmenter, photo: Photo):
        self.segmenter, self.photo = segmenter, photo
        rgb = R.flattened_rgb(photo)
        h, w = rgb.shape[:2]
        self._rgb = rgb
        res = auto_mask(R.downscale(rgb, R.preview_scale((w, h), segmenter.classic.preview_side)),
                        segmenter.classic)
        self.cutout = InteractiveCutout(photo, classic=segmenter.classic, auto=res)
        self._res = res
        self.preview_size = self.cutout.preview_size
        self._priors: dict[tuple, np.ndarray | None] = {}

    def _use_prior(self, boxes: tuple) -> None:
        if boxes not in self._priors:
            self.cutout.set_prior(None)
            prior, *_ = self.segmenter._prior(self.cutout, self._rgb, Hints(boxes=boxes), {}, self._res)
            self._priors[boxes] = prior
        self.cutout.set_prior(self._priors[boxes])

    def preview(self, hints: Hints) -> np.ndarray:
        """Alpha (float32, 0 or 1) at ``preview_size`` for these hints."""
        self._use_prior(tuple(hints.boxes))
        return self.cutout.preview(hints)

    def commit(self, hints: Hints, progress: ProgressFn = no_progress) -> Matte:
        return self.segmenter.segment(self.photo, hints, progress)


def _take_model(matte: Matte, alpha: np.ndarray, full: np.ndarray, take: np.ndarray, rgb: np.ndarray) -> Matte:
    """``alpha`` with the full-resolution model map where ``take``; there the product colour is the
    photo's own (no decontaminated estimate)."""
    alpha = alpha.copy()
    alpha[take] = full[take]
    fg = matte.foreground
    if fg is not None:
        fg = fg.copy()
        fg[take] = rgb[take]
    return replace(matte, alpha=alpha, foreground=fg)
