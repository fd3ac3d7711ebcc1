"""Measurements of a product (its cut-out) or a scene photo, named in the studio vocabulary.

Used by :mod:`packshot.prompts.suggest` (scene ideas from the product) and
:mod:`packshot.prompts.describe` (a reference scene in the five structured fields). Everything is
deterministic: the same pixels give the same numbers and names.

* **Colour names**: the nearest named colour of the vocabulary (``vocabulary.VOCABULARY["colour"]``)
  in CIELAB (OpenCV's 8-bit Lab, rescaled to L 0..100, a/b -128..127), so every name is one the
  studio engine renders.
* **Palette**: k-means (OpenCV, fixed seed and initial centres from sorted luminance) on at most
  20 000 opaque pixels taken on a regular grid; clusters under 8 % of the pixels are dropped.
* **Finish**: the share of specular pixels: bright (L* >= 88), nearly colourless (chroma <= 18),
  and at least 25 L* above the product's median. A product with >= 0.4 % such pixels is "glossy",
  else "matte". A white product has no headroom for a highlight and reads "matte". Known
  weakness: white print or white inclusions on a dark product (a label, a marshmallow in a
  cookie) count as highlights.
* **Shape**: the silhouette's height / width, its solidity (area / convex hull) and where its
  widest row is. Tall (h/w >= 1.25), wide (h/w <= 0.7) or compact.
* **View and light**: the studio engine's estimates (:mod:`packshot.backgrounds.view`), plus:
  "top" when the photo shows no base: no contact shadow under the product (the backdrop just
  under it is not darker than the backdrop beside it by more than 3 L*), a solid, flat-shaded
  silhouette (solidity >= 0.93, vertical shading spread < 12 L*) that is not tall; otherwise
  "front" (alone, without the studio engine's estimate). A three-quarter high view of a round
  tin on white reads "top".
* **Light direction** (scenes, and products with even shading): which side is brighter: the
  difference of mean L* between the left and right thirds, and the top and bottom thirds; under
  4 L* the light is called frontal.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import vocabulary as V

CHROMATIC = 14.0        # chroma (CIELAB) above which a colour has a hue
_SAMPLES = 20_000


@lru_cache(maxsize=1)
def _named() -> tuple[tuple[str, ...], np.ndarray]:
    names = tuple(V.VOCABULARY["colour"]["words"])
    rgb = np.array([V.VOCABULARY["colour"]["words"][n]["rgb"] for n in names], np.uint8)
    return names, to_lab(rgb)


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB uint8 (..., 3) -> CIELAB float32 (..., 3), L 0..100."""
    import cv2

    flat = np.ascontiguousarray(np.asarray(rgb, np.uint8).reshape(-1, 1, 3))
    lab = cv2.cvtColor(flat, cv2.COLOR_RGB2LAB).astype(np.float32).reshape(-1, 3)
    lab[:, 0] *= 100.0 / 255.0
    lab[:, 1:] -= 128.0
    return lab.reshape(*np.shape(rgb)[:-1], 3)


def lch(lab) -> tuple[float, float, float | None]:
    """(L, chroma, hue in degrees or None when achromatic)."""
    L, a, b = (float(v) for v in lab)
    c = math.hypot(a, b)
    return L, c, (math.degrees(math.atan2(b, a)) % 360.0 if c >= CHROMATIC else None)


def colour_name(rgb) -> str:
    """The nearest vocabulary colour name to an sRGB triple."""
    names, labs = _named()
    d = np.linalg.norm(labs - to_lab(np.array(rgb, np.uint8)[None])[0], axis=1)
    return names[int(np.argmin(d))]


def named_colours(chromatic: bool | None = None) -> list[tuple[str, float, float, float | None]]:
    """[(name, L, chroma, hue)] of the vocabulary colours, in vocabulary order."""
    names, labs = _named()
    out = []
    for n, lab in zip(names, labs):
        L, c, h = lch(lab)
        if chromatic is None or (h is not None) == chromatic:
            out.append((n, L, c, h))
    return out


def hue_distance(a: float, b: float) -> float:
    d = abs(a - b) % 360.0
    return min(d, 360.0 - d)


@dataclass(frozen=True)
class Swatch:
    name: str
    rgb: tuple[int, int, int]
    share: float
    L: float
    chroma: float
    hue: float | None


@dataclass(frozen=True)
class Traits:
    """What packshot measured on a product (or a scene)."""

    palette: tuple[Swatch, ...]          # biggest first
    main: Swatch                         # the colour that carries the hue (most colourful big one)
    lightness: float                     # median L* of the product
    finish: str                          # glossy | matte
    specular: float                      # share of specular pixels
    shape: str                           # tall | compact | wide
    aspect: float                        # height / width of the silhouette
    solidity: float
    widest_at: float                     # 0 top .. 1 bottom: where the widest row is
    narrow_top: bool                     # the top tenth is under a quarter of the widest row
    view: str                            # front | high | top
    light: str                           # left | right | top | bottom | front
    warm: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def achromatic(self) -> bool:
        return self.main.hue is None


def palette(rgb: np.ndarray, weight: np.ndarray, k: int = 4) -> tuple[Swatch, ...]:
    """Dominant colours of the pixels where ``weight`` > 0.5, biggest first."""
    import cv2

    mask = weight > 0.5
    pix = rgb[mask]
    if len(pix) == 0:
        pix = rgb.reshape(-1, 3)
    step = max(1, len(pix) // _SAMPLES)
    data = pix[::step].astype(np.float32)
    k = max(1, min(k, len(data)))
    order = np.argsort(data.sum(axis=1), kind="stable")
    centres = data[order[np.linspace(0, len(data) - 1, k).astype(int)]]
    labels = np.argmin(((data[:, None, :] - centres[None]) ** 2).sum(-1), axis=1).astype(np.int32)
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5)
    _, labels, centres = cv2.kmeans(data, k, labels.reshape(-1, 1), crit, 1, cv2.KMEANS_USE_INITIAL_LABELS)
    counts = np.bincount(labels.ravel(), minlength=k) / len(data)
    out = []
    for i in np.argsort(-counts, kind="stable"):
        if counts[i] < 0.08:
            continue
        c = tuple(int(round(v)) for v in np.clip(centres[i], 0, 255))
        L, ch, h = lch(to_lab(np.array(c, np.uint8)[None])[0])
        out.append(Swatch(colour_name(c), c, round(float(counts[i]), 3), round(L, 1), round(ch, 1),
                          None if h is None else round(h, 1)))
    return tuple(out)


def light_side(L: np.ndarray, weight: np.ndarray) -> str:
    """Brighter third of the weighted area: left | right | top | bottom | front."""
    ys, xs = np.nonzero(weight > 0.5)
    if len(xs) == 0:
        return "front"
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    if x1 - x0 < 3 or y1 - y0 < 3:
        return "front"
    vals = L[ys, xs]
    tx, ty = (x1 - x0) / 3, (y1 - y0) / 3

    def mean(sel):
        return float(vals[sel].mean()) if sel.any() else 0.0

    dx = mean(xs < x0 + tx) - mean(xs >= x1 - tx)
    dy = mean(ys < y0 + ty) - mean(ys >= y1 - ty)
    if max(abs(dx), abs(dy)) < 4.0:
        return "front"
    if abs(dx) >= abs(dy):
        return "left" if dx > 0 else "right"
    return "top" if dy > 0 else "bottom"


def _shape(alpha: np.ndarray) -> tuple[float, float, float, bool]:
    import cv2

    m = (alpha > 0.5).astype(np.uint8)
    ys, xs = np.nonzero(m)
    h, w = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    area = float(m.sum())
    hull = sum(cv2.contourArea(cv2.convexHull(c)) for c in contours) or area
    rows = m[ys.min():ys.max() + 1].sum(axis=1)
    widest = float(np.argmax(rows)) / max(1, len(rows) - 1)
    top = rows[: max(1, len(rows) // 10)].mean()
    return h / w, min(1.0, area / hull), widest, bool(top < 0.25 * rows.max())


def _contact_shadow(L: np.ndarray, alpha: np.ndarray) -> float:
    """How much darker (L*) the backdrop just under the product is than the backdrop beside it."""
    ys, xs = np.nonzero(alpha > 0.5)
    H, W = alpha.shape
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    band = max(3, (y1 - y0) // 12)
    bg = alpha < 0.05
    below = np.zeros_like(bg)
    below[y1:min(H, y1 + band), x0:x1] = True
    side = np.zeros_like(bg)
    side[max(0, y1 - 3 * band):y1, max(0, x0 - 2 * band):x0] = True
    side[max(0, y1 - 3 * band):y1, x1:min(W, x1 + 2 * band)] = True
    below &= bg
    side &= bg
    if below.sum() < 10 or side.sum() < 10:
        return 0.0  # product touches the frame: no evidence either way
    return float(np.median(L[side]) - np.median(L[below]))


def measure(rgb: np.ndarray, alpha: np.ndarray) -> Traits:
    """Traits of the product whose matte is ``alpha`` in the photo ``rgb`` (HxWx3 uint8)."""
    if rgb.shape[0] * rgb.shape[1] > 1_500_000:  # measurements are scale-free: work at ~1.2 MP
        import cv2

        f = math.sqrt(1_200_000 / (rgb.shape[0] * rgb.shape[1]))
        size = (max(1, round(rgb.shape[1] * f)), max(1, round(rgb.shape[0] * f)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    if int((alpha > 0.5).sum()) < 16:
        from ..errors import NoProductFoundError
        raise NoProductFoundError("the product is too small to measure (under 16 pixels)")
    lab = to_lab(rgb)
    L = lab[..., 0]
    solid = alpha > 0.9
    if solid.sum() < 50:
        solid = alpha > 0.5
    sw = palette(rgb, solid.astype(np.float32))
    # the main colour: the most colourful swatch holding at least 20 % of the product
    big = [s for s in sw if s.share >= 0.2] or list(sw[:1])
    main = max(big, key=lambda s: (s.hue is not None, s.chroma * s.share))
    med = float(np.median(L[solid]))
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    spec_mask = solid & (L >= 88.0) & (chroma <= 18.0) & (L >= med + 25.0)
    specular = float(spec_mask.sum()) / max(1, int(solid.sum()))
    finish = "glossy" if specular >= 0.004 else "matte"
    aspect, solidity, widest, narrow_top = _shape(alpha)
    shape = "tall" if aspect >= 1.25 else "wide" if aspect <= 0.7 else "compact"
    vals = L[solid]
    ys = np.nonzero(solid)[0]
    q = np.quantile(ys, [1 / 3, 2 / 3])
    spread = abs(float(vals[ys < q[0]].mean()) - float(vals[ys > q[1]].mean())) if len(vals) else 0.0
    shadow = _contact_shadow(L, alpha)
    flat = shadow <= 3.0 and solidity >= 0.93 and spread < 12.0 and shape != "tall"
    view, light, why = _view_and_light(rgb, alpha, flat, light_side(L, solid.astype(np.float32)))
    h = main.hue
    warm = h is not None and (h <= 100 or h >= 330)
    return Traits(palette=sw, main=main, lightness=round(med, 1), finish=finish,
                  specular=round(specular, 4), shape=shape, aspect=round(float(aspect), 3),
                  solidity=round(solidity, 3), widest_at=round(widest, 3), narrow_top=narrow_top,
                  view=view, light=light, warm=warm,
                  notes=(f"contact shadow {shadow:.1f} L*, shading spread {spread:.1f} L*", *why))


def _view_and_light(rgb: np.ndarray, alpha: np.ndarray, flat: bool, side: str) -> tuple[str, str, tuple[str, ...]]:
    """The studio engine's own view and light estimates (:mod:`packshot.backgrounds.view`: round
    top views, high views from the base ellipse, light side from per-row shading), so suggestions
    match what ``view: auto`` renders; a flat, shadowless silhouette it calls front is a top view
    here (a notebook or a folded shirt seen from above), and even shading keeps our light side."""
    try:
        from ..backgrounds.view import estimate_light, estimate_view
    except ImportError:  # an install without the studio engine: our own estimate
        return ("top" if flat else "front"), side, ()
    view, reason, _ = estimate_view(alpha)
    if view == "front" and flat:
        view, reason = "top", "a flat, solid silhouette with no contact shadow: seen from above"
    lit = estimate_light(rgb, alpha)
    if lit is not None:
        side = "left" if lit[0] > 0 else "right"
    return view, side, (f"view {view}: {reason}", lit[1] if lit else f"light: {side} (even shading)")
