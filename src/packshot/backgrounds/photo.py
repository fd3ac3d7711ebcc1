"""The seller's own background photo (``--background PHOTO``): the product placed on it.

The photo is loaded once (cached by path, size and modification time), cover-fitted to the canvas
(scaled uniformly to fill it, centred, the overflow cropped: never stretched) and returned as the
scene. Its light is estimated from the photo itself (:func:`estimate_light`): the compositor then
lays the product's shadow along it. The photo's pixels outside the product and its shadow are the
output's pixels (an exact copy when the canvas is the photo's own size).
"""
from __future__ import annotations

import math
import os
import time
from functools import lru_cache

import cv2
import numpy as np

from ..errors import InvalidInputError
from ..types import Photo, Scene, Size

DEFAULT_LIGHT = (0.848, -0.53)   # from the front left (shadow behind, right), as the studio


@lru_cache(maxsize=4)
def _load(path: str, mtime_ns: int, nbytes: int, max_pixels: int | None) -> Photo:
    from ..io import load_image
    return load_image(path, max_pixels=max_pixels) if max_pixels else load_image(path)


def load_background(path: str | Photo, max_pixels: int | None = None) -> Photo:
    """Decode the background photo (errors name the path; cached while the file is unchanged). An
    already decoded :class:`Photo` (a background uploaded over the API, read from the blob store by
    the job runner) is returned as it is."""
    if isinstance(path, Photo):
        return path
    try:
        st = os.stat(path)
    except OSError as err:
        raise InvalidInputError(f"background {path!r}: {err.strerror or 'cannot be read'}") from None
    return _load(str(path), st.st_mtime_ns, st.st_size, max_pixels)


def cover(rgb: np.ndarray, size: Size) -> np.ndarray:
    """``rgb`` scaled uniformly to cover ``size`` (W, H), centred, the overflow cropped."""
    W, H = size
    h, w = rgb.shape[:2]
    if (w, h) == (W, H):
        return rgb.copy()
    k = max(W / w, H / h)
    nw, nh = max(W, math.ceil(w * k)), max(H, math.ceil(h * k))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
    big = cv2.resize(rgb, (nw, nh), interpolation=interp)
    x0, y0 = (nw - W) // 2, (nh - H) // 2
    return np.ascontiguousarray(big[y0:y0 + H, x0:x0 + W])


def estimate_light(rgb: np.ndarray) -> tuple[tuple[float, float], str]:
    """Light travel direction in a photo: from its bright side toward its dark side.

    The photo's luminance, heavily blurred (the room's light, not its objects), is compared
    between the left and right thirds and the top and bottom thirds. A difference under 4 % of
    the mean is "no clear side": the default from the upper left is used.
    """
    small = cv2.resize(rgb, (64, 64), interpolation=cv2.INTER_AREA).astype(np.float32)
    luma = cv2.GaussianBlur(small @ np.array([0.299, 0.587, 0.114], np.float32), (0, 0), 6)
    m = max(float(luma.mean()), 1.0)
    lr = (float(luma[:, :21].mean()) - float(luma[:, -21:].mean())) / m
    if abs(lr) < 0.04:
        return DEFAULT_LIGHT, "no clear light side in the background photo: default from the front left"
    side = "left" if lr > 0 else "right"
    # lit from that side and the front: the shadow falls behind the product, to the other side
    return (math.copysign(0.848, lr), -0.53), f"the background photo is brighter on its {side} ({abs(lr):.0%})"


def photo_scene(path: str | Photo, size: Size, seed: int, engine: str, max_pixels: int | None = None) -> Scene:
    """The seller's photo (a path, or a decoded Photo) as the scene for one candidate (the same
    for every seed)."""
    t0 = time.perf_counter()
    bg = load_background(path, max_pixels)
    rgb = cover(bg.rgb, size)
    light, why = estimate_light(rgb)
    name = os.path.basename(path) if isinstance(path, str) else "uploaded"
    return Scene(rgb=rgb, seed=int(seed), engine=engine, light_dir=light, floor_y=None, gloss=0.0,
                 shadow_strength=0.45, needs_shadow=True, generated=False,
                 notes=(f"background: your photo {name}; light: {why}",),
                 params={"Background": f"photo {name}", "Light": f"from the photo ({why})",
                         "Light direction": f"{light[0]:.2f},{light[1]:.2f}"},
                 timings={"studio": time.perf_counter() - t0})
