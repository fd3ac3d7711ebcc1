"""Compliance with a marketplace preset (see :data:`packshot.layout.PRESETS`).

* ``fill`` - the product's longer side (its ``alpha >= 0.02`` extent) over the canvas's longer
  side; reported for every candidate. ``fill_error`` = ``|fill - preset.fill|`` with a preset.
* ``border_purity`` - presets with a forced background colour (amazon: pure white): the fraction of
  the pixels in the outer frame (``max(2, 0.5%`` of the shorter side) px wide) that are exactly
  that colour.
* ``background_purity`` - same preset kind: the fraction of background pixels (``alpha == 0``;
  precisely ``alpha <= composite.CLEAR``, what an 8-bit matte stores as 0) exactly that colour.
* ``compliance`` - the fraction of the preset's rules that pass: canvas size equals the preset's;
  ``fill_error <= FILL_TOLERANCE``; and, with a forced colour, border and background 100% pure.
  1.0 without a preset (no rules to break).
"""
from __future__ import annotations

import cv2
import numpy as np

from .geometry import ScoreGeometry

FILL_TOLERANCE = 0.02


def fill(geo: ScoreGeometry) -> float:
    if geo.extent is None:
        return 0.0
    x0, y0, x1, y1 = geo.extent
    return max(x1 - x0, y1 - y0) / max(geo.size)


def border_purity(image: np.ndarray, colour) -> float:
    """Fraction of the outer frame's pixels exactly equal to ``colour`` (RGB)."""
    H, W = image.shape[:2]
    b = max(2, round(0.005 * min(W, H)))
    c = np.asarray(colour, np.uint8)
    strips = [image[:b], image[H - b:], image[b:H - b, :b], image[b:H - b, W - b:]]
    good = sum(int(np.count_nonzero(np.all(s == c, axis=2))) for s in strips)
    total = sum(s.shape[0] * s.shape[1] for s in strips)
    return good / total if total else 1.0


def background_purity(image: np.ndarray, layer, geo: ScoreGeometry, colour) -> float:
    """Fraction of background pixels (``alpha <= CLEAR``) exactly equal to ``colour``."""
    from ..composite import CLEAR

    bg = geo.prep.cached(("score-bg-mask",), lambda: (layer.alpha <= CLEAR).view(np.uint8) * np.uint8(255))
    total = cv2.countNonZero(bg)
    if total == 0:
        return 1.0
    c = tuple(int(v) for v in colour)
    same = cv2.inRange(image, c, c)
    bad = cv2.countNonZero(cv2.bitwise_and(bg, cv2.bitwise_not(same)))
    return 1.0 - bad / total


def compliance_scores(image: np.ndarray, layer, geo: ScoreGeometry, placement) -> dict[str, float]:
    """``fill`` always; the preset's checks and ``compliance`` (see the module docstring)."""
    out = {"fill": fill(geo)}
    name = getattr(placement, "preset", None) if placement is not None else None
    if not name:
        out["compliance"] = 1.0
        return out
    from ..layout import get_preset

    preset = get_preset(name)
    rules = []
    H, W = image.shape[:2]
    rules.append((W, H) == tuple(preset.size))
    out["fill_error"] = abs(out["fill"] - preset.fill)
    rules.append(out["fill_error"] <= FILL_TOLERANCE)
    colour = placement.background_rgb if placement.background_rgb is not None else preset.background_rgb
    if colour is not None:
        out["border_purity"] = border_purity(image, colour)
        out["background_purity"] = background_purity(image, layer, geo, colour)
        rules.append(out["border_purity"] >= 1.0)
        rules.append(out["background_purity"] >= 1.0)
    out["compliance"] = sum(rules) / len(rules)
    return out
