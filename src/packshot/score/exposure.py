"""Exposure of the scene around the product.

Measured on the background (``alpha < 0.02``) of the final image, sampled on a regular grid of at
most ``SIDE`` x ``SIDE`` pixels (every k-th pixel: clipping is a per-pixel property, so no
averaging), luma ``Y = 0.299 R + 0.587 G + 0.114 B``:

* ``clipped_highlights`` / ``clipped_shadows`` - fractions of background pixels with
  ``Y >= 254`` / ``Y <= 2`` (blown-out sky, crushed blacks);
* ``brightness`` - mean background luma / 255;
* ``exposure`` in [0, 1] = ``(1 - 0.5 * clipped_highlights - clipped_shadows)`` times a tone term
  that is 1 for brightness in [0.15, 0.99] and falls linearly to 0.5 at 0 (a very dark scene).
  Highlights count half: a plain white studio sweep is legitimately near 255. With a preset's forced
  background colour (amazon white) the background is decided by rule, so ``exposure`` is 1.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import OUTSIDE, ScoreGeometry

SIDE = 512


def exposure_scores(image: np.ndarray, layer, geo: ScoreGeometry, forced_background: bool) -> dict[str, float]:
    H, W = image.shape[:2]
    k = max(1, -(-max(H, W) // SIDE))
    y = image[::k, ::k].astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    bg = geo.prep.cached(("score-sampled-bg", k), lambda: layer.alpha[::k, ::k] < OUTSIDE)
    vals = y[bg] if bg.any() else y.reshape(-1)
    hi = float(np.mean(vals >= 254.0))
    lo = float(np.mean(vals <= 2.0))
    bright = float(vals.mean() / 255.0)
    if forced_background:
        score = 1.0
    else:
        tone = 1.0 if bright >= 0.15 else 0.5 + 0.5 * bright / 0.15
        score = max(0.0, 1.0 - 0.5 * hi - lo) * tone
    return {"clipped_highlights": hi, "clipped_shadows": lo, "brightness": bright,
            "exposure": float(min(1.0, max(0.0, score))) if math.isfinite(score) else 0.0}
