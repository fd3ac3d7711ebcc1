"""Classic cut-out on real data: the plain-backdrop set with exact truth (recorded budgets), real
seller photos (checked by properties), and the CLI as a process.

Data is read from ../shared/data (skipped when missing, via the shared_data fixture)."""
from __future__ import annotations

from collections import defaultdict

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from packshot.io import load_image
from packshot.segment.classic import ClassicSegmenter
from packshot.types import Photo

# Recorded budgets on ../shared/tools/make_backdrop_set.py's set (12 objects x 5 backdrops,
# 1200x1200). Issue 2 asks mean IoU >= 0.95, issue 3 mean IoU >= 0.97 and mean MAE <= 0.015.
# Measured when recorded: mean IoU 0.9765, mean MAE 0.0065; per backdrop IoU 0.9727 (white) to
# 0.9792 (paper); worst single photo 0.854 (troll dolls: very fine hair).
SET_MEAN_IOU = 0.970
SET_MEAN_MAE = 0.010
SET_BACKDROP_IOU = 0.965   # every backdrop type
SET_WORST_IOU = 0.83       # every photo


@pytest.fixture(scope="module")
def seg():
    return ClassicSegmenter()


def _load(path) -> Photo:
    return Photo(np.asarray(Image.open(path).convert("RGB")), source=str(path))


def test_backdrop_set_budgets(backdrop_set, seg):
    photos = sorted(backdrop_set.glob("*.jpg"))
    assert len(photos) >= 50
    per_backdrop = defaultdict(list)
    rows = []
    for path in photos:
        truth = np.asarray(Image.open(str(path)[:-4] + ".alpha.png").convert("L"), np.float32) / 255
        alpha = seg.segment(_load(path)).alpha
        a, t = alpha >= 0.5, truth >= 0.5
        iou = (a & t).sum() / (a | t).sum()
        mae = float(np.abs(alpha - truth).mean())
        rows.append((path.stem, iou, mae))
        per_backdrop[path.stem.split("__")[1]].append(iou)
    ious = np.array([r[1] for r in rows])
    maes = np.array([r[2] for r in rows])
    report = f"mean IoU {ious.mean():.4f}, mean MAE {maes.mean():.4f}, worst {min(rows, key=lambda r: r[1])}"
    assert ious.mean() >= SET_MEAN_IOU, report
    assert maes.mean() <= SET_MEAN_MAE, report
    for name, vals in per_backdrop.items():
        assert np.mean(vals) >= SET_BACKDROP_IOU, (name, np.mean(vals), report)
    assert ious.min() >= SET_WORST_IOU, report


SEEDS = {
    "soap": "nivedkris_product1_shaving_soap/product1.jpg",
    "bottle": "nivedkris_product3_aftershave_bottle/product3.jpg",
    "loafers": "nivedkris_product4_loafers/product4.jpg",
}


@pytest.fixture(scope="module")
def seed_cutouts(shared_data, seg):
    out = {}
    for name, rel in SEEDS.items():
        photo = load_image(shared_data / "seed_products" / rel)
        out[name] = (photo, seg.segment(photo))
    return out


def _components(mask: np.ndarray) -> list[int]:
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return sorted(stats[1:, cv2.CC_STAT_AREA].tolist(), reverse=True)


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_seed_products_properties(seed_cutouts, name):
    photo, matte = seed_cutouts[name]
    w, h = photo.size
    a = matte.alpha
    assert a.shape == (h, w)
    m = a >= 0.5
    # one product (the pair of loafers overlaps into one silhouette), no background blobs
    comps = _components(m)
    assert comps[0] > 0.98 * m.sum(), comps[:5]
    # the border is backdrop
    border = np.concatenate([a[:8].ravel(), a[-8:].ravel(), a[:, :8].ravel(), a[:, -8:].ravel()])
    assert border.max() == 0.0
    # the product is solid: no false holes inside its outline
    filled = m.copy()
    cnts, _ = cv2.findContours(m.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(filled.view(np.uint8), cnts, -1, 1, -1)
    assert m.sum() / filled.sum() > 0.995
    # exact paste-back: opaque pixels keep the photo's colour
    opaque = a == 1.0
    assert np.array_equal(matte.foreground[opaque], photo.rgb[opaque])
    x0, y0, x1, y1 = matte.bbox()
    bw, bh = (x1 - x0) / w, (y1 - y0) / h
    cover = m.mean()
    # plausible boxes (measured on the photos by eye: product extents, shadows excluded)
    if name == "soap":        # round tin, ~56% x 54% of the frame; its shadow is not the product
        assert 0.50 < bw < 0.62 and 0.48 < bh < 0.58, (bw, bh)
        assert 0.20 < cover < 0.27
        assert y1 < 0.80 * h  # the cast shadow below the tin (to ~y=0.79h) is excluded
    elif name == "bottle":    # tall bottle
        assert 0.26 < bw < 0.33 and 0.68 < bh < 0.76, (bw, bh)
        assert 0.15 < cover < 0.21
    else:                     # both loafers: nearly the full width
        assert 0.90 < bw < 0.99 and 0.42 < bh < 0.52, (bw, bh)
        assert 0.27 < cover < 0.34
        # both shoes kept: the front shoe's heel fills the left tenth, the back shoe's toe the
        # right tenth (a single shoe would leave one of them empty)
        assert m[:, : w // 10].sum() > 0.01 * m.sum() and m[:, -w // 10:].sum() > 0.01 * m.sum()
        # and the gap between them (the back shoe's deep contact shadow, grey 109) is not product
        assert not m[int(0.62 * h), int(0.86 * w)]


def test_cli_cutout_writes_the_matte(shared_data, tmp_path, seed_cutouts):
    src = shared_data / "seed_products" / SEEDS["loafers"]
    out = tmp_path / "loafers.png"
    proc = run_cli("cutout", src, "-o", out, "--engine", "classic")
    assert proc.returncode == 0, proc.stderr
    assert "engine classic" in proc.stdout
    img = Image.open(out)
    assert img.mode == "RGBA" and img.size == (1800, 1800)
    rgba = np.asarray(img)
    photo, matte = seed_cutouts["loafers"]
    assert np.array_equal(rgba[..., 3], np.round(matte.alpha * 255).astype(np.uint8))
    opaque = rgba[..., 3] == 255
    assert np.array_equal(rgba[..., :3][opaque], photo.rgb[opaque])


# -- box hints on cluttered photos (issue 3) ---------------------------------------------------------
# Recorded budgets, ground-truth box + 5% margin as the hint, the 12 matting photos of
# ../shared/data/matting (GrabCut set: the 128 "unknown" band of gt3level is ignored).
# Measured when recorded: ours mean IoU 0.913 (worst: plush donkey 0.51, the box is the whole
# left of the frame), plain OpenCV GrabCut on the same box at the same preview size 0.836
# (at full resolution 0.834, see benchmarks/bench_cutout.py).
BOX_MEAN_IOU = 0.90
BOX_GAIN_OVER_GRABCUT = 0.05


def matting_pairs(shared_data):
    """(name, rgb, truth float HxW, ignore bool HxW | None) for each matting pair."""
    d = shared_data / "matting"
    for img_path in sorted(d.glob("*_image.*")):
        stem = img_path.name.rsplit("_image", 1)[0]
        rgb = np.asarray(Image.open(img_path).convert("RGB"))
        if (d / f"{stem}_alpha.png").exists():
            truth = np.asarray(Image.open(d / f"{stem}_alpha.png").convert("L"), np.float32) / 255
            ignore = None
        else:
            g = np.asarray(Image.open(d / f"{stem}_gt3level.png").convert("L"))
            truth, ignore = (g >= 200).astype(np.float32), (g > 50) & (g < 200)
        yield stem, rgb, truth, ignore


def gt_box(truth: np.ndarray, margin: float = 0.05):
    ys, xs = np.nonzero(truth >= 0.5)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    h, w = truth.shape
    return (max(0, int(x0 - mx)), max(0, int(y0 - my)), min(w, int(np.ceil(x1 + mx))), min(h, int(np.ceil(y1 + my))))


def masked_iou(a, t, ignore):
    a, t = a >= 0.5, t >= 0.5
    if ignore is not None:
        a, t = a & ~ignore, t & ~ignore
    return float((a & t).sum() / (a | t).sum())


def plain_grabcut(rgb, box, side=400, iterations=5):
    """OpenCV GrabCut initialised with the rectangle, on the same preview size as ours."""
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    small = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    x0, y0, x1, y1 = (int(round(v * s)) for v in box)
    mask = np.zeros(small.shape[:2], np.uint8)
    cv2.setRNGSeed(0)
    cv2.grabCut(np.ascontiguousarray(small[..., ::-1]), mask, (x0, y0, max(1, x1 - x0 - 1), max(1, y1 - y0 - 1)),
                np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_RECT)
    fg = ((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)).astype(np.float32)
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_LINEAR)


def test_box_hint_on_cluttered_photos(shared_data):
    from packshot.segment.interactive import InteractiveCutout
    from packshot.types import Hints

    ours, theirs = [], []
    for name, rgb, truth, ignore in matting_pairs(shared_data):
        box = gt_box(truth)
        matte = InteractiveCutout(Photo(rgb, source=name)).commit(Hints(boxes=(box,)))
        ours.append(masked_iou(matte.alpha, truth, ignore))
        theirs.append(masked_iou(plain_grabcut(rgb, box), truth, ignore))
    assert len(ours) == 12
    report = f"ours {np.mean(ours):.4f} vs GrabCut {np.mean(theirs):.4f}: {np.round(ours, 3)}"
    print(report)
    assert np.mean(ours) >= BOX_MEAN_IOU, report
    assert np.mean(ours) >= np.mean(theirs) + BOX_GAIN_OVER_GRABCUT, report
