"""Surfaces of a studio scene: the wall (backdrop) and the surface in perspective."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import textures as T
from .textures import F32, smoothstep as _smoothstep

if TYPE_CHECKING:  # pragma: no cover
    from .look import Look


def wall(look: Look, rng, h: int, w: int, scale: float) -> np.ndarray:
    """The backdrop: colour gradient x a soft texture rendered at half resolution (out of focus)."""
    mean = (look.wall_top + look.wall_bottom) * F32(0.5)
    hh, hw = max(2, h // 2), max(2, w // 2)
    amount = 0.8 * look.texture
    tex = T.render(look.wall_kind, rng, hh, hw, scale / 2, mean, amount)
    tex = cv2.resize(tex, (w, h), interpolation=cv2.INTER_LINEAR)
    t = _smoothstep(0.0, 1.0, np.linspace(0, 1, h, dtype=F32))[:, None, None]
    grad = look.wall_top[None, None, :] * (F32(1) - t) + look.wall_bottom[None, None, :] * t
    ratio = grad / np.maximum(mean, F32(1e-3))[None, None, :]
    return tex * ratio


def floor(look: Look, rng, wall: np.ndarray, top: int, h: int, w: int, scale: float) -> np.ndarray:
    """The surface in perspective: a texture in plane coordinates warped by a homography so that
    it spans the canvas at the contact line (far) and ``r`` times less at the bottom (near)."""
    F = h - top
    r, e, along_x = look.persp
    kind = look.floor_kind
    if kind == "mirror":
        # a mirror reflects the wall: row i below the line shows row i above it
        idx = np.clip(top - 1 - np.arange(F), 0, max(top - 1, 0))
        refl = wall[idx] if top > 0 else np.broadcast_to(look.floor_rgb, (F, w, 3))
        refl = cv2.GaussianBlur(np.ascontiguousarray(refl), (0, 0), 1.2)
        return refl * (look.floor_rgb / F32(max(float(look.floor_rgb.max()), 1e-3)) * F32(0.8))
    s = 0.75
    tw = int(round(w * r * s))
    th = int(round(F * r * s / e))
    cap = 2.0 * w * h * s * s
    if tw * th > cap:
        k = math.sqrt(cap / (tw * th))
        tw, th, s = max(8, int(tw * k)), max(8, int(th * k)), s * k
    kw = {"along_x": along_x} if kind == "wood" else {}
    kw.update(look.floor_extra)  # the floor kind's own arguments (marble veins, wood species)
    tex = T.render(kind, rng, th, tw, scale * s * r * 0.5, look.floor_rgb, look.texture, **kw)
    if look.caustics:
        tex *= (F32(1) + F32(0.3) * T.caustics(rng, th, tw, scale * s * r * 0.5))[..., None]
    src = np.float32([[0, 0], [tw, 0], [tw / 2 + tw / (2 * r), th], [tw / 2 - tw / (2 * r), th]])
    dst = np.float32([[0, 0], [w, 0], [w, F], [0, F]])
    M = cv2.getPerspectiveTransform(src, dst)
    floor = cv2.warpPerspective(tex, M, (w, F), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if kind == "glass" and top > 0:
        idx = np.clip(top - 1 - np.arange(F), 0, top - 1)
        floor = floor * F32(0.82) + wall[idx] * F32(0.18)
    return depth_of_field(floor, look.base_y - top)


DOF = 0.02          # blur sigma per row away from the focus row (work-resolution pixels)
DOF_MAX = 3.5       # the largest blur (at the horizon), work-resolution pixels


def depth_of_field(floor: np.ndarray, focus_row: float) -> np.ndarray:
    """Blur each row of the surface by its distance from the plane in focus (the product's base).

    With a pinhole camera above a plane, 1/depth grows linearly with the row below the horizon,
    and the circle of confusion is proportional to |1/depth - 1/focus|: so the blur grows
    linearly with |row - focus row|, toward the horizon and toward the near edge alike. Three
    blur levels (0, 1.2, ``DOF_MAX`` px) are mixed per row.
    """
    F = floor.shape[0]
    sig = np.clip(np.abs(np.arange(F, dtype=F32) - F32(focus_row)) * F32(DOF), 0, F32(DOF_MAX))
    if float(sig.max()) < 0.3:
        return floor
    mid = cv2.GaussianBlur(floor, (0, 0), 1.2)
    far = cv2.GaussianBlur(floor, (0, 0), DOF_MAX)
    a = np.clip(sig / F32(1.2), 0, 1)[:, None, None]                     # sharp -> mid
    b = np.clip((sig - F32(1.2)) / F32(DOF_MAX - 1.2), 0, 1)[:, None, None]  # mid -> far
    return floor + (mid - floor) * a + (far - mid) * b


def flatlay(look: "Look", rng, h: int, w: int, scale: float) -> np.ndarray:
    """A flat lay: the surface seen from straight above, filling the canvas, no horizon and no
    perspective. A named material is its texture; otherwise smooth paper in the backdrop's
    colour (a flat lay on a sweep is a sheet of coloured paper). The same texture scale as the
    surface's near edge in a tabletop scene."""
    if look.floor_kind != "plain":
        kw = dict(look.floor_extra)
        return T.render(look.floor_kind, rng, h, w, scale * 0.8, look.floor_rgb, look.texture, **kw)
    mean = (look.wall_top + look.wall_bottom) * F32(0.5)
    return T.render("paper", rng, h, w, scale * 0.8, mean, 0.8 * look.texture)
