"""Procedural textures for the studio engine: fast, deterministic per random generator.

Every generator takes ``(rng, h, w, scale, rgb, amount)`` and returns an ``h x w x 3`` float32
image in sRGB [0, 1] (values may slightly exceed 1 before the final clip):

* ``rng``: ``numpy.random.Generator``: the same state gives the same texture, bit for bit;
* ``scale``: pixels per "scene unit" (the width of the canvas at the work resolution): feature
  sizes are fractions of it, so a texture looks the same at any resolution;
* ``rgb``: the base colour, float32 (3,) in [0, 1];
* ``amount``: texture contrast multiplier (1 = as designed, 0 = flat colour).

Noise is value noise: a small random grid enlarged with ``cv2.resize`` (bicubic), summed over
octaves (fBm). Nothing loops over pixels in Python; the work is a handful of resizes and
element-wise float32 operations.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

F32 = np.float32
LUMA = np.array([0.299, 0.587, 0.114], F32)


def shade(c: np.ndarray, t: float) -> np.ndarray:
    """t > 0 mixes toward white, t < 0 toward black."""
    c = np.asarray(c, F32)
    return np.clip(c + (F32(1) - c) * F32(t) if t >= 0 else c * F32(1 + t), 0, 1).astype(F32)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - F32(e0)) / F32(max(e1 - e0, 1e-6)), 0, 1)
    return t * t * (F32(3) - F32(2) * t)


# -- noise -----------------------------------------------------------------------------------------
def noise(rng: np.random.Generator, h: int, w: int, cy: float, cx: float) -> np.ndarray:
    """Value noise: a (cy+2)x(cx+2) Gaussian grid enlarged bicubically to h x w (float32, ~N(0, .6))."""
    gy = int(min(max(2, round(cy)) + 2, max(h, 3)))
    gx = int(min(max(2, round(cx)) + 2, max(w, 3)))
    grid = rng.standard_normal((gy, gx), dtype=F32)
    return cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)


def fbm(rng: np.random.Generator, h: int, w: int, cy: float, cx: float, octaves: int = 4,
        gain: float = 0.5) -> np.ndarray:
    """Fractal sum of value noise, zero mean and unit standard deviation (h x w float32).

    ``cy``/``cx`` are the cells of the first octave along y/x; each octave doubles them (capped at
    half the pixels) and multiplies the amplitude by ``gain``.
    """
    out = np.zeros((h, w), F32)
    amp = 1.0
    for o in range(octaves):
        f = 2 ** o
        if cy * f > h / 2 and cx * f > w / 2:
            break
        out += F32(amp) * noise(rng, h, w, min(cy * f, h / 2), min(cx * f, w / 2))
        amp *= gain
    return standardise(out)


def standardise(a: np.ndarray) -> np.ndarray:
    """Zero mean, unit std (estimated on a strided sample: cheap)."""
    s = a[::7, ::7]
    m, sd = float(s.mean()), float(s.std())
    a -= F32(m)
    a *= F32(1.0 / max(sd, 1e-6))
    return a


def coords(h: int, w: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(yy (h,1), xx (1,w)) in scene units (pixels / scale), float32, for broadcasting."""
    yy = (np.arange(h, dtype=F32) / F32(scale))[:, None]
    xx = (np.arange(w, dtype=F32) / F32(scale))[None, :]
    return yy, xx


def lowres(fn, h: int, w: int, factor: int = 4) -> np.ndarray:
    """Evaluate a smooth field ``fn(h', w')`` at 1/factor resolution and enlarge it (float32)."""
    sh, sw = max(2, h // factor), max(2, w // factor)
    return cv2.resize(fn(sh, sw), (w, h), interpolation=cv2.INTER_LINEAR)


def colourise(rgb: np.ndarray, lum: np.ndarray, warm_dark: float = 0.0) -> np.ndarray:
    """base colour x luminance field -> h x w x 3. ``warm_dark`` > 0 makes darker areas more
    saturated and warmer (wood, leather), as pigment does."""
    out = lum[..., None] * rgb[None, None, :]
    if warm_dark:
        d = np.clip(F32(1) - lum, F32(-0.5), F32(1))[..., None]
        out *= F32(1) - F32(warm_dark) * d * np.array([-0.05, 0.10, 0.35], F32)
    return out


def mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """a*(1-t) + b*t with t h x w (broadcast over channels)."""
    t3 = t[..., None]
    return a * (F32(1) - t3) + b * t3


def _units(h: int, w: int, scale: float) -> tuple[float, float]:
    return h / scale, w / scale  # size in scene units


# -- materials -------------------------------------------------------------------------------------
def _rotated(rng, h, w, scale, along, across, octaves, gain, angle, factor=2) -> np.ndarray:
    """Anisotropic fBm (``along`` cells per unit along the angle, ``across`` across it), computed
    at 1/factor resolution on a square that covers the rotated image, rotated and enlarged in one
    affine warp (h x w float32)."""
    D = int(math.ceil(math.hypot(h, w) / factor)) + 4
    u = D * factor / scale
    n = fbm(rng, D, D, u * across, u * along, octaves, gain)
    M = cv2.getRotationMatrix2D((D / 2, D / 2), math.degrees(angle), float(factor))
    M[:, 2] += np.array([w / 2 - D / 2, h / 2 - D / 2])
    return cv2.warpAffine(n, M, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def warp(rng, field: np.ndarray, scale: float, strength: float, cells: float) -> np.ndarray:
    """Domain warp: ``field`` sampled at ``(x, y) + strength * scale * (n1, n2)`` with ``n1``,
    ``n2`` smooth fBm of ``cells`` cells per scene unit (cv2.remap; h x w float32)."""
    h, w = field.shape[:2]
    uy, ux = _units(h, w, scale)
    n1 = lowres(lambda a, b: fbm(rng, a, b, uy * cells, ux * cells, 4, 0.5), h, w, 4)
    n2 = lowres(lambda a, b: fbm(rng, a, b, uy * cells, ux * cells, 4, 0.5), h, w, 4)
    k = F32(strength * scale)
    mx = np.arange(w, dtype=F32)[None, :] + n1 * k
    my = np.arange(h, dtype=F32)[:, None] + n2 * k
    return cv2.remap(field, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def marble(rng, h, w, scale, rgb, amount=1.0, vein_rgb=None):
    """Carrara/Calacatta-like marble, built as stone is: a cloudy body (domain-warped, turbulent fBm:
    faint grey drifts and mottling) crossed by a few soft veins. Veins are level lines of a
    domain-warped phase field (Perlin's turbulence construction): they flow in one direction,
    meander, pinch, swell and branch; each is drawn at a chosen width in pixels (wrapped phase /
    phase slope = distance to the vein's centre line) with a Gaussian core, a wide translucent
    halo and a width that varies along its length, so no vein is ever a 1-px line. A second,
    finer family at another angle branches off and fades in and out. Veins darken the stone by at
    most about a third (a mix toward a cool grey, never black). Hand-written (no library draws
    marble); every step is a resize, a remap or an element-wise float32 operation."""
    uy, ux = _units(h, w, scale)
    yy, xx = coords(h, w, scale)
    dark = float(rgb.mean()) < 0.45
    if vein_rgb is None:
        vein_rgb = np.array([0.86, 0.85, 0.83], F32) if dark else rgb * np.array([0.60, 0.62, 0.66], F32)
    ang = rng.uniform(0.35, 1.0) * (1 if rng.random() < 0.5 else -1)
    fac = 4
    sh, sw = max(8, h // fac), max(8, w // fac)
    syy, sxx = coords(sh, sw, scale / fac)

    def phase_field(angle, freq, turb_gain, cells):
        t = sxx * F32(math.cos(angle)) + syy * F32(math.sin(angle))
        low = fbm(rng, sh, sw, uy * cells, ux * cells, 3, 0.45)
        detail = fbm(rng, sh, sw, uy * cells * 5, ux * cells * 5, 2, 0.5)
        turb = warp(rng, low + detail * F32(0.05), scale / fac, 0.05, 1.0)
        return t * F32(2 * math.pi * freq) + turb * F32(turb_gain)

    def veins_of(phase, width_px, halo, presence):
        slope = cv2.magnitude(cv2.Sobel(phase, cv2.CV_32F, 1, 0, ksize=3),
                              cv2.Sobel(phase, cv2.CV_32F, 0, 1, ksize=3)) * F32(1 / (8.0 * fac))
        # width varies along the vein (pinch and swell), and slope stays smooth: enlarge both
        phase = cv2.resize(phase, (w, h), interpolation=cv2.INTER_CUBIC)
        inv = cv2.resize(F32(1) / (slope + F32(1e-4)), (w, h), interpolation=cv2.INTER_LINEAR)
        wid = cv2.resize(width_px, (w, h), interpolation=cv2.INTER_LINEAR)
        p = phase * F32(1 / (2 * math.pi))
        p -= np.round(p)
        d = np.abs(p) * F32(2 * math.pi) * inv / wid        # distance from the centre line, in widths
        d2 = d * d
        core = np.exp(-d2)
        wash = np.exp(d2 * F32(-1 / (halo * halo)))
        pres = cv2.resize(presence, (w, h), interpolation=cv2.INTER_LINEAR)
        return (core * F32(0.75) + wash * F32(0.25)) * pres

    def width_field(px, spread):
        n = fbm(rng, sh, sw, uy * 2.5, ux * 2.5, 3, 0.5)
        return (F32(px) * np.exp(n * F32(spread))).astype(F32)

    def presence_field(cells, bias):
        n = fbm(rng, sh, sw, uy * cells, ux * cells, 3, 0.5)
        fade = fbm(rng, sh, sw, uy * 5.0, ux * 5.0, 2, 0.5)     # opacity wavers along each vein
        return np.clip(F32(bias) + F32(0.6) * n, 0, 1) * np.clip(F32(0.75) + F32(0.3) * fade, 0.3, 1)

    px = scale / 1024.0      # widths below are pixels of a 1024 px wide scene
    # the turbulence's slope stays below the veins' frequency, so veins bend but never close into loops
    main = veins_of(phase_field(ang, rng.uniform(1.2, 1.7), 0.9, 0.7),
                    width_field(8.0 * px, 0.4), 3.5, presence_field(1.2, 0.6))
    # branches split off the main veins: they show only near one (the main veins, blurred wide)
    near = cv2.GaussianBlur(cv2.resize(main, (sw, sh), interpolation=cv2.INTER_AREA), (0, 0), 0.05 * scale / fac)
    near = np.clip(near * F32(1.0 / max(float(np.percentile(near[::3, ::3], 98)), 1e-3)), 0, 1)
    branch = veins_of(phase_field(ang + rng.uniform(0.45, 0.8) * (1 if rng.random() < 0.5 else -1),
                                  rng.uniform(2.4, 3.4), 0.9, 1.0),
                      width_field(4.5 * px, 0.3), 3.0, presence_field(1.8, 0.3) * near * F32(0.6))
    # broad ghost veins deep in the stone: wide, pale, seen through the surface
    ghost = veins_of(phase_field(ang + rng.uniform(-0.25, 0.25), rng.uniform(0.9, 1.3), 1.0, 0.8),
                     width_field(12.0 * px, 0.5), 2.0, presence_field(1.0, 0.3) * F32(0.3))
    veins = np.maximum(np.maximum(main, branch), ghost)
    # the body: cloudy grey drifts (turbulent fBm, |n|) and a faint warm/cool shift between them
    cloud = lowres(lambda a, b: fbm(rng, a, b, uy * 1.4, ux * 1.4, 5, 0.55), h, w, 4)
    drift = _rotated(rng, h, w, scale, 0.9, 3.0, 4, 0.55, ang, factor=4)    # streaked along the veins
    drift = np.clip(drift - F32(0.3), 0, F32(1.5))          # grey clouds in patches, clear stone between
    grain = noise(rng, h, w, h / 1.5, w / 1.5)
    lum = F32(1) + F32(0.02 * amount) * cloud - F32(0.045 * amount) * drift + F32(0.006 * amount) * grain
    base = colourise(rgb, lum)
    base *= F32(1) + (cloud * F32(0.01 * amount))[..., None] * np.array([1.0, 0.2, -1.0], F32)  # warm/cool
    tt = np.clip(veins * F32(min(1.0, 0.85 * amount)), 0, 1)
    return mix(base, np.broadcast_to(vein_rgb, base.shape), tt)


# wood species: (ring spacing range in scene units, latewood contrast, pore contrast, figure/tone
# variation, pore length in cells along the board); "wood" is a generic hardwood
SPECIES = {
    "wood": ((0.008, 0.014), 0.12, 0.07, 0.04, 14.0),
    "oak": ((0.009, 0.015), 0.11, 0.11, 0.035, 10.0),    # ring-porous: open pores in every ring
    "walnut": ((0.007, 0.012), 0.09, 0.06, 0.07, 16.0),  # darker streaks of colour, finer rings
    "teak": ((0.009, 0.014), 0.08, 0.08, 0.05, 14.0),
    "pine": ((0.013, 0.024), 0.22, 0.012, 0.03, 20.0),   # wide rings, strong latewood, no pores
    "bamboo": ((0.004, 0.006), 0.05, 0.03, 0.02, 30.0),  # fine straight strands
}


def wood(rng, h, w, scale, rgb, amount=1.0, along_x=True, species=None):
    """A solid-wood tabletop of two or three flat-sawn boards running across the picture (left to
    right, so in perspective their seams stay level instead of converging like a plank floor).

    Each board is a planar cut through the log's growth rings (cylinders around the pith, along
    x): at ``y`` across the board the ring radius is ``hypot(y - pith, depth(x))``, where the
    cut's depth below the pith drifts along the board; the ring lines are then the arches and
    cathedrals of flat-sawn wood, straight grain at the edges. A domain warp makes them irregular.
    Each ring is a light earlywood band darkening into a narrow latewood line (a sawtooth, not a
    sine); pores are short dark flecks along the grain, denser in the earlywood; faint fine
    grain lines follow the same rings. ``species`` (oak, walnut, teak, pine, bamboo; see
    :data:`SPECIES`) sets ring spacing and the contrast of latewood, pores and colour streaks. Boards differ in tone, hue, ring spacing and figure; seams are
    thin dark joints with a small bevel highlight. Hand-written (no library draws wood grain);
    everything is element-wise float32 on (h, w) or a few resizes and one remap."""
    if not along_x:
        return np.ascontiguousarray(wood(rng, w, h, scale, rgb, amount, True, species).transpose(1, 0, 2))
    (s0, s1), late_k, pore_k, figure_k, pore_len = SPECIES.get(species or "wood", SPECIES["wood"])
    uy, ux = _units(h, w, scale)
    yy, xx = coords(h, w, scale)
    pw = F32(rng.uniform(0.28, 0.42))  # board width, scene units
    off = F32(rng.uniform(0, 1))
    pos = yy / pw + off                           # (h,1)
    idx = np.floor(pos).astype(np.int64) % 97
    frac = pos - np.floor(pos)
    board = lambda lo, hi: rng.uniform(lo, hi, 97).astype(F32)[idx]     # one value per board (h,1)
    tone, hue = board(-0.07, 0.07), board(-1.0, 1.0)
    pith = (board(-0.6, 1.6) * pw)                 # the pith's offset across the board (scene units)
    depth0, tilt = board(0.03, 0.3), board(-0.06, 0.06)   # cut below the pith; its slope along x
    spacing = board(s0, s1)                        # growth ring spacing, scene units
    shift = board(0, 50)
    # distance across the board from its pith, and the cut's depth drifting along it (x)
    across = (frac * pw - pith)
    drift = lowres(lambda a, b: fbm(rng, a, b, uy * 0.8, ux * 0.5, 3, 0.5), h, w, 4)
    depth = np.abs(depth0 + tilt * (xx - shift * F32(0.02)) + F32(0.012) * drift) + F32(0.01)
    radius = np.sqrt(across * across + depth * depth)
    wobble = lowres(lambda a, b: fbm(rng, a, b, uy * 2.5, ux * 0.7, 4, 0.55), h, w, 2)
    rings = radius / spacing + wobble * F32(0.35)
    saw = rings - np.floor(rings)                  # 0 at the start of the year, 1 at its end
    # earlywood light, darkening into a latewood band that ends where the next year starts
    late = smoothstep(0.45, 0.88, saw) - smoothstep(0.9, 1.0, saw)
    # fine grain: thin lines that follow the ring figure (a random 1-D profile of the ring
    # coordinate, five lines per year); pores: short dark flecks along x, mostly in the earlywood
    table = rng.standard_normal(4099).astype(F32)
    q = rings * F32(5)
    qi = np.floor(q)
    qf = q - qi
    qi = qi.astype(np.int64) % 4098
    grain = table[qi] * (F32(1) - qf) + table[qi + 1] * qf
    # broader bands of darker and lighter years (a random profile over about four rings): the
    # arches still read where depth of field and foreshortening blur the single rings away
    q = rings * F32(0.25)
    qi = np.floor(q)
    qf = smoothstep(0.0, 1.0, q - qi)
    qi = qi.astype(np.int64) % 4098
    bands = table[qi] * (F32(1) - qf) + table[qi + 1] * qf
    pores = noise(rng, h, w, h / 1.6, w / pore_len)
    pores = np.clip(pores - F32(0.7), 0, None) * (F32(1.3) - late)
    figure = lowres(lambda a, b: fbm(rng, a, b, uy * 1.5, ux * 0.8, 3, 0.5), h, w, 4)
    lum = F32(0.96) + tone + F32(figure_k * amount) * figure + F32(0.02 * amount) * grain \
        + F32(0.035 * amount) * bands \
        - F32(late_k * amount) * late - F32(pore_k * amount) * pores
    # seams between boards: a thin dark joint with a faint highlighted bevel on its near side
    seam_w = F32(0.006) / pw
    d = np.minimum(frac, F32(1) - frac)
    seam = np.clip(F32(1) - d / seam_w, 0, 1)
    bevel = np.clip(F32(1) - np.abs(frac - F32(2.5) * seam_w) / seam_w, 0, 1) * F32(0.06)
    lum = lum * (F32(1) - F32(0.4) * seam) + bevel
    out = colourise(rgb, lum, warm_dark=0.6)
    out *= F32(1) + (hue * F32(0.025 * amount))[..., None] * np.array([1.0, 0.0, -1.2], F32)
    return out


def concrete(rng, h, w, scale, rgb, amount=1.0):
    """Cast concrete: large cloudy patches, mid mottling, fine sand grain and a few soft air
    pores (blurred blobs of thresholded noise, never drawn shapes)."""
    uy, ux = _units(h, w, scale)
    big = lowres(lambda a, b: fbm(rng, a, b, uy * 2.5, ux * 2.5, 5), h, w, 2)
    mid = lowres(lambda a, b: fbm(rng, a, b, uy * 12, ux * 12, 2), h, w, 2)
    fine = rng.standard_normal((h, w), dtype=F32)
    fine = cv2.GaussianBlur(fine, (0, 0), 0.7)
    lum = F32(1) + F32(0.07 * amount) * big + F32(0.025 * amount) * mid + F32(0.03 * amount) * fine
    lum -= F32(0.16 * amount) * _pits(rng, h, w, scale, density=300, size=(0.0012, 0.0035))
    return colourise(rgb, lum)


def _pits(rng, h, w, scale, density=600, size=(0.001, 0.003)) -> np.ndarray:
    """Small soft dark pits (h x w float32 in [0, 1]): about ``density`` per square scene unit,
    ``size`` their radius range in scene units. The peaks of a fine noise field, thresholded
    and blurred, so pits are round-ish blobs of varied size, not stamped shapes."""
    r = max(0.8, float(np.mean(size)) * scale)
    cell = 2.0 * r
    field = noise(rng, h, w, h / cell, w / cell)
    # keep the top fraction of the field so that about `density` pits per unit^2 remain
    frac = min(0.5, density * (cell / scale) ** 2 * 0.35)
    thr = float(np.quantile(field[::4, ::4], 1.0 - frac))
    pits = np.clip((field - F32(thr)) * F32(3.0), 0, 1)
    return cv2.GaussianBlur(pits, (0, 0), max(0.6, 0.35 * r))


def linen(rng, h, w, scale, rgb, amount=1.0):
    """A fine plain weave with short slubs (thicker threads) and soft wrinkles."""
    period = max(3.0, scale * 0.0045)
    rows = noise(rng, h, w, h / period, w / (period * 5))
    cols = noise(rng, h, w, h / (period * 5), w / period)
    yy, xx = coords(h, w, 1.0)
    weave = np.sin(xx * F32(2 * math.pi / period)) * np.sin(yy * F32(2 * math.pi / period))
    uy, ux = _units(h, w, scale)
    wr = _folds(rng, h, w, uy * 1.3, ux * 2.2, ridged=True)
    lum = F32(1) + F32(0.018 * amount) * (rows + cols) + F32(0.025 * amount) * weave + F32(0.10 * amount) * wr
    return colourise(rgb, lum)


def _folds(rng, h, w, cy, cx, ridged=False) -> np.ndarray:
    """Shading of a soft folded height field (lit from the upper left), h x w float32 ~[-1, 1]."""
    def field(a, b):
        f = fbm(rng, a, b, cy, cx, 4, 0.5)
        if ridged:
            f = F32(1) - np.sqrt(f * f + F32(0.02))   # a soft-edged crease (|f| rounded off at the ridge)
        gx = cv2.Sobel(f, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(f, cv2.CV_32F, 0, 1, ksize=3)
        s = -(gx * F32(0.7) + gy * F32(0.7))
        return s / F32(max(float(np.abs(s[::5, ::5]).max()), 1e-6))
    return lowres(field, h, w, 4)


def paper(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    cloud = lowres(lambda a, b: fbm(rng, a, b, uy * 3, ux * 3, 4), h, w, 4)
    fib = noise(rng, h, w, h / 3.0, w / 3.0)
    lum = F32(1) + F32(0.012 * amount) * cloud + F32(0.006 * amount) * fib
    return colourise(rgb, lum)


def terrazzo(rng, h, w, scale, rgb, amount=1.0, chip_rgbs=None):
    """Irregular stone chips of a few colours in a lightly mottled binder."""
    uy, ux = _units(h, w, scale)
    base = colourise(rgb, F32(1) + F32(0.02) * lowres(lambda a, b: fbm(rng, a, b, uy * 3, ux * 3, 3), h, w, 4))
    if chip_rgbs is None:
        chip_rgbs = [np.array(c, F32) for c in ((0.32, 0.32, 0.33), (0.96, 0.95, 0.93), (0.72, 0.42, 0.33),
                                                  (0.58, 0.60, 0.56), (0.15, 0.15, 0.16))]
        chip_rgbs.append(rgb * F32(0.78))
    n = int(amount * 2200 * uy * ux)
    if n <= 0:
        return base
    cx = rng.uniform(0, w, n)
    cy = rng.uniform(0, h, n)
    r = rng.uniform(0.002, 0.008, n) ** 1.3 / 0.008 ** 0.3 * scale + 1.0
    k = 6
    ang = np.sort(rng.uniform(0, 2 * math.pi, (n, k)), axis=1)
    rad = r[:, None] * rng.uniform(0.55, 1.0, (n, k))
    px = (cx[:, None] + rad * np.cos(ang)).round().astype(np.int32)
    py = (cy[:, None] + rad * np.sin(ang)).round().astype(np.int32)
    polys = np.stack([px, py], axis=2)
    which = rng.choice(len(chip_rgbs), n, p=_chip_weights(len(chip_rgbs)))
    for ci, col in enumerate(chip_rgbs):
        sel = polys[which == ci]
        if len(sel):
            cv2.fillPoly(base, list(sel), tuple(float(c) for c in col), cv2.LINE_8)
    return base


def _chip_weights(n: int) -> np.ndarray:
    w = np.array([3, 3, 2, 2, 1] + [2] * max(0, n - 5), np.float64)[:n]
    return w / w.sum()


def slate(rng, h, w, scale, rgb, amount=1.0):
    """Cleft slate: the stone splits along its layers, so the surface is a few broad terraces
    (a warped fBm height quantised into steps) whose edges catch the light on one side and shade
    on the other (the slope of the softened terraced height, lit from the upper left), each
    terrace a slightly different tone; faint layering along x and a fine mineral grain on top.
    Hand-written (no library draws slate); a few resizes and element-wise float32 operations."""
    uy, ux = _units(h, w, scale)
    steps_k = 1.4

    def terraces(a, b):
        hgt = fbm(rng, a, b, uy * 1.6, ux * 1.1, 4, 0.5) + F32(0.12) * fbm(rng, a, b, uy * 9, ux * 6, 3, 0.6)
        hgt = warp(rng, hgt, scale / 2, 0.04, 1.5)                  # ragged, not concentric, step edges
        q = hgt * F32(steps_k)
        level = np.floor(q)
        terr = (level + (q - level) * F32(0.25)) / F32(steps_k)    # flat steps with a gentle slope
        terr = cv2.GaussianBlur(terr, (0, 0), 0.8)
        light = cv2.Sobel(terr, cv2.CV_32F, 1, 0, ksize=3) + cv2.Sobel(terr, cv2.CV_32F, 0, 1, ksize=3)
        tone = rng.uniform(-1, 1, 64).astype(F32)[(level.astype(np.int64) + 32) % 64]
        return np.stack([-light * F32(3.0), tone], axis=2)

    sh, sw = max(8, h // 2), max(8, w // 2)
    ter = cv2.resize(terraces(sh, sw), (w, h), interpolation=cv2.INTER_LINEAR)
    layers = fbm(rng, h, w, uy * 14, ux * 1.5, 4, 0.55)
    fine = noise(rng, h, w, h / 2.5, w / 2.5)
    lum = F32(1) + F32(0.05 * amount) * np.clip(ter[..., 0], -2, 2) + F32(0.035 * amount) * ter[..., 1] \
        + F32(0.03 * amount) * layers + F32(0.03 * amount) * fine
    return colourise(rgb, lum)


def sand(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    yy, xx = coords(h, w, scale)
    warp = lowres(lambda a, b: fbm(rng, a, b, uy * 1.5, ux * 1.5, 3), h, w, 4)
    ripple = np.cos((yy * F32(rng.uniform(28, 40)) + xx * F32(rng.uniform(-4, 4)) + warp * F32(2.0)))
    grain = rng.standard_normal((h, w), dtype=F32)
    mott = lowres(lambda a, b: fbm(rng, a, b, uy * 4, ux * 4, 3), h, w, 4)
    lum = F32(1) + F32(0.07 * amount) * ripple + F32(0.06 * amount) * grain + F32(0.04 * amount) * mott
    return colourise(rgb, lum, warm_dark=0.3)


def fabric(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    f = _folds(rng, h, w, uy * 1.6, ux * 1.6)
    period = max(3.0, scale * 0.004)
    wv = noise(rng, h, w, h / period, w / period)
    lum = F32(0.95) + F32(0.14 * amount) * f + F32(0.02 * amount) * wv
    return colourise(rgb, lum)


def velvet(rng, h, w, scale, rgb, amount=1.0):
    """Deep folds; velvet is brighter where the pile turns away (fold flanks): sheen = |slope|."""
    uy, ux = _units(h, w, scale)
    f = _folds(rng, h, w, uy * 1.4, ux * 1.4)
    sheen = np.abs(f)
    fine = noise(rng, h, w, h / 2.0, w / 2.0)
    lum = F32(0.78) + F32(0.22 * amount) * f + F32(0.35 * amount) * sheen ** 2 + F32(0.02 * amount) * fine
    return colourise(rgb, lum, warm_dark=0.0)


def silk(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    f = _folds(rng, h, w, uy * 0.8, ux * 2.2)
    spec = np.clip(f, 0, 1) ** 3
    lum = F32(0.9) + F32(0.14 * amount) * f + F32(0.18 * amount) * spec
    return colourise(rgb, lum)


def glass(rng, h, w, scale, rgb, amount=1.0):
    """Smooth, with a broad soft reflection streak (the compositor adds the product's reflection)."""
    yy, xx = coords(h, w, scale)
    a = rng.uniform(0.5, 1.1)
    t = xx * F32(math.cos(a)) + yy * F32(math.sin(a))
    c = F32(rng.uniform(0.3, 0.8) * float(t.max()))
    streak = np.exp(-((t - c) / F32(0.18)) ** 2)
    lum = F32(1) + F32(0.25 * amount) * streak + F32(0.04) * (yy / F32(max(float(yy.max()), 1e-3)))
    return colourise(rgb, lum)


def tiles(rng, h, w, scale, rgb, amount=1.0):
    """Square tiles, per-tile tone, grout lines (lighter on dark tiles, darker on light ones)."""
    ts = rng.uniform(0.09, 0.15) * scale
    g = max(1.0, ts * 0.035)
    ox, oy = rng.uniform(0, ts, 2)
    x = np.arange(w, dtype=F32)[None, :] + F32(ox)
    y = np.arange(h, dtype=F32)[:, None] + F32(oy)
    fx, fy = np.mod(x, F32(ts)), np.mod(y, F32(ts))
    dx = np.minimum(fx, F32(ts) - fx)
    dy = np.minimum(fy, F32(ts) - fy)
    grout = np.clip(F32(g) + F32(0.5) - np.minimum(dx, dy), 0, 1)
    ix = (np.floor(x / F32(ts)).astype(np.int64) % 61)
    iy = (np.floor(y / F32(ts)).astype(np.int64) % 59)
    table = rng.uniform(-0.035, 0.035, (59, 61)).astype(F32)
    uy, ux = _units(h, w, scale)
    lum = F32(1) + table[iy, ix] * F32(amount) + F32(0.015 * amount) * lowres(
        lambda a, b: fbm(rng, a, b, uy * 6, ux * 6, 3), h, w, 4)
    tile = colourise(rgb, lum)
    grout_rgb = np.clip(rgb * F32(0.78) if float(rgb.mean()) > 0.4 else rgb + F32(0.35), 0, 1)
    return mix(tile, np.broadcast_to(grout_rgb, tile.shape), grout * F32(min(1.0, amount)))


def stone(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    big = lowres(lambda a, b: fbm(rng, a, b, uy * 2.2, ux * 2.2, 5, 0.55), h, w, 2)
    fine = noise(rng, h, w, h / 3.0, w / 3.0)
    lum = F32(1) + F32(0.07 * amount) * big + F32(0.03 * amount) * fine
    lum -= F32(0.18 * amount) * _pits(rng, h, w, scale, density=250, size=(0.001, 0.003))
    return colourise(rgb, lum)


def travertine(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    yy, _ = coords(h, w, scale)
    warp = lowres(lambda a, b: fbm(rng, a, b, uy * 1.5, ux * 3, 4), h, w, 4)
    bands = np.sin(yy * F32(rng.uniform(18, 30)) + warp * F32(2.5))
    fine = noise(rng, h, w, h / 3.0, w / 8.0)
    lum = F32(1) + F32(0.045 * amount) * bands + F32(0.03 * amount) * fine
    pits = _pits(rng, h, w, scale, density=350, size=(0.0015, 0.004))
    pits = cv2.resize(cv2.resize(pits, (w, max(2, h // 2))), (w, h))  # elongated along x
    lum -= F32(0.22 * amount) * pits
    return colourise(rgb, lum, warm_dark=0.3)


def granite(rng, h, w, scale, rgb, amount=1.0):
    """Speckles of a few minerals, a few pixels across (scaled with the scene)."""
    base = colourise(rgb, F32(1) + F32(0.05 * amount) * noise(rng, h, w, h / 6.0, w / 6.0))
    cell = max(1.5, scale * 0.0035)
    out = base
    for col, thr, k in (((0.08, 0.08, 0.09), 0.55, 1.0), ((0.93, 0.91, 0.89), 0.6, 0.8),
                        ((0.55, 0.42, 0.38), 0.7, 0.6)):
        spk = noise(rng, h, w, h / cell, w / cell)
        m = np.clip((spk - F32(thr)) * F32(5), 0, 1) * F32(0.7 * amount * k)
        out = mix(out, np.broadcast_to(np.array(col, F32), base.shape), m)
    return out


def plaster(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    cloud = lowres(lambda a, b: fbm(rng, a, b, uy * 2.0, ux * 2.0, 5, 0.55), h, w, 2)
    trowel = _folds(rng, h, w, uy * 5, ux * 3, ridged=True)
    lum = F32(1) + F32(0.028 * amount) * cloud + F32(0.015 * amount) * trowel
    return colourise(rgb, lum)


def metal(rng, h, w, scale, rgb, amount=1.0):
    uy, ux = _units(h, w, scale)
    streak = noise(rng, h, w, h / 1.2, 6)
    broad = lowres(lambda a, b: fbm(rng, a, b, uy * 1.2, ux * 1.2, 2), h, w, 4)
    lum = F32(1) + F32(0.05 * amount) * streak + F32(0.10 * amount) * broad
    return colourise(rgb, lum)


def plain(rng, h, w, scale, rgb, amount=1.0):
    """A smooth matte surface (seamless paper or painted board)."""
    return paper(rng, h, w, scale, rgb, amount * 0.6)


def caustics(rng, h, w, scale) -> np.ndarray:
    """Rippling caustic light network, h x w float32 in [0, 1] (1 = brightest line)."""
    uy, ux = _units(h, w, scale)

    def field(a, b):
        n1 = fbm(rng, a, b, uy * 5, ux * 5, 2, 0.35)
        n2 = fbm(rng, a, b, uy * 5, ux * 5, 2, 0.35)
        c = np.clip(F32(1) - np.abs(n1) * F32(1.3), 0, 1) ** 3 + np.clip(F32(1) - np.abs(n2) * F32(1.3), 0, 1) ** 3
        return cv2.GaussianBlur(c, (0, 0), 0.8) * F32(0.6)
    return np.clip(lowres(field, h, w, 2), 0, 1)


GENERATORS = {
    "marble": marble, "wood": wood, "concrete": concrete, "linen": linen, "paper": paper,
    "terrazzo": terrazzo, "slate": slate, "sand": sand, "fabric": fabric, "velvet": velvet,
    "silk": silk, "glass": glass, "mirror": glass, "tiles": tiles, "stone": stone,
    "travertine": travertine, "granite": granite, "plaster": plaster, "metal": metal,
    "plain": plain,
}
KINDS = tuple(GENERATORS)


def render(kind: str, rng: np.random.Generator, h: int, w: int, scale: float, rgb, amount: float = 1.0,
           **kw) -> np.ndarray:
    """Texture ``kind`` (one of :data:`KINDS`), h x w x 3 float32 sRGB in about [0, 1]."""
    if h <= 0 or w <= 0:
        return np.zeros((max(h, 0), max(w, 0), 3), F32)
    return GENERATORS[kind](rng, h, w, scale, np.asarray(rgb, F32), amount, **kw)
