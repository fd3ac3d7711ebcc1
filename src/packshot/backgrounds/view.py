"""What the product photo tells about the scene it needs: camera view, frame edges, light, noise.

All measured on the cutout (the matte and the photo's own pixels), cheaply, at a reduced size:

* :func:`frame_edges` — the photo borders that cut the product (a torso cut at the thighs touches
  the bottom border): that side must stay on the canvas border in the output.
* :func:`estimate_view` — ``front`` / ``high`` / ``top`` from the silhouette (rule below).
* :func:`estimate_light` — where the light comes from, from the product's own shading.
* :func:`product_noise` — the photo's sensor noise on the placed product (grain to match);
* :func:`photo_cast` — the colour cast of the photo's light (the new scene is graded to it).

**The view rule** (``auto``), measured on the silhouette's lowest connected part:

1. the product touches the photo's bottom border -> ``front`` (a garment or a person cut by the
   frame: no ground is visible, the product runs off the canvas);
2. the bottom contour is an arc: its sag below the chord between the base's ends, divided by the
   base's half-width, is the height/width ratio of the base ellipse (a round base seen from above
   is an ellipse). A compact, round silhouette (IoU with its fitted ellipse >= 0.92, axis ratio >= 0.65) with
   no flat base -> ``top`` (a cookie or a plate shot from above: lay it flat);
3. base ellipse ratio >= ``HIGH_RATIO`` -> ``high`` (shot from above the table), else ``front``.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

HIGH_RATIO = 0.12        # base ellipse height/width above which the camera looks down on the table
TOP_FILL = 0.92          # a top-view silhouette matches its fitted ellipse at least this well (IoU)
TOP_AXES = 0.65          # ... and is this round (minor / major axis)
EDGE_TOUCH = 0.02        # a border cuts the product when this fraction of it is covered (and >= 3 px)
WORK = 256               # analysis size, longer side


def _small(alpha: np.ndarray, work: int = WORK) -> tuple[np.ndarray, float]:
    h, w = alpha.shape
    k = min(1.0, work / max(h, w))
    if k >= 1.0:
        return alpha.astype(np.float32, copy=False), 1.0
    return cv2.resize(alpha.astype(np.float32), (max(1, round(w * k)), max(1, round(h * k))),
                      interpolation=cv2.INTER_AREA), k


def frame_edges(alpha: np.ndarray) -> tuple[str, ...]:
    """The photo borders the product is cut by: those where the opaque matte covers at least
    ``EDGE_TOUCH`` of the border's length (and 3 px) in the outermost two rows/columns. A product
    touching both the top and the bottom border is a tight crop of a whole product (a bottle
    photographed edge to edge), not a cut one: no edges."""
    on = alpha >= 0.5
    h, w = on.shape
    out = []
    for name, strip, length in (("bottom", on[-2:, :], w), ("top", on[:2, :], w),
                                ("left", on[:, :2], h), ("right", on[:, -2:], h)):
        covered = int(strip.any(axis=0 if name in ("bottom", "top") else 1).sum())
        if covered >= max(3, EDGE_TOUCH * length):
            out.append(name)
    if "top" in out and "bottom" in out:
        return ()  # edge to edge: a photo cropped tight around a whole product, not a cut one
    return tuple(out)


def _lowest_part(on: np.ndarray) -> np.ndarray:
    """The connected part of ``on`` (uint8 0/1) that reaches lowest (largest y)."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(on, connectivity=8)
    if n <= 2:
        return on
    bottoms = stats[1:, cv2.CC_STAT_TOP] + stats[1:, cv2.CC_STAT_HEIGHT]
    areas = stats[1:, cv2.CC_STAT_AREA]
    big = areas >= 0.05 * areas.max()
    k = 1 + int(np.argmax(np.where(big, bottoms, -1)))
    return (labels == k).astype(np.uint8)


def base_ellipse_ratio(alpha: np.ndarray) -> float:
    """Height/width ratio of the product's base ellipse, from the sag of the bottom contour.

    The columns whose lowest opaque point is within 0.45 half-widths of the lowest point (the
    base; a handle or a raised toe is higher) are compared with the straight chord between their
    two ends (3 % trimmed): a cylinder seen from above shows the lower half of its base ellipse
    there, so the sag over the half-width is the ellipse's b/a (up to 0.45); a flat sole gives ~0.
    """
    small, _ = _small(alpha)
    on = _lowest_part((small >= 0.5).astype(np.uint8))
    ys, xs = np.nonzero(on)
    if len(xs) < 20:
        return 0.0
    h = ys.max() - ys.min() + 1
    cols = np.arange(xs.min(), xs.max() + 1)
    bottom = np.array([on.shape[0] - 1 - np.argmax(on[::-1, c]) if on[:, c].any() else -1 for c in cols],
                      np.float32)
    valid = np.flatnonzero(bottom >= 0)
    if len(valid) < 6:
        return 0.0
    band = 0.45 * (valid[-1] - valid[0]) / 2.0
    near = np.flatnonzero(bottom >= bottom.max() - band)
    trim = max(1, int(0.03 * len(near)))
    if len(near) < 2 * trim + 6:
        return 0.0
    a, b = near[trim], near[-1 - trim]
    half = (b - a) / 2.0
    if half < 3:
        return 0.0
    chord = bottom[a] + (bottom[b] - bottom[a]) * (np.arange(a, b + 1) - a) / max(1, b - a)
    sag = float(np.max(bottom[a:b + 1] - chord))
    return float(np.clip(sag / half, 0.0, 1.0))


def _roundness(alpha: np.ndarray) -> tuple[float, float]:
    """(IoU with its fitted ellipse, minor/major axis ratio) of the largest part of the silhouette."""
    small, _ = _small(alpha)
    on = (small >= 0.5).astype(np.uint8)
    contours, _ = cv2.findContours(on, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return 0.0, 0.0
    c = max(contours, key=cv2.contourArea)
    if len(c) < 5:
        return 0.0, 0.0
    (cx, cy), (ma, mb), ang = cv2.fitEllipse(c)
    if ma <= 0 or mb <= 0:
        return 0.0, 0.0
    ell = np.zeros_like(on)
    cv2.ellipse(ell, ((cx, cy), (ma, mb), ang), 1, -1)
    solid = np.zeros_like(on)
    cv2.drawContours(solid, [c], -1, 1, -1)
    inter = float(np.count_nonzero(ell & solid))
    union = float(np.count_nonzero(ell | solid))
    return inter / max(union, 1.0), float(min(ma, mb) / max(ma, mb))


def estimate_view(alpha: np.ndarray, edges: tuple[str, ...] | None = None) -> tuple[str, str, float]:
    """``(view, reason, base ratio)`` for ``--view auto`` (see the module docstring for the rule)."""
    edges = frame_edges(alpha) if edges is None else edges
    ratio = base_ellipse_ratio(alpha)
    if "bottom" in edges:
        return "front", "the product is cut by the photo's bottom edge", 0.0
    fill, axes = _roundness(alpha)
    if fill >= TOP_FILL and axes >= TOP_AXES and ratio >= 0.25:
        return "top", f"a round, compact silhouette (ellipse IoU {fill:.2f}, axes {axes:.2f}): shot from above", ratio
    if ratio >= HIGH_RATIO:
        return "high", f"the base is an ellipse (height/width {ratio:.2f}): shot from above the table", ratio
    return "front", f"a level base (ellipse height/width {ratio:.2f})", ratio


def estimate_light(rgb: np.ndarray, alpha: np.ndarray) -> tuple[float, str] | None:
    """Horizontal light side from the product's own shading: ``(dx, reason)`` with ``dx`` the
    horizontal travel direction (+1: light from the left), or None when the shading is even.

    Each row of the (eroded) silhouette is split into a left and a right half; the median over rows
    of (left - right) mean luminance, relative to the row's mean, says which side is lit. Prints
    and labels vary row to row, the light's gradient does not, so the median keeps the light.
    """
    small_a, k = _small(alpha, 192)
    if k < 1.0:
        small_rgb = cv2.resize(rgb, small_a.shape[::-1], interpolation=cv2.INTER_AREA)
    else:
        small_rgb = rgb
    on = cv2.erode((small_a >= 0.98).astype(np.uint8), np.ones((3, 3), np.uint8))
    luma = small_rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    diffs = []
    for y in range(on.shape[0]):
        xs = np.flatnonzero(on[y])
        if len(xs) < 8:
            continue
        mid = (xs[0] + xs[-1]) / 2
        left, right = luma[y, xs[xs < mid]], luma[y, xs[xs > mid]]
        if len(left) < 3 or len(right) < 3:
            continue
        m = max(8.0, float(luma[y, xs].mean()))
        diffs.append((float(left.mean()) - float(right.mean())) / m)
    if len(diffs) < 8:
        return None
    d = float(np.median(diffs))
    if abs(d) < 0.06:
        return None
    side = "left" if d > 0 else "right"
    return (1.0 if d > 0 else -1.0), f"the product is brighter on its {side} ({abs(d):.0%})"


def product_noise(rgb: np.ndarray, alpha: np.ndarray, default: float = 0.0035) -> float:
    """Sensor noise of the placed product (canvas pixels, so at the output's scale), as a
    standard deviation in [0, 1] units: the median absolute deviation of the residual (image minus
    its 3x3 blur) over the flattest half of the opaque product pixels (labels and edges excluded),
    x 1.4826 (MAD -> sigma) x 1.06 (a 3x3 box residual keeps 8/9 of white noise's variance).
    ``default`` when the product has too few flat pixels to tell."""
    ys, xs = np.nonzero(alpha >= 0.98)
    if len(xs) < 400:
        return default
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    step = max(1, int(math.sqrt((y1 - y0) * (x1 - x0) / 400_000)))  # at most ~400k pixels
    crop = rgb[y0:y1:step, x0:x1:step].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    on = cv2.erode((alpha[y0:y1:step, x0:x1:step] >= 0.98).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    res = (crop - cv2.blur(crop, (3, 3))) / 255.0
    local = cv2.blur(np.abs(res), (9, 9))
    vals = local[on]
    if len(vals) < 200:
        return default
    flat = on & (local <= np.median(vals))
    return float(np.clip(np.median(np.abs(res[flat])) * 1.4826 * 1.06, 0.0, 0.03))


def _frame_ring(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The photo's outer frame (4 % wide, every third pixel): its colours (N x 3 float32) and luma."""
    h, w = rgb.shape[:2]
    b = max(2, int(0.04 * min(h, w)))
    ring = np.concatenate([rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3),
                           rgb[:, :b].reshape(-1, 3), rgb[:, -b:].reshape(-1, 3)])[::3].astype(np.float32)
    return ring, ring @ np.array([0.299, 0.587, 0.114], np.float32)


def photo_cast(rgb: np.ndarray) -> tuple[float, float, float]:
    """Colour cast of the light the photo was taken in: the mean colour of the bright pixels of
    its outer frame (the backdrop, 4 % wide), divided by its grey; (1, 1, 1) when neutral or when
    the frame has too few bright pixels to tell."""
    ring, luma = _frame_ring(rgb)
    bright = ring[luma > 140]
    if len(bright) < 0.2 * len(ring):
        return (1.0, 1.0, 1.0)
    m = bright.mean(axis=0)
    return tuple(float(v) for v in m / max(float(m.mean()), 1e-3))  # type: ignore[return-value]


def photo_exposure(rgb: np.ndarray) -> float | None:
    """How bright the photo's key light renders its backdrop, 0..1: the 90th percentile of the
    luminance of its outer frame (4 % wide), the surface the product stands in front of. None
    when the frame is mostly dark (a dark backdrop by choice says nothing about the exposure)."""
    _, luma = _frame_ring(rgb)
    if float(np.median(luma)) < 60:
        return None
    return float(np.percentile(luma, 90)) / 255.0
