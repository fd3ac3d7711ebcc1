"""The product sits in the scene (issue 17): contact under every foot, one light per request that the
cast shadow follows, flat lays seen from above, products cut by the photo frame, the seller's own
background photo, upscaling warnings, scene words the studio engine cannot draw.

Scenes are rendered with known geometry: products drawn by the tests with exact alpha (RGBA PNGs,
so the pipeline uses the photo's own transparency as the matte), run through the CLI as a process
where that is the user's path.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

import packshot
from conftest import run_cli
from packshot.composite import compose, prepare
from packshot.composite.shadows import bottom_edges
from packshot.layout import place, plan
from packshot.schema import GenerateRequest
from packshot.types import Cutout, Matte, Photo, Scene

GREY = 200


def _shaded(alpha: np.ndarray, colour, seed: int = 0) -> np.ndarray:
    """A product colour: lit from the left (brighter on its left), a little noise."""
    h, w = alpha.shape
    xx = np.linspace(1.15, 0.75, w, dtype=np.float32)[None, :, None]
    rng = np.random.default_rng(seed)
    img = np.float32(colour)[None, None, :] * xx + rng.normal(0, 2.0, (h, w, 3)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def _rgba(alpha: np.ndarray, colour=(150, 90, 60), backdrop=246) -> np.ndarray:
    rgb = _shaded(alpha, colour)
    rgb[alpha < 0.5] = backdrop
    return np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)])


def _draw(w: int, h: int, paint, ss: int = 4) -> np.ndarray:
    """Anti-aliased float32 matte: ``paint(mask, X, Y)`` draws with X(x)/Y(y) mapping fractions
    of the photo's width/height to supersampled pixels."""
    m = np.zeros((h * ss, w * ss), np.uint8)
    paint(m, lambda f: int(round(f * w * ss)), lambda f: int(round(f * h * ss)))
    return cv2.resize(m.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)


def pair_alpha(w=900, h=600) -> np.ndarray:
    """Two 'shoes' side by side, the far one higher in the image (further back) and to the right:
    each has its own sole line."""
    def paint(m, X, Y):
        cv2.rectangle(m, (X(0.42), Y(0.33)), (X(0.91), Y(0.55)), 255, -1)      # far shoe, sole y=0.55
        cv2.ellipse(m, (X(0.91), Y(0.44)), (X(0.045), Y(0.11)), 0, -90, 90, 255, -1)
        cv2.rectangle(m, (X(0.09), Y(0.45)), (X(0.62), Y(0.70)), 255, -1)      # near shoe, sole y=0.70
        cv2.ellipse(m, (X(0.62), Y(0.575)), (X(0.055), Y(0.125)), 0, -90, 90, 255, -1)
    return _draw(w, h, paint)


def disc_alpha(w=700, h=600) -> np.ndarray:
    """A round, flat object seen from straight above (a cookie, a plate)."""
    def paint(m, X, Y):
        cv2.ellipse(m, (X(0.5), Y(0.5)), (X(0.314), Y(0.342)), 10, 0, 360, 255, -1)
    return _draw(w, h, paint)


def torso_alpha(w=500, h=700) -> np.ndarray:
    """A garment cut by the photo's bottom edge (shoulders, body running off the frame)."""
    def paint(m, X, Y):
        pts = [(0.3, 0.21), (0.7, 0.21), (0.88, 0.37), (0.8, 0.43), (0.76, 1.0), (0.24, 1.0), (0.2, 0.43),
               (0.12, 0.37)]
        cv2.fillPoly(m, [np.array([(X(x), Y(y)) for x, y in pts], np.int32)], 255)
    return _draw(w, h, paint)


def _cutout(alpha: np.ndarray) -> Cutout:
    rgba = _rgba(alpha)
    return Cutout(Photo(rgb=np.ascontiguousarray(rgba[..., :3])), Matte(alpha=alpha, engine="truth"))


def _save(tmp_path, name: str, rgba: np.ndarray):
    path = tmp_path / name
    Image.fromarray(rgba).save(path)
    return path


# -- contact: every foot ------------------------------------------------------------------------

@pytest.mark.parametrize("light", [(0.848, -0.53), (-0.848, -0.53), (0.53, 0.85), (0.0, 1.0)])
def test_contact_under_every_foot_within_2px_at_1024(light):
    cut = _cutout(pair_alpha())
    layer = place(cut, plan(cut, GenerateRequest(size="1024x1024", view="front")))
    bg = np.full((1024, 1024, 3), GREY, np.uint8)
    out = compose(Scene(rgb=bg, seed=0, engine="test", light_dir=light, shadow_strength=0.45), layer)
    dark = GREY - out.astype(np.float32).mean(axis=2)
    alpha = layer.alpha
    bottom = bottom_edges(alpha)
    x0, _, x1, _ = prepare(layer).box
    # the two soles, on the canvas: columns whose lowest opaque point lies on either sole line
    soles = [x for x in range(x0 + 3, x1 - 3) if np.isfinite(bottom[x])]
    rows = np.array([bottom[x] for x in soles])
    near, far = rows.max(), None
    far_cols = [x for x, r in zip(soles, rows) if abs(r - near) > 30]
    assert far_cols, "the far shoe shows its own sole"
    far = np.median([bottom[x] for x in far_cols])
    checked = {"near": 0, "far": 0}
    for x, r in zip(soles, rows):
        which = "near" if abs(r - near) < 3 else ("far" if abs(r - far) < 3 else None)
        if which is None:
            continue  # the rounded toe caps, between the two sole lines
        y = int(np.floor(r))
        below = [yy for yy in range(y, y + 3) if alpha[yy, x] < 0.02]
        assert below, (x, r)
        assert max(dark[yy, x] for yy in below) > 25, (which, x, r, [dark[yy, x] for yy in below])
        checked[which] += 1
    assert checked["near"] > 300 and checked["far"] > 60, checked


def test_no_gap_between_product_and_shadow():
    """Measured: going down from the sole, the darkening is largest right at the product's edge."""
    cut = _cutout(pair_alpha())
    layer = place(cut, plan(cut, GenerateRequest(size="1024x1024", view="front")))
    bg = np.full((1024, 1024, 3), GREY, np.uint8)
    out = compose(Scene(rgb=bg, seed=0, engine="test", light_dir=(0.848, -0.53), shadow_strength=0.45), layer)
    dark = GREY - out.astype(np.float32).mean(axis=2)
    bottom = bottom_edges(layer.alpha)
    gaps = []
    for x in range(prepare(layer).box[0] + 20, prepare(layer).box[2] - 20, 7):
        if not np.isfinite(bottom[x]):
            continue
        y = int(np.ceil(bottom[x]))
        col = dark[y:y + 40, x]
        gaps.append(int(np.argmax(col)))
    assert gaps and max(gaps) <= 2, gaps


# -- one light per request ------------------------------------------------------------------------

def _shadow_direction(cand, layer) -> tuple[float, float]:
    """Where the cast shadow lies relative to the product's base centre (unit vector): the
    candidate's scene composed with and without shadows (so reflections and the product itself
    cancel out), beyond the contact zone (0.1 x the product's height around its silhouette)."""
    with_shadow = compose(cand.scene, layer).astype(np.float32).mean(2)
    without = compose(cand.scene, layer, shadow=False).astype(np.float32).mean(2)
    assert np.array_equal(compose(cand.scene, layer), cand.image)  # the same composite as generated
    dark = np.clip(without - with_shadow, 0, None)
    p = prepare(layer)
    x0, y0, x1, y1 = p.solid
    k = max(3, int(0.1 * (y1 - y0)))
    near = cv2.dilate((layer.alpha > 0.01).astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0
    dark[near] = 0
    cx, cy = (x0 + x1) / 2, p.base_y
    ys, xs = np.nonzero(dark > 2)
    wts = dark[ys, xs]
    vx, vy = float(((xs - cx) * wts).sum()), float(((ys - cy) * wts).sum())
    n = np.hypot(vx, vy)
    return vx / n, vy / n


@pytest.mark.parametrize("prompt", ["white marble table", "concrete podium, dramatic side light from the right",
                                    "oak table, light from above"])
def test_cast_shadow_follows_the_recorded_light_for_every_seed(prompt):
    cut = _cutout(pair_alpha())
    res = packshot.generate(cut, prompt, n=4, seed=11, size="768x768", view="front")
    layer = place(res.cutout, res.placement)
    dirs = {c.parameters["Light direction"] for c in res.candidates}
    assert len(dirs) == 1, dirs  # one light for the whole request
    for c in res.candidates:
        dx, dy = (float(v) for v in c.parameters["Light direction"].split(","))
        assert (dx, dy) == pytest.approx(c.scene.light_dir, abs=1e-3)
        sx, sy = _shadow_direction(c, layer)
        if abs(dx) > 0.3:
            assert np.sign(sx) == np.sign(dx), (prompt, c.seed, dx, sx)
        if abs(dy) > 0.3:
            assert np.sign(sy) == np.sign(dy), (prompt, c.seed, dy, sy)
        assert c.parameters["Light"].startswith("from the ")


def test_default_light_comes_from_the_products_shading_and_is_recorded():
    cut = _cutout(pair_alpha())  # drawn brighter on its left
    res = packshot.generate(cut, "grey seamless sweep", n=3, seed=2, size="512x512")
    for c in res.candidates:
        assert c.parameters["Light"].startswith("from the front left (photo: the product is brighter on its left")
        assert c.scene.light_dir[0] > 0.5 and c.scene.light_dir[1] < 0  # shadow behind, to the right
    flat = Cutout(Photo(rgb=np.full((600, 900, 3), 120, np.uint8)), Matte(alpha=pair_alpha(), engine="truth"))
    res = packshot.generate(flat, "grey seamless sweep", n=3, seed=2, size="512x512")
    assert {c.parameters["Light"] for c in res.candidates} == {"from the front left (default)"}


def test_sunny_is_recorded_in_the_light_and_every_scene_word_is_accounted_for():
    cut = _cutout(pair_alpha())
    c = packshot.generate(cut, "sunny linen table, morning, seagulls", n=1, seed=1, size="512x512").candidates[0]
    assert "sunny" in c.parameters["Light"] and "morning" in c.parameters["Light"]
    words = c.parameters["Scene words"]
    for part in ("sunny: light", "linen: surface", "table: layout", "morning: time", "seagulls: unused"):
        assert part in words, words


# -- flat lay ------------------------------------------------------------------------------------

def test_top_view_is_a_flat_lay_with_a_drop_shadow_all_around(tmp_path):
    photo = _save(tmp_path, "disc.png", _rgba(disc_alpha(), (120, 80, 50)))
    out = tmp_path / "out"
    proc = run_cli("generate", photo, "-p", "white marble, podium", "-n", "2", "--seed", "3",
                   "--size", "800x800", "--view", "auto", "-o", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["placement"]["view"] == "top"
    assert any(n.startswith("view auto: top") for n in doc["notes"]), doc["notes"]
    x0, y0, x1, y1 = doc["placement"]["product_box"]
    assert abs((y0 + y1) / 2 - 400) <= 2 and abs((x0 + x1) / 2 - 400) <= 2  # lying centred, not stood up
    cut = np.asarray(Image.open(out / "cutout.png"))[..., 3]
    for entry in doc["candidates"]:
        assert entry["parameters"]["Layout"] == "flatlay" and "Podium" not in entry["parameters"]
        assert any("no podium" in n for n in entry["notes"])
    # the drop shadow: darker than the open surface just outside the outline, on all four sides
    res = packshot.generate(str(photo), "white marble", n=1, seed=3, size="800x800", view="top")
    c = res.candidates[0]
    layer = place(res.cutout, res.placement)
    dark = c.scene.rgb.astype(np.float32).mean(2) - c.image.astype(np.float32).mean(2)
    p = prepare(layer)
    X0, Y0, X1, Y1 = p.solid
    cx, cy = (X0 + X1) // 2, (Y0 + Y1) // 2
    for name, (x, y) in {"left": (X0 - 4, cy), "right": (X1 + 3, cy), "top": (cx, Y0 - 4),
                         "bottom": (cx, Y1 + 3)}.items():
        assert layer.alpha[y, x] < 0.02 and dark[y, x] > 8, (name, dark[y, x])
    assert cut.any()


def test_view_top_asked_lays_any_product_flat():
    cut = _cutout(pair_alpha())
    res = packshot.generate(cut, "oak table", n=1, seed=5, size="600x600", view="top")
    assert res.placement.view == "top" and res.placement.floor_y is None
    assert res.candidates[0].parameters["Layout"] == "flatlay"
    assert res.candidates[0].scene.floor_y is None


# -- frame edges ---------------------------------------------------------------------------------

def test_a_product_cut_at_the_bottom_touches_the_canvas_bottom(tmp_path):
    photo = _save(tmp_path, "torso.png", _rgba(torso_alpha(), (40, 40, 40)))
    out = tmp_path / "out"
    proc = run_cli("generate", photo, "-p", "concrete podium, wooden table", "-n", "2", "--seed", "1",
                   "--size", "1024x1024", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "cut by the photo's bottom edge" in proc.stderr + proc.stdout
    doc = json.loads((out / "results.json").read_text())
    assert doc["placement"]["edges"] == ["bottom"] and doc["placement"]["anchor"] == "edge"
    assert doc["placement"]["product_box"][3] == 1024
    for entry in doc["candidates"]:
        p = entry["parameters"]
        assert p["Layout"] == "wall" and "Podium" not in p  # never stands on a surface or podium
        img = np.asarray(Image.open(out / entry["file"]).convert("RGB"))
        assert (img[-1].astype(int).sum(axis=1) < 200).sum() > 100  # the dark garment reaches the last row


def test_a_tight_crop_touching_top_and_bottom_is_a_whole_product():
    from packshot.backgrounds.view import frame_edges
    alpha = np.zeros((300, 200), np.float32)
    alpha[:, 40:160] = 1.0  # a bottle photographed edge to edge
    assert frame_edges(alpha) == ()
    assert frame_edges(torso_alpha()) == ("bottom",)


def test_a_preset_that_forbids_cropping_says_so():
    cut = _cutout(torso_alpha())
    res = packshot.generate(cut, "white", preset="amazon", n=1, seed=1)
    assert any("preset amazon forbids cropping" in n for n in res.notes), res.notes


# -- the seller's own background -----------------------------------------------------------------

def _room(w: int, h: int) -> np.ndarray:
    """A 'seller background photo': a lit wall and a table top, with texture and a bright left."""
    rng = np.random.default_rng(5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    wall = 170 + 40 * (1 - xx / w)
    img = np.dstack([wall * 1.02, wall * 0.98, wall * 0.92])
    table = yy > 0.62 * h
    img[table] = np.dstack([120 + 30 * (1 - xx / w)] * 3)[table] * np.float32([1.1, 0.85, 0.6])
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def test_own_background_keeps_its_pixels_and_the_product_exactly(tmp_path):
    alpha = pair_alpha(600, 400)
    rgba = _rgba(alpha)
    photo = _save(tmp_path, "shoes.png", rgba)
    room = _room(600, 400)
    bg = _save(tmp_path, "room.png", np.dstack([room, np.full(room.shape[:2], 255, np.uint8)])[..., :3])
    out = tmp_path / "out"
    proc = run_cli("generate", photo, "--keep-framing", "--background", bg, "-n", "2", "--seed", "1", "-o", out)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out / "results.json").read_text())
    opaque = alpha >= 1.0
    clear = alpha <= 0.0
    for entry in doc["candidates"]:
        img = np.asarray(Image.open(out / entry["file"]).convert("RGB")).astype(int)
        assert np.array_equal(img[opaque], rgba[..., :3][opaque].astype(int))  # the product, exactly
        diff = np.abs(img - room.astype(int)).sum(axis=2)
        # outside the product, the room's pixels: only the shadow near the soles darkens them
        assert (img[clear] <= room[clear].astype(int) + 1).all()
        changed = clear & (diff > 0)
        ys, xs = np.nonzero(changed)
        assert len(ys) > 100  # there is a shadow
        assert (diff[:100] == 0).all()  # far above the product: the room, exactly
        assert entry["parameters"]["Background"] == "photo room.png"
        assert entry["parameters"]["Light"].startswith("from the photo (the background photo is brighter on its left")


def test_own_background_sets_the_canvas_and_a_bad_path_is_one_line(tmp_path):
    photo = _save(tmp_path, "shoes.png", _rgba(pair_alpha(600, 400)))
    bg = tmp_path / "room.png"
    Image.fromarray(_room(720, 480)).save(bg)
    res = packshot.generate(str(photo), n=1, seed=1, background=str(bg))
    assert res.placement.canvas_size == (720, 480)
    top = res.candidates[0].image[:60]
    assert np.array_equal(top, _room(720, 480)[:60])  # far from the product: the photo itself
    proc = run_cli("generate", photo, "--background", tmp_path / "missing.jpg", "-o", tmp_path / "o2")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "missing.jpg" in proc.stderr
    assert not (tmp_path / "o2" / "results.json").exists()


# -- upscaling and scene words -------------------------------------------------------------------

def test_upscaling_is_warned_capped_and_recorded(tmp_path):
    small = _save(tmp_path, "small.png", _rgba(pair_alpha(180, 120)))
    out = tmp_path / "up"
    proc = run_cli("generate", small, "--size", "1024x1024", "-n", "1", "--seed", "1", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "upscaled" in proc.stderr + proc.stdout
    doc = json.loads((out / "results.json").read_text())
    assert doc["upscaled"] is True and doc["placement"]["upscale"] > 1.5
    assert doc["candidates"][0]["parameters"]["Upscale"] > 1.5
    out2 = tmp_path / "capped"
    proc = run_cli("generate", small, "--size", "1024x1024", "--max-upscale", "1.5", "-n", "1", "--seed", "1",
                   "-o", out2)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((out2 / "results.json").read_text())
    assert doc["placement"]["upscale"] == pytest.approx(1.5) and doc["upscaled"] is False
    assert any(n.startswith("max upscale 1.5") for n in doc["notes"])
    res = packshot.generate(str(small), preset="amazon", n=1, seed=1)
    assert any("preset amazon wants the product" in n for n in res.notes), res.notes
    big = _save(tmp_path, "big.png", _rgba(pair_alpha(900, 600)))
    res = packshot.generate(str(big), size="600x600", n=1, seed=1)
    assert not any("upscaled" in n for n in res.notes) and res.placement.upscale == 1.0


def test_scene_words_only_a_generative_engine_can_draw_are_said(tmp_path):
    photo = _save(tmp_path, "shoes.png", _rgba(pair_alpha(300, 200)))
    out = tmp_path / "beach"
    proc = run_cli("generate", photo, "-p", "on the beach at sunset", "-n", "1", "--seed", "1",
                   "--size", "256x256", "-o", out)
    assert proc.returncode == 0, proc.stderr
    lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if "needs a generative engine" in ln]
    assert len(lines) == 1 and "'beach'" in lines[0]
    assert "--engine diffusion" in lines[0] and "--background PHOTO" in lines[0]
    doc = json.loads((out / "results.json").read_text())
    assert doc["needs_generative_engine"] == ["beach"]
