"""Product fidelity: how much a generated product still looks like the reference photos, in [0, 1].

A model that paints the product itself (a trained adapter in text2img/img2img) may change its pose,
angle and light; it must not distort it, change its text or logo, or add or remove parts. The
candidate's product (cut out of the candidate with packshot's own segmenter) is compared with each
reference cut-out (the input photo's own cut-out and the adapter folders' ``references/*.png``);
the best-matching reference gives the score. The parts:

==========================  =====================================================================
``similarity_colour``       Bhattacharyya coefficient of the two products' chroma histograms
                            (CIE Lab a*, b*, L* left out), after a bounded von Kries white-balance
                            correction of the candidate: light of another colour or brightness
                            keeps it high, a hue shift of the product does not
``similarity_shape``        the silhouettes: log Hu moments (rotation/flip/scale invariant),
                            solidity, aspect of the minimum-area box and circularity; a part
                            removed or added changes them
``similarity_detail``       print, logos, text and texture (:mod:`.detail`): ORB matches on the
                            rank-equalised grey (invariant to any monotonic relighting) against
                            the reference and its mirror image, RANSAC homography, then SSIM cell
                            by cell after aligning: a logo painted over loses its matches, a few
                            rewritten words break the cells that hold them. Skipped when the
                            reference has too little print or texture (a plain product)
``similarity_embed``        cosine of image-encoder embeddings (DINOv2 / CLIP, :mod:`.encoders`),
                            only when ``settings.similarity_model`` names one
``similarity``              weighted geometric mean of the parts that ran (weights ``WEIGHTS``):
                            one failing part pulls the whole score down
==========================  =====================================================================

Everything is computed at a fixed working size (the product's longer side ``WORK_SIDE`` px), so
scale does not matter. The reference features are computed once per generate call
(:class:`ReferenceSet`); a candidate costs about 0.1-0.3 s on CPU without an encoder (measured in
benchmarks/README-similarity.md). OpenCV does the image work (colour conversion, moments, hulls,
ORB, RANSAC, warps); the few lines written here by hand combine them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from .detail import MIN_KEYPOINTS, detail_similarity, orb_features, rank_equalised_grey

WORK_SIDE = 320           # the product's longer side, px, for every part
WEIGHTS = {"similarity_embed": 2.0, "similarity_colour": 1.5, "similarity_shape": 1.0, "similarity_detail": 1.5}
NO_ENCODER_NOTE = "no image encoder configured: classical parts only (colour, shape, detail)"


@dataclass(frozen=True, eq=False)
class ProductView:
    """One product prepared for comparison: ``rgb`` HxWx3 uint8 cropped to the product's box and
    resized so its longer side is ``WORK_SIDE``; ``mask`` HxW bool (alpha >= 0.5)."""

    rgb: np.ndarray
    mask: np.ndarray
    name: str = ""
    sha256: str | None = None
    source: str = ""          # "photo" | "adapter <name>" | "candidate"
    native: int = WORK_SIDE   # the product's longer side in its own image, px (its real resolution)

    @classmethod
    def from_rgba(cls, rgb: np.ndarray, alpha: np.ndarray, **kw: Any) -> "ProductView":
        import cv2

        a = np.asarray(alpha, np.float32) / (255.0 if np.asarray(alpha).dtype == np.uint8 else 1.0)
        ys, xs = np.nonzero(a >= 0.5)
        if len(xs) == 0:
            raise ValueError(f"{kw.get('name') or 'product'}: the mask is empty")
        x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
        crop, m = rgb[y0:y1, x0:x1], a[y0:y1, x0:x1]
        s = WORK_SIDE / max(crop.shape[:2])
        size = (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s)))
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
        crop = cv2.resize(np.ascontiguousarray(crop), size, interpolation=interp)
        # the soft alpha is resized, then thresholded: a small product's outline stays smooth
        m = cv2.resize(np.ascontiguousarray(m), size, interpolation=interp)
        return cls(rgb=crop, mask=m >= 0.5, native=int(max(x1 - x0, y1 - y0)), **kw)

    def at(self, side: int) -> "ProductView":
        """This product as if it had been ``side`` px long (its print blurred to that resolution),
        still at the working size; cached per side. Two products are compared at the lower of
        their resolutions, so a small generated product is not faulted for detail it cannot hold."""
        import cv2

        cache = self.__dict__.setdefault("_at", {})
        if side >= WORK_SIDE or side >= self.native and self.native >= WORK_SIDE:
            return self
        if side not in cache:
            h, w = self.mask.shape
            f = side / max(h, w)
            small = cv2.resize(self.rgb, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
            cache[side] = ProductView(rgb=cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR),
                                      mask=self.mask, name=self.name, sha256=self.sha256, source=self.source,
                                      native=side)
        return cache[side]

    # -- features, computed once per view ------------------------------------------------------
    @cached_property
    def interior(self) -> np.ndarray:
        """The mask eroded by 2 px: edge pixels carry the old background's colour."""
        import cv2

        er = cv2.erode(self.mask.astype(np.uint8), np.ones((5, 5), np.uint8))
        return er.astype(bool) if er.any() else self.mask

    @cached_property
    def linear_mean(self) -> np.ndarray:
        """Mean linear-light RGB of the product (for the white-balance correction)."""
        return _linear(self.rgb[self.interior]).mean(axis=0) + 1e-4

    @cached_property
    def chroma(self) -> tuple[np.ndarray, np.ndarray]:
        """The uncorrected chroma histograms (a reference's side of the colour part)."""
        return chroma_histograms(self.rgb[self.interior])

    @cached_property
    def shape(self) -> np.ndarray:
        return shape_descriptor(self.mask)

    @cached_property
    def grey(self) -> np.ndarray:
        """Rank-equalised grey of the product (:func:`.detail.rank_equalised_grey`)."""
        return rank_equalised_grey(self.rgb, self.interior)

    @cached_property
    def keypoints(self) -> tuple[Any, Any]:
        return orb_features(self.grey, self.interior)

    @cached_property
    def keypoints_mirrored(self) -> tuple[Any, Any]:
        return orb_features(np.ascontiguousarray(self.grey[:, ::-1]), np.ascontiguousarray(self.interior[:, ::-1]))


# -- colour --------------------------------------------------------------------------------------
def _linear(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 -> linear light float32 (the standard sRGB transfer function)."""
    c = rgb.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def _srgb(lin: np.ndarray) -> np.ndarray:
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)


CHROMA_BINS = 16          # a*, b* histogram over [-80, 80): 10 units per bin
CHROMA_FULL = 20.0        # a pixel with at least this chroma counts fully in the colour histogram
NEUTRAL_WEIGHT = 0.1      # ... a neutral one this much
HUE_BINS = 36             # hue angle histogram: 10° per bin
HUE_MIN_CHROMA = 4.0      # below this chroma a pixel has no hue to speak of
MAX_WB_GAIN = 1.15        # the white-balance correction never scales a channel by more than this


def chroma_histograms(rgb_pixels: np.ndarray, gains: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Two normalised, lightly blurred histograms of N x 3 uint8 pixels (optionally with per-channel
    linear gains applied first): the a*/b* plane, and the hue angle (circular). Both weigh each
    pixel by its chroma, so the product's colours decide, not its many near-neutral (black, white,
    grey) pixels, which a hue shift leaves where they are. The hue histogram ignores how saturated
    a colour is (light changes that), so a dark amber turned dark green counts fully."""
    import cv2

    if gains is not None:
        px = _srgb(_linear(rgb_pixels) * gains).astype(np.float32)
    else:
        px = rgb_pixels.astype(np.float32) / 255.0
    lab = cv2.cvtColor(px.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    w = np.clip(chroma / CHROMA_FULL, NEUTRAL_WEIGHT, 1.0)
    ab, _, _ = np.histogram2d(lab[:, 1], lab[:, 2], bins=CHROMA_BINS, range=[[-80, 80], [-80, 80]], weights=w)
    ab = cv2.GaussianBlur(ab.astype(np.float32), (3, 3), 0.7)
    wh = np.clip((chroma - HUE_MIN_CHROMA) / CHROMA_FULL, 0.0, 1.0)  # hue of a grey pixel is noise
    hue = np.bincount((np.degrees(np.arctan2(lab[:, 2], lab[:, 1])) % 360 // (360 / HUE_BINS)).astype(int),
                      weights=wh, minlength=HUE_BINS)[:HUE_BINS]
    hue = (hue + 0.5 * np.roll(hue, 1) + 0.5 * np.roll(hue, -1)).astype(np.float32)  # circular blur
    if hue.sum() < 1e-6:       # a colourless product: every hue histogram agrees
        hue[:] = 1.0
    return ab / max(float(ab.sum()), 1e-9), hue / float(hue.sum())


def colour_similarity(cand: ProductView, ref: ProductView) -> float:
    """Geometric mean of the Bhattacharyya coefficients of the two chroma histograms, after a
    bounded von Kries correction: the candidate's channels are scaled (in linear light) toward the
    reference's mean colour, each gain normalised to the pair's overall brightness and clamped to
    1/MAX_WB_GAIN..MAX_WB_GAIN. A warm or cool light is a diagonal gain and is undone; a hue
    rotation is not diagonal and stays."""
    gains = ref.linear_mean / cand.linear_mean
    gains = gains / math.exp(float(np.log(gains).mean()))  # brightness is L*'s business, left out
    gains = np.clip(gains, 1 / MAX_WB_GAIN, MAX_WB_GAIN)
    ab, hue = chroma_histograms(cand.rgb[cand.interior], gains)
    rab, rhue = ref.chroma
    bc_ab, bc_hue = float(np.sqrt(ab * rab).sum()), float(np.sqrt(hue * rhue).sum())
    return float(min(1.0, math.sqrt(max(0.0, bc_ab) * max(0.0, bc_hue))))


# -- shape ---------------------------------------------------------------------------------------
def shape_descriptor(mask: np.ndarray) -> np.ndarray:
    """[log Hu 1..6, solidity, log aspect, circularity] of a binary silhouette, rotation, flip and
    scale invariant (Hu's 7th moment changes sign under a flip and is left out)."""
    import cv2

    m = mask.astype(np.uint8)
    hu = cv2.HuMoments(cv2.moments(m, binaryImage=True)).ravel()[:6]
    hu = -np.sign(hu) * np.log10(np.abs(hu) + 1e-30)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    pts = np.concatenate(contours) if contours else np.zeros((1, 1, 2), np.int32)
    area = float(m.sum())
    hull = float(cv2.contourArea(cv2.convexHull(pts))) or 1.0
    (_, _), (w, h), _ = cv2.minAreaRect(pts)
    aspect = math.log(max(w, h, 1.0) / max(min(w, h), 1.0))
    # perimeter of the outline simplified to 1.5 px: a pixel staircase is longer at 45° than at 0°
    perim = sum(cv2.arcLength(cv2.approxPolyDP(c, 1.5, True), True) for c in contours) or 1.0
    circ = min(1.0, 4 * math.pi * area / perim ** 2)
    return np.array([*hu, min(1.0, area / hull), aspect, circ], np.float64)


# tolerance of each descriptor entry: a difference of this size costs a factor e^-1
SHAPE_SCALE = np.array([0.15, 0.6, 1.0, 1.0, 2.0, 1.5, 0.06, 0.25, 0.12])


def shape_similarity(cand: ProductView, ref: ProductView) -> float:
    d = np.abs(cand.shape - ref.shape) / SHAPE_SCALE
    d[1:6] *= 0.25  # higher Hu moments are noisy on a real matte's edge: they count a quarter
    return float(math.exp(-float(d.sum()) / 2.0))


# -- combining -----------------------------------------------------------------------------------
def combine(parts: dict[str, float]) -> float:
    """Weighted geometric mean of the parts present (each floored at 1e-3)."""
    num = den = 0.0
    for name, w in WEIGHTS.items():
        v = parts.get(name)
        if v is None or not math.isfinite(v):
            continue
        num += w * math.log(min(1.0, max(1e-3, v)))
        den += w
    return math.exp(num / den) if den else 0.0


@dataclass
class SimilarityResult:
    """The score of one candidate: ``parts`` (the ``similarity_*`` entries for ``Candidate.scores``),
    the reference that matched best, and notes saying which parts ran."""

    score: float
    parts: dict[str, float]
    reference: ProductView
    notes: list[str] = field(default_factory=list)

    def scores(self) -> dict[str, float]:
        return {"similarity": self.score, **self.parts}


class ReferenceSet:
    """The reference products, prepared once per generate call; :meth:`score` rates one candidate.

    ``encoder`` (an :class:`packshot.score.encoders.ImageEncoder`) adds ``similarity_embed``; the
    references' embeddings are computed on first use and kept.
    """

    def __init__(self, references: list[ProductView], encoder: Any = None):
        if not references:
            raise ValueError("similarity needs at least one reference cut-out")
        self.references = references
        self.encoder = encoder
        self._embeds: list[np.ndarray] | None = None

    def _ref_embeds(self) -> list[np.ndarray]:
        if self._embeds is None:
            self._embeds = [self.encoder.embed(r) for r in self.references]
        return self._embeds

    def score(self, cand: ProductView) -> SimilarityResult:
        emb = self.encoder.embed(cand) if self.encoder is not None else None
        best: SimilarityResult | None = None
        for i, ref in enumerate(self.references):
            parts = {"similarity_colour": colour_similarity(cand, ref),
                     "similarity_shape": shape_similarity(cand, ref)}
            # at the lower of the two resolutions (multiples of 16 px, so references cache a few)
            side = max(64, min(cand.native, ref.native) // 16 * 16)
            detail = detail_similarity(cand.at(side), ref.at(side))
            if detail is not None:
                parts["similarity_detail"] = detail
            if emb is not None:
                parts["similarity_embed"] = max(0.0, float(np.dot(emb, self._ref_embeds()[i])))
            s = combine(parts)
            if best is None or s > best.score:
                best = SimilarityResult(score=s, parts=parts, reference=ref)
        assert best is not None
        if self.encoder is None:
            best.notes.append(NO_ENCODER_NOTE)
        if "similarity_detail" not in best.parts:
            best.notes.append(f"reference {best.reference.name or '?'} has too little print or texture "
                              "for the detail check")
        return best
