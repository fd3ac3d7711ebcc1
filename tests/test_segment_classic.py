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


# -- interactive (issue 3) --------------------------------------------------------------------------
from packshot.errors import InvalidInputError  # noqa: E402
from packshot.segment.interactive import InteractiveCutout  # noqa: E402
from packshot.segment.refine import delta_e2000, halo_delta_e, refine_matte  # noqa: E402
from packshot.types import Hints  # noqa: E402
from synth import mug_matte  # noqa: E402


def cluttered_mug(w=640, h=480, seed=0, extra=False):
    """A red mug in front of clutter (random coloured shapes, a shelf-like gradient). Exact truth.
    The clutter's colours are kept away from the mug's red (a colour model cannot separate equal
    colours; that is not what this measures).

    ``extra``: also a green bottle-like block standing next to the mug, inside a loose box.
    Returns (rgb uint8, alpha float32, product colour float32 HxWx3)."""
    rng = np.random.default_rng(seed)
    bg = np.zeros((h, w, 3), np.float32)
    bg[:] = np.linspace(0.25, 0.55, w, dtype=np.float32)[None, :, None] * np.float32([1.0, 0.9, 0.7])
    for _ in range(40):
        c = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        while np.linalg.norm(c - np.float32([0.7, 0.12, 0.14])) < 0.35:
            c = rng.uniform(0.1, 0.9, 3).astype(np.float32)
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        if rng.random() < 0.5:
            cv2.rectangle(bg, (x, y), (x + int(rng.integers(10, 120)), y + int(rng.integers(10, 120))), c.tolist(), -1)
        else:
            cv2.circle(bg, (x, y), int(rng.integers(5, 50)), c.tolist(), -1)
    bg = cv2.GaussianBlur(bg, (0, 0), 1.2)
    alpha = mug_matte(h, w)
    fg = np.broadcast_to(np.float32([0.78, 0.12, 0.14]), (h, w, 3)).copy()
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    fg *= 0.75 + 0.25 * np.cos(np.clip(xx * 1.6, -1.5, 1.5))
    if extra:
        block = np.zeros((h, w), np.float32)
        block[int(0.35 * h):int(0.8 * h), int(0.78 * w):int(0.9 * w)] = 1
        fg = np.where(block[..., None] > 0, np.float32([0.1, 0.6, 0.25]), fg)
        alpha = np.maximum(alpha, block)
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    img += rng.normal(0, 0.008, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), alpha, fg


def _box_of(alpha, margin=0.05):
    ys, xs = np.nonzero(alpha >= 0.5)
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    mx, my = int(margin * (x1 - x0)), int(margin * (y1 - y0))
    h, w = alpha.shape
    return (max(0, x0 - mx), max(0, y0 - my), min(w, x1 + mx), min(h, y1 + my))


def test_box_on_clutter():
    rgb, truth, _ = cluttered_mug(seed=1)
    session = InteractiveCutout(Photo(rgb, source="clutter"))
    hints = Hints(boxes=(_box_of(truth),))
    pv = session.preview(hints)
    assert pv.dtype == np.float32 and pv.shape == session.preview_size[::-1]
    matte = session.commit(hints)
    assert matte.alpha.shape == truth.shape and matte.engine == "classic"
    assert iou(matte.alpha, truth) >= 0.95  # measured 0.976
    # the handle's hole shows clutter: GrabCut's smoothness may close part of it (measured: 68%
    # of it stays open here; on plain backdrops it stays fully open, see test_mug_on_each_backdrop)
    assert (matte.alpha[_handle_hole(mug_matte(*truth.shape))] < 0.5).mean() > 0.6
    opaque = matte.alpha == 1.0
    assert np.array_equal(matte.foreground[opaque], rgb[opaque])


def test_clicks_correct_the_box():
    """A loose box around a mug and a green block: a negative click on the block removes it, a
    positive click on it brings it back."""
    rgb, truth_both, _ = cluttered_mug(seed=2, extra=True)
    mug = mug_matte(*truth_both.shape)
    session = InteractiveCutout(Photo(rgb))
    box = _box_of(truth_both)
    block_pt = (int(0.84 * rgb.shape[1]), int(0.6 * rgb.shape[0]))
    both = session.commit(Hints(boxes=(box,)))
    assert both.alpha[block_pt[1], block_pt[0]] >= 0.5
    only_mug = session.commit(Hints(boxes=(box,), neg_points=(block_pt,)))
    assert only_mug.alpha[block_pt[1], block_pt[0]] < 0.5
    assert iou(only_mug.alpha, mug) >= 0.93
    back = session.commit(Hints(boxes=(box,), neg_points=(block_pt,), points=(block_pt,)))
    assert back.alpha[block_pt[1], block_pt[0]] >= 0.5


def test_preview_is_a_pure_function_of_the_hints():
    rgb, truth, _ = cluttered_mug(seed=3)
    box = _box_of(truth)
    h1 = Hints(boxes=(box,))
    h2 = Hints(boxes=(box,), points=((320, 240),), neg_points=((20, 20),))
    s = InteractiveCutout(Photo(rgb))
    a1, a2, a1_again = s.preview(h1), s.preview(h2), s.preview(h1)
    assert np.array_equal(a1, a1_again)
    fresh = InteractiveCutout(Photo(rgb))
    assert np.array_equal(fresh.preview(h2), a2)  # no history: same hints, same answer
    assert np.array_equal(fresh.preview(Hints(boxes=(box,), points=((320, 240),), neg_points=((20, 20),))),
                          fresh.preview(Hints(boxes=(box,), neg_points=((20, 20),), points=((320, 240),))))


def test_segmenter_with_hints_is_the_session_commit():
    rgb, truth, _ = cluttered_mug(seed=4)
    hints = Hints(boxes=(_box_of(truth),), points=((300, 250),))
    a = ClassicSegmenter().segment(Photo(rgb), hints).alpha
    b = InteractiveCutout(Photo(rgb)).commit(hints).alpha
    assert np.array_equal(a, b)


def test_clicks_on_a_plain_backdrop_select_parts():
    left, _ = mug_photo((400, 400), "white", seed=5, jpeg_quality=None)
    right, tb = mug_photo((400, 400), "white", seed=6, color=(40, 60, 170), jpeg_quality=None)
    rgb = np.concatenate([left, right], axis=1)
    truth_right = np.concatenate([np.zeros_like(tb), tb], axis=1)
    s = InteractiveCutout(Photo(rgb))
    assert s.plain_backdrop() is not None
    a = s.commit(Hints(points=((560, 200),))).alpha
    assert iou(a, truth_right) >= 0.99


@pytest.mark.parametrize("hints,needle", [
    (Hints(points=((900, 10),)), "point 900,10 is outside"),
    (Hints(boxes=((10, 10, 700, 50),)), "box 10,10,700,50 is not inside"),
    (Hints(boxes=((10, 10, 11, 11),)), "too small"),
])
def test_bad_hints_name_the_value(hints, needle):
    rgb, _, _ = cluttered_mug(seed=6)
    with pytest.raises(InvalidInputError) as err:
        InteractiveCutout(Photo(rgb)).preview(hints)
    assert needle in str(err.value)


def test_ciede2000_reference_values():
    # Sharma, Wu & Dalal (2005), test data pairs 1, 2, 7, 17, 18, 19, 20, 25
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
             ((50, 3.1571, -77.2803), (50, 0, -82.7485), 2.8615),
             ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (73, 25, -18), 27.1492),
             ((50, 2.5, 0), (61, -5, 29), 22.8977),
             ((50, 2.5, 0), (56, -27, -3), 31.9030),
             ((50, 2.5, 0), (58, 24, 15), 19.4535),
             ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644)]
    a = np.array([p[0] for p in pairs], float)
    b = np.array([p[1] for p in pairs], float)
    assert np.allclose(delta_e2000(a, b), [p[2] for p in pairs], atol=1e-4)
    assert np.allclose(delta_e2000(b, a), [p[2] for p in pairs], atol=1e-4)


def halo_scene(jpeg_quality: int | None = 92, size=(800, 600)):
    """The red mug on a saturated green backdrop, exact truth. Returns (rgb, alpha, fg float)."""
    import io

    from PIL import Image
    w, h = size
    alpha = mug_matte(h, w)
    xx = np.linspace(-1, 1, w, dtype=np.float32)[None, :, None]
    fg = np.float32([180, 40, 40]) / 255 * (0.65 + 0.35 * np.cos(np.clip(xx * 1.6, -1.5, 1.5)))
    fg = np.broadcast_to(fg, (h, w, 3)).astype(np.float32)
    bg = backdrop(h, w, *BACKDROPS["green"])
    img = fg * alpha[..., None] + bg * (1 - alpha[..., None])
    img += np.random.default_rng(0).normal(0, 0.006, img.shape).astype(np.float32)
    rgb = (np.clip(img, 0, 1) * 255).round().astype(np.uint8)
    if jpeg_quality:
        buf = io.BytesIO()
        Image.fromarray(rgb).save(buf, "JPEG", quality=jpeg_quality)  # 4:2:0 chroma, as cameras
        rgb = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    return rgb, alpha, fg


# Recorded halo budgets: mean CIEDE2000 in the edge band (3 px either side of the true edge),
# cut-out composited on white vs the truth composited on white. Measured: 3.77 (JPEG q92 4:2:0),
# 0.40 (lossless); without decontamination 7.27 / 2.72.
HALO_DE_JPEG = 4.5
HALO_DE_LOSSLESS = 0.8


@pytest.mark.parametrize("quality,budget", [(92, HALO_DE_JPEG), (None, HALO_DE_LOSSLESS)])
def test_no_green_halo_on_white(quality, budget):
    rgb, alpha, fg = halo_scene(quality)
    matte = ClassicSegmenter().segment(Photo(rgb))
    de = halo_delta_e(matte.alpha, matte.foreground, alpha, fg)
    de_raw = halo_delta_e(matte.alpha, rgb, alpha, fg)  # same matte, photo colours (no despill)
    assert de <= budget, (de, de_raw)
    assert de < 0.6 * de_raw


def test_refine_matte_sharpens_a_rough_mask():
    """The entry point other engines (SAM) use: a blocky mask in, a soft full-size matte out."""
    rgb, truth, _ = cluttered_mug(seed=7)
    # like a model's low-resolution logits upsampled: a mask at 1/8 size, bilinear, thresholded
    low = cv2.resize((truth >= 0.5).astype(np.float32), (80, 60), interpolation=cv2.INTER_AREA)
    rough = (cv2.resize(low, truth.shape[::-1], interpolation=cv2.INTER_LINEAR) >= 0.5).astype(np.float32)
    out = refine_matte(rgb, rough, band_px=8)
    assert out.alpha.shape == truth.shape and out.foreground.shape == rgb.shape
    assert np.abs(out.alpha - truth).mean() < 0.6 * np.abs(rough - truth).mean()


def test_photo_with_its_own_transparency():
    """An RGBA cut-out whose transparent pixels store black: read as a product on white."""
    rgb, truth = mug_photo((640, 480), "white", seed=9, jpeg_quality=None)
    stored = rgb.copy()
    stored[truth < 0.5] = 0
    photo = Photo(stored, alpha=(truth >= 0.5).astype(np.float32))
    a = ClassicSegmenter().segment(photo).alpha
    assert iou(a, truth) >= 0.98
