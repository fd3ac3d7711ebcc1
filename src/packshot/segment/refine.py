"""Mask refinement shared by the classic engines: preview <-> full-resolution geometry, clean-up
(specks, false holes) and soft edges computed at full resolution only in a thin band.

Conventions (see :mod:`packshot.types`): colour images here are float32 ``HxWx3`` RGB in [0, 1]
unless a name ends in ``_u8``; masks are ``HxW`` bool; alpha mattes ``HxW`` float32 in [0, 1].

The soft edge comes from the compositing equation ``I = a F + (1 - a) B`` (I: photo, F: product
colour, B: what is behind it). When B and F are known near a pixel, the least-squares ``a`` is the
projection of ``I - B`` on ``F - B`` (known-background matting; it needs no solver and costs
O(band pixels)). B is given by the caller (a fitted backdrop, or a local estimate); F is the product
colour spread outwards from the sure product by normalised convolution. Where F and B are too close
for the projection to mean anything, the (smoothed) coarse mask is kept. The product colour under
a soft pixel is then ``(I - (1 - a) B) / a`` (decontamination: the old backdrop is taken out, so no
fringe of it shows on a new background).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..types import Matte

_ELLIPSE = cv2.MORPH_ELLIPSE


def disk(radius: int) -> np.ndarray:
    """Elliptic structuring element of the given radius (uint8, (2r+1)x(2r+1))."""
    r = max(0, int(radius))
    return cv2.getStructuringElement(_ELLIPSE, (2 * r + 1, 2 * r + 1))


def flattened_rgb(photo) -> np.ndarray:
    """The photo's colours (HxWx3 uint8); a photo with its own transparency is first composited
    on white, so that its transparent part reads as a plain white backdrop."""
    if photo.alpha is None:
        return photo.rgb
    a = np.asarray(photo.alpha, np.float32)[..., None]
    return np.round(photo.rgb.astype(np.float32) * a + 255.0 * (1 - a)).astype(np.uint8)


def preview_scale(size: tuple[int, int], long_side: int) -> float:
    """Scale factor (<= 1) that brings the long side of ``size`` (w, h) to ``long_side``."""
    return min(1.0, long_side / max(size))


def downscale(rgb_u8: np.ndarray, scale: float) -> np.ndarray:
    """Area-averaged downscale of an HxWx3 uint8 image; returns float32 in [0, 1]."""
    h, w = rgb_u8.shape[:2]
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        rgb_u8 = cv2.resize(rgb_u8, size, interpolation=cv2.INTER_AREA)
    return rgb_u8.astype(np.float32) * np.float32(1 / 255)


def normalized_blur(img: np.ndarray, weight: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: spread ``img`` (HxW or HxWxC) from where ``weight`` (HxW) is high.

    Returns (values, support): ``values`` is the weighted Gaussian average; ``support`` the blurred
    weight (0 where no weighted pixel is within reach).
    """
    w = weight.astype(np.float32)
    den = cv2.GaussianBlur(w, (0, 0), sigma)
    num = cv2.GaussianBlur(img * (w[..., None] if img.ndim == 3 else w), (0, 0), sigma)
    safe = np.maximum(den, 1e-6)
    return num / (safe[..., None] if img.ndim == 3 else safe), den


def sample(img: np.ndarray, xs: np.ndarray, ys: np.ndarray, scale: float) -> np.ndarray:
    """Bilinear samples of a preview-size field at full-resolution pixel centres (xs, ys).

    ``scale`` is preview/full. Returns (N,) or (N, C) float32.
    """
    n = len(xs)
    if n == 0:
        return np.zeros((0,) + img.shape[2:], np.float32)
    chunk = 4096  # cv2.remap wants maps narrower than SHRT_MAX
    m = -(-n // chunk) * chunk
    mx = np.zeros(m, np.float32)
    my = np.zeros(m, np.float32)
    mx[:n] = (xs + 0.5) * scale - 0.5
    my[:n] = (ys + 0.5) * scale - 0.5
    out = cv2.remap(img, mx.reshape(-1, chunk), my.reshape(-1, chunk), cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_REPLICATE)
    return out.reshape((m,) + img.shape[2:])[:n]


def upscale_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bool mask resized to ``size`` (w, h) with smooth (bilinear, then 0.5) boundaries."""
    if mask.shape[::-1] == tuple(size):
        return mask.copy()
    up = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_LINEAR)
    return up >= 0.5


def resize_nearest(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if mask.shape[::-1] == tuple(size):
        return mask.copy()
    return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)


# -- clean-up ------------------------------------------------------------------------------------

def clear_haze(alpha: np.ndarray, reach: float = 0.004, below: float = 0.5) -> np.ndarray:
    """Zero the faint alpha (< ``below``) farther than ``reach`` of the long side (>= 2 px) from the
    product's opaque core: JPEG ringing and backdrop noise leave such a haze, which shows as grey
    specks on a pure white backdrop and counts in the product's box when laid out. Real soft edges
    (a blurred rim, hair) start at the core and stay within the reach."""
    core = (alpha >= below).astype(np.uint8)
    if not core.any():
        return alpha
    r = max(2.0, reach * max(alpha.shape))
    far = (cv2.distanceTransform(1 - core, cv2.DIST_L2, 3) > r) & (alpha > 0)
    if not far.any():
        return alpha
    alpha = alpha.copy()
    alpha[far] = 0
    return alpha


def drop_specks(mask: np.ndarray, min_area: int, min_fraction: float = 0.02) -> np.ndarray:
    """Keep the largest component and every component at least ``min_fraction`` of it and at
    least ``min_area`` pixels (a pair of shoes stays a pair; dust goes). 8-connectivity."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask.copy()
    areas = stats[:, cv2.CC_STAT_AREA].copy()
    areas[0] = 0
    keep = areas >= max(min_area, min_fraction * areas.max())
    keep[0] = False
    return keep[lab]


def enclosed(mask: np.ndarray) -> tuple[int, np.ndarray]:
    """Label the holes of ``mask``: background components not touching the image border.

    Returns (count, labels) with labels 1..count on the holes, 0 elsewhere (4-connectivity).
    """
    bg = (~mask).astype(np.uint8)
    n, lab = cv2.connectedComponents(bg, connectivity=4)
    border = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    is_hole = np.ones(n, bool)
    is_hole[0] = False
    is_hole[border] = False
    remap = np.zeros(n, np.int32)
    remap[is_hole] = np.arange(1, is_hole.sum() + 1)
    return int(is_hole.sum()), remap[lab]


def fill_false_holes(mask: np.ndarray, is_real, min_area: int = 0) -> np.ndarray:
    """Fill every hole of ``mask`` except those ``is_real(hole_bool_mask) -> bool`` keeps.

    Holes smaller than ``min_area`` pixels are filled without asking (pin-holes are noise).
    """
    n, lab = enclosed(mask)
    out = mask.copy()
    if n == 0:
        return out
    areas = np.bincount(lab.ravel(), minlength=n + 1)
    for i in range(1, n + 1):
        hole = lab == i
        if areas[i] < min_area or not is_real(hole):
            out |= hole
    return out


# -- soft edges at full resolution ---------------------------------------------------------------

@dataclass
class EdgeFields:
    """Preview-size fields the full-resolution band is computed from (all float32).

    ``fg``/``bg``: HxWx3 product colour and backdrop colour spread over the band; ``mask``: the
    coarse mask (bool); ``unknown``: preview pixels whose alpha is computed at full res (bool);
    ``spread``: HxW variance of the colours ``fg`` and ``bg`` were averaged from (0 = exactly
    known: a fitted backdrop and a flat product; large = clutter, where the equation is not trusted).
    """

    mask: np.ndarray
    unknown: np.ndarray
    fg: np.ndarray
    bg: np.ndarray
    spread: np.ndarray | None = None


def edge_fields(p: np.ndarray, mask: np.ndarray, background: np.ndarray, *, band: int = 2,
                fuzzy: np.ndarray | None = None, sigma_fg: float = 2.0) -> EdgeFields:
    """Product colour spread from the mask's core, the caller's background, and the unknown
    region: a thin band of ``band`` preview pixels either side of the mask's boundary, plus the
    caller's ``fuzzy`` pixels (hair, foliage: product mixed with backdrop), excluded from the core."""
    m8 = mask.astype(np.uint8)
    unknown = (cv2.dilate(m8, disk(band)) > 0) & (cv2.erode(m8, disk(band)) == 0)
    if fuzzy is not None:
        unknown |= fuzzy
    core = (cv2.erode(m8, disk(1)) > 0) & ~unknown
    if not core.any():
        core = mask
    fg, _ = normalized_blur(p, core, sigma_fg)
    return EdgeFields(mask=mask, unknown=unknown, fg=fg, bg=background)


def local_edge_fields(p: np.ndarray, mask: np.ndarray, *, band: int = 2, sigma: float | None = None) -> EdgeFields:
    """Edge fields when there is no backdrop model (cluttered photos, other engines' masks): the
    background colour is spread inwards from the sure background just outside the band, the
    product colour outwards from its core (Gaussian ``sigma``, default: reaching across the band)."""
    sigma = sigma or max(2.0, 0.5 * band)
    m8 = mask.astype(np.uint8)
    sure_bg = cv2.dilate(m8, disk(band + 1)) == 0
    if not sure_bg.any():
        sure_bg = ~mask
    bg, _ = normalized_blur(p, sure_bg, sigma)
    bg2, _ = normalized_blur(p * p, sure_bg, sigma)
    f = edge_fields(p, mask, bg, band=band, sigma_fg=sigma)
    core = (cv2.erode(m8, disk(1)) > 0) & ~f.unknown
    fg2, _ = normalized_blur(p * p, core if core.any() else mask, sigma)
    var = np.clip((bg2 - bg * bg).sum(-1), 0, None) + np.clip((fg2 - f.fg * f.fg).sum(-1), 0, None)
    f.spread = var.astype(np.float32)
    return f


def refine_matte(rgb_u8: np.ndarray, alpha: np.ndarray, *, band_px: int = 6, preview_side: int = 640,
                 engine: str = "refined") -> Matte:
    """Refine any rough matte (HxW float in [0, 1], the photo's size, e.g. a model's upsampled mask)
    at full resolution: threshold at 0.5 on a preview, a band of ``band_px`` photo pixels either
    side of the edge (make it cover the rough mask's error), local background estimate,
    known-background alpha, decontaminated colour. Returns a Matte (alpha + foreground)."""
    h, w = rgb_u8.shape[:2]
    if alpha.shape != (h, w):
        raise ValueError(f"matte {alpha.shape[1]}x{alpha.shape[0]} is not the photo's size {w}x{h}")
    scale = preview_scale((w, h), preview_side)
    p = downscale(rgb_u8, scale)
    ph, pw = p.shape[:2]
    small = cv2.resize(np.asarray(alpha, np.float32), (pw, ph), interpolation=cv2.INTER_AREA)
    mask = small >= 0.5
    if not mask.any():
        return Matte(alpha=np.zeros((h, w), np.float32), engine=engine)
    band = max(1, int(np.ceil(band_px * scale)))
    out, fg = full_res_matte(rgb_u8, local_edge_fields(p, mask, band=band))
    return Matte(alpha=out, engine=engine, foreground=fg)


def _luma_weighted_metric(chroma_weight: float) -> np.ndarray:
    """3x3 matrix M (row vectors: x @ M) mapping RGB differences to (Y, w Cb, w Cr) (BT.601)."""
    ycc = np.array([[0.299, 0.587, 0.114],
                    [-0.168736, -0.331264, 0.5],
                    [0.5, -0.418688, -0.081312]], np.float32)
    w = np.array([1.0, chroma_weight, chroma_weight], np.float32)
    return (ycc * w[:, None]).T.astype(np.float32)


_METRIC = _luma_weighted_metric(0.35)


def known_background_alpha(I: np.ndarray, F: np.ndarray, B: np.ndarray, prior: np.ndarray,
                           contrast: float = 0.035, spread: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel alpha from ``I = a F + (1 - a) B`` (all (N, 3) float32).

    ``a = <I - B, F - B> / |F - B|^2``, clipped to [0, 1], blended towards ``prior`` (N,) where
    ``|F - B|`` is small compared with ``contrast`` and with the uncertainty ``spread`` (N,) of F
    and B (there the equation says nothing).
    """
    # measured in a luma-weighted metric: JPEG keeps luma at full resolution but chroma at half,
    # so chroma at an edge is smeared over ~2 px and should count less
    d = (F - B) @ _METRIC
    dd = np.einsum("ij,ij->i", d, d)
    a = np.einsum("ij,ij->i", (I - B) @ _METRIC, d) / np.maximum(dd, 1e-6)
    a = np.clip(a, 0.0, 1.0)
    noise = np.float32(contrast * contrast) + (0 if spread is None else spread)
    trust = dd / (dd + noise)
    return (trust * a + (1 - trust) * prior).astype(np.float32)


def decontaminate(I: np.ndarray, alpha: np.ndarray, F: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Product colour of soft pixels: ``(I - (1 - a) B) / a``, trusted in proportion to ``a``
    (faint pixels take the spread product colour ``F``). All (N, 3) float32; returns (N, 3)."""
    a = alpha[:, None]
    est = (I - (1 - a) * B) / np.maximum(a, 1e-3)
    w = np.clip((a - 0.1) / 0.5, 0.0, 1.0)
    return np.clip(w * est + (1 - w) * F, 0.0, 1.0)


@dataclass(frozen=True)
class ShadowTail:
    """Cut the faint tail a contact shadow leaves next to a product's edge.

    Seen through ``I = a F + (1 - a) B``, a shadow next to a dark product reads as low alpha. A
    band pixel is a shadow, not product, when it is a darker copy of the backdrop (chroma residual
    below ``chroma``), smooth (local texture below ``texture``), has ``a < 0.5`` and is farther
    than ``reach`` px from the product's opaque part (a real anti-aliased edge is 1-2 px wide).
    """

    chroma: float
    reach: int = 2
    texture: float = 0.02


def _cut_shadow_tail(rgb_u8, alpha, xs, ys, I, B, a, rule: ShadowTail) -> np.ndarray:
    cand = a < 0.5
    bb = np.maximum(np.einsum("ij,ij->i", B, B), 1e-6)
    k = np.einsum("ij,ij->i", I, B) / bb
    res = I - k[:, None] * B
    r = np.sqrt(np.einsum("ij,ij->i", res, res) / bb)
    cand &= (r < rule.chroma) & (k < 1)
    if not cand.any():
        return a
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    pad = rule.reach + 4
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(alpha.shape[1], x1 + pad), min(alpha.shape[0], y1 + pad)
    opaque = (alpha[y0:y1, x0:x1] >= 0.5).astype(np.uint8)
    near = cv2.dilate(opaque, disk(rule.reach))[ys - y0, xs - x0] > 0
    # texture of the luma (one channel keeps the memory low on large photos)
    luma = cv2.cvtColor(np.ascontiguousarray(rgb_u8[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    luma *= np.float32(1 / 255)
    hp = luma - cv2.GaussianBlur(luma, (0, 0), 1.0)
    tex = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), 1.5) * 3)[ys - y0, xs - x0]
    cut = cand & ~near & (tex < rule.texture)
    a = a.copy()
    a[cut] = 0.0
    return a


def full_res_matte(rgb_u8: np.ndarray, fields: EdgeFields, *, snap: float = 0.03,
                   contrast: float = 0.035, shadow: ShadowTail | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Alpha and decontaminated colour at full resolution.

    Outside the (upscaled) unknown band alpha is the upscaled coarse mask, exactly 0 or 1, and the
    colour is the photo's own. Inside, alpha comes from :func:`known_background_alpha` on the
    photo's own pixels, values within ``snap`` of 0/1 snap to it, a contact shadow's tail is cut
    (``shadow``), and the colour of soft pixels is decontaminated.
    Returns (alpha HxW float32, foreground HxWx3 uint8).
    """
    h, w = rgb_u8.shape[:2]
    ph, pw = fields.mask.shape
    scale = pw / w
    mask = upscale_mask(fields.mask, (w, h))
    unknown = resize_nearest(fields.unknown, (w, h))
    alpha = mask.astype(np.float32)
    fg_u8 = rgb_u8.copy()
    ys, xs = np.nonzero(unknown)
    if len(xs) == 0:
        return alpha, fg_u8
    I = rgb_u8[ys, xs].astype(np.float32) * np.float32(1 / 255)
    F = sample(fields.fg, xs, ys, scale)
    B = sample(fields.bg, xs, ys, scale)
    prior = sample(fields.mask.astype(np.float32), xs, ys, scale)
    spread = None if fields.spread is None else sample(fields.spread, xs, ys, scale)
    a = known_background_alpha(I, F, B, prior, contrast, spread)
    a[a < snap] = 0.0
    a[a > 1 - snap] = 1.0
    alpha[ys, xs] = a
    if shadow is not None:
        a = _cut_shadow_tail(rgb_u8, alpha, xs, ys, I, B, a, shadow)
        alpha[ys, xs] = a
    soft = (a > 0) & (a < 1)
    if soft.any():
        col = decontaminate(I[soft], a[soft], F[soft], B[soft])
        fg_u8[ys[soft], xs[soft]] = np.round(col * 255).astype(np.uint8)
    return alpha, fg_u8


# -- measuring halos -----------------------------------------------------------------------------

def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (..., 3) float in [0, 1] or uint8 -> CIE Lab (D65), float32 (L in 0..100)."""
    x = np.asarray(rgb)
    x = x.astype(np.float32) / 255 if x.dtype == np.uint8 else x.astype(np.float32)
    shape = x.shape
    lab = cv2.cvtColor(np.clip(x, 0, 1).reshape(-1, 1, 3), cv2.COLOR_RGB2Lab)
    return lab.reshape(shape)


def delta_e2000(lab1: np.ndarray, lab2: np.ndarray) -> np.ndarray:
    """CIEDE2000 colour difference (Sharma, Wu, Dalal 2005) of Lab arrays (..., 3) -> (...)."""
    L1, a1, b1 = (np.asarray(lab1, np.float64)[..., i] for i in range(3))
    L2, a2, b2 = (np.asarray(lab2, np.float64)[..., i] for i in range(3))
    C1, C2 = np.hypot(a1, b1), np.hypot(a2, b2)
    Cm7 = ((C1 + C2) / 2) ** 7
    G = 0.5 * (1 - np.sqrt(Cm7 / (Cm7 + 25.0 ** 7)))
    a1p, a2p = (1 + G) * a1, (1 + G) * a2
    C1p, C2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360
    dLp, dCp = L2 - L1, C2p - C1p
    dh = h2p - h1p
    dh = np.where(dh > 180, dh - 360, np.where(dh < -180, dh + 360, dh))
    dh = np.where(C1p * C2p == 0, 0, dh)
    dHp = 2 * np.sqrt(C1p * C2p) * np.sin(np.radians(dh / 2))
    Lpm, Cpm = (L1 + L2) / 2, (C1p + C2p) / 2
    hsum = h1p + h2p
    hpm = np.where(np.abs(h1p - h2p) > 180, np.where(hsum < 360, hsum + 360, hsum - 360), hsum) / 2
    hpm = np.where(C1p * C2p == 0, hsum, hpm)
    T = (1 - 0.17 * np.cos(np.radians(hpm - 30)) + 0.24 * np.cos(np.radians(2 * hpm))
         + 0.32 * np.cos(np.radians(3 * hpm + 6)) - 0.20 * np.cos(np.radians(4 * hpm - 63)))
    SL = 1 + 0.015 * (Lpm - 50) ** 2 / np.sqrt(20 + (Lpm - 50) ** 2)
    SC, SH = 1 + 0.045 * Cpm, 1 + 0.015 * Cpm * T
    Cpm7 = Cpm ** 7
    RT = -2 * np.sqrt(Cpm7 / (Cpm7 + 25.0 ** 7)) * np.sin(np.radians(60 * np.exp(-((hpm - 275) / 25) ** 2)))
    return np.sqrt((dLp / SL) ** 2 + (dCp / SC) ** 2 + (dHp / SH) ** 2 + RT * (dCp / SC) * (dHp / SH))


def halo_delta_e(alpha: np.ndarray, foreground: np.ndarray, alpha_true: np.ndarray, fg_true: np.ndarray,
                 new_background=(1.0, 1.0, 1.0), band_px: int = 3) -> float:
    """Mean CIEDE2000 between the cut-out and the truth composited on ``new_background`` (RGB in
    [0, 1]), over the edge band: pixels within ``band_px`` of the true boundary or soft in the
    truth. Colours: HxWx3 uint8 or float in [0, 1]; alphas HxW in [0, 1]."""
    def comp(a, f):
        f = f.astype(np.float32) / 255 if f.dtype == np.uint8 else f.astype(np.float32)
        a = a.astype(np.float32)[..., None]
        return f * a + np.float32(new_background) * (1 - a)

    m8 = (alpha_true >= 0.5).astype(np.uint8)
    band = (cv2.dilate(m8, disk(band_px)) != cv2.erode(m8, disk(band_px))) | ((alpha_true > 0) & (alpha_true < 1))
    lab1 = srgb_to_lab(comp(alpha, foreground)[band])
    lab2 = srgb_to_lab(comp(alpha_true, fg_true)[band])
    return float(delta_e2000(lab1, lab2).mean())
