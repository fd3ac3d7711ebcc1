"""Reflection of the product on a glossy floor (``scene.gloss`` in (0, 1]).

A flat mirror floor reflects a point at height ``h`` above the base line ``h`` rows below it, so
the reflection is the product flipped about its base line (curved bottoms correctly leave a gap).
Rows ``k = 0 .. depth`` below the base get opacity ``gloss * OPACITY * (1 - k/depth)**2``
(``depth = DEPTH * hp``), and a blur that grows from ``SIGMA_NEAR`` to ``SIGMA_FAR`` (fractions
of hp) with the distance, as on a real semi-gloss surface. Colour is blurred premultiplied
(``blur(rgb*a) / blur(a)`` in effect), so no dark fringe appears. The flipped, blurred source is
built once per layer; each call only scales its opacity and blends:
``bg * (1 - o * a) + o * (rgb * a)``.
"""
from __future__ import annotations

import cv2
import numpy as np

OPACITY = 0.55
DEPTH = 0.45
SIGMA_NEAR = 0.002
SIGMA_FAR = 0.02


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return img
    if sigma > 6:  # big sigma: blur on a grid reduced by an integer factor, then back up
        f = int(sigma // 3)
        h, w = img.shape[:2]
        small = cv2.resize(img, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (0, 0), sigma / f)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    return cv2.GaussianBlur(img, (0, 0), sigma)


class Mirror:
    """Premultiplied colour ``pre`` (h x w x 3 float32), alpha ``a`` (h x w) and opacity ramp
    ``ramp`` (h x w, 1 at the mirror line, 0 at ``DEPTH * hp`` below it) of the flipped product,
    for canvas rows ``y0 .. y0+h`` and columns ``x0 .. x0+w``.

    Each column is mirrored about its own contact point with the floor (``base - lift``, see
    :func:`.shadows.footprint_profile`): a round base's arc reflects from the arc itself.
    """

    def __init__(self, prep, layer):
        from .shadows import bottom_edges, footprint_profile

        W, H = prep.size
        hp = max(prep.height, 4)
        base = prep.base_y
        pad = int(np.ceil(3 * SIGMA_FAR * hp))
        x0, x1 = max(prep.box[0] - pad, 0), min(prep.box[2] + pad, W)
        top = prep.box[1]
        # per column: y of the lowest opaque point (pixel boundary below it), lift, mirror line
        bottom = top + bottom_edges(layer.alpha[top:base, x0:x1])
        _, lift = footprint_profile(bottom, float(base), float(hp))
        mline = base - lift                                     # (w,) mirror line per column
        depth = int(round(DEPTH * hp))
        y0 = int(np.floor(mline.min()))
        y1 = min(H, base + depth)
        self.empty = y1 <= y0 or depth <= 0
        if self.empty:
            return
        # source rows [s0, base): far enough up for the deepest mirrored row
        s0 = max(top, int(np.floor(2 * mline.min() - y1)) - 1)
        a_src = layer.alpha[s0:base, x0:x1].astype(np.float32)
        pre_src = layer.rgb[s0:base, x0:x1].astype(np.float32) * a_src[..., None]
        ys = np.arange(y0, y1, dtype=np.float32)[:, None]
        # dest pixel centre y mirrors to 2*m - 1 - y (pixel rows), in source-crop coordinates
        map_y = (2 * mline[None, :] - 1 - ys - s0).astype(np.float32)
        below = ys >= mline[None, :] - 0.5
        map_y = np.where(below, map_y, -10.0).astype(np.float32)  # above the line: nothing
        w = x1 - x0
        map_x = np.ascontiguousarray(np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], map_y.shape))
        a = cv2.remap(a_src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        pre = cv2.remap(pre_src, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)
        k = (ys - mline[None, :]).clip(min=0)
        t = (k / depth).clip(0, 1).astype(np.float32)
        near_a, near_p = _blur(a, SIGMA_NEAR * hp), _blur(pre, SIGMA_NEAR * hp)
        far_a, far_p = _blur(a, SIGMA_FAR * hp), _blur(pre, SIGMA_FAR * hp)
        self.a = near_a * (1 - t) + far_a * t
        self.pre = near_p * (1 - t[..., None]) + far_p * t[..., None]
        self.ramp = np.where(below, (1 - t) ** 2, 0).astype(np.float32)
        self.x0, self.y0 = x0, y0


def mirror_of(prep, layer) -> Mirror:
    return prep.cached(("mirror",), lambda: Mirror(prep, layer))


def render_reflection(out: np.ndarray, prep, layer, gloss: float) -> None:
    """Blend the reflection into ``out`` (HxWx3 uint8, the background) in place."""
    m = mirror_of(prep, layer)
    if m.empty or gloss <= 0:
        return
    o = min(float(gloss), 1.0) * OPACITY * m.ramp
    h, w = m.a.shape
    region = out[m.y0:m.y0 + h, m.x0:m.x0 + w]
    oa = (o * m.a)[..., None]
    res = region.astype(np.float32) * (1 - oa) + m.pre * o[..., None]
    region[...] = np.clip(res + 0.5, 0, 255).astype(np.uint8)
