"""Light of a studio scene: the smooth light map (pool, falloff, window, spot, vignette), light
patterns (gobos), bokeh, glow, grading.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from . import textures as T
from .textures import F32, LUMA as _LUMA, smoothstep as _smoothstep

if TYPE_CHECKING:  # pragma: no cover
    from .look import Look


def gobo(look: Look, rng, lh: int, lw: int) -> np.ndarray:
    """A light pattern at light-map resolution: 1 = lit, lower = shadowed (h x w float32)."""
    dx, dy = look.light
    m = np.zeros((lh, lw), np.uint8)
    kind = look.gobo
    src_x = 0 if dx > 0.15 else (lw if dx < -0.15 else lw * rng.uniform(0.2, 0.8))
    if kind == "leaves":
        # two or three branches reaching in from the light's side, leaves alternating along them
        from_left = src_x < lw / 2
        for _ in range(int(rng.integers(2, 4))):
            bx = (-0.05 if from_left else 1.05) * lw
            by = rng.uniform(-0.15, 0.55) * lh
            ang = math.radians(rng.uniform(-25, 35)) if from_left else math.pi - math.radians(rng.uniform(-25, 35))
            L = rng.uniform(0.35, 0.65) * lw
            bend = rng.uniform(-0.6, 0.6)
            n = int(rng.integers(6, 10))
            ll0 = rng.uniform(0.07, 0.11) * lw
            pts = []
            for i in range(n + 1):
                t = i / n
                a = ang + bend * t
                pts.append((bx + math.cos(a) * L * t, by + math.sin(a) * L * t))
            cv2.polylines(m, [np.array(pts, np.int32)], False, 255, max(1, lw // 160), cv2.LINE_AA)
            for i in range(1, n + 1):
                t = i / n
                px, py = pts[i]
                a = math.degrees(ang + bend * t)
                side = 1 if i % 2 else -1
                la = a + side * rng.uniform(35, 60)
                ll = ll0 * (1.15 - 0.45 * t)
                ox = math.cos(math.radians(la)) * ll * 0.9
                oy = math.sin(math.radians(la)) * ll * 0.9
                cv2.ellipse(m, (int(px + ox), int(py + oy)), (int(ll), max(1, int(ll * 0.32))), la, 0, 360, 255,
                            -1, cv2.LINE_AA)
        blur = lw * (0.003 + 0.012 * (1 - look.hardness))
        pat = cv2.GaussianBlur(m.astype(F32) / 255, (0, 0), blur)
        return F32(1) - F32(0.42) * pat
    if kind == "blinds":
        # sunlight through blinds: a skewed bright patch from the light's side, striped by slats
        yy, xx = np.mgrid[0:lh, 0:lw].astype(F32)
        slope = F32(rng.uniform(0.25, 0.6) * (1 if dx >= 0 else -1))
        period = F32(lh * rng.uniform(0.05, 0.08))
        stripes = (np.sin((yy + xx * slope) * F32(2 * math.pi) / period) > F32(-0.2)).astype(F32)
        stripes = cv2.GaussianBlur(stripes, (0, 0), max(0.6, lw * 0.003 * (1.5 - look.hardness)))
        # the patch: a window's shape sheared along the light, soft-edged
        u = (xx / F32(lw)) if dx >= 0 else (F32(1) - xx / F32(lw))
        v = yy / F32(lh)
        c0, c1 = rng.uniform(0.05, 0.2), rng.uniform(0.55, 0.8)
        sh = F32(rng.uniform(0.2, 0.5))
        patch = _smoothstep(c0 - 0.1, c0 + 0.05, u - sh * v) * (F32(1) - _smoothstep(c1, c1 + 0.15, u - sh * v))
        patch *= _smoothstep(-0.05, 0.1, v) * (F32(1) - _smoothstep(0.85, 1.0, v))
        return F32(0.82) + F32(0.34) * stripes * patch
    if kind == "window":
        # a bright, skewed window with cross bars, thrown on the wall from the light's side
        cxw = lw * (0.22 if dx > 0 else 0.78) + rng.uniform(-0.06, 0.06) * lw
        wwin, hwin = lw * rng.uniform(0.3, 0.42), lh * rng.uniform(0.45, 0.6)
        topw = lh * rng.uniform(0.02, 0.12)
        skew = (0.35 if dx > 0 else -0.35) * hwin
        pts = np.float32([[cxw - wwin / 2, topw], [cxw + wwin / 2, topw],
                          [cxw + wwin / 2 + skew, topw + hwin], [cxw - wwin / 2 + skew, topw + hwin]])
        cv2.fillPoly(m, [pts.astype(np.int32)], 255, cv2.LINE_AA)
        bar = max(1, int(lw * 0.012))
        mid_top = (pts[0] + pts[1]) / 2
        mid_bot = (pts[2] + pts[3]) / 2
        cv2.line(m, tuple(int(v) for v in mid_top), tuple(int(v) for v in mid_bot), 0, bar, cv2.LINE_AA)
        ml = (pts[0] + pts[3]) / 2
        mr = (pts[1] + pts[2]) / 2
        cv2.line(m, tuple(int(v) for v in ml), tuple(int(v) for v in mr), 0, bar, cv2.LINE_AA)
        pat = cv2.GaussianBlur(m.astype(F32) / 255, (0, 0), max(0.8, lw * 0.006 * (1.5 - look.hardness)))
        return F32(0.86) + F32(0.38) * pat
    # dapple: sunlight through trees
    n = T.fbm(rng, lh, lw, lh / 14.0, lw / 14.0, 3)
    spots = _smoothstep(0.7, 1.1, n)
    return F32(0.82) + F32(0.4) * spots


def bokeh(look: Look, rng, h: int, w: int, limit: int) -> np.ndarray:
    """Out-of-focus light discs (additive layer, h x w x 3 float32) above ``limit``: two depth
    layers, the farther one smaller, dimmer and softer."""
    out = np.zeros((h, w, 3), F32)
    warm = look.warmth > -0.1
    for depth, (count, rmin, rmax, blur, gain) in enumerate(((22, 0.008, 0.02, 0.004, 0.35),
                                                            (12, 0.018, 0.04, 0.002, 0.5))):
        layer = np.zeros((h, w, 3), F32)
        for _ in range(count):
            r = int(max(2, rng.uniform(rmin, rmax) * w))
            x = int(rng.uniform(0, w))
            y = int(rng.uniform(0.0, 0.92) * max(limit, 4))
            if warm:
                col = np.array([1.0, rng.uniform(0.75, 0.9), rng.uniform(0.45, 0.65)], F32)
            else:
                col = np.array([rng.uniform(0.6, 0.85), rng.uniform(0.75, 0.92), 1.0], F32)
            col *= F32(rng.uniform(0.3, 1.0) * gain)
            cv2.circle(layer, (x, y), r, tuple(float(c) for c in col), -1, cv2.LINE_AA)
            cv2.circle(layer, (x, y), r, tuple(float(c) * 0.5 for c in col), max(1, r // 8), cv2.LINE_AA)
        out += cv2.GaussianBlur(layer, (0, 0), max(1.0, w * blur))
    return out


def light_map(look: Look, rng, lh: int, lw: int, horizon_frac: float | None) -> np.ndarray:
    """Smooth multiplicative light (lh x lw float32): pool around the product, directional falloff,
    window, spot, glow, contact-line occlusion, vignette."""
    x0, y0, x1, y1 = look.box
    sx, sy = lw / look.w, lh / look.h
    cx, cy = (x0 + x1) / 2 * sx, (y0 + y1) / 2 * sy
    yy = np.arange(lh, dtype=F32)[:, None]
    xx = np.arange(lw, dtype=F32)[None, :]
    dx, dy = look.light
    diag = math.hypot(lw, lh)
    # a pool of light around the product, pushed toward where the light comes from
    px, py = cx - dx * 0.22 * lw, cy - 0.12 * lh - max(dy, 0) * 0.08 * lh
    sigma = diag * (0.5 - 0.12 * look.hardness) * (1 + rng.uniform(-0.08, 0.08))
    pool = np.exp(-((xx - F32(px)) ** 2 + (yy - F32(py)) ** 2) / F32(2 * sigma * sigma))
    falloff = 0.22 + 0.2 * look.hardness + 0.25 * max(0.0, -look.brightness)
    L = F32(1 - falloff) + F32(falloff * 1.15) * pool
    # side light: brighter on the side it comes from
    L *= F32(1) - F32(0.16 * dx) * ((xx - F32(lw / 2)) / F32(lw))
    if look.window:
        band = _smoothstep(0.0, 0.7, (F32(1) - xx / F32(lw)) if dx >= 0 else (xx / F32(lw)))
        L *= F32(0.94) + F32(0.16) * band
    if look.spot > 0:
        pwl, phl = (x1 - x0) * sx, (y1 - y0) * sy
        ssig = max(pwl, phl) * 0.6
        wall_spot = np.exp(-((xx - F32(cx)) ** 2 + (yy - F32(cy - 0.3 * phl)) ** 2) / F32(2 * ssig * ssig))
        by = y1 * sy
        floor_spot = np.exp(-((xx - F32(cx)) ** 2 / F32(2 * (pwl * 1.1) ** 2) + (yy - F32(by)) ** 2 / F32(2 * (phl * 0.18) ** 2)))
        spot = np.maximum(wall_spot, floor_spot)
        L *= F32(1 - 0.62 * look.spot) + F32(0.72 * look.spot) * spot
    if horizon_frac is not None:  # occlusion where the surface meets the wall
        hy = horizon_frac * lh
        L *= F32(1) - F32(0.10) * np.exp(-((yy - F32(hy)) / F32(max(1.0, 0.03 * lh))) ** 2)
        # the surface gets a little darker toward the front edge (away from the light pool)
        L *= F32(1) - F32(0.06) * _smoothstep(hy, lh, yy)
    # vignette (elliptic)
    r2 = ((xx - F32(lw / 2)) / F32(lw / 2)) ** 2 + ((yy - F32(lh / 2)) / F32(lh / 2)) ** 2
    L *= F32(1) - F32(look.vignette * 0.5) * np.clip(r2 - F32(0.15), 0, None)
    return L.astype(F32)


def glow(look: Look, img: np.ndarray) -> None:
    """Additive halo of light behind the product (rim light, backlight, golden glow)."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = look.box
    lh, lw = max(8, h // 4), max(8, w // 4)
    cx, cy = (x0 + x1) / 2 * lw / w, ((y0 + y1) / 2 - 0.1 * (y1 - y0)) * lh / h
    sig = max(x1 - x0, y1 - y0) * lw / w * 0.55
    yy = np.arange(lh, dtype=F32)[:, None]
    xx = np.arange(lw, dtype=F32)[None, :]
    G = np.exp(-((xx - F32(cx)) ** 2 + (yy - F32(cy)) ** 2) / F32(2 * sig * sig))
    G = cv2.resize(G, (w, h), interpolation=cv2.INTER_LINEAR)
    wv = max(0.0, look.warmth)
    col = np.array([1.0, 0.93 - 0.12 * wv, 0.82 - 0.3 * wv], F32) * F32(0.42 * look.glow)
    img += G[..., None] * col


def grade(img: np.ndarray, look: Look) -> np.ndarray:
    """Warmth, brightness, contrast (around the mean) and saturation, in place where possible."""
    wv = look.warmth
    if wv:
        img *= np.array([1 + 0.07 * wv, 1 + 0.012 * wv, 1 - 0.11 * wv], F32)
    b = look.brightness
    if b > 0:
        img[:] = F32(1) - (F32(1) - img) * F32(1 - 0.55 * b)
    elif b < 0:
        img *= F32(1 + 0.4 * b)
    luma = img @ _LUMA
    if look.contrast != 1.0:
        m = F32(luma[::8, ::8].mean())
        img[:] = m + (img - m) * F32(look.contrast)
        luma = m + (luma - m) * F32(look.contrast)
    if look.saturation != 1.0:
        img[:] = luma[..., None] + (img - luma[..., None]) * F32(look.saturation)
    return img


_GRAIN_TILE = 256


def add_grain(img8: np.ndarray, sigma: float, seed: int) -> None:
    """Add monochrome film grain of standard deviation ``sigma`` ([0, 1] units; the product
    photo's measured noise) to ``img8`` (HxWx3 uint8) in place, at the output resolution so it
    matches the product's own noise pixel for pixel. One 256 px tile of Gaussian noise per seed,
    repeated (no visible period in noise), keeps it cheap at 2048 px."""
    s = float(np.clip(sigma, 0.0015, 0.012)) * 255.0
    H, W = img8.shape[:2]
    tile = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7]).standard_normal(
        (_GRAIN_TILE, _GRAIN_TILE), dtype=F32) * F32(s)
    reps = (-(-H // _GRAIN_TILE), -(-W // _GRAIN_TILE))
    n = np.round(np.tile(tile, reps)[:H, :W])
    # saturating uint8 add/subtract in OpenCV: much faster than an int16 round trip at 2048 px
    pos = np.clip(n, 0, 255).astype(np.uint8)
    neg = np.clip(-n, 0, 255).astype(np.uint8)
    cv2.add(img8, cv2.merge([pos, pos, pos]), dst=img8)
    cv2.subtract(img8, cv2.merge([neg, neg, neg]), dst=img8)
