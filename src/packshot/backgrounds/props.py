"""Props of a studio scene: the podium (cylinder or block) and the arch in the wall."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import textures as T
from .textures import F32

if TYPE_CHECKING:  # pragma: no cover
    from .look import Look


def mask_ellipse(h, w, c, axes, angle=0.0) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (int(round(c[0] * 4)), int(round(c[1] * 4))), (int(round(axes[0] * 4)), int(round(axes[1] * 4))),
                angle, 0, 360, 255, -1, cv2.LINE_AA, 2)
    return m


def podium(look: Look, rng, img: np.ndarray, scale: float) -> None:
    """Draw a cylinder or a block under the product, shaded by the light, with a contact shadow."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    pw = x1 - x0
    cx = (x0 + x1) / 2
    rx = float(np.clip(pw * rng.uniform(0.62, 0.82), pw * 0.58, 0.46 * w))
    rx = max(rx, 0.08 * w)
    ry = rx * look.podium_ratio * rng.uniform(0.95, 1.05)  # the top matches the base ellipse (view)
    b = look.base_y
    # tall enough to read as a plinth; short enough that its foot stays in the frame when there is room
    room = h - b - 1.3 * ry
    hp = float(np.clip(room * rng.uniform(0.6, 0.85), 0.05 * h, 0.22 * h)) if room > 0.06 * h \
        else h * rng.uniform(0.12, 0.22)
    top_c = b - 0.3 * ry
    bot_c = top_c + hp
    dx = look.light[0]
    # contact shadow on the floor
    sh = mask_ellipse(h, w, (cx + dx * rx * 0.25, bot_c + ry * 0.15), (rx * 1.12, ry * 1.25)).astype(F32) / 255
    sh = cv2.GaussianBlur(sh, (0, 0), max(1.0, ry * 0.5))
    img *= (F32(1) - F32(0.45) * sh)[..., None]
    ytop = int(max(0, math.floor(top_c - ry - 2)))
    ybot = int(min(h, math.ceil(bot_c + ry + 2)))
    xl = int(max(0, math.floor(cx - rx - 2)))
    xr = int(min(w, math.ceil(cx + rx + 2)))
    if ybot <= ytop or xr <= xl:
        return
    bh, bw = ybot - ytop, xr - xl
    tex = T.render(look.podium_kind, rng, bh, bw, scale, look.podium_rgb, 0.8 * look.texture)
    xs = (np.arange(xl, xr, dtype=F32) - F32(cx)) / F32(rx)
    nx = np.clip(xs, -1, 1)
    nz = np.sqrt(np.clip(F32(1) - nx * nx, 0, 1))
    if look.podium == "box":
        tf = b + 0.55 * ry                      # front edge of the top face
        back_y = tf - 1.6 * ry
        body = np.zeros((h, w), np.uint8)
        cv2.rectangle(body, (int(cx - rx), int(tf)), (int(cx + rx), int(min(h - 1, tf + hp))), 255, -1)
        topm = np.zeros((h, w), np.uint8)
        poly = np.array([[cx - rx, tf], [cx + rx, tf], [cx + rx * 0.9, back_y], [cx - rx * 0.9, back_y]],
                        np.float32)
        cv2.fillPoly(topm, [np.round(poly * 4).astype(np.int32)], 255, cv2.LINE_AA, 2)
        front_shade = F32(0.80) + F32(0.06) * (-F32(dx)) * nx
        face = np.ones((h, w), F32)
        face[:, xl:xr] = front_shade[None, :]
        top_shade = F32(1.06)
    else:
        body = np.zeros((h, w), np.uint8)
        cv2.rectangle(body, (int(round(cx - rx)), int(round(top_c))), (int(round(cx + rx)), int(round(bot_c))), 255, -1)
        body = np.maximum(body, mask_ellipse(h, w, (cx, bot_c), (rx, ry)))
        topm = mask_ellipse(h, w, (cx, top_c), (rx, ry))
        # recorded (fractions of the canvas: centre x, y, radii x, y) so the placement can be checked
        look.labels["Podium top"] = f"ellipse {cx / w:.4f},{top_c / h:.4f},{rx / w:.4f},{ry / h:.4f}"
        lam = F32(0.5) + F32(0.42) * (nx * F32(-dx) * F32(0.85) + nz * F32(0.5))
        lam *= F32(0.82) + F32(0.18) * nz          # darker toward the silhouette (ambient occlusion)
        face = np.ones((h, w), F32)
        face[:, xl:xr] = lam[None, :]
        top_shade = F32(1.05)
    bodyf = body.astype(F32) / 255
    topf = topm.astype(F32) / 255
    region = (slice(ytop, ybot), slice(xl, xr))
    shade = face[region] * (F32(1) - topf[region]) + top_shade * topf[region]
    col = tex * shade[..., None]
    a = np.maximum(bodyf[region], topf[region])[..., None]
    img[region] = img[region] * (F32(1) - a) + col * a
    # a thin highlight on the front rim of the top face
    if look.podium != "box":
        rim = np.zeros((h, w), np.uint8)
        cv2.ellipse(rim, (int(round(cx * 4)), int(round(top_c * 4))), (int(round(rx * 4)), int(round(ry * 4))),
                    0, 10, 170, 255, max(1, int(scale / 400)), cv2.LINE_AA, 2)
        rimf = cv2.GaussianBlur(rim.astype(F32) / 255, (0, 0), 0.8)[region]
        img[region] += (rimf * F32(0.10))[..., None]


def arch(look: Look, rng, img: np.ndarray, bottom: float) -> None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    pw = x1 - x0
    cx = (x0 + x1) / 2
    aw = float(np.clip(pw * rng.uniform(1.5, 2.1), 0.28 * w, 0.72 * w)) / 2
    top = max(0.06 * h, bottom - max(y1 - y0, 0.3 * h) * rng.uniform(1.1, 1.5) - aw)
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (int(cx - aw), int(top + aw)), (int(cx + aw), int(bottom)), 255, -1)
    cv2.ellipse(m, (int(round(cx * 4)), int(round((top + aw) * 4))), (int(round(aw * 4)), int(round(aw * 4))),
                0, 180, 360, 255, -1, cv2.LINE_AA, 2)
    mf = m.astype(F32) / 255
    # recess: the edge toward the light casts a thin shadow inside the arch
    dx = look.light[0]
    shift = np.float32([[1, 0, dx * max(2.0, w * 0.012)], [0, 1, max(2.0, h * 0.01)]])
    inner = cv2.warpAffine(mf, shift, (w, h))
    edge = cv2.GaussianBlur(np.clip(mf - inner, 0, 1), (0, 0), max(1.0, w * 0.004))
    col = look.arch_rgb[None, None, :] * (F32(1) - F32(0.35) * edge[..., None])
    img[:] = img * (F32(1) - mf[..., None]) + col * mf[..., None] * (img / np.maximum(
        (look.wall_top + look.wall_bottom)[None, None, :] * F32(0.5), F32(1e-3)))
