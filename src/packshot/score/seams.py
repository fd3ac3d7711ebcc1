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

import cv2
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


def _lab(rgb_means: np.ndarray) -> np.ndarray:
    px = (np.clip(rgb_means, 0, 255) / 255.0).astype(np.float32)[None]
    return cv2.cvtColor(px, cv2.COLOR_RGB2Lab)[0].astype(np.float64)


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
    de = np.linalg.norm(_lab(p[ok]) - _lab(b[ok]), axis=1)
    return float(np.sum(de * w[ok]) / np.sum(w[ok]))


def separation(de: float) -> float:
    return float(min(1.0, max(0.0, de / SEPARATION_DE)))
