"""Interactive classic cut-out: boxes and clicks -> GrabCut on a preview, refined at full size.

One session per photo (and per user): everything that depends only on the photo is computed once
in the constructor (the preview, its illumination-normalised copy for the colour models, its
quantised colours) or lazily once (the plain-backdrop analysis). ``preview(hints)`` is a pure
function of (session, hints): the caller keeps the click list and sends all of it every time;
the session caches the result for the boxes alone (seeded, hence deterministic), so each further
click costs a short GrabCut update of that cached state, not a fresh segmentation.

How hints are used (preview coordinates, ``preview_size``):

* **Plain backdrop** (the automatic analysis of :mod:`packshot.segment.backdrop` finds a clean
  backdrop model): the automatic mask is the starting point, restricted to the boxes; without a
  box a positive click selects the parts it touches. GrabCut runs only when a click contradicts
  that mask, and the final edges come from the backdrop model as in the automatic cut-out.
* **Box on a cluttered photo** (the object touches each side of a box drawn around it): outside
  every box is background. Inside, a thin strip along the box's edges and the context around the
  box give background colour samples; pixels whose colour is more frequent inside the box than in
  those samples start as probable product. GrabCut (OpenCV) then runs on the box's region, on a
  copy of the preview whose slow illumination changes (vignetting, light fall-off) are divided
  out, so its colour models see surfaces rather than lighting.
* **Clicks**: a disk of ``click_radius`` around each click is a hard seed (product / background).
  A click also speaks for the region of similar colour around it (within ``grow_reach``: hard
  label) and, within ``click_reach``, for that colour elsewhere in the region (probable label);
  contradicting regions cancel. GrabCut then updates the cached state with ``click_iterations``.
  Without a box on a cluttered photo, GrabCut starts from a disk around the positive clicks.
* **Clean-up**: specks dropped, parts touched by a positive click (or the largest) kept,
  pin-holes filled (real holes, such as a mug handle's, stay).

``commit(hints)`` upsamples that mask and computes the soft edge at full resolution in a thin
band (:func:`packshot.segment.refine.full_res_matte`), with the backdrop model on plain backdrops
or a local background estimate elsewhere, and decontaminates the edge colours.

Positive clicks outside every box are ignored on cluttered photos (the box bounds the product).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InvalidInputError, NoProductFoundError
from ..types import Hints, Matte, Photo, ProgressFn, no_progress
from . import refine as R
from .backdrop import AutoResult, ClassicParams, auto_mask, finish_matte

_FG, _BG, _PR_FG, _PR_BG = cv2.GC_FGD, cv2.GC_BGD, cv2.GC_PR_FGD, cv2.GC_PR_BGD


INSET = 0.06  # implicit box for a cluttered photo with no hints: the frame inset 6% per side


@dataclass(frozen=True)
class InteractiveParams:
    """Tuning of the interactive engine (measured in benchmarks/bench_cutout.py)."""

    preview_side: int = 400          # long side of the GrabCut preview (px)
    iterations: int = 5              # GrabCut iterations from the boxes
    click_iterations: int = 2        # ... to add clicks to the cached box result
    click_radius: float = 0.012      # seed disk radius, fraction of the preview's long side
    strip: float = 0.025             # inner strip of a box used as background samples
    context: float = 0.25            # background context around the boxes given to GrabCut
    illumination_sigma: float = 0.08  # illumination estimate: Gaussian, fraction of the diagonal
    illumination_gain: float = 1.5   # ... and the largest correction either way
    band: int = 2                    # unknown band half-width at preview resolution (px)
    grow_reach: float = 0.08         # a click's region of similar colour: at most this far
    click_reach: float = 0.25        # a click's colour propagates this far (fraction of ROI diagonal)
    grow_tolerance: int = 14         # colour tolerance of the region a click speaks for (0-255)
    plain_noise: float = 0.01        # backdrop model noise below which a photo counts as plain
    min_part: float = 0.02           # parts below this fraction of the largest are dropped
    max_false_hole: float = 0.002    # holes below this fraction of the mask are filled


def _disk_mask(shape, centres, radius: int) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    for x, y in centres:
        cv2.circle(m, (int(x), int(y)), radius, 1, -1)
    return m.astype(bool)


@dataclass
class _Base:
    """Cached starting state for one set of boxes (preview coordinates)."""

    roi: tuple[int, int, int, int]   # x0, y0, x1, y1 of the GrabCut region
    labels: np.ndarray               # GrabCut labels over the region (uint8)
    bgd: np.ndarray | None           # GrabCut background model (1x65 float64), None: not run yet
    fgd: np.ndarray | None           # GrabCut foreground model
    allowed: np.ndarray              # preview-size bool: inside the boxes (all True: no box)
    plain: bool = False              # from the plain-backdrop mask (no GrabCut run)


class InteractiveCutout:
    """Interactive session for one photo. Not shared between users; no module-level state.

    ``preview(hints)`` -> float32 alpha at ``preview_size`` (w, h); ``commit(hints)`` -> Matte at
    the photo's size. Hints are in photo pixels (points (x, y), boxes XYXY exclusive).
    """

    def __init__(self, photo: Photo, params: InteractiveParams | None = None,
                 classic: ClassicParams | None = None, auto: AutoResult | None = None,
                 prior: np.ndarray | None = None):
        self.photo = photo
        self.rgb = R.flattened_rgb(photo)                            # HxWx3 uint8, full size
        self.params = prm = params or InteractiveParams()
        self.classic = classic or ClassicParams()
        w, h = photo.size
        self.scale = R.preview_scale((w, h), prm.preview_side)
        self.p = R.downscale(self.rgb, self.scale)                  # HxWx3 float32 RGB
        ph, pw = self.p.shape[:2]
        self.preview_size = (pw, ph)
        self._gc_image = self._illumination_normalised()             # HxWx3 uint8 BGR
        self._smooth = cv2.GaussianBlur(self._gc_image, (0, 0), 1.0)  # for click regions
        q = np.clip(self.p * 16, 0, 15.999).astype(np.int32)
        self._bins = (q[..., 0] * 16 + q[..., 1]) * 16 + q[..., 2]   # 16^3 colour bins
        self._radius = max(2, round(prm.click_radius * max(pw, ph)))
        self._lock = threading.Lock()
        self._auto: AutoResult | None = None
        self._auto_done = False
        # a prior mask (bool, any size; e.g. the learned engine's) starts the session like a
        # plain-backdrop mask: clicks select its parts, and GrabCut runs only when a click contradicts it
        self._prior = None
        if auto is not None:  # the caller's analysis of this photo (same preview size): not redone
            self._auto = auto if self._is_plain(auto) else None
            self._auto_done = True
        self._bases: dict[tuple, _Base] = {}
        if prior is not None:
            self.set_prior(prior)

    # -- geometry -------------------------------------------------------------------------------
    def to_preview(self, x: float, y: float) -> tuple[int, int]:
        """Photo pixel (x, y) -> preview pixel (x, y)."""
        pw, ph = self.preview_size
        return (min(pw - 1, max(0, int((x + 0.5) * self.scale))),
                min(ph - 1, max(0, int((y + 0.5) * self.scale))))

    def _box_to_preview(self, box) -> tuple[int, int, int, int]:
        pw, ph = self.preview_size
        x0, y0, x1, y1 = box
        bx = (max(0, int(np.floor(x0 * self.scale))), max(0, int(np.floor(y0 * self.scale))),
              min(pw, int(np.ceil(x1 * self.scale))), min(ph, int(np.ceil(y1 * self.scale))))
        if bx[2] - bx[0] < 2 or bx[3] - bx[1] < 2:
            raise InvalidInputError(f"box {','.join(map(str, box))} is too small to cut out from "
                                    f"(under 2 px at the {pw}x{ph} preview)")
        return bx

    def _check(self, hints: Hints) -> None:
        w, h = self.photo.size
        for x, y in (*hints.points, *hints.neg_points):
            if not (0 <= x < w and 0 <= y < h):
                raise InvalidInputError(f"point {x},{y} is outside the {w}x{h} photo")
        for b in hints.boxes:
            if len(b) != 4 or b[2] <= b[0] or b[3] <= b[1] or b[0] < 0 or b[1] < 0 or b[2] > w or b[3] > h:
                raise InvalidInputError(f"box {','.join(map(str, b))} is not inside the {w}x{h} photo "
                                        "with x1 > x0 and y1 > y0")

    # -- per-image, once ------------------------------------------------------------------------
    def _illumination_normalised(self) -> np.ndarray:
        prm = self.params
        lum = self.p.mean(axis=2) + 1 / 255
        ph, pw = lum.shape
        sigma = max(1.0, prm.illumination_sigma * float(np.hypot(pw, ph)))
        smooth = cv2.GaussianBlur(lum, (0, 0), sigma)
        gain = np.clip(float(lum.mean()) / smooth, 1 / prm.illumination_gain, prm.illumination_gain)
        out = np.clip(self.p * gain[..., None] * 255, 0, 255).round().astype(np.uint8)
        return np.ascontiguousarray(out[..., ::-1])

    def plain_backdrop(self) -> AutoResult | None:
        """The automatic analysis when the photo is a product on a plain backdrop, else None."""
        with self._lock:
            if not self._auto_done:
                w, h = self.photo.size
                p = R.downscale(self.rgb, R.preview_scale((w, h), self.classic.preview_side))
                res = auto_mask(p, self.classic)
                self._auto = res if self._is_plain(res) else None
                self._auto_done = True
            return self._auto

    def _is_plain(self, res: AutoResult) -> bool:
        noise = max(res.backdrop.sigma_k, res.backdrop.sigma_r)
        return (noise < self.params.plain_noise and not res.notes
                and self.classic.min_area < res.mask.mean() < 0.9)

    def preview_box(self, box) -> tuple[int, int, int, int]:
        """A box in photo pixels -> preview pixels (XYXY exclusive, at least 1 px)."""
        return self._box_to_preview(box)

    def inset_box(self) -> tuple[int, int, int, int]:
        """The implicit box of a cluttered photo with no hints: the frame inset by INSET."""
        pw, ph = self.preview_size
        return (round(pw * INSET), round(ph * INSET), round(pw * (1 - INSET)), round(ph * (1 - INSET)))

    def set_prior(self, prior: np.ndarray | None) -> None:
        """Start this session from ``prior`` (bool mask, any size; None: no prior)."""
        self._prior = None if prior is None else cv2.resize(
            np.asarray(prior, np.float32), self.preview_size, interpolation=cv2.INTER_AREA) >= 0.5
        with self._lock:
            self._bases.clear()

    def _auto_preview_mask(self) -> np.ndarray | None:
        if self._prior is not None:
            return self._prior
        auto = self.plain_backdrop()
        if auto is None:
            return None
        m = cv2.resize(auto.mask.astype(np.float32), self.preview_size, interpolation=cv2.INTER_AREA)
        return m >= 0.5

    # -- GrabCut ----------------------------------------------------------------------------------
    def _grabcut(self, roi, labels, iterations: int, bgd=None, fgd=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x0, y0, x1, y1 = roi
        img = np.ascontiguousarray(self._gc_image[y0:y1, x0:x1])
        labels = labels.copy()
        if not (labels == _FG).any() and not (labels == _PR_FG).any():
            return labels, bgd, fgd
        if not ((labels == _BG) | (labels == _PR_BG)).any():
            labels[0, :] = _BG  # GrabCut needs some background
        cv2.setRNGSeed(0)  # k-means initialisation: deterministic results (thread-local RNG)
        if bgd is None:
            bgd, fgd = np.zeros((1, 65)), np.zeros((1, 65))
            cv2.grabCut(img, labels, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        else:
            bgd, fgd = bgd.copy(), fgd.copy()
            cv2.grabCut(img, labels, None, bgd, fgd, iterations, cv2.GC_EVAL)
        return labels, bgd, fgd

    def _box_base(self, boxes: tuple) -> _Base | None:
        """Starting state for a set of boxes (cached: deterministic). ``()``: no box.

        Plain backdrop: the automatic mask inside the boxes, no GrabCut. Otherwise GrabCut from
        the boxes (None when there is no box: the clicks alone decide).
        """
        with self._lock:
            if boxes in self._bases:
                return self._bases[boxes]
        base = self._plain_base(boxes)
        if base is None and boxes:
            base = self._grabcut_base(boxes)
        with self._lock:
            if len(self._bases) > 8:
                self._bases.pop(next(iter(self._bases)))
            self._bases[boxes] = base
        return base

    def _allowed(self, boxes: tuple) -> np.ndarray:
        pw, ph = self.preview_size
        if not boxes:
            return np.ones((ph, pw), bool)
        allowed = np.zeros((ph, pw), bool)
        for x0, y0, x1, y1 in boxes:
            allowed[y0:y1, x0:x1] = True
        return allowed

    def _roi_around(self, m: np.ndarray, context: float) -> tuple[int, int, int, int]:
        pw, ph = self.preview_size
        ys, xs = np.nonzero(m)
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        cx, cy = round(context * (x1 - x0)) + 2, round(context * (y1 - y0)) + 2
        return (int(max(0, x0 - cx)), int(max(0, y0 - cy)), int(min(pw, x1 + cx)), int(min(ph, y1 + cy)))

    def _plain_base(self, boxes: tuple) -> _Base | None:
        auto = self._auto_preview_mask()
        if auto is None:
            return None
        allowed = self._allowed(boxes)
        start = auto & allowed
        if not start.any():
            return None
        roi = self._roi_around(allowed if boxes else start, self.params.context)
        x0, y0, x1, y1 = roi
        sl = (slice(y0, y1), slice(x0, x1))
        labels = np.where(allowed[sl], _PR_BG, _BG).astype(np.uint8)
        labels[start[sl]] = _PR_FG
        return _Base(roi=roi, labels=labels, bgd=None, fgd=None, allowed=allowed, plain=True)

    def _grabcut_base(self, boxes: tuple) -> _Base:
        prm = self.params
        pw, ph = self.preview_size
        allowed = self._allowed(boxes)
        inner = np.zeros((ph, pw), bool)
        for x0, y0, x1, y1 in boxes:
            sx, sy = max(1, round(prm.strip * (x1 - x0))), max(1, round(prm.strip * (y1 - y0)))
            inner[y0 + sy:y1 - sy, x0 + sx:x1 - sx] = True
        roi = self._roi_around(allowed, prm.context)
        rx0, ry0, rx1, ry1 = roi
        sl = (slice(ry0, ry1), slice(rx0, rx1))
        # colour frequency inside the boxes vs the strip + context: probable product where higher
        bins = self._bins[sl]
        a_in, a_inner = allowed[sl], inner[sl]
        h_fg = np.bincount(bins[a_inner].ravel(), minlength=4096).astype(np.float64)
        h_bg = np.bincount(bins[~a_inner].ravel(), minlength=4096).astype(np.float64)
        h_fg /= max(h_fg.sum(), 1)
        h_bg /= max(h_bg.sum(), 1)
        ratio = (h_fg[bins] + 1e-5) / (h_bg[bins] + 1e-5)
        labels = np.full(bins.shape, _BG, np.uint8)
        labels[a_in] = _PR_BG
        labels[a_inner & (ratio > 1.0)] = _PR_FG
        labels, bgd, fgd = self._grabcut(roi, labels, prm.iterations)
        return _Base(roi=roi, labels=labels, bgd=bgd, fgd=fgd, allowed=allowed)

    # -- public API -----------------------------------------------------------------------------
    def preview_mask(self, hints: Hints) -> np.ndarray:
        """Product mask (bool) at ``preview_size`` for these hints. Pure function of the hints."""
        self._check(hints)
        pw, ph = self.preview_size
        pos = [self.to_preview(x, y) for x, y in hints.points]
        neg = [self.to_preview(x, y) for x, y in hints.neg_points]
        fg_seed = _disk_mask((ph, pw), pos, self._radius)
        bg_seed = _disk_mask((ph, pw), neg, self._radius) & ~fg_seed
        boxes = tuple(sorted(self._box_to_preview(b) for b in hints.boxes))
        base = self._box_base(boxes)
        if base is None and not pos:
            # cluttered photo, no box, no positive click: the main object inside the frame inset
            # by INSET (as the automatic cut-out does), which negative clicks then refine
            boxes = (self.inset_box(),)
            base = self._box_base(boxes)
        if base is None:  # cluttered photo, no box, clicks: the clicked object
            return self._clean(self._clicks_only(pos, fg_seed, bg_seed), pos)
        x0, y0, x1, y1 = base.roi
        sl = (slice(y0, y1), slice(x0, x1))
        labels = base.labels
        current = (labels == _FG) | (labels == _PR_FG)
        if base.plain and pos and not boxes:
            # a click selects the parts of the plain-backdrop mask it touches
            n, lab = cv2.connectedComponents(current.astype(np.uint8), connectivity=8)
            touched = np.unique(lab[fg_seed[sl] & current])
            if (touched > 0).any():
                labels = labels.copy()
                labels[current & ~np.isin(lab, touched[touched > 0])] = _PR_BG
                current = (labels == _FG) | (labels == _PR_FG)
        fs, bs = fg_seed[sl] & base.allowed[sl], bg_seed[sl]
        outside = [(x, y) for x, y in pos if base.allowed[y, x] and not (x0 <= x < x1 and y0 <= y < y1)]
        conflict = bool(outside) or (fs & ~current).any() or (bs & current).any()
        if base.plain and not conflict:
            mask = np.zeros((ph, pw), bool)
            mask[sl] = current
            return self._clean(mask, pos)
        if outside:  # a positive click beyond the region: widen it
            base = self._widened(base, outside)
            x0, y0, x1, y1 = base.roi
            sl = (slice(y0, y1), slice(x0, x1))
            fs, bs = fg_seed[sl] & base.allowed[sl], bg_seed[sl]
        if fs.any() or bs.any():
            labels = self._apply_clicks(base, sl, pos, neg, fs, bs, labels if labels.shape == fs.shape else None)
        mask = np.zeros((ph, pw), bool)
        mask[sl] = (labels == _FG) | (labels == _PR_FG)
        mask &= base.allowed
        return self._clean(mask, pos)

    def _widened(self, base: _Base, points) -> _Base:
        pw, ph = self.preview_size
        m = np.zeros((ph, pw), bool)
        x0, y0, x1, y1 = base.roi
        m[y0:y1, x0:x1] = True
        m |= _disk_mask((ph, pw), points, self._radius)
        roi = self._roi_around(m, 0.05)
        nx0, ny0, nx1, ny1 = roi
        labels = np.where(base.allowed[ny0:ny1, nx0:nx1], _PR_BG, _BG).astype(np.uint8)
        labels[y0 - ny0:y1 - ny0, x0 - nx0:x1 - nx0] = base.labels
        return _Base(roi=roi, labels=labels, bgd=None, fgd=None, allowed=base.allowed, plain=base.plain)

    def _apply_clicks(self, base: _Base, sl, pos, neg, fs: np.ndarray, bs: np.ndarray,
                      start: np.ndarray | None = None) -> np.ndarray:
        """GrabCut labels of the ROI after clicks on top of the cached box result.

        A click speaks for the region of similar colour around it (hard label), and for that
        colour elsewhere in the box: where the box result has a colour that is more typical of the
        negative regions than of the rest of the product, it becomes probable background (and
        vice versa for positive regions). GrabCut then re-learns its colour models from that.
        """
        x0, y0, x1, y1 = base.roi
        allowed = base.allowed[sl]
        labels = (base.labels if start is None else start).copy()
        current = (labels == _FG) | (labels == _PR_FG)
        neg_region = np.zeros_like(current)
        pos_region = np.zeros_like(current)
        grow_r = max(self._radius, round(self.params.grow_reach * float(np.hypot(x1 - x0, y1 - y0))))
        for x, y in neg:
            if x0 <= x < x1 and y0 <= y < y1 and current[y - y0, x - x0]:
                neg_region |= self._grow((x - x0, y - y0), current, sl, grow_r)
        for x, y in pos:
            if base.allowed[y, x]:
                inside = current[y - y0, x - x0]
                pos_region |= self._grow((x - x0, y - y0), (current if inside else ~current) & allowed, sl, grow_r)
        both = neg_region & pos_region  # contradicting clicks: neither region decides there
        neg_region &= ~both
        pos_region &= ~both
        bins = self._bins[sl]

        def typical(region, rest):
            h_r = np.bincount(bins[region], minlength=4096).astype(np.float64)
            h_o = np.bincount(bins[rest], minlength=4096).astype(np.float64) + 1e-3
            return (h_r / h_r.sum() > h_o / h_o.sum())[bins]

        # colour propagation stays near the clicks (a click is about its surroundings)
        ry, rx = np.mgrid[y0:y1, x0:x1]
        reach = self.params.click_reach * float(np.hypot(x1 - x0, y1 - y0))

        def near(points):
            d = np.full(current.shape, np.inf, np.float32)
            for x, y in points:
                d = np.minimum(d, np.hypot(rx - x, ry - y).astype(np.float32))
            return d <= reach

        if neg_region.any():
            flip = current & typical(neg_region, current & ~neg_region) & near(neg)
            if pos_region.any():  # colours the user also marked as product stay
                flip &= ~typical(pos_region, neg_region)
            labels[flip] = _PR_BG
        if pos_region.any():
            outside = ~current & allowed
            flip = outside & typical(pos_region, outside & ~pos_region) & near(pos)
            if neg_region.any():
                flip &= ~typical(neg_region, pos_region)
            labels[flip] = _PR_FG
        labels[neg_region & ~pos_region] = _BG
        labels[pos_region & ~neg_region] = _FG
        labels[fs] = _FG
        labels[bs] = _BG
        # from a cached GrabCut state a short update; from a plain-backdrop mask (no colour models
        # yet) one more iteration to learn them
        iterations = self.params.click_iterations + (0 if base.bgd is not None else 1)
        labels, _, _ = self._grabcut(base.roi, labels, iterations, base.bgd, base.fgd)
        return labels

    def _grow(self, seed: tuple[int, int], within: np.ndarray, sl, radius: int) -> np.ndarray:
        """Region of similar colour around ``seed`` (ROI coordinates), inside ``within`` (bool) and
        within ``radius`` px of the seed."""
        img = np.ascontiguousarray(self._smooth[sl])
        h, w = within.shape
        ff = np.ones((h + 2, w + 2), np.uint8)
        allowed = within & _disk_mask(within.shape, [seed], radius)
        ff[1:-1, 1:-1][allowed] = 0
        tol = (self.params.grow_tolerance,) * 3
        flags = 8 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (2 << 8)
        cv2.floodFill(img, ff, seed, (0, 0, 0), tol, tol, flags)
        return ff[1:-1, 1:-1] == 2

    def preview(self, hints: Hints) -> np.ndarray:
        """Alpha (float32, 0 or 1) at ``preview_size``: what the product would be for these hints."""
        return self.preview_mask(hints).astype(np.float32)

    def _clicks_only(self, pos, fg_seed, bg_seed) -> np.ndarray:
        """Cluttered photo, clicks without a box: GrabCut from a disk around the positive clicks."""
        pw, ph = self.preview_size
        if not pos:
            return np.zeros((ph, pw), bool)
        r = max(self._radius * 4, round(0.15 * max(pw, ph)))
        start = _disk_mask((ph, pw), pos, r)
        region = cv2.dilate((start | fg_seed).astype(np.uint8), R.disk(max(4, round(0.1 * max(pw, ph)))))
        ys, xs = np.nonzero(region)
        roi = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
        x0, y0, x1, y1 = roi
        sl = (slice(y0, y1), slice(x0, x1))
        labels = np.where(start[sl], _PR_FG, _PR_BG).astype(np.uint8)
        labels[fg_seed[sl]] = _FG
        labels[bg_seed[sl]] = _BG
        labels, _, _ = self._grabcut(roi, labels, self.params.iterations)
        mask = np.zeros((ph, pw), bool)
        mask[sl] = (labels == _FG) | (labels == _PR_FG)
        return mask

    def _clean(self, mask: np.ndarray, pos) -> np.ndarray:
        prm = self.params
        if not mask.any():
            return mask
        n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
        areas = stats[:, cv2.CC_STAT_AREA].copy()
        areas[0] = 0
        keep = areas >= prm.min_part * areas.max()
        for x, y in pos:  # a part the user clicked on stays, however small
            keep[lab[y, x]] = True
        keep[0] = False
        mask = keep[lab]
        limit = prm.max_false_hole * mask.sum()
        return R.fill_false_holes(mask, lambda hole: True, min_area=int(limit) + 1)  # pin-holes only

    def commit(self, hints: Hints, progress: ProgressFn = no_progress) -> Matte:
        """The final matte at the photo's size: preview mask, soft edges at full resolution."""
        t0 = time.perf_counter()
        progress("segment", 0.1, "cutting out (hints)")
        mask = self.preview_mask(hints)
        if not mask.any():
            raise NoProductFoundError(f"{self.photo.source}: no product found for these hints "
                                      "(the box or clicks select nothing)")
        t1 = time.perf_counter()
        progress("segment", 0.6, "refining the edges")
        auto = self.plain_backdrop()
        if auto is not None:
            # back at the automatic analysis' resolution: keep its detail wherever the hints agree
            # with it (within 2 px), take the hints' mask where they differ
            ah, aw = auto.mask.shape
            m = cv2.resize(mask.astype(np.float32), (aw, ah), interpolation=cv2.INTER_LINEAR) >= 0.5
            near_m = cv2.dilate(m.astype(np.uint8), R.disk(2)) > 0
            near_a = cv2.dilate(auto.mask.astype(np.uint8), R.disk(2)) > 0
            m = (auto.mask & near_m) | (m & ~near_a)
            alpha, fg = finish_matte(self.rgb, auto, m, self.classic)
        else:
            fields = R.local_edge_fields(self.p, mask, band=self.params.band)
            alpha, fg = R.full_res_matte(self.rgb, fields, snap=self.classic.snap)
        if not (alpha >= 0.5).any():
            raise NoProductFoundError(f"{self.photo.source}: no product found for these hints")
        return Matte(alpha=alpha, engine="classic", foreground=fg,
                     notes=("classic: interactive (GrabCut from hints)",),
                     timings={"segment.preview": t1 - t0, "segment.refine": time.perf_counter() - t1})
