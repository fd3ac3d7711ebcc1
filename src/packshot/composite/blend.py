"""Edge blending and exact paste-back of the product over the (shadowed) background.

* ``alpha >= OPAQUE`` (every ``alpha == 1``): the layer's colour, copied bit-exactly; nothing else
  ever writes these pixels.
* ``alpha <= CLEAR`` (every ``alpha == 0``): the background, untouched.
* in between (the soft edge band): ``out = a * fg' + (1 - a) * bg`` with straight colour.
  ``layer.rgb`` is already decontaminated there (the segmenter's foreground estimate, resampled
  premultiplied by the layout stage), so blending straight colour adds no fringe of the old
  backdrop and, unlike blending premultiplied colour twice, no dark halo.
* **light wrap**: ``fg' = fg + w * (env - fg)`` with ``w = wrap * (1 - a)``: the product's soft
  edge takes on some of the new scene's light. ``env`` is the background *around* the product,
  a normalised convolution ``blur(bg * (1 - alpha)) / blur(1 - alpha)`` (so the scene's pixels
  under the product, e.g. a diffusion model's own product, never leak in), of radius
  ``WRAP_SIGMA * product size``, computed on a reduced grid and sampled bilinearly at the soft
  pixels only.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

LIGHT_WRAP = 0.5       # wrap strength at alpha -> 0
WRAP_SIGMA = 0.008     # fraction of the product's longer side


def _whole_cells(a: int, b: int, d: int, n: int) -> tuple[int, int]:
    """[a, b) clipped to [0, n) and grown to a multiple of ``d`` where the canvas allows
    (INTER_AREA by an integer factor is an exact, fast block mean)."""
    a, b = max(a, 0), min(b, n)
    want = -(-(b - a) // d) * d
    if want <= n:
        b = min(n, a + want)
        a = b - want
    return a, b


class WrapGrid:
    """Per-layer data for the light wrap: region, reduction factor, blurred (1 - alpha), sample maps."""

    def __init__(self, prep, layer):
        W, H = prep.size
        size = max(prep.width, prep.height)
        sigma = max(1.0, WRAP_SIGMA * size)
        self.d = d = max(1, int(sigma // 1.5))
        self.sigma = sigma / d
        pad = math.ceil(3 * sigma) + d
        x0, y0, x1, y1 = prep.box
        x0, x1 = _whole_cells(x0 - pad, x1 + pad, d, W)
        y0, y1 = _whole_cells(y0 - pad, y1 + pad, d, H)
        self.region = (x0, y0, x1, y1)
        inv = 1.0 - layer.alpha[y0:y1, x0:x1]
        self.inv_u8 = cv2.merge([np.round(inv * 255).astype(np.uint8)] * 3)
        self.small = (max(1, -(-(x1 - x0) // d)), max(1, -(-(y1 - y0) // d)))
        den = cv2.resize(inv, self.small, interpolation=cv2.INTER_AREA)
        self.den = np.maximum(cv2.GaussianBlur(den, (0, 0), self.sigma), 1e-3)[..., None]
        # sample positions of the soft pixels on the reduced grid (cell centres)
        fx = (x1 - x0) / self.small[0]
        fy = (y1 - y0) / self.small[1]
        # (remap wants fewer than 32767 rows and columns: fold the N points into rows of 4096)
        n = len(prep.soft_x)
        self.n = n
        rows = max(1, -(-n // 4096))
        mx = np.zeros(rows * 4096, np.float32)
        my = np.zeros(rows * 4096, np.float32)
        mx[:n] = (prep.soft_x - x0 + 0.5) / fx - 0.5
        my[:n] = (prep.soft_y - y0 + 0.5) / fy - 0.5
        self.map_x, self.map_y = mx.reshape(rows, 4096), my.reshape(rows, 4096)


def environment(out: np.ndarray, prep, layer) -> np.ndarray:
    """Colour of the background around the product at each soft pixel: (N, 3) float32."""
    g: WrapGrid = prep.cached(("wrap",), lambda: WrapGrid(prep, layer))
    x0, y0, x1, y1 = g.region
    num = cv2.multiply(out[y0:y1, x0:x1], g.inv_u8, scale=1 / 255.0)  # uint8, fast
    num = cv2.resize(num, g.small, interpolation=cv2.INTER_AREA).astype(np.float32)
    env = cv2.GaussianBlur(num, (0, 0), g.sigma) / g.den
    env = cv2.remap(env, g.map_x, g.map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return env.reshape(-1, 3)[:g.n]


class SoftBand:
    """The soft pixels of a layer as flat arrays: ``flat`` (N,) int64 indices into the canvas's
    H*W pixels, ``a`` (N, 1) alpha, ``fg`` (N, 3) straight colour, ``fga`` = fg*a, ``inv`` = 1-a."""

    def __init__(self, prep):
        W, _ = prep.size
        self.flat = prep.soft_y.astype(np.int64) * W + prep.soft_x
        self.a = prep.soft_a[:, None]
        self.fg = prep.soft_fg
        self.fga = self.fg * self.a
        self.inv = 1.0 - self.a


def blend_product(out: np.ndarray, layer, prep, wrap: float = LIGHT_WRAP) -> None:
    """Blend the product's soft edge over ``out`` and paste its opaque pixels exactly (in place).

    ``out`` is the C-contiguous HxWx3 uint8 background (with shadows and reflection).
    """
    if prep.empty:
        return
    if len(prep.soft_a):
        band: SoftBand = prep.cached(("softband",), lambda: SoftBand(prep))
        pix = out.reshape(-1, 3)  # a view: out is C-contiguous
        bg = np.take(pix, band.flat, axis=0).astype(np.float32)
        res = band.fga + bg * band.inv
        if wrap > 0:
            env = environment(out, prep, layer)
            res += (band.a * (wrap * band.inv)) * (env - band.fg)
        pix[band.flat] = np.clip(res + 0.5, 0, 255).astype(np.uint8)
    # opaque pixels: the layer's own, bit-exact (cv2.copyTo writes only where the mask is set)
    x0, y0, x1, y1 = prep.box
    region = out[y0:y1, x0:x1]
    region[...] = cv2.copyTo(np.ascontiguousarray(layer.rgb[y0:y1, x0:x1]), prep.opaque_u8,
                             np.ascontiguousarray(region))
