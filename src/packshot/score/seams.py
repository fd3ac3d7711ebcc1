"""Seams: does the product sit in the scene, or is it visibly pasted on?

* ``seam`` - mean colour step (0..255, mean over channels) between the background right at the
  product's edge (``near`` ring, 1..3s px outside) and the background a little further out
  (``far`` ring, 5..9s px), compared tile by tile (16s px tiles) and averaged weighted by the
  smaller of the two pixel counts. A halo (a bright or dark rim of the old backdrop or of a
  model's own product), a hard step where a generated background meets the pasted product, or a
  sharp dark outline all raise it; a clean composite on a smooth background is near 0 (soft
  shadows add a little).
* ``contrast`` - how well the product stands out: CIE76 colour difference (Delta E) between the
  product near its edge (``inner`` ring of the final image) and the background beside it (``far``
  ring), per tile, averaged. ``separation = min(1, contrast / SEPARATION_DE)``.
"""
from __future__ import annotations

import numpy as np

from .geometry import ScoreGeometry

SEPARATION_DE = 25.0  # Delta E at which the product is considered clearly separated


def seam(image: np.ndarray, geo: ScoreGeometry) -> float:
    """Colour step (0..255) across the product's edge, in the background (see above)."""
    if geo.empty or not len(geo.near) or not len(geo.far):
        return 0.0
    a, na = geo.near.tile_means(image)
    b, nb = geo.far.tile_means(image)
    w = np.minimum(na, nb)
    if w.sum() <= 0:
        return 0.0
    step = np.abs(a - b).mean(axis=1)
    return float(np.sum(step * w) / np.sum(w))


_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])  # D65


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (N, 3) in 0..255 -> CIE L*a*b* (N, 3), D65 (numpy: these are a few tile means)."""
    c = np.clip(np.asarray(rgb, np.float64), 0, 255) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (lin @ _RGB2XYZ.T) / _WHITE
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def contrast(image: np.ndarray, geo: ScoreGeometry) -> float:
    """Mean Delta E (CIE76) between the product's edge and the background beside it."""
    if geo.empty or not len(geo.inner) or not len(geo.far):
        return 0.0
    p, npx = geo.inner.tile_means(image)
    b, nb = geo.far.tile_means(image)
    w = np.minimum(npx, nb)
    if w.sum() <= 0:
        return 0.0
    ok = w > 0
    de = np.linalg.norm(lab(p[ok]) - lab(b[ok]), axis=1)
    return float(np.sum(de * w[ok]) / np.sum(w[ok]))


def separation(de: float) -> float:
    return float(min(1.0, max(0.0, de / SEPARATION_DE)))
