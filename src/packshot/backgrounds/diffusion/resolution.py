"""Working resolution: each model family runs at its native area, in aspect buckets.

Real Stable Diffusion weights repeat props and tabletops above their training size, and SDXL
inpainting degrades away from about 1 MP. So the canvas is never generated at its own size: it is
scaled uniformly into the bucket nearest its aspect (sides multiples of 64, area about native^2:
SD 1.5/2 about 512^2, SD2-768 about 768^2, SDXL about 1 MP; Fooocus's scheme), padded to the
bucket, generated, cropped and brought back to the canvas size. Upscaling uses Lanczos (noted in
the results); the product itself is always pasted at full output resolution by the compositor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ...errors import ModelError

BUCKET_RANGE = (0.5, 2.0)   # bucket sides between native/2 and 2*native (aspect 1:4 .. 4:1)


def bucket_step(native: int) -> int:
    """Side granularity: 64 px for real models (native >= 512), native/8 for tiny test models."""
    return 64 if native >= 512 else max(8, native // 8)


@lru_cache(maxsize=32)
def buckets(native: int) -> tuple[tuple[int, int], ...]:
    """(w, h) buckets of about ``native**2`` pixels, sides multiples of :func:`bucket_step`."""
    step = bucket_step(native)
    lo, hi = BUCKET_RANGE[0] * native, BUCKET_RANGE[1] * native
    out = set()
    w = step * math.ceil(lo / step)
    while w <= hi:
        h = step * max(1, round(native * native / w / step))
        if lo <= h <= hi:
            out.add((w, h))
        w += step
    return tuple(sorted(out))


def nearest_bucket(canvas: tuple[int, int], native: int) -> tuple[int, int]:
    """The bucket whose aspect is nearest the canvas's (log ratio; ties: the larger area)."""
    a = math.log(canvas[0] / canvas[1])
    return min(buckets(native), key=lambda b: (round(abs(math.log(b[0] / b[1]) - a), 6), -b[0] * b[1]))


@dataclass(frozen=True)
class Geometry:
    """Canvas (W, H) -> working size (w, h) = uniform scale into the bucket, padded (right/bottom) to it."""

    canvas: tuple[int, int]
    work: tuple[int, int]
    padded: tuple[int, int]     # the bucket: what the UNet runs at
    scale: float

    @property
    def resized(self) -> bool:
        return self.work != self.canvas

    @property
    def upscaled(self) -> bool:
        return self.scale < 1.0

    def _resize(self, a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        if (a.shape[1], a.shape[0]) == size:
            return a
        shrink = size[0] < a.shape[1]
        return cv2.resize(a, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LANCZOS4)

    def to_work(self, a: np.ndarray, pad_value: float | None = None) -> np.ndarray:
        """Canvas-size image/mask -> padded working size. Pads by edge replication, or ``pad_value``."""
        dtype = a.dtype
        r = self._resize(a, self.work)
        if dtype == np.uint8:
            r = np.clip(r, 0, 255).astype(np.uint8)
        pw, ph = self.padded
        w, h = self.work
        if (pw, ph) == (w, h):
            return np.ascontiguousarray(r)
        if pad_value is None:
            return cv2.copyMakeBorder(r, 0, ph - h, 0, pw - w, cv2.BORDER_REPLICATE)
        return cv2.copyMakeBorder(r, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=pad_value)

    def to_canvas(self, a: np.ndarray) -> np.ndarray:
        """Padded working-size HxWx3 uint8 -> the exact canvas size (crop the padding, resize back)."""
        w, h = self.work
        crop = a[:h, :w]
        out = self._resize(crop, self.canvas)
        return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def plan_geometry(canvas: tuple[int, int], info) -> Geometry:
    """The working size for ``canvas`` on ``info``'s model (a ModelInfo), or ModelError if it cannot.

    The bucket nearest the canvas aspect is the UNet's size; the canvas is scaled uniformly to fit
    it (never stretched) and the rest of the bucket is padding, cropped off afterwards. A canvas so
    elongated that its short side would fall under the model's smallest side is refused.
    """
    W, H = canvas
    bw, bh = nearest_bucket(canvas, info.native)
    s = min(bw / W, bh / H)
    w, h = min(bw, max(1, round(W * s))), min(bh, max(1, round(H * s)))
    if min(w, h) < info.min_side or min(bw, bh) < info.min_side:
        raise ModelError(
            f"canvas {W}x{H} is a size model {info.name!r} cannot take: at its working scale (native "
            f"{info.native} px, bucket {bw}x{bh}) it would be {w}x{h}, and the model takes sides of at least "
            f"{info.min_side} px; use a less elongated canvas")
    return Geometry(canvas=(W, H), work=(w, h), padded=(bw, bh), scale=s)


def cover_crop(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scale ``rgb`` uniformly to cover ``size`` (w, h) and centre-crop: never stretched."""
    w, h = size
    ih, iw = rgb.shape[:2]
    s = max(w / iw, h / ih)
    nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
    r = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    x, y = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(r[y:y + h, x:x + w])
