"""Fidelity: is the product still the seller's product?

* ``product_change`` - mean absolute difference (0..255, all channels) between the final image
  and ``layer.rgb`` over the product's opaque pixels (``alpha >= composite.OPAQUE``, every pixel an
  8-bit matte stores as 255, so every ``alpha == 1``). The compositor pastes those
  back bit-exactly, so it is 0 for every correct candidate (keep-framing: identical to the photo).
* ``raw_product_change`` - the same over the product (``alpha >= 0.5``) between the model's own
  pixels before paste-back (``scene.raw_product``, diffusion engines) and ``layer.rgb``: how far the
  model drifted from the product. Only when the scene carries ``raw_product``.
* ``object_expansion`` - in [0, 1], did the generated background continue the product past its
  mask (a mug grown taller, a second handle)? On tiles along the edge, the scene's mean colour in
  the ``grow`` ring (1..8s px outside the mask) is compared with the product's colour near its edge
  (``inner`` ring of ``layer.rgb``) and with the background further out (``wide`` ring, 16..28s
  px): ``clip(0.5 + (d_bg - d_prod) / (2 |prod - bg|), 0, 1)`` per tile (0 = looks like the
  background, 1 = looks like the product), averaged over the tiles where product and background
  differ by at least ``MIN_CONTRAST`` (elsewhere nobody could tell). Measured on ``scene.rgb``
  (before the compositor's shadows), so a plain studio scene scores about 0.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..errors import InvalidInputError
from .geometry import ScoreGeometry

MIN_CONTRAST = 24.0  # RGB distance under which product and background are not told apart


def _masked_mean_abs(a: np.ndarray, b: np.ndarray, mask_u8: np.ndarray) -> float:
    if not mask_u8.any():
        return 0.0
    diff = cv2.absdiff(np.ascontiguousarray(a), np.ascontiguousarray(b))
    return float(np.mean(cv2.mean(diff, mask=mask_u8)[:3]))


def product_change(image: np.ndarray, layer, geo: ScoreGeometry) -> float:
    """Mean |final - layer.rgb| (0..255) over the opaque product pixels; 0 = exact."""
    if geo.empty:
        return 0.0
    x0, y0, x1, y1 = geo.box
    return _masked_mean_abs(image[y0:y1, x0:x1], layer.rgb[y0:y1, x0:x1], geo.opaque_u8)


def raw_product_change(raw: np.ndarray, layer, geo: ScoreGeometry) -> float:
    """Mean |raw_product - layer.rgb| (0..255) over the product (alpha >= 0.5)."""
    H, W = layer.alpha.shape
    if not isinstance(raw, np.ndarray) or raw.shape != (H, W, 3) or raw.dtype != np.uint8:
        raise InvalidInputError(f"scene.raw_product is {getattr(raw, 'shape', type(raw).__name__)} "
                                f"{getattr(raw, 'dtype', '')}, expected {H}x{W}x3 uint8")
    if geo.empty:
        return 0.0
    x0, y0, x1, y1 = geo.box
    return _masked_mean_abs(raw[y0:y1, x0:x1], layer.rgb[y0:y1, x0:x1], geo.product_u8)


def _product_edge_colour(layer, geo: ScoreGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Mean product colour near its edge per ``grow`` tile (computed once per layer).

    The ``inner`` ring is tiled at the ``grow`` tile size for this."""
    def build():
        from .geometry import Ring
        inner = geo.inner
        W, _ = geo.size
        T = max(4, int(round(32 * geo.s)))
        ntx = -(-W // T)
        ys, xs = inner.flat // W, inner.flat % W
        ring = Ring(inner.flat, (ys // T) * ntx + xs // T, geo.grow.ntiles)
        return ring.tile_means(layer.rgb)
    return geo.prep.cached(("score-edge-colour",), build)


def object_expansion(scene_rgb: np.ndarray, layer, geo: ScoreGeometry) -> float:
    """In [0, 1]: how much the scene right outside the mask looks like the product (see above)."""
    if geo.empty or not len(geo.grow) or not len(geo.wide):
        return 0.0
    prod, n_prod = _product_edge_colour(layer, geo)
    near, n_near = geo.grow.tile_means(scene_rgb)
    bg, n_bg = geo.wide.tile_means(scene_rgb)
    ok = (n_prod > 0) & (n_near > 0) & (n_bg > 0)
    contrast = np.linalg.norm(prod - bg, axis=1)
    ok &= contrast >= MIN_CONTRAST
    if not ok.any():
        return 0.0
    d_prod = np.linalg.norm(near - prod, axis=1)
    d_bg = np.linalg.norm(near - bg, axis=1)
    like = np.clip(0.5 + (d_bg - d_prod) / (2 * np.maximum(contrast, 1e-6)), 0, 1)
    w = n_near[ok]
    return float(np.sum(like[ok] * w) / np.sum(w))
