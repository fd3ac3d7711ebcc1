"""The studio scene's brightness is graded to the product photo's exposure (issue 17): a dim,
under-exposed product photo gets a darker scene (by at most 20 %), a well-exposed one (white
backdrop) leaves the scene as drawn, a dark mood is never lifted, and the product's pixels are
never touched. Products with known geometry (``synth.mug_matte``) as RGBA photos, run through the
library's public ``generate``."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import packshot
from packshot.backgrounds.look import Setting
from packshot.backgrounds.studio import EXPOSURE_BOUNDS, render_scene
from packshot.backgrounds.view import photo_exposure
from packshot.layout import place
from synth import mug_matte

PROMPT = "grey seamless sweep, soft light"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _photo(tmp_path, name: str, backdrop: int, colour) -> str:
    alpha = mug_matte(480, 640)
    rgb = np.empty(alpha.shape + (3,), np.uint8)
    rgb[:] = backdrop
    rgb[alpha >= 0.5] = colour
    path = tmp_path / name
    Image.fromarray(np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])).save(path)
    return str(path)


def _key(rgb: np.ndarray) -> float:
    return float(np.percentile(rgb.astype(np.float32) @ LUMA, 97))


def test_photo_exposure_reads_the_backdrop():
    assert photo_exposure(np.full((100, 100, 3), 246, np.uint8)) == pytest.approx(246 / 255, abs=0.01)
    assert photo_exposure(np.full((100, 100, 3), 140, np.uint8)) == pytest.approx(140 / 255, abs=0.01)
    assert photo_exposure(np.full((100, 100, 3), 20, np.uint8)) is None  # a black backdrop says nothing


def test_dim_photo_gets_a_darker_scene_and_the_product_stays_exact(tmp_path):
    bright = _photo(tmp_path, "bright.png", 246, (180, 40, 40))
    dim = _photo(tmp_path, "dim.png", 140, (100, 22, 22))   # the same mug, under-exposed
    keys, notes = {}, {}
    for name, path in (("bright", bright), ("dim", dim)):
        res = packshot.generate(path, PROMPT, n=1, seed=4, size="640x480")
        cand = res.candidates[0]
        layer = place(res.cutout, res.placement)
        solid = layer.alpha >= 1.0
        assert solid.sum() > 10_000
        assert np.array_equal(cand.image[solid], layer.rgb[solid])   # product pixels untouched
        outside = layer.alpha == 0
        keys[name] = _key(cand.scene.rgb[outside])
        notes[name] = cand.parameters.get("Exposure match")   # recorded, not a user-facing note
        assert not [n for n in cand.notes if "exposure" in n], cand.notes
    ratio = keys["dim"] / keys["bright"]
    # measured: 0.80 (clipped at the bound; the backdrop says 140/246 = 0.57)
    assert EXPOSURE_BOUNDS[0] - 0.03 <= ratio <= 0.9, keys
    assert notes["dim"] and "graded to 80%" in notes["dim"], notes
    assert not notes["bright"], notes


def test_a_dark_mood_is_never_lifted_and_no_exposure_leaves_the_scene():
    box = (220, 120, 420, 400)
    args = dict(product_box=box, floor_y=400)
    moody = "grey sweep, dark moody night"
    plain = render_scene(moody, (640, 480), 2, setting=Setting(), **args).rgb
    bright = render_scene(moody, (640, 480), 2, setting=Setting(exposure=1.0), **args).rgb
    assert np.array_equal(plain, bright)  # a well-exposed photo never brightens a dark scene
    dim = render_scene(PROMPT, (640, 480), 2, setting=Setting(exposure=0.3), **args)
    ref = render_scene(PROMPT, (640, 480), 2, setting=Setting(), **args)
    assert _key(dim.rgb) / _key(ref.rgb) == pytest.approx(EXPOSURE_BOUNDS[0], abs=0.02)
