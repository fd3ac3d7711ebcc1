"""Composite stage: exact paste-back (library and CLI), shadows that follow the light, reflections
only on gloss, light wrap confined to the soft edge, no dark halo, forced plain backgrounds."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

import packshot
from conftest import run_cli
from packshot.composite import compose, paste_exact, prepare
from packshot.errors import InvalidInputError
from packshot.types import Scene
from synth import mug_photo, truth_layer

GREY = (200, 200, 196)


def make_layer(size=(640, 480), canvas="640x480", colour=(180, 40, 40), **req):
    """A mug layer with exact truth alpha (no segmenter involved), laid out by the real layout stage."""
    return truth_layer(size, canvas, colour, **req)


def plain(layer, colour=GREY) -> np.ndarray:
    W, H = layer.size
    img = np.empty((H, W, 3), np.uint8)
    img[...] = colour
    return img


def scene(rgb, **kw) -> Scene:
    return Scene(rgb=rgb, seed=0, engine="test", **kw)


def luma(img) -> np.ndarray:
    return img.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])


# -- exact paste-back through the real entry points ---------------------------------------------------

@pytest.fixture(scope="module")
def mug_file(tmp_path_factory):
    rgb, _ = mug_photo((480, 360), "grey", seed=3, jpeg_quality=None)
    path = tmp_path_factory.mktemp("photo") / "mug.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def test_keep_framing_is_bit_exact_through_generate():
    rgb, truth = mug_photo((640, 480), "paper", seed=2)
    res = packshot.generate(rgb, keep_framing=True, n=2, seed=11, prompt="on a marble table, light from the left")
    opaque = res.cutout.alpha == 1.0
    assert opaque.sum() > 0.5 * (truth >= 0.999).sum()  # the check covers most of the product
    for cand in res.candidates:
        assert cand.image.shape == rgb.shape
        assert np.array_equal(cand.image[opaque], rgb[opaque])
        assert cand.scores["product_change"] == 0.0
        # and the scene really changed around it
        assert np.abs(cand.image[~opaque].astype(int) - rgb[~opaque]).mean() > 5


def test_keep_framing_is_bit_exact_through_cli(mug_file, tmp_path):
    path, rgb = mug_file
    out = tmp_path / "out"
    proc = run_cli("generate", path, "--keep-framing", "-n", "2", "--seed", "4", "-p", "on a wooden desk",
                   "-o", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    cut = np.asarray(Image.open(out / "cutout.png"))
    assert cut.shape == (*rgb.shape[:2], 4)
    opaque = cut[..., 3] == 255
    assert opaque.sum() > 10000
    for entry in doc["candidates"]:
        img = np.asarray(Image.open(out / entry["file"]).convert("RGB"))
        assert np.array_equal(img[opaque], rgb[opaque]), entry["file"]
        assert entry["scores"]["product_change"] == 0.0


# -- shadows --------------------------------------------------------------------------------------------

def _darkening(layer, light, **kw):
    bg = plain(layer)
    out = compose(scene(bg, light_dir=light, **kw), layer)
    dark = luma(bg) - luma(out)
    dark[layer.alpha > 0] = 0  # background pixels only
    return dark


def test_shadows_fall_under_the_base_and_on_the_side_the_light_travels_to():
    layer = make_layer()
    p = prepare(layer)
    x0, y0, x1, y1 = p.solid
    base, hp = p.base_y, p.height
    for light, side in (((0.7, 0.7), "right"), ((-0.7, 0.7), "left")):
        dark = _darkening(layer, light, shadow_strength=0.6)
        assert dark.min() >= 0  # shadows only darken
        under = dark[base:base + max(3, hp // 40), x0 + (x1 - x0) // 4:x1 - (x1 - x0) // 4]
        assert under.mean() > 20, "no contact shadow under the base"
        band = dark[base - hp // 10:base + hp // 5]
        right = band[:, x1 + 2:x1 + hp // 3].mean()
        left = band[:, max(0, x0 - hp // 3):x0 - 2].mean()
        if side == "right":
            assert right > 2 * left + 1, (light, left, right)
        else:
            assert left > 2 * right + 1, (light, left, right)
        # nothing far above the product or far to the other side
        assert dark[: max(1, y0 - 10)].max() < 1


def test_back_light_lays_the_cast_shadow_behind_the_base():
    layer = make_layer()
    p = prepare(layer)
    base, hp = p.base_y, p.height
    front = _darkening(layer, (0.0, 1.0))
    back = _darkening(layer, (0.0, -1.0))
    below = slice(base + hp // 20, base + hp // 6)
    assert front[below].sum() > 3 * back[below].sum()


def test_no_shadow_when_disabled_or_not_needed():
    layer = make_layer()
    bg = plain(layer)
    clear = layer.alpha == 0
    for img in (compose(scene(bg), layer, shadow=False),
                compose(scene(bg, needs_shadow=False), layer),
                compose(scene(bg, shadow_strength=0.0), layer)):
        assert np.array_equal(img[clear], bg[clear])


def test_stronger_shadow_strength_is_darker():
    layer = make_layer()
    weak = _darkening(layer, (0.35, 0.94), shadow_strength=0.2).sum()
    strong = _darkening(layer, (0.35, 0.94), shadow_strength=0.8).sum()
    assert strong > 1.5 * weak > 0


# -- reflection -----------------------------------------------------------------------------------------

def test_reflection_only_on_glossy_floors():
    layer = make_layer(colour=(30, 60, 200), canvas="600x900", placement="center", margin=0.25)
    p = prepare(layer)
    bg = plain(layer)
    x0, _, x1, _ = p.solid
    assert p.base_y + p.height // 2 < 900
    below = (slice(p.base_y + 2, p.base_y + p.height // 6), slice(x0 + 10, x1 - 10))
    matte = compose(scene(bg, gloss=0.0), layer, shadow=False)
    shiny = compose(scene(bg, gloss=0.8), layer, shadow=False)
    assert np.array_equal(matte[below], bg[below])
    # the floor under the product takes on the product's (blue) colour, fading with distance
    blue = shiny[below].astype(int)
    assert (blue[..., 2] - blue[..., 0]).mean() > (bg[..., 2].astype(int) - bg[..., 0]).mean() + 15
    near = np.abs(shiny[p.base_y + 2].astype(int) - bg[p.base_y + 2]).mean()
    far = np.abs(shiny[p.base_y + p.height // 3].astype(int) - bg[p.base_y + p.height // 3]).mean()
    assert near > far
    # nothing above the base (a round base's arc reflects from the arc: allow its height) changes
    top = p.base_y - p.height // 10
    assert np.array_equal(shiny[:top][layer.alpha[:top] == 0], bg[:top][layer.alpha[:top] == 0])


def test_no_reflection_on_a_forced_plain_background():
    layer = make_layer(canvas=None, preset="amazon")
    rng = np.random.default_rng(0)
    W, H = layer.size
    busy = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    out = compose(scene(busy, gloss=1.0), layer, shadow=False)
    clear = layer.alpha == 0
    assert (out[clear] == 255).all()
    opaque = layer.alpha >= 1.0
    assert np.array_equal(out[opaque], layer.rgb[opaque])


# -- edge blending ----------------------------------------------------------------------------------

def test_light_wrap_only_touches_the_soft_edge():
    layer = make_layer(colour=(220, 40, 40))
    rng = np.random.default_rng(1)
    W, H = layer.size
    bg = np.empty((H, W, 3), np.uint8)
    bg[...] = (30, 90, 240)
    bg[rng.random((H, W)) < 0.3] = (255, 255, 0)
    out = compose(scene(bg, needs_shadow=False), layer)
    ref = paste_exact(bg, layer)
    opaque = layer.alpha >= 1.0
    assert opaque.sum() > 1000
    assert np.array_equal(out[opaque], layer.rgb[opaque])
    soft = (layer.alpha > 0.05) & (layer.alpha < 0.95)
    assert soft.sum() > 50
    # the wrap moved the soft pixels toward the scene's light...
    assert np.abs(out[soft].astype(int) - ref[soft]).mean() > 2
    # ...and left the background as the plain composite
    clear = layer.alpha == 0
    assert np.array_equal(out[clear], ref[clear]) and np.array_equal(out[clear], bg[clear])


def test_no_dark_halo_ring():
    """The soft edge band is no darker than the reference composite (straight colour alpha-over)
    and far from what premultiplying twice would give."""
    layer = make_layer(colour=(235, 235, 235))
    bg = plain(layer, (245, 245, 245))
    out = compose(scene(bg, needs_shadow=False), layer)
    band = (layer.alpha > 0.05) & (layer.alpha < 0.95)
    a = layer.alpha[band][:, None]
    reference = layer.rgb[band] * a + bg[band] * (1 - a)
    doubled = layer.rgb[band] * a * a + bg[band] * (1 - a)  # the premultiplication bug
    got = luma(out[band][None])[0]
    assert got.mean() >= luma(reference[None])[0].mean() - 0.5
    assert got.mean() > luma(doubled[None])[0].mean() + 20
    # ring by ring: no dip in brightness across the edge
    assert (got >= luma(reference[None])[0] - 1.5).all()


def test_no_fringe_of_the_old_backdrop_on_a_keep_framing_green_screen():
    """Segmenter colour is decontaminated; the compositor must not bring the green back."""
    rgb, truth = mug_photo((640, 480), "green", seed=5, jpeg_quality=None)
    res = packshot.generate(rgb, keep_framing=True, n=1, seed=2, prompt="plain white studio", shadow=False)
    img = res.candidates[0].image.astype(np.float32)
    band = (truth > 0.1) & (truth < 0.9)
    assert band.sum() > 100
    green_excess = img[band][:, 1] - 0.5 * (img[band][:, 0] + img[band][:, 2])
    scene_px = res.candidates[0].scene.rgb[band].astype(np.float32)
    scene_excess = scene_px[:, 1] - 0.5 * (scene_px[:, 0] + scene_px[:, 2])
    assert green_excess.mean() < scene_excess.mean() + 15, green_excess.mean()


# -- plain backgrounds, inputs, caching -----------------------------------------------------------------

def test_forced_background_is_exact_outside_the_product():
    layer = make_layer(canvas=None, preset="amazon")
    W, H = layer.size
    assert (W, H) == (2000, 2000)
    off_white = plain(layer, (250, 248, 246))
    out = compose(scene(off_white), layer, shadow=False)
    clear = layer.alpha == 0
    assert (out[clear] == 255).all()
    opaque = layer.alpha >= 1.0
    assert np.array_equal(out[opaque], layer.rgb[opaque])


def test_scene_of_the_wrong_size_is_refused_with_both_sizes_named():
    layer = make_layer()
    with pytest.raises(InvalidInputError, match=r"640x480"):
        compose(scene(np.zeros((100, 100, 3), np.uint8)), layer)


def test_silhouette_work_is_done_once_per_layer_and_reused():
    layer = make_layer()
    p = prepare(layer)
    assert prepare(layer) is p
    bg = plain(layer)
    a = compose(scene(bg, light_dir=(0.7, 0.7), gloss=0.5), layer)
    keys = set(p.cache)
    b = compose(scene(bg, light_dir=(0.7, 0.7), gloss=0.5), layer)
    assert set(p.cache) == keys and np.array_equal(a, b)  # deterministic, nothing rebuilt
    compose(scene(bg, light_dir=(-0.7, 0.7)), layer)
    assert len(set(p.cache) - keys) == 1  # one new cast shadow for the new light direction


def test_empty_layer_gives_the_scene_back():
    layer = make_layer()
    empty = type(layer)(rgb=layer.rgb, alpha=np.zeros_like(layer.alpha), placement=layer.placement)
    bg = plain(layer)
    assert np.array_equal(compose(scene(bg), empty), bg)


def test_shadow_grid_maps_back_onto_the_canvas_at_large_sizes():
    """At 2048 px the shadow grid is reduced: the contact shadow must still hug the base."""
    layer = make_layer(size=(1600, 1200), canvas="2048x2048")
    p = prepare(layer)
    dark = _darkening(layer, (0.0, 1.0))
    x0, _, x1, _ = p.solid
    col = dark[:, (x0 + x1) // 2]
    below = col[p.base_y:p.base_y + p.height // 3]
    assert below[:8].mean() > 15
    assert int(np.argmax(below)) < max(6, p.height // 50)  # darkest right under the base
    assert cv2.countNonZero((dark[: p.solid[1] - 20] > 0.5).astype(np.uint8)) == 0


def test_contact_shadow_follows_the_round_base_not_the_handle():
    from packshot.composite.shadows import bottom_edges, contact_map, grid_of

    layer = make_layer()
    p = prepare(layer)
    x0, y0, x1, y1 = p.box
    bottom = y0 + bottom_edges(layer.alpha[y0:y1, x0:x1])
    gap = p.base_y - bottom
    contact, g = contact_map(p, layer), grid_of(p, layer)

    def at(x, y):  # contact shadow at a canvas point (nearest grid cell)
        u, v = g.to_cell(x, y)
        return float(contact[int(round(v)), int(round(u))])

    side = x0 + int(np.flatnonzero(np.isfinite(gap) & (gap > 0.03 * p.height) & (gap < 0.08 * p.height))[0])
    assert at(side, bottom[side - x0] + 1) > 0.3  # under the arc at the base's side, not only the lowest row
    assert at((x0 + x1) // 2, p.base_y + 1) > 0.5
    handle = x0 + np.flatnonzero(np.isfinite(gap) & (gap > 0.2 * p.height))
    assert len(handle) > 10
    for x in handle[::5]:
        assert at(x, bottom[x - x0] + 3) < 0.05  # nothing under the handle, which is in the air
