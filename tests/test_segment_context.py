"""Automatic cutout of a product photographed in context (no plain backdrop): the classic engine
falls back to GrabCut + band matting from the frame inset 6%, and says so."""
from __future__ import annotations

import cv2
import numpy as np

import packshot
from synth import iou, mug_matte


def _cluttered_photo(w=640, h=480, seed=0):
    """A red mug on a wooden-looking table with colourful clutter at the edges; exact truth."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    grain = 0.5 + 0.5 * np.sin(40 * x + 6 * np.sin(9 * y) + rng.uniform(0, 6))
    bg = np.dstack([0.55 + 0.15 * grain, 0.38 + 0.1 * grain, 0.22 + 0.06 * grain]).astype(np.float32)
    for _ in range(14):  # clutter near the frame's edges
        cx = int(rng.choice([rng.integers(0, w // 8), rng.integers(7 * w // 8, w)]))
        cy = int(rng.integers(0, h))
        cv2.circle(bg, (cx, cy), int(rng.integers(10, 30)), tuple(float(v) for v in rng.uniform(0, 1, 3)), -1)
    bg = np.broadcast_to(bg, (h, w, 3)).copy()
    alpha = mug_matte(h, w)
    shade = 0.6 + 0.4 * np.cos(np.clip((x - 0.45) * 5, -1.5, 1.5))
    fg = np.dstack([0.75 * shade, 0.12 * shade, 0.12 * shade]).astype(np.float32)
    fg = np.broadcast_to(fg, (h, w, 3))
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None]) + rng.normal(0, 0.01, (h, w, 3))
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), alpha


def test_cluttered_rendered_photo_without_hints():
    rgb, truth = _cluttered_photo()
    cut = packshot.cutout(rgb, engine="classic")
    assert any("not plain" in n for n in cut.matte.notes)
    assert iou(cut.alpha, truth) >= 0.90
    hole = (truth < 0.01) & (mug_matte(*truth.shape, ss=4) < 0.01)
    ys, xs = np.nonzero(truth > 0.5)
    assert cut.alpha[ys.min():ys.max(), xs.min():xs.max()][hole[ys.min():ys.max(), xs.min():xs.max()]].mean() < 0.5


def test_phone_photo_in_context(shared_data):
    """The cookie on a paper towel on a table (3024x4032 phone photo): the cookie, not the towel."""
    cut = packshot.cutout(shared_data / "seed_products/aibackgrounds_cookie/cookie.jpeg")
    a = cut.alpha >= 0.5
    h, w = a.shape
    rgb = cut.photo.rgb.astype(np.int16)
    brown = (rgb[..., 0] < 150) & (rgb[..., 0] > rgb[..., 2] + 10)      # cookie-coloured
    towel = (rgb.min(axis=2) > 190)                                       # white paper towel
    n, labels, stats, _ = cv2.connectedComponentsWithStats(a.astype(np.uint8))
    assert n - 1 >= 1 and stats[1:, cv2.CC_STAT_AREA].max() >= 0.95 * a.sum()  # one main object
    assert 0.15 < a.mean() < 0.6
    assert (a & towel).sum() < 0.05 * a.sum()        # the towel is left out
    assert (a & brown).sum() > 0.65 * a.sum()        # what is kept is the cookie (75% brown; chunks are white)
    assert not a[: h // 10].any()                    # the table at the top is background
