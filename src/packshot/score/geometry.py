"""Per-layer geometry the scores share: rings around the product's edge, split into tiles.

Distances are measured at full resolution with ``cv2.distanceTransform`` inside the product's box
(padded), once per layer, and cached with the compositor's per-layer data
(:func:`packshot.composite.prepare`). With ``s = max(1, product's longer side / 800)`` px:

* ``near``  - background pixels 1 .. 3s px outside the product (``alpha < 0.02``): right at the edge;
* ``far``   - background 5s .. 9s px outside: the background proper, a little further out;
* ``inner`` - product pixels 2s .. 6s px inside (``alpha >= 0.98``): the product near its edge;
* ``grow``  - background 1 .. 8s px outside: where a model would "grow" the product;
* ``wide``  - background 16s .. 28s px outside: reference background for ``grow``;
* ``band``  - the soft edge itself (``0.02 < alpha < 0.98``), with each pixel's alpha.

Each ring is stored sparse (flat pixel indices) with the id of the square tile (``16s`` px, or
``32s`` for ``grow``/``wide``) each pixel falls in, so per-tile mean colours cost one gather and
a ``bincount`` per channel: comparisons stay local (a bright left edge and a dark right edge do
not cancel out).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

OUTSIDE = 0.02   # alpha below this is background
INSIDE = 0.98    # alpha above this is product


class Ring:
    """Sparse ring: ``flat`` (N,) int64 canvas pixel indices, ``tile`` (N,) int64 tile ids,
    ``ntiles`` the number of tile ids."""

    def __init__(self, flat: np.ndarray, tile: np.ndarray, ntiles: int, alpha: np.ndarray | None = None):
        self.flat, self.tile, self.ntiles = flat, tile, ntiles
        self.alpha = alpha  # (N,) float32 alpha of each pixel (the ``band`` ring only)

    def __len__(self) -> int:
        return len(self.flat)

    def tile_means(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean colour per tile of ``image`` (HxWx3 uint8) on this ring: ((T, 3) float64, (T,) counts).

        Tiles with no ring pixel have count 0 and mean 0.
        """
        pix = np.take(image.reshape(-1, 3), self.flat, axis=0)
        cnt = np.bincount(self.tile, minlength=self.ntiles).astype(np.float64)
        sums = np.stack([np.bincount(self.tile, weights=pix[:, c], minlength=self.ntiles) for c in range(3)],
                        axis=1)
        return sums / np.maximum(cnt, 1)[:, None], cnt


class ScoreGeometry:
    """Rings of one layer (see the module docstring). ``empty`` when the layer has no product."""

    def __init__(self, layer):
        from ..composite import _bbox, prepare

        prep = prepare(layer)
        W, H = prep.size
        self.size = (W, H)
        self.prep = prep
        self.empty = prep.empty or prep.solid is None
        if self.empty:
            return
        s = max(1.0, max(prep.width, prep.height) / 800.0)
        self.s = s
        pad = int(math.ceil(28 * s)) + 2
        x0, y0, x1, y1 = prep.box
        x0, y0, x1, y1 = max(x0 - pad, 0), max(y0 - pad, 0), min(x1 + pad, W), min(y1 + pad, H)
        a = layer.alpha[y0:y1, x0:x1]
        out = (a < OUTSIDE).astype(np.uint8)
        d_out = cv2.distanceTransform(out, cv2.DIST_L2, 3)          # 0 on the product
        d_in = cv2.distanceTransform((a >= INSIDE).astype(np.uint8), cv2.DIST_L2, 3)

        def ring(dist: np.ndarray, lo: float, hi: float, tile_px: float, with_alpha: bool = False) -> Ring:
            pts = cv2.findNonZero(cv2.inRange(dist, lo, hi))   # (N, 1, 2) int32 x, y
            pts = np.zeros((0, 2), np.int64) if pts is None else pts.reshape(-1, 2).astype(np.int64)
            xs, ys = pts[:, 0] + x0, pts[:, 1] + y0
            T = max(4, int(round(tile_px)))
            ntx = -(-W // T)
            al = layer.alpha[ys, xs].astype(np.float64) if with_alpha else None
            return Ring(ys * W + xs, (ys // T) * ntx + xs // T, ntx * -(-H // T), al)

        T1, T2 = 16 * s, 32 * s
        self.near = ring(d_out, 1, 3 * s, T1)
        self.far = ring(d_out, 5 * s, 9 * s, T1)
        self.inner = ring(d_in, 2 * s, 6 * s, T1)
        self.grow = ring(d_out, 1, 8 * s, T2)
        self.wide = ring(d_out, 16 * s, 28 * s, T2)
        self.band = ring(a, float(np.nextafter(np.float32(OUTSIDE), np.float32(1))),
                         float(np.nextafter(np.float32(INSIDE), np.float32(0))), T1, with_alpha=True)
        # for product_change / raw_product_change: masks over the product's box
        bx0, by0, bx1, by1 = prep.box
        self.box = prep.box
        self.opaque_u8 = prep.opaque_u8
        self.product_u8 = ((layer.alpha[by0:by1, bx0:bx1] >= 0.5).astype(np.uint8)) * np.uint8(255)
        # product's extent (alpha >= 0.02), as the layout stage measures it
        self.extent = _bbox((layer.alpha >= OUTSIDE).view(np.uint8))


def geometry(layer) -> ScoreGeometry:
    """The cached :class:`ScoreGeometry` of ``layer``."""
    from ..composite import prepare

    return prepare(layer).cached(("score-geometry",), lambda: ScoreGeometry(layer))
