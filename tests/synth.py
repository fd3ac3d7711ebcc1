"""Synthetic product photos with exact ground truth, rendered by the tests themselves.

``mug_photo`` draws a shaded mug with a real hole in its handle on a backdrop, with a soft contact
shadow, sensor noise and optional JPEG compression. Returns (rgb uint8 HxWx3, alpha float32 HxW).
"""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

BACKDROPS = {
    "white": ((250, 250, 250), (242, 242, 242)),
    "grey": ((214, 214, 212), (196, 196, 194)),
    "paper": ((238, 229, 212), (224, 214, 196)),
    "pastel": ((190, 214, 232), (172, 198, 220)),
    "green": ((20, 200, 60), (20, 190, 55)),  # saturated chroma backdrop, for halo tests
}


def backdrop(h: int, w: int, top, bottom) -> np.ndarray:
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = np.float32(top) / 255, np.float32(bottom) / 255
    return np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()


def mug_matte(h: int, w: int, ss: int = 4) -> np.ndarray:
    """Anti-aliased mug silhouette: body + ring handle with a hole. float32 HxW in [0,1]."""
    H, W = h * ss, w * ss
    m = np.zeros((H, W), np.uint8)
    cx, cy = W // 2 - W // 16, H // 2
    bw, bh = W // 5, int(H * 0.3)
    cv2.rectangle(m, (cx - bw, cy - bh), (cx + bw, cy + bh), 255, -1)
    cv2.ellipse(m, (cx, cy + bh), (bw, bh // 8), 0, 0, 180, 255, -1)
    hr = int(bh * 0.45)
    cv2.ellipse(m, (cx + bw, cy), (hr, hr), 0, -90, 90, 255, max(4, hr // 3))
    return cv2.resize(m.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)


def mug_photo(size=(800, 600), backdrop_name="white", color=(180, 40, 40), seed=0,
              jpeg_quality: int | None = 92):
    w, h = size
    rng = np.random.default_rng(seed)
    alpha = mug_matte(h, w)
    bg = backdrop(h, w, *BACKDROPS[backdrop_name])
    # soft contact shadow under the base (part of the backdrop, not of the product)
    ys, xs = np.nonzero(alpha > 0.5)
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (int(xs.mean()), int(ys.max())), (int((xs.max() - xs.min()) * 0.55), max(3, h // 40)),
                0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), max(2, h / 60)) * 0.35
    bg *= (1 - shadow)[..., None]
    # product: cylinder-like shading left to right
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    shade = 0.65 + 0.35 * np.cos(np.clip(xx * 1.6, -1.5, 1.5))
    fg = (np.float32(color) / 255)[None, None, :] * shade[..., None]
    fg = np.broadcast_to(fg, (h, w, 3))
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    img += rng.normal(0, 0.006, img.shape).astype(np.float32)
    rgb = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    if jpeg_quality:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=jpeg_quality)
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return rgb, alpha.astype(np.float32)


def iou(alpha: np.ndarray, truth: np.ndarray, t: float = 0.5) -> float:
    a, b = alpha >= t, truth >= t
    union = (a | b).sum()
    return float((a & b).sum() / union) if union else 1.0


def truth_layer(size=(640, 480), canvas="640x480", colour=(180, 40, 40), **req):
    """A flat-coloured mug with its exact alpha (no segmenter involved), laid out by the real layout
    stage: a Layer for composite/score tests."""
    from packshot.layout import place, plan
    from packshot.schema import GenerateRequest
    from packshot.types import Cutout, Matte, Photo

    w, h = size
    rgb = np.empty((h, w, 3), np.uint8)
    rgb[...] = colour
    cut = Cutout(Photo(rgb), Matte(alpha=mug_matte(h, w), engine="truth"))
    return place(cut, plan(cut, GenerateRequest(size=canvas, **req) if canvas else GenerateRequest(**req)))


def loafer_pair_alpha(w: int = 900, h: int = 500, ss: int = 4) -> np.ndarray:
    """A pair of shoes seen from above the table, like a seller's loafers: the near shoe's sole on
    the lowest line (y = 0.80 h), the far shoe behind it (sole y = 0.62 h) showing only its toe
    beyond the near shoe's, the toe's height tapering to its tip (0.35 -> 0.13 of the pair's
    height): a foot on the floor whose solid part is low. Anti-aliased float32 HxW in [0, 1]."""
    m = np.zeros((h * ss, w * ss), np.uint8)

    def P(x, y):
        return int(round(x * w * ss)), int(round(y * h * ss))

    far = [(0.30, 0.25), (0.75, 0.40), (0.93, 0.55), (0.93, 0.62), (0.30, 0.62)]
    cv2.fillPoly(m, [np.array([P(x, y) for x, y in far], np.int32)], 255)
    cv2.rectangle(m, P(0.08, 0.40), P(0.70, 0.80), 255, -1)                        # near shoe
    cv2.ellipse(m, P(0.70, 0.60), (int(0.08 * w * ss), int(0.20 * h * ss)), 0, -90, 90, 255, -1)  # its toe
    return cv2.resize(m.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
