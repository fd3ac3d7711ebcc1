"""Planted cases for the product-similarity score, shared by tests/test_similarity.py and
benchmarks/bench_similarity.py.

Real seller photos from ../shared/data/seed_products (read in place, never copied) are cut out with
packshot's own learned engine; each cut-out is then changed in ways a model may legitimately change
a product (rotated, flipped, relit) and in ways it must not (its print painted over, a hue shift, a
part removed). The regions are fractions of the product's box, chosen per product by looking at it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np


@dataclass(frozen=True)
class Product:
    name: str
    path: str                                     # relative to ../shared/data
    print_box: tuple[float, float, float, float]  # the logo / label / print (fractions of the box)
    part_box: tuple[float, float, float, float]   # a part that can go missing (cap, heel, a bite)
    part_disc: bool = False                       # the part is a disc inscribed in part_box (a bite)
    text_box: tuple[float, float, float, float] | None = None  # printed words, if any
    new_text: str = ""                            # what a model might write there instead


PRODUCTS = (
    Product("shaving soap tin", "seed_products/nivedkris_product1_shaving_soap/product1.jpg",
            (0.22, 0.15, 0.92, 0.85), (0.72, 0.0, 1.0, 1.0), text_box=(0.24, 0.28, 0.58, 0.46),
            new_text="SHAVNG SQAP"),
    Product("aftershave bottle", "seed_products/nivedkris_product3_aftershave_bottle/product3.jpg",
            (0.0, 0.38, 1.0, 0.92), (0.0, 0.0, 1.0, 0.16), text_box=(0.05, 0.43, 0.6, 0.57),
            new_text="AFTERSHAWE"),
    Product("loafers", "seed_products/nivedkris_product4_loafers/product4.jpg",
            (0.25, 0.0, 0.8, 0.6), (0.0, 0.35, 0.3, 1.0)),
    Product("cookie", "seed_products/aibackgrounds_cookie/cookie.jpg",
            (0.15, 0.15, 0.85, 0.85), (0.65, 0.2, 1.15, 0.8), part_disc=True),
    Product("book", "matting/grabcut_book_image.jpg",
            (0.1, 0.1, 0.9, 0.9), (0.0, 0.0, 0.45, 0.4)),
)

GOOD = ("rotated 20°", "rotated -30° + flipped", "relit: gamma 1.5", "relit: 70 % brightness",
        "relit: warm light", "small: 160 px, rotated 15°")
BAD = ("print painted over", "hue shifted", "part removed")
TEXT = "text changed"   # only for products with printed words (text_box)


def load_cutout(shared_data: Path, product: Product, side: int = 900):
    """(rgb, alpha) of the product cut out with packshot's learned engine, cropped to its box plus a
    margin and downsized so its longer side is at most ``side`` px."""
    import packshot

    cut = packshot.cutout(shared_data / product.path, engine="learned")
    x0, y0, x1, y1 = cut.bbox
    m = max(x1 - x0, y1 - y0) // 12
    H, W = cut.photo.rgb.shape[:2]
    x0, y0, x1, y1 = max(0, x0 - m), max(0, y0 - m), min(W, x1 + m), min(H, y1 + m)
    rgb = cut.photo.rgb[y0:y1, x0:x1]
    alpha = cut.matte.alpha[y0:y1, x0:x1]
    s = min(1.0, side / max(rgb.shape[:2]))
    if s < 1.0:
        size = (round(rgb.shape[1] * s), round(rgb.shape[0] * s))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb), np.ascontiguousarray(alpha.astype(np.float32))


def _box(alpha: np.ndarray, frac: tuple[float, float, float, float]) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(alpha >= 0.5)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    w, h = x1 - x0, y1 - y0
    return (int(x0 + frac[0] * w), int(y0 + frac[1] * h), int(x0 + frac[2] * w), int(y0 + frac[3] * h))


def rotate(rgb, alpha, deg: float, flip: bool = False):
    """Rotate about the centre on a canvas large enough for the whole product (no clipping)."""
    if flip:
        rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
    h, w = alpha.shape
    M = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    c, s = abs(M[0, 0]), abs(M[0, 1])
    nw, nh = int(h * s + w * c), int(h * c + w * s)
    M[0, 2] += nw / 2 - w / 2
    M[1, 2] += nh / 2 - h / 2
    r = cv2.warpAffine(np.ascontiguousarray(rgb), M, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=(255, 255, 255))
    a = cv2.warpAffine(np.ascontiguousarray(alpha), M, (nw, nh), flags=cv2.INTER_LINEAR, borderValue=0)
    return r, a


def shrink(rgb, alpha, side: int):
    """The product at ``side`` px (longer side): a product that fills a small part of a candidate."""
    f = side / max(alpha.shape)
    size = (max(1, round(alpha.shape[1] * f)), max(1, round(alpha.shape[0] * f)))
    return (cv2.resize(rgb, size, interpolation=cv2.INTER_AREA),
            cv2.resize(np.ascontiguousarray(alpha), size, interpolation=cv2.INTER_AREA))


def relight(rgb, alpha, gamma: float = 1.0, gain: float = 1.0, wb=(1.0, 1.0, 1.0)):
    """A change of light: gamma / exposure / a coloured light (gains per channel, linear light)."""
    lin = (rgb.astype(np.float32) / 255.0) ** 2.2
    lin = lin * gain * np.float32(wb)
    out = np.clip(lin, 0, 1) ** (1 / 2.2)
    out = out ** gamma
    return (out * 255 + 0.5).astype(np.uint8), alpha


def paint_over(rgb, alpha, product: Product):
    """The print painted over: the region filled with the product's own median colour there
    (inside the product only), its edge softened, like a model that dropped the logo."""
    x0, y0, x1, y1 = _box(alpha, product.print_box)
    out = rgb.copy()
    region = np.zeros(alpha.shape, np.uint8)
    region[y0:y1, x0:x1] = 1
    region &= (alpha >= 0.5).astype(np.uint8)
    colour = np.median(rgb[region.astype(bool)], axis=0)
    soft = cv2.GaussianBlur(region.astype(np.float32), (0, 0), 3)[..., None]
    out = (out * (1 - soft) + colour * soft + 0.5).astype(np.uint8)
    return out, alpha


def change_text(rgb, alpha, product: Product):
    """The words rewritten, misspelt, as a model does: the text box filled with its own median
    (background) colour, then ``new_text`` in the box's brightest colour, filling the box's width."""
    x0, y0, x1, y1 = _box(alpha, product.text_box)
    out = rgb.copy()
    box = out[y0:y1, x0:x1]
    grey = box.astype(np.float32).mean(axis=2)
    ink = box[grey >= np.percentile(grey, 97)].mean(axis=0)
    box[:] = np.median(box.reshape(-1, 3), axis=0).astype(np.uint8)
    font, thick = cv2.FONT_HERSHEY_DUPLEX, max(1, (y1 - y0) // 12)
    (tw, th), _ = cv2.getTextSize(product.new_text, font, 1.0, thick)
    scale = min(0.95 * (x1 - x0) / tw, 0.45 * (y1 - y0) / th)
    cv2.putText(out, product.new_text, (x0 + 2, y0 + int((y1 - y0) * 0.6)), font, scale,
                tuple(int(v) for v in ink), thick, cv2.LINE_AA)
    return out, alpha


def hue_shift(rgb, alpha, degrees: float = 90):
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV_FULL)
    hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + round(degrees * 256 / 360)) % 256).astype(np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL), alpha


def remove_part(rgb, alpha, product: Product):
    x0, y0, x1, y1 = _box(alpha, product.part_box)
    a = alpha.copy()
    if product.part_disc:
        yy, xx = np.mgrid[:a.shape[0], :a.shape[1]]
        cx, cy, r = (x0 + x1) / 2, (y0 + y1) / 2, min(x1 - x0, y1 - y0) / 2
        a[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 0
    else:
        a[max(0, y0):y1, max(0, x0):x1] = 0
    return rgb, a


def variants(rgb, alpha, product: Product) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every planted case of one product, GOOD then BAD, by name."""
    return {
        "rotated 20°": rotate(rgb, alpha, 20),
        "rotated -30° + flipped": rotate(rgb, alpha, -30, flip=True),
        "relit: gamma 1.5": relight(rgb, alpha, gamma=1.5),
        "relit: 70 % brightness": relight(rgb, alpha, gain=0.7),
        "relit: warm light": relight(rgb, alpha, wb=(1.12, 1.0, 0.8)),
        "small: 160 px, rotated 15°": rotate(*shrink(rgb, alpha, 160), 15),
        "print painted over": paint_over(rgb, alpha, product),
        "hue shifted": hue_shift(rgb, alpha, 90),
        "part removed": remove_part(rgb, alpha, product),
        **({TEXT: change_text(rgb, alpha, product)} if product.text_box else {}),
    }


def on_backdrop(rgb, alpha, colour=(236, 232, 226), pad: float = 0.15) -> np.ndarray:
    """The product composited on a plain backdrop with a margin: what a generated candidate would
    look like to the segmenter."""
    h, w = alpha.shape
    p = int(max(h, w) * pad)
    canvas = np.empty((h + 2 * p, w + 2 * p, 3), np.float32)
    canvas[:] = colour
    a = alpha[..., None]
    canvas[p:p + h, p:p + w] = rgb * a + canvas[p:p + h, p:p + w] * (1 - a)
    return (canvas + 0.5).astype(np.uint8)
