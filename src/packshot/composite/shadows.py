"""Contact and cast shadows from the product's silhouette.

Geometry (canvas pixels; ``base`` = the row just under the product's lowest opaque rows,
``h`` = a silhouette pixel's height above the floor, ``hp`` = the product's height):

* **footprint**: a column whose lowest opaque point is within ``FOOTPRINT * hp`` of the base
  touches the floor there (a round base seen from above is an arc); other columns (a mug's
  handle) are in the air. See :func:`footprint_profile`.
* **contact shadow** (occlusion where the product meets the floor): a line along the footprint's
  bottom profile, fading over ``CONTACT_HEIGHT * hp`` above it and ``CONTACT_SQUASH`` times that
  below, blurred by ``CONTACT_SIGMA * hp``, normalised to peak 1. Independent of the light:
  built once per layer.
* **cast shadow**: the silhouette projected on the floor plane along ``light_dir = (dx, dy)``
  (the unit direction the light travels in the image). A point at height ``h`` lands at
  ``(x + L*dx*h, foot + L*Q*dy*h)``: ``L = CAST_LENGTH`` is the shadow's length relative to the
  height, ``Q = FLOOR_FORESHORTEN`` squashes the floor's depth axis (image rows). So ``dx > 0``
  (light from the left) lays the shadow to the right, ``dy > 0`` (light travelling down the
  image, i.e. toward the viewer on the floor) in front of the base, ``dy < 0`` behind it. The
  shadow is sharp at the foot and blurs with the distance (three Gaussian levels mixed by
  ``t = h / hp``, ``CAST_SIGMA_NEAR`` -> ``CAST_SIGMA_FAR``); its opacity fades by
  ``CAST_FADE * t``. Cached per (layer, light direction).

Both are built on one reduced grid (an integer factor ``d`` so that the shadow region's longer
side is at most ``GRID`` cells; block means, so cell centres map exactly), then upsampled
bilinearly over their non-zero part only and applied as a multiplicative darkening of the
background, ``bg * (1 - S)``, ``S = 1 - (1 - kc * contact) * (1 - ks * cast)``, with ``kc`` and
``ks`` from ``scene.shadow_strength`` (the cast shadow is weaker on glossy floors).
"""
from __future__ import annotations

import math

import cv2
import numpy as np

CONTACT_HEIGHT = 0.03      # fraction of hp: how high above the base still darkens the contact
CONTACT_SQUASH = 0.5       # flipped contact footprint below the base, squashed
CONTACT_SIGMA = 0.006      # fraction of hp
AO_SIGMA = 0.035           # ambient occlusion: the wide soft darkening around the contact, fraction of hp
AO_STRENGTH = 0.35         # its opacity relative to the contact's
FOOTPRINT = 0.1            # a column whose bottom is this close (fraction of hp) to the base touches the floor
CAST_LENGTH = 0.6          # shadow length / product height
FLOOR_FORESHORTEN = 0.4    # vertical squash of the floor plane
MIN_DEPTH = 0.12           # the cast shadow never collapses to a line (fraction of hp)
CAST_SIGMA_NEAR = 0.012    # fractions of hp
CAST_SIGMA_FAR = 0.08
CAST_FADE = 0.7
GRID = 384                 # longest side of the reduced grid, cells


def _ref(prep) -> float:
    """Reference size of the product for shadow scales: its height, never tiny vs its width."""
    return float(max(prep.height, 0.35 * prep.width, 4))


class Grid:
    """The reduced grid: cell (i, j) covers canvas rows ``y0 + i*d ..`` and columns ``x0 + j*d ..``.

    ``sil`` is the block-mean alpha on that grid (float32 ``lh x lw``); ``to_cell(x, y)`` maps a
    canvas point (pixel centres) to grid coordinates (cell centres).
    """

    def __init__(self, prep, layer):
        hp = _ref(prep)
        x0, y0, x1, y1 = prep.box
        base = prep.base_y
        margin = 3 * CAST_SIGMA_FAR * hp + 2
        reach_x = CAST_LENGTH * hp
        reach_y = CAST_LENGTH * FLOOR_FORESHORTEN * hp + CONTACT_SQUASH * CONTACT_HEIGHT * 4 * hp
        gx0 = math.floor(x0 - reach_x - margin)
        gx1 = math.ceil(x1 + reach_x + margin)
        gy0 = math.floor(min(y0, base - reach_y) - margin)
        gy1 = math.ceil(max(y1, base + reach_y) + margin)
        d = max(1, math.ceil(max(gx1 - gx0, gy1 - gy0) / GRID))
        lw, lh = math.ceil((gx1 - gx0) / d), math.ceil((gy1 - gy0) / d)
        self.x0, self.y0, self.d, self.lw, self.lh = gx0, gy0, d, lw, lh
        self.hp = hp
        self.base = base
        # block means of alpha over the cells that touch the alpha box (zeros outside the canvas)
        j0, j1 = (x0 - gx0) // d, -(-(x1 - gx0) // d)
        i0, i1 = (y0 - gy0) // d, -(-(y1 - gy0) // d)
        cx0, cy0, cx1, cy1 = gx0 + j0 * d, gy0 + i0 * d, gx0 + j1 * d, gy0 + i1 * d
        W, H = prep.size
        crop = np.zeros((cy1 - cy0, cx1 - cx0), np.float32)
        sx0, sy0, sx1, sy1 = max(cx0, 0), max(cy0, 0), min(cx1, W), min(cy1, H)
        crop[sy0 - cy0:sy1 - cy0, sx0 - cx0:sx1 - cx0] = layer.alpha[sy0:sy1, sx0:sx1]
        sil = np.zeros((lh, lw), np.float32)
        sil[i0:i1, j0:j1] = cv2.resize(crop, (j1 - j0, i1 - i0), interpolation=cv2.INTER_AREA) \
            if d > 1 else crop
        self.sil = sil

    def to_cell(self, x: float, y: float) -> tuple[float, float]:
        return (x + 0.5 - self.x0) / self.d - 0.5, (y + 0.5 - self.y0) / self.d - 0.5

    def rows(self) -> np.ndarray:
        """Canvas y (pixel-centre coordinates) of each grid row, float32 (lh, 1)."""
        return (self.y0 + (np.arange(self.lh, dtype=np.float32) + 0.5) * self.d - 0.5)[:, None]

    def warp_floor(self, src: np.ndarray, ax: float, ay: float) -> np.ndarray:
        """Map each canvas point at height ``h = base - y`` to ``(x + ax*h, base + ay*h)``."""
        d = self.d
        # canvas X = x0 + (u+.5)d - .5 ; u' = (X' + .5 - x0)/d - .5  (same for v); b = base line
        b = self.base - 0.5  # the boundary between the last product row and the floor
        # X' = X + ax*(b - Y),  Y' = b + ay*(b - Y)
        # in cells: u' = u + ax*(bc - v), v' = bc + ay*(bc - v) with bc = b in cell coordinates
        bc = (b + 0.5 - self.y0) / d - 0.5
        M = np.float32([[1, -ax, ax * bc], [0, -ay, bc + ay * bc]])
        return cv2.warpAffine(src, M, (self.lw, self.lh), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return img
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)


def grid_of(prep, layer) -> Grid:
    return prep.cached(("shadow-grid",), lambda: Grid(prep, layer))


STAND_RUN = 0.3            # a column with this much solid product (fraction of hp) above its bottom stands
STAND_GAP = 0.5            # ... when its bottom is within this (fraction of hp) of the base: a second foot
STAND_WIDTH = 0.06         # ... over at least this fraction of the product's width
STAND_TAPER = 0.1          # a foot's tapering end (a shoe's toe) still stands down to this solid run
STAND_TAPER_WIDTH = 0.1    # ... over at least this fraction of the product's width


def footprint_profile(bottom: np.ndarray, base: float, hp: float,
                      solid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where the product touches the floor, per column.

    ``bottom`` (w,) float: the y of each column's lowest opaque edge (NaN: empty column), ``base``
    the lowest of all, ``hp`` the product's height, all in the same units (pixels or grid cells);
    ``solid`` (w,), optional: how far the product runs up, unbroken, from each column's bottom.
    Returns ``(weight, lift)``: ``weight`` in [0, 1], 1 on the floor, 0 for parts in the air (a
    mug's handle); ``lift`` the height of the column's contact point above ``base``.

    A column touches the floor when its bottom is within ``FOOTPRINT * hp`` of the base: a round
    base seen from above is an arc, not a line. The weight fades out over the last half of that
    reach, so both outputs are continuous across columns.

    Several feet: a column whose bottom is higher (up to ``STAND_GAP * hp``) but carries solid
    product (``STAND_RUN * hp`` of unbroken alpha above it) over at least ``STAND_WIDTH`` of the
    product's width stands too: the far shoe of a pair, a chair's back legs. A handle in the air
    is thin above its underside (its hole follows), so it does not stand. The weights fade over 0.05 hp, so the profile stays continuous.
    """
    reach = FOOTPRINT * hp
    valid = np.isfinite(bottom)
    full = np.where(valid, base - np.nan_to_num(bottom), 2 * hp).clip(0, None)
    gap = full.clip(0, 2 * reach)
    weight = (2 - 2 * gap / reach).clip(0, 1)
    lift = gap * weight
    if solid is not None:
        fade = max(0.05 * hp, 1e-6)
        stand = ((np.nan_to_num(solid) - STAND_RUN * hp) / fade).clip(0, 1) * \
            ((STAND_GAP * hp - full) / fade).clip(0, 1) * valid
        # a foot is wide: runs of standing columns narrower than STAND_WIDTH of the product's
        # width (the vertical side of a ring handle) are opened away
        k = max(3, int(STAND_WIDTH * valid.sum()) | 1)
        wide = cv2.morphologyEx((stand > 0).astype(np.uint8)[None, :], cv2.MORPH_OPEN,
                                np.ones((1, k), np.uint8))[0] > 0
        stand = stand * wide
        stand = np.maximum(stand, _tapered_ends(solid, full, valid, hp, fade))
        lift = np.where(stand > weight, full, lift)
        weight = np.maximum(weight, stand)
    return weight.astype(np.float32), (lift * (weight > 0)).astype(np.float32)


def _tapered_ends(solid: np.ndarray, full: np.ndarray, valid: np.ndarray, hp: float,
                  fade: float) -> np.ndarray:
    """Feet whose solid run tapers below ``STAND_RUN``: the far shoe of a pair seen from above
    shows only its toe beside the near shoe, its run thinning toward the tip, yet it rests on the
    floor. A run of columns with at least ``STAND_TAPER * hp`` of solid product, its bottom within
    ``STAND_GAP * hp`` of the base, stands when it is wide (``STAND_TAPER_WIDTH`` of the product's
    width) and reaches ``STAND_RUN`` somewhere. The vertical side of a ring handle is narrow and
    the handle's underside thin (its hole follows): both stay in the air."""
    low = ((np.nan_to_num(solid) - STAND_TAPER * hp) / fade).clip(0, 1) * \
        ((STAND_GAP * hp - full) / fade).clip(0, 1) * valid
    n, labels = cv2.connectedComponents((low > 0).astype(np.uint8)[None, :], connectivity=4)
    labels = labels[0]
    width = np.bincount(labels, minlength=n)
    peak = np.zeros(n, np.float32)
    np.maximum.at(peak, labels, np.nan_to_num(solid).astype(np.float32))
    keep = (width >= STAND_TAPER_WIDTH * valid.sum()) & (peak >= STAND_RUN * hp)
    keep[0] = False
    return (low * keep[labels]).astype(np.float32)


def solid_runs(alpha: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Per column: the unbroken run of ``alpha >= 0.5`` going up from the bottom edge (rows)."""
    on = alpha >= 0.5
    h = on.shape[0]
    i = np.clip(np.nan_to_num(bottom - 0.5, nan=0).astype(np.int64), 0, h - 1)
    rows = np.arange(h)[:, None]
    # rows above the bottom that are off: the first one (going up) ends the run
    off_above = (~on) & (rows <= i[None, :])
    last_off = np.where(off_above.any(axis=0), h - 1 - np.argmax(off_above[::-1], axis=0), -1)
    return np.where(np.isfinite(bottom), i - last_off, 0).astype(np.float32)


def bottom_edges(alpha: np.ndarray) -> np.ndarray:
    """Per column of ``alpha`` (h x w): the y, in row-edge units (row i spans [i, i+1)), where it
    last falls through 0.5, to a fraction of a row (linear between the rows around the crossing);
    NaN for columns that never reach 0.5. float32 (w,)."""
    h = alpha.shape[0]
    on = alpha >= 0.5
    i = h - 1 - np.argmax(on[::-1], axis=0)
    cols = np.arange(alpha.shape[1])
    v0 = alpha[i, cols]
    v1 = np.where(i + 1 < h, alpha[np.minimum(i + 1, h - 1), cols], 0.0)
    frac = np.clip((v0 - 0.5) / np.maximum(v0 - v1, 1e-6), 0, 1)
    return np.where(on.any(axis=0), i + 0.5 + frac, np.nan).astype(np.float32)


def grid_footprint(prep, layer):
    """(weight, lift, bottom) on the shadow grid, per grid column, in cells; ``bottom`` is each
    column's lowest opaque edge in cell-centre coordinates (NaN: empty column)."""
    def build():
        g = grid_of(prep, layer)
        edge = bottom_edges(g.sil)                    # row-edge units
        bc = (g.base - g.y0) / g.d                    # the base line, row-edge units
        weight, _ = footprint_profile(edge, bc, g.hp / g.d, solid_runs(g.sil, edge))
        # the cast shadow's lift only follows the continuous arc near the base: a second foot's
        # columns jump, and shifting columns by a jumping lift would tear the projected shadow
        _, lift = footprint_profile(edge, bc, g.hp / g.d)
        return weight, lift, edge - 0.5
    return prep.cached(("footprint",), build)


def _shift_columns(img: np.ndarray, lift: np.ndarray, sign: float) -> np.ndarray:
    """Move column j down by ``sign * lift[j]`` cells (bilinear)."""
    h, w = img.shape
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    map_y = np.arange(h, dtype=np.float32)[:, None] - sign * lift[None, :]
    return cv2.remap(img, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y, dtype=np.float32),
                     cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def contact_map(prep, layer) -> np.ndarray:
    """Contact shadow on the grid, float32 in [0, 1], peak 1 (once per layer).

    A thin line along the bottom profile of the columns that touch the floor (see
    :func:`footprint_profile`), fading over ``CONTACT_HEIGHT * hp`` above and
    ``CONTACT_SQUASH`` times that below, blurred by ``CONTACT_SIGMA * hp``.
    """
    def build():
        g = grid_of(prep, layer)
        weight, _, bottom = grid_footprint(prep, layer)
        h0 = max(0.5, CONTACT_HEIGHT * g.hp / g.d)
        rows = np.arange(g.lh, dtype=np.float32)[:, None]
        dist = rows - np.nan_to_num(bottom, nan=-1e6)[None, :]   # > 0 below the column's bottom
        src = np.exp(np.minimum(dist, 0) / h0 - np.maximum(dist, 0) / (CONTACT_SQUASH * h0))
        src = (src * weight[None, :]).astype(np.float32)
        c = _blur(src, max(0.7, CONTACT_SIGMA * g.hp / g.d))
        peak = float(c.max())
        return c / peak if peak > 1e-6 else c
    return prep.cached(("contact",), build)


def unit(light_dir) -> tuple[float, float]:
    """The light's travel direction as a unit vector (straight down the image when zero)."""
    dx, dy = (float(v) for v in light_dir)
    n = math.hypot(dx, dy)
    return (dx / n, dy / n) if n > 1e-6 else (0.0, 1.0)


def cast_map(prep, layer, light_dir) -> np.ndarray:
    """Cast shadow on the grid for one light direction, float32 in [0, 1] (cached per direction).

    The silhouette's columns are first lowered by their footprint lift (so a round base's arc
    becomes the flat base line), projected with :meth:`Grid.warp_floor`, then raised back: the
    shadow starts right at the arc where the product touches the floor.
    """
    dx, dy = unit(light_dir)
    key = ("cast", round(dx, 3), round(dy, 3))

    def build():
        g = grid_of(prep, layer)
        _, lift, _ = grid_footprint(prep, layer)
        ax = CAST_LENGTH * dx
        ay = CAST_LENGTH * FLOOR_FORESHORTEN * dy
        if abs(ay) < MIN_DEPTH:
            ay = math.copysign(MIN_DEPTH, dy if dy != 0 else 1.0)
        flat = _shift_columns(g.sil, lift, +1) if lift.any() else g.sil
        sh = g.warp_floor(flat, ax, ay)
        if lift.any():
            sh = _shift_columns(sh, lift, -1)
        # t = original height / hp of each floor row: |y' - base| / (|ay| * hp)
        t = (np.abs(g.rows() - (g.base - 0.5)) / (abs(ay) * g.hp)).clip(0, 1).astype(np.float32)
        near = _blur(sh, CAST_SIGMA_NEAR * g.hp / g.d)
        mid = _blur(sh, 0.5 * (CAST_SIGMA_NEAR + CAST_SIGMA_FAR) * g.hp / g.d)
        far = _blur(sh, CAST_SIGMA_FAR * g.hp / g.d)
        w_near = (1 - 2 * t).clip(min=0)
        w_far = (2 * t - 1).clip(min=0)
        w_mid = 1 - w_near - w_far
        out = near * w_near + mid * w_mid + far * w_far
        out *= 1 - CAST_FADE * t
        return out.clip(0, 1)
    return prep.cached(key, build)


def ao_map(prep, layer) -> np.ndarray:
    """Ambient occlusion where the product meets the floor, on the grid, peak 1 (once per layer):
    the contact shadow spread wide (``AO_SIGMA * hp``): light from the whole room is blocked near
    the product's foot, a darkening a photographer sees under every standing object."""
    def build():
        g = grid_of(prep, layer)
        c = _blur(contact_map(prep, layer), AO_SIGMA * g.hp / g.d)
        peak = float(c.max())
        return c / peak if peak > 1e-6 else c
    return prep.cached(("ao",), build)


def shadow_strengths(strength: float, gloss: float) -> tuple[float, float]:
    """(contact opacity, cast opacity) for ``scene.shadow_strength`` in [0, 1]."""
    s = min(max(float(strength), 0.0), 1.0)
    kc = min(0.92, 1.6 * s)
    ks = min(0.75, 0.9 * s) * (1 - 0.5 * min(max(gloss, 0.0), 1.0))
    return kc, ks


def drop_map(prep, layer, light_dir) -> np.ndarray:
    """Flat lay (top view) shadow on the grid, float32 in [0, 1]: the silhouette lying on the
    surface, seen from above, casts a short soft shadow all around it, a little more on the side
    the light travels to: the silhouette moved by ``DROP_OFFSET * size`` along the light and
    blurred by ``DROP_SIGMA * size``, plus a tight occlusion right at the outline."""
    dx, dy = unit(light_dir)
    key = ("drop", round(dx, 3), round(dy, 3))

    def build():
        g = grid_of(prep, layer)
        size = max(prep.width, prep.height) / g.d
        off = DROP_OFFSET * size
        M = np.float32([[1, 0, dx * off], [0, 1, dy * off]])
        moved = cv2.warpAffine(g.sil, M, (g.lw, g.lh), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        soft = _blur(moved, DROP_SIGMA * size)
        tight = _blur(g.sil, max(0.7, 0.004 * size))
        return np.maximum(soft, tight).clip(0, 1)
    return prep.cached(key, build)


DROP_OFFSET = 0.018        # flat lay: shadow offset along the light, fraction of the product's size
DROP_SIGMA = 0.022         # flat lay: its blur, fraction of the product's size


def shadow_on_grid(prep, layer, light_dir, strength: float, gloss: float = 0.0,
                   view: str = "front") -> np.ndarray:
    """Total darkening ``S`` in [0, 1] on the shadow grid (``view="top"``: the flat-lay shadow)."""
    kc, ks = shadow_strengths(strength, gloss)
    if view == "top":
        return ks * drop_map(prep, layer, light_dir)
    c = contact_map(prep, layer)
    s = cast_map(prep, layer, light_dir)
    ao = ao_map(prep, layer)
    return 1 - (1 - kc * c) * (1 - AO_STRENGTH * kc * ao) * (1 - ks * s)


def render_shadows(out: np.ndarray, prep, layer, light_dir, strength: float, gloss: float = 0.0,
                   view: str = "front") -> None:
    """Darken ``out`` (HxWx3 uint8, the background) in place with the contact and cast shadows
    (or, for a flat lay seen from above, the drop shadow around the silhouette)."""
    g = grid_of(prep, layer)
    S = shadow_on_grid(prep, layer, light_dir, strength, gloss, view)
    nz = S > (0.5 / 255)
    if not nz.any():
        return
    x, y, w, h = cv2.boundingRect(nz.view(np.uint8))
    d = g.d
    sub = np.ascontiguousarray(S[y:y + h, x:x + w])
    # canvas region of those cells, then its part inside the canvas
    X0, Y0 = g.x0 + x * d, g.y0 + y * d
    W, H = prep.size
    cx0, cy0, cx1, cy1 = max(X0, 0), max(Y0, 0), min(X0 + w * d, W), min(Y0 + h * d, H)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    if d > 1:
        # bilinear upsampling by an integer factor keeps cell centres on pixel centres
        sub = cv2.resize(sub, (w * d, h * d), interpolation=cv2.INTER_LINEAR)
    keep = (1.0 - sub[cy0 - Y0:cy1 - Y0, cx0 - X0:cx1 - X0])
    region = out[cy0:cy1, cx0:cx1]
    region[...] = cv2.multiply(region, cv2.merge([keep, keep, keep]), dtype=cv2.CV_8U)
