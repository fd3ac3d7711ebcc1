"""Score stage: fidelity, object expansion, seams, separation, exposure, preset compliance, ranking."""
from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

import packshot
from conftest import run_cli
from packshot.composite import compose, paste_exact
from packshot.errors import InvalidInputError
from packshot.layout import place
from packshot.score import rank, score_candidate, score_image
from packshot.score.ranking import overall, with_cutout_confidence
from packshot.types import Candidate, Scene
from synth import mug_photo, truth_layer


def make_layer(colour=(180, 40, 40), canvas="640x480", **req):
    return truth_layer((640, 480), canvas, colour, **req)


def plain(layer, colour=(226, 224, 220)):
    W, H = layer.size
    img = np.empty((H, W, 3), np.uint8)
    img[...] = colour
    return img


def cand(image, scene, seed=0, scores=None) -> Candidate:
    return Candidate(image=image, seed=seed, engine=scene.engine, prompt="", parameters={}, scene=scene,
                     scores=dict(scores or {}))


@pytest.fixture(scope="module")
def studio_result():
    rgb, _ = mug_photo((640, 480), "grey", seed=4)
    return packshot.generate(rgb, n=3, seed=21, size="512x512", prompt="on a wooden table, soft light")


def test_studio_outputs_keep_the_product_exactly_and_are_ranked(studio_result):
    res = studio_result
    layer = place(res.cutout, res.placement)
    overalls = [c.scores["overall"] for c in res.candidates]
    assert overalls == sorted(overalls, reverse=True)
    for c in res.candidates:
        s = c.scores
        assert s["product_change"] == 0.0
        assert 0.0 <= s["overall"] <= 1.0 and all(math.isfinite(v) for v in s.values())
        assert s["compliance"] == 1.0 and "raw_product_change" not in s
        assert s["object_expansion"] < 0.2
        # recomputing gives the same numbers (deterministic, cache-independent)
        # (the pipeline folds the cut-out's confidence into the scores the same way)
        again = with_cutout_confidence(score_candidate(c, layer, res.placement), res.cutout.matte.confidence)
        assert again == pytest.approx(s)


def test_product_change_sees_an_edited_product():
    layer = make_layer()
    sc = Scene(rgb=plain(layer), seed=0, engine="t")
    img = compose(sc, layer)
    clean = score_image(img, layer, sc)
    edited = img.copy()
    ys, xs = np.nonzero(layer.alpha >= 1.0)
    edited[ys[::7], xs[::7]] = 0
    s = score_image(edited, layer, sc)
    assert clean["product_change"] == 0.0
    assert s["product_change"] > 5
    assert s["overall"] < clean["overall"] - 0.2


def test_raw_product_change_measures_the_models_own_pixels():
    layer = make_layer()
    bg = plain(layer)
    same = Scene(rgb=bg, seed=0, engine="t", raw_product=paste_exact(bg, layer), generated=True)
    drift_rgb = paste_exact(bg, layer)
    drift_rgb[layer.alpha >= 0.5] = (40, 40, 180)  # the model painted a blue mug
    drift = Scene(rgb=bg, seed=1, engine="t", raw_product=drift_rgb, generated=True)
    s_same = score_image(compose(same, layer), layer, same)
    s_drift = score_image(compose(drift, layer), layer, drift)
    assert s_same["raw_product_change"] < 1.0
    assert s_drift["raw_product_change"] > 50
    assert s_drift["product_change"] == 0.0  # the pasted-back product is still exact
    assert s_drift["overall"] < s_same["overall"]
    bad = Scene(rgb=bg, seed=2, engine="t", raw_product=np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InvalidInputError, match="raw_product"):
        score_image(compose(bad, layer), layer, bad)


def test_object_expansion_flags_a_product_grown_past_its_mask():
    layer = make_layer()
    bg = plain(layer)
    mask = (layer.alpha > 0.5).astype(np.uint8)
    grown = bg.copy()
    grown[cv2.dilate(mask, np.ones((25, 25), np.uint8)) > 0] = (175, 42, 40)
    clean_sc = Scene(rgb=bg, seed=0, engine="t", generated=True)
    grown_sc = Scene(rgb=grown, seed=1, engine="t", generated=True)
    clean = score_image(compose(clean_sc, layer), layer, clean_sc)
    bad = score_image(compose(grown_sc, layer), layer, grown_sc)
    assert clean["object_expansion"] < 0.1
    assert bad["object_expansion"] > 0.8
    assert bad["overall"] < clean["overall"] - 0.1


def test_seam_flags_a_glow_the_engine_painted_around_the_product():
    layer = make_layer()
    bg = plain(layer)
    mask = (layer.alpha > 0.02).astype(np.uint8)
    ring = (cv2.dilate(mask, np.ones((5, 5), np.uint8)) > 0) & (mask == 0)
    glow = bg.copy()
    glow[ring] = 255
    clean_sc = Scene(rgb=bg, seed=0, engine="t", generated=True)
    glow_sc = Scene(rgb=glow, seed=1, engine="t", generated=True)
    s_clean = score_image(compose(clean_sc, layer), layer, clean_sc)
    s_glow = score_image(compose(glow_sc, layer), layer, glow_sc)
    assert s_clean["seam"] < 0.5
    assert s_glow["seam"] > 5
    assert s_glow["overall"] < s_clean["overall"]


def test_own_shadows_do_not_count_as_a_seam():
    layer = make_layer()
    bg = plain(layer)
    flat = Scene(rgb=bg, seed=0, engine="t", needs_shadow=False)
    dark = Scene(rgb=bg, seed=0, engine="t", shadow_strength=1.0)
    s_flat = score_image(compose(flat, layer), layer, flat)
    s_dark = score_image(compose(dark, layer), layer, dark)
    assert s_dark["seam"] == s_flat["seam"] < 0.5
    assert s_dark["fringe"] < 3


def test_fringe_flags_old_backdrop_colour_in_the_soft_edge():
    layer = make_layer(colour=(180, 40, 40))
    bg = plain(layer, (240, 240, 240))
    sc = Scene(rgb=bg, seed=0, engine="t", needs_shadow=False)
    soft = (layer.alpha > 0.0) & (layer.alpha < 1.0)
    green = layer.rgb.copy()
    green[soft] = (20, 200, 60)  # soft pixels still carrying a chroma-green backdrop
    dirty = type(layer)(rgb=green, alpha=layer.alpha, placement=layer.placement)
    s_clean = score_image(compose(sc, layer), layer, sc)
    s_dirty = score_image(compose(sc, dirty), dirty, sc)
    assert s_clean["fringe"] < 3
    assert s_dirty["fringe"] > 3 * s_clean["fringe"] + 5
    assert s_dirty["overall"] < s_clean["overall"]
    # a dark halo: light product on a light background, soft pixels premultiplied twice
    light = make_layer(colour=(230, 226, 220))
    a = light.alpha[..., None]
    halo_rgb = np.where(a < 1, np.round(light.rgb * a), light.rgb).astype(np.uint8)
    halo = type(light)(rgb=halo_rgb, alpha=light.alpha, placement=light.placement)
    s_ok = score_image(compose(sc, light), light, sc)
    s_halo = score_image(compose(sc, halo), halo, sc)
    assert s_ok["fringe"] < 2 < 10 < s_halo["fringe"]


def test_separation_is_low_for_a_white_product_on_white():
    white = make_layer(colour=(246, 246, 246))
    red = make_layer(colour=(180, 40, 40))
    bg = plain(white, (250, 250, 250))
    sc = Scene(rgb=bg, seed=0, engine="t", needs_shadow=False)
    s_white = score_image(compose(sc, white), white, sc)
    s_red = score_image(compose(sc, red), red, sc)
    assert s_white["separation"] < 0.2 < 0.9 < s_red["separation"]
    assert s_white["contrast"] < 5 < 40 < s_red["contrast"]


def test_exposure_penalises_a_blown_out_scene():
    layer = make_layer()
    sc_ok = Scene(rgb=plain(layer), seed=0, engine="t")
    sc_blown = Scene(rgb=plain(layer, (255, 255, 255)), seed=1, engine="t", needs_shadow=False)
    sc_black = Scene(rgb=plain(layer, (0, 0, 0)), seed=2, engine="t")
    ok = score_image(compose(sc_ok, layer), layer, sc_ok)
    blown = score_image(compose(sc_blown, layer), layer, sc_blown)
    black = score_image(compose(sc_black, layer), layer, sc_black)
    assert ok["exposure"] == 1.0 and ok["clipped_highlights"] == 0.0
    assert blown["clipped_highlights"] > 0.9 and blown["exposure"] < 0.6
    assert black["clipped_shadows"] > 0.9 and black["exposure"] < 0.1


def test_compliance_detects_a_border_that_is_not_pure_white():
    rgb, _ = mug_photo((640, 480), "white", seed=6)
    res = packshot.generate(rgb, preset="amazon", n=1, seed=3)
    c = res.candidates[0]
    layer = place(res.cutout, res.placement)
    s = c.scores
    assert s["compliance"] == 1.0 and s["border_purity"] == 1.0 and s["background_purity"] == 1.0
    assert s["fill"] == pytest.approx(0.85, abs=0.01) and s["fill_error"] <= 0.01
    framed = c.image.copy()
    framed[:, :3] = (240, 240, 240)  # a light grey line down the left edge
    bad = score_image(framed, layer, c.scene, res.placement)
    assert bad["border_purity"] < 1.0 and bad["background_purity"] < 1.0
    assert bad["compliance"] < 1.0
    assert bad["overall"] < s["overall"]


def test_compliance_detects_a_wrong_fill_and_size():
    layer = make_layer(canvas=None, preset="ebay")
    sc = Scene(rgb=plain(layer), seed=0, engine="t")
    img = compose(sc, layer)
    good = score_image(img, layer, sc)
    assert good["compliance"] == 1.0 and "border_purity" not in good  # ebay: any clean background
    small = make_layer(canvas=None, preset="ebay", scale=0.5)
    s_small = score_image(compose(Scene(rgb=plain(small), seed=0, engine="t"), small), small)
    assert s_small["fill_error"] == pytest.approx(0.3, abs=0.01)
    assert s_small["compliance"] == 0.5


def test_rank_is_stable_deterministic_and_best_first():
    layer = make_layer()
    sc = Scene(rgb=plain(layer), seed=0, engine="t")
    img = compose(sc, layer)
    cands = [cand(img, sc, seed=i, scores={"overall": v})
             for i, v in enumerate([0.5, 0.9, 0.5, float("nan"), 0.9, 0.7])]
    ranked = rank(cands)
    assert [c.seed for c in ranked] == [1, 4, 5, 0, 2, 3]
    assert [c.seed for c in rank(list(reversed(cands)))] == [4, 1, 5, 2, 0, 3]
    assert rank(cands) == ranked  # same input, same order


def test_overall_is_a_bounded_weighted_mean():
    perfect = {"product_change": 0.0, "compliance": 1.0, "object_expansion": 0.0, "seam": 0.0,
               "separation": 1.0, "exposure": 1.0}
    assert overall(perfect) == pytest.approx(1.0)
    assert 0.0 < overall({**perfect, "compliance": 0.0}) < 0.2
    assert overall({**perfect, "seam": 6.0}) < overall({**perfect, "seam": 1.0}) < 1.0
    assert overall({}) == 0.0


def test_cli_results_json_lists_scores_best_first(tmp_path):
    rgb, _ = mug_photo((480, 360), "paper", seed=8)
    photo = tmp_path / "mug.png"
    Image.fromarray(rgb).save(photo)
    out = tmp_path / "out"
    proc = run_cli("generate", photo, "-n", "3", "--seed", "9", "--size", "400x400", "-o", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    scores = [c["scores"] for c in doc["candidates"]]
    assert [c["rank"] for c in doc["candidates"]] == [1, 2, 3]
    ov = [s["overall"] for s in scores]
    assert ov == sorted(ov, reverse=True)
    for s in scores:
        assert s["product_change"] == 0.0
        assert {"seam", "fringe", "object_expansion", "separation", "exposure", "compliance", "fill"} <= set(s)
