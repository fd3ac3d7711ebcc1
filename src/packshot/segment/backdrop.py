"""The plain-backdrop model: fit the backdrop, find the product against it, finish its edges.

Used by the automatic classic cut-out (:mod:`packshot.segment.classic`), the interactive session
(:mod:`packshot.segment.interactive`) and the learned engine's fusion
(:mod:`packshot.segment.learned`); it imports none of them. The method, step by step, is in
:mod:`packshot.segment.classic`'s docstring.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import refine as R


@dataclass(frozen=True)
class ClassicParams:
    """Tuning of the automatic cut-out (measured on the backdrop set, see benchmarks/)."""

    preview_side: int = 640        # long side of the working preview (px)
    poly_order: int = 2            # backdrop model: polynomial order in x, y
    ring: float = 0.03             # border ring used for the first fit (fraction of the long side)
    min_chroma: float = 0.03       # floor of the chroma threshold (relative to |backdrop|)
    min_shade: float = 0.03        # floor of the brightness threshold (k - 1)
    noise_mult: float = 5.0        # thresholds = noise_mult x measured noise (if above the floors)
    darkest_shadow: float = 0.3    # k below this is product, never shadow
    texture_mult: float = 3.0      # texture > texture_mult x backdrop texture = product
    min_texture: float = 0.008     # floor of the backdrop texture (clipped white backdrops have 0)
    hole_distance: float = 4.0     # a real hole matches the backdrop to within this x its noise
    band: int = 3                  # unknown band half-width at preview resolution (px)
    shade_gap: int = 2             # shadows are measured this far (px) from the mask and beyond
    shade_sigma: float = 2.0       # ... and spread with this Gaussian
    fuzzy_grow: int = 2            # unknown also within this of backdrop-coloured mask pixels
    min_part: float = 0.02         # parts smaller than this fraction of the largest are specks
    min_area: float = 2e-4         # ... and so are parts below this fraction of the image
    snap: float = 0.03             # alpha within this of 0/1 snaps to it


def _design(h: int, w: int, order: int) -> np.ndarray:
    """Polynomial design matrix HxWxT in normalised coordinates (x, y in [-1, 1])."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    x = x * np.float32(2 / max(w - 1, 1)) - 1
    y = y * np.float32(2 / max(h - 1, 1)) - 1
    terms = [np.ones_like(x)]
    for d in range(1, order + 1):
        for i in range(d + 1):
            terms.append(x ** (d - i) * y ** i)
    return np.stack(terms, -1)


@dataclass
class Backdrop:
    """Fitted backdrop at preview size: ``rgb`` HxWx3 float32, noise of k and r, thresholds."""

    rgb: np.ndarray
    sigma_k: float
    sigma_r: float
    t_k: float
    t_r: float

    @property
    def plain(self) -> bool:
        """Whether the border looks like one plain backdrop (low residual around the fitted model)."""
        return not (self.sigma_r > 0.03 or self.sigma_k > 0.05)

    def features(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(k, r): shading ratio and chroma residual of each pixel of ``p`` against the model."""
        b = self.rgb
        bb = np.maximum(np.einsum("ijc,ijc->ij", b, b), 1e-6)
        k = np.einsum("ijc,ijc->ij", p, b) / bb
        res = p - k[..., None] * b
        r = np.sqrt(np.einsum("ijc,ijc->ij", res, res) / bb)
        return k, r


def _fit(p: np.ndarray, X: np.ndarray, sel: np.ndarray, order: int) -> np.ndarray:
    """Robust polynomial fit of p[sel] (N,3) on the design X[sel] (N,T), T terms up to ``order``.

    Raises the order step by step, each time keeping only the pixels the previous model explains
    best (the product may cover part of the border), then trims at 3 sigma. Returns (T, 3).
    """
    Xs, ps = X[sel], p[sel]
    n_terms = X.shape[-1]
    coef = np.zeros((n_terms, 3), np.float32)
    coef[0] = np.median(ps, axis=0)
    keep_fraction = (0.6, 0.7, 0.8)
    for o in range(1, order + 1):
        t = (o + 1) * (o + 2) // 2
        res = np.linalg.norm(ps - Xs @ coef, axis=1)
        keep = res <= np.quantile(res, keep_fraction[min(o - 1, 2)])
        if keep.sum() < t * 4:
            break
        c, *_ = np.linalg.lstsq(Xs[keep][:, :t], ps[keep], rcond=None)
        coef[:] = 0
        coef[:t] = c
    for _ in range(2):
        res = np.linalg.norm(ps - Xs @ coef, axis=1)
        keep = res < 3 * (np.median(res) * 1.4826 + 1e-4)
        if keep.sum() < n_terms * 4:
            break
        coef, *_ = np.linalg.lstsq(Xs[keep], ps[keep], rcond=None)
    return coef.astype(np.float32)


def fit_backdrop(p: np.ndarray, prm: ClassicParams) -> tuple[Backdrop, np.ndarray]:
    """Fit the backdrop model to preview ``p`` (HxWx3 float32). Returns (model, border ring)."""
    h, w = p.shape[:2]
    X = _design(h, w, prm.poly_order)
    b = max(2, round(prm.ring * max(h, w)))
    ring = np.zeros((h, w), bool)
    ring[:b] = ring[-b:] = True
    ring[:, :b] = ring[:, -b:] = True
    step = np.zeros((h, w), bool)
    step[::2, ::2] = True
    coef = _fit(p, X, ring & step, prm.poly_order)
    model = _thresholds(p, X @ coef, ring, prm)
    # refit on everything that looks like backdrop (unshadowed), sampled
    k, r = model.features(p)
    clean = (r < model.t_r) & (np.abs(k - 1) < model.t_k)
    step[:] = False
    step[::3, ::3] = True
    if (clean & step).sum() > 50:
        coef = _fit(p, X, clean & step, prm.poly_order)
        model = _thresholds(p, X @ coef, ring, prm)
    return model, ring


def _thresholds(p, rgb, ring, prm: ClassicParams) -> Backdrop:
    model = Backdrop(rgb=rgb.astype(np.float32), sigma_k=0, sigma_r=0, t_k=1, t_r=1)
    k, r = model.features(p)
    kr, rr = k[ring], r[ring]
    # ring pixels may include product touching the border: robust statistics only
    sigma_k = float(np.median(np.abs(kr - np.median(kr))) * 1.4826)
    sigma_r = float(np.median(rr))
    model.sigma_k, model.sigma_r = max(sigma_k, 0.002), max(sigma_r, 0.002)
    model.t_k = max(prm.min_shade, prm.noise_mult * model.sigma_k)
    model.t_r = max(prm.min_chroma, prm.noise_mult * sigma_r * 1.4826)
    return model


def texture(p: np.ndarray) -> np.ndarray:
    """Local high-frequency energy (HxW): sensor noise and product texture, not smooth shadows."""
    hp = p - cv2.GaussianBlur(p, (0, 0), 1.0)
    return np.sqrt(cv2.GaussianBlur(np.einsum("ijc,ijc->ij", hp, hp), (0, 0), 1.5))


def _border_connected(m: np.ndarray) -> np.ndarray:
    n, lab = cv2.connectedComponents(m.astype(np.uint8), connectivity=4)
    edge = np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]]))
    edge = edge[edge > 0]
    return np.isin(lab, edge)


def _real_holes(cand: np.ndarray, dist: np.ndarray, limit: float,
                q: float = 50) -> tuple[np.ndarray, np.ndarray]:
    """Components of ``cand`` (4-connected) whose ``q``-th percentile of ``dist`` (distance to the
    backdrop model in units of its noise on the border) is below ``limit``: they show the backdrop.
    Returns (labels HxW int32, real (n,) bool indexed by label; label 0 is never real)."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(cand.astype(np.uint8), connectivity=4)
    real = np.zeros(n, bool)
    if n > 1:
        flat = lab.ravel()
        order = np.argsort(flat, kind="stable")
        counts = np.bincount(flat, minlength=n)
        parts = np.split(dist.ravel()[order], np.cumsum(counts)[:-1])
        med = np.array([np.percentile(x, q) if len(x) else np.inf for x in parts])
        real = (med < limit) & (stats[:, cv2.CC_STAT_AREA] >= 2)
        real[0] = False
    return lab, real


@dataclass
class AutoResult:
    """What the automatic preview stage found (preview size)."""

    p: np.ndarray           # preview image HxWx3 float32
    mask: np.ndarray        # product mask (bool)
    background: np.ndarray  # backdrop colour incl. shadows HxWx3 float32
    fuzzy: np.ndarray       # product pixels mixed with backdrop (hair, foliage gaps) (bool)
    backdrop: Backdrop
    notes: tuple[str, ...]


def auto_mask(p: np.ndarray, prm: ClassicParams = ClassicParams()) -> AutoResult:
    """Product mask of preview ``p`` (HxWx3 float32 in [0, 1]) against its plain backdrop."""
    h, w = p.shape[:2]
    notes: list[str] = []
    model, ring = fit_backdrop(p, prm)
    k, r = model.features(p)
    tex = texture(p)
    t_tex = max(float(np.percentile(tex[ring], 99)) * 1.5, prm.min_texture)
    if not model.plain:
        notes.append("the backdrop is not plain: the automatic cut-out may be wrong; give a box or clicks")

    # sure product: colour/brightness far from backdrop-or-shadow, or strong texture
    # (texture spreads ~3 px beyond an edge: its marker is eroded by that much)
    strong = (r > 2 * model.t_r) | (k < prm.darkest_shadow) | (k > 1 + 2 * model.t_k)
    textured = tex > prm.texture_mult * t_tex
    fg_marker = (cv2.erode(strong.astype(np.uint8), R.disk(1)) > 0) | \
        (cv2.erode(textured.astype(np.uint8), R.disk(3)) > 0)
    fg_marker = R.drop_specks(fg_marker, min_area=max(4, int(h * w * 2e-5)), min_fraction=0.0)
    near_fg = cv2.dilate(fg_marker.astype(np.uint8), R.disk(2)) > 0

    # sure backdrop: smooth, backdrop-like (or shadow-like), connected to the border ...
    like = (r < model.t_r) & (k > prm.darkest_shadow) & (k < 1 + model.t_k) & (tex < t_tex)
    outer = _border_connected(like)
    # ... plus enclosed regions that are real holes (they show the backdrop itself)
    dist = np.sqrt(((k - 1) / model.sigma_k) ** 2 + (r / model.sigma_r) ** 2)
    dist_ring = float(np.median(dist[ring])) + 1e-6
    holes = like & ~outer
    lab, real = _real_holes(holes, dist / dist_ring, prm.hole_distance)
    bg_marker = (outer | real[lab]) & ~near_fg

    markers = np.zeros((h, w), np.int32)
    markers[bg_marker] = 1
    markers[fg_marker] = 2
    bgr = np.ascontiguousarray((p[..., ::-1] * 255).round().astype(np.uint8))
    ws = cv2.watershed(cv2.GaussianBlur(bgr, (0, 0), 1.0), markers)
    mask = ws == 2
    # watershed leaves its ridge (-1) unlabelled: give it to the side of the majority of neighbours
    ridge = ws == -1
    if ridge.any():
        votes = cv2.blur(mask.astype(np.float32), (3, 3))
        mask[ridge] = votes[ridge] >= 0.5

    mask = R.drop_specks(mask, min_area=max(4, int(prm.min_area * h * w)), min_fraction=prm.min_part)

    # background colour incl. shadows: model x local shading measured on the backdrop around
    # (measured close to the product, where contact shadows are darkest; far from any backdrop
    # pixel, e.g. deep under the product, it fades to the unshadowed model)
    bgw = ((cv2.dilate(mask.astype(np.uint8), R.disk(prm.shade_gap)) == 0) & (r < model.t_r)).astype(np.float32)
    num = cv2.GaussianBlur(np.clip(k, 0, 1.5).astype(np.float32) * bgw, (0, 0), prm.shade_sigma)
    den = cv2.GaussianBlur(bgw, (0, 0), prm.shade_sigma)
    shade = (num + 0.02) / (den + 0.02)
    background = model.rgb * shade[..., None]
    # backdrop-coloured pixels inside the mask (gaps in hair and foliage) and their neighbours
    see_through = mask & (r < model.t_r) & (np.abs(k - 1) < model.t_k)
    # (mixed pixels: a gap shows the backdrop in at least a fifth of its pixels; stone, gravel or
    # a label of the backdrop's colour never match it that well)
    lab, real = _real_holes(see_through, dist / dist_ring, prm.hole_distance, q=20)
    see_through = real[lab]
    fuzzy = mask & (cv2.dilate(see_through.astype(np.uint8), R.disk(prm.fuzzy_grow)) > 0)
    return AutoResult(p=p, mask=mask, background=background, fuzzy=fuzzy, backdrop=model,
                      notes=tuple(notes))


def finish_matte(rgb_u8: np.ndarray, res: AutoResult, mask: np.ndarray,
                 prm: ClassicParams = ClassicParams()) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution alpha + decontaminated colour for ``mask`` (bool, ``res``'s preview size)
    against the fitted backdrop of ``res``: thin band, see-through gaps, contact-shadow tail."""
    scale = mask.shape[1] / rgb_u8.shape[1]
    fields = R.edge_fields(res.p, mask, res.background, band=prm.band, fuzzy=res.fuzzy & mask)
    tail = R.ShadowTail(chroma=res.backdrop.t_r, reach=max(2, round(0.6 / scale)))
    return R.full_res_matte(rgb_u8, fields, snap=prm.snap, shadow=tail)
