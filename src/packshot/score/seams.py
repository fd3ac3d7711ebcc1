"""Seams: does the product sit in the scene, or is it visibly pasted on?

* ``seam`` - what the background engine did at the product's edge: mean colour step (0..255,
  mean over channels) in the *scene* (``scene.rgb``, before the compositor's own shadows, which
  are meant to be there) between the background right at the edge (``near`` ring, 1..3s px
  outside) and a little further out (``far`` ring, 5..9s px), tile by tile (16s px tiles),
  averaged weighted by the smaller pixel count. A glow or outline a model painted around the
  product, or an inpainting step where generated background meets the product, raise it; a
  smooth scene is near 0.
* ``fringe`` - what the matte and the compositor did in the soft edge itself: per tile, the
  distance (mean abs over channels, 0..255) of the final image's mean colour over the soft band
  (``0.02 < alpha < 0.98``) from the nearest blend ``P + t (B - P)``, ``0 <= t <= 1``, of the
  product's edge colour ``P`` (``inner`` ring) and the background beside it ``B`` (``far`` ring),
  averaged weighted by band pixels. Any mix of the two sides is clean (an alpha error, the light
  wrap); colour from neither side (a green rim left by a chroma backdrop) or darker/lighter than
  both (a premultiplication halo) is fringe.
* ``contrast`` - how well the product stands out: CIE76 colour difference (Delta E) between the
  product near its edge (``inner`` ring of the final image) and the background beside it (``far``
  ring), per tile, averaged. ``separation = min(1, contrast / SEPARATION_DE)``.
"""
from __future__ import annotations

import numpy as np

from .geometry import ScoreGeometry

SEPARATION_DE = 25.0  # Delta E at which the product is considered clearly separated


def seam(scene_rgb: np.ndarray, geo: ScoreGeometry) -> float:
    """Colour step (0..255) in the scene right at the product's edge (see above)."""
    if geo.empty or not len(geo.near) or not len(geo.far):
        return 0.0
    a, na = geo.near.tile_means(scene_rgb)
    b, nb = geo.far.tile_means(scene_rgb)
    w = np.minimum(na, nb)
    if w.sum() <= 0:
        return 0.0
    step = np.abs(a - b).mean(axis=1)
    return float(np.sum(step * w) / np.sum(w))


_RGB2XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                     [0.2126729, 0.7151522, 0.0721750],
                     [0.0193339, 0.1191920, 0.9503041]])
_WHITE = np.array([0.95047, 1.0, 1.08883])  # D65


def fringe(image: np.ndarray, geo: ScoreGeometry) -> float:
    """Distance (0..255) of the soft edge's colour from the product-background blend (see above)."""
    if geo.empty or not len(geo.band) or not len(geo.inner) or not len(geo.far):
        return 0.0
    band, nb = geo.band.tile_means(image)
    p, npx = geo.inner.tile_means(image)
    b, nf = geo.far.tile_means(image)
    w = np.where((npx > 0) & (nf > 0), nb, 0.0)
    if w.sum() <= 0:
        return 0.0
    d = b - p
    t = np.clip(np.sum((band - p) * d, axis=1) / np.maximum(np.sum(d * d, axis=1), 1e-6), 0, 1)
    err = np.abs(band - (p + t[:, None] * d)).mean(axis=1)
    return float(np.sum(err * w) / np.sum(w))


def lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (N, 3) in 0..255 -> CIE L*a*b* (N, 3), D65 (numpy: these are a few tile means)."""
    c = np.clip(np.asarray(rgb, np.float64), 0, 255) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (lin @ _RGB2XYZ.T) / _WHITE
    f = np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def contrast(image: np.ndarray, geo: ScoreGeometry) -> float | None:
    """Mean Delta E (CIE76) between the product's edge and the background beside it; None when
    there is no edge with background beside it to measure (a product filling the canvas)."""
    if geo.empty or not len(geo.inner) or not len(geo.far):
        return None
    p, npx = geo.inner.tile_means(image)
    b, nb = geo.far.tile_means(image)
    w = np.minimum(npx, nb)
    if w.sum() <= 0:
        return None
    ok = w > 0
    de = np.linalg.norm(lab(p[ok]) - lab(b[ok]), axis=1)
    return float(np.sum(de * w[ok]) / np.sum(w[ok]))


def separation(de: float) -> float:
    return float(min(1.0, max(0.0, de / SEPARATION_DE)))
