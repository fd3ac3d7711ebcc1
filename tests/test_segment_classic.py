"""Classic segmentation on rendered photos with exact truth: backdrops, shadows, holes, parts,
specks, exact paste-back pixels, errors. Fast (small renders)."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from packshot.errors import NoProductFoundError
from packshot.segment import SEGMENTERS
from packshot.segment.classic import ClassicSegmenter
from packshot.types import Photo
from synth import BACKDROPS, backdrop, iou, mug_photo

# Recorded budgets (measured: IoU >= 0.9989, MAE <= 0.0020 on every backdrop, 800x600).
MUG_IOU = 0.995
MUG_MAE = 0.004


@pytest.fixture(scope="module")
def seg():
    return ClassicSegmenter()


def _handle_hole(alpha_truth: np.ndarray) -> np.ndarray:
    """Pixels inside the mug handle's hole: background enclosed by the product."""
    bg = (alpha_truth < 0.01).astype(np.uint8)
    n, lab = cv2.connectedComponents(bg, connectivity=4)
    border = set(np.unique(np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])))
    holes = [i for i in range(1, n) if i not in border]
    assert holes, "the rendered mug has a handle hole"
    return np.isin(lab, holes)


@pytest.mark.parametrize("name", sorted(BACKDROPS))
def test_mug_on_each_backdrop(seg, name):
    rgb, truth = mug_photo((800, 600), name, seed=2)
    matte = seg.segment(Photo(rgb, source=f"mug-{name}"))
    a = matte.alpha
    assert a.shape == truth.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    assert matte.engine == "classic"
    assert iou(a, truth) >= MUG_IOU
    assert np.abs(a - truth).mean() <= MUG_MAE
    # the real hole in the handle stays a hole
    hole = _handle_hole(truth)
    assert (a[hole] < 0.5).mean() > 0.98
    # the contact shadow under the base is not product
    ys, xs = np.nonzero(truth > 0.5)
    below = np.zeros_like(truth, bool)
    below[ys.max() + 3: ys.max() + 15, xs.min(): xs.max()] = True
    assert a[below].max() < 0.5


def test_opaque_pixels_keep_the_photos_exact_colour(seg):
    rgb, _ = mug_photo((640, 480), "pastel", seed=4)
    matte = seg.segment(Photo(rgb))
    a, fg = matte.alpha, matte.foreground
    assert fg is not None and fg.shape == rgb.shape and fg.dtype == np.uint8
    opaque = a == 1.0
    assert opaque.sum() > 0.15 * a.size
    assert np.array_equal(fg[opaque], rgb[opaque])
    # the colour changes only in soft pixels
    changed = np.any(fg != rgb, axis=2)
    assert not changed[(a == 0.0) | (a == 1.0)].any()
    soft = (a > 0) & (a < 1)
    assert soft.sum() > 0


def test_dark_neutral_product_and_its_contact_shadow():
    """A charcoal box on white: as dark as a deep shadow and as colourless; the box is kept, its
    shadow is not (the shadow is smooth, the box has edges)."""
    h, w = 480, 640
    bg = backdrop(h, w, (250, 250, 250), (238, 238, 238))
    truth = np.zeros((h, w), np.float32)
    truth[150:330, 220:420] = 1.0
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (320, 330), (130, 14), 0, 0, 360, 1.0, -1)
    shadow = cv2.GaussianBlur(shadow, (0, 0), 8) * 0.55
    bg *= (1 - shadow)[..., None]
    img = np.float32([0.22, 0.22, 0.23]) * truth[..., None] + bg * (1 - truth[..., None])
    img += np.random.default_rng(0).normal(0, 0.005, img.shape).astype(np.float32)
    rgb = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    a = ClassicSegmenter().segment(Photo(rgb)).alpha
    assert iou(a, truth) >= 0.98
    assert a[340:350, 200:440].max() < 0.5  # the shadow right under the box


def test_separate_parts_are_kept_and_specks_dropped(seg):
    """A pair (two mugs side by side) stays a pair; dust specks on the backdrop go."""
    left, ta = mug_photo((400, 400), "white", seed=5, jpeg_quality=None)
    right, tb = mug_photo((400, 400), "white", seed=6, color=(40, 60, 170), jpeg_quality=None)
    rgb = np.concatenate([left, right], axis=1)
    truth = np.concatenate([ta, tb], axis=1)
    for x, y in [(30, 30), (760, 50), (400, 380), (100, 370)]:  # 2x2 px dark specks
        rgb[y:y + 2, x:x + 2] = 40
    a = seg.segment(Photo(rgb)).alpha
    n, _, stats, _ = cv2.connectedComponentsWithStats((a >= 0.5).astype(np.uint8), connectivity=8)
    assert n - 1 == 2, stats
    assert iou(a, truth) >= 0.99


def test_product_touching_the_border(seg):
    rgb, truth = mug_photo((800, 600), "paper", seed=7)
    rgb, truth = rgb[:430], truth[:430]  # the mug is cut by the bottom edge
    a = seg.segment(Photo(rgb)).alpha
    assert iou(a, truth) >= 0.99


@pytest.mark.parametrize("make", [
    lambda: np.full((300, 400, 3), 246, np.uint8),
    lambda: (backdrop(300, 400, *BACKDROPS["grey"]) * 255).astype(np.uint8),
    lambda: np.full((1, 1, 3), 128, np.uint8),
])
def test_nothing_to_cut_out(seg, make):
    with pytest.raises(NoProductFoundError) as err:
        seg.segment(Photo(make(), source="blank.jpg"))
    assert str(err.value).startswith("blank.jpg: ")
    assert "\n" not in str(err.value)


def test_registered_and_deterministic():
    seg = SEGMENTERS.create("classic", settings=None)
    assert seg.name == "classic"
    rgb, _ = mug_photo((400, 300), "grey", seed=8)
    a1 = seg.segment(Photo(rgb)).alpha
    a2 = ClassicSegmenter().segment(Photo(rgb.copy())).alpha
    assert np.array_equal(a1, a2)
