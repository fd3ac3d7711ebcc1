"""Scene suggestions from the product (no weights) and structured descriptions of scene photos.

Rendered products of known colour, finish and shape; the CLI runs as a process.
"""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from PIL import Image

import synth
from packshot.prompts import FIELDS, parse_prompt
from packshot.prompts import vocabulary as V
from packshot.prompts.measure import lch, measure, to_lab
from packshot.prompts.suggest import suggest, suggest_from_traits


def glossy_mug(colour=(180, 40, 40), highlight=True):
    """The synthetic mug with a vertical specular streak (a glossy glaze) when ``highlight``."""
    rgb, alpha = synth.mug_photo(color=colour, jpeg_quality=None)
    if highlight:
        h, w = alpha.shape
        yy, xx = np.mgrid[:h, :w]
        cx = w // 2 - w // 16 - w // 10
        streak = np.exp(-((xx - cx) / (w * 0.022)) ** 2) * np.clip(1 - np.abs(yy - h / 2) / (h * 0.28), 0, 1)
        streak = (streak * (alpha > 0.99))[..., None]
        rgb = (rgb * (1 - streak) + 255 * streak).round().astype(np.uint8)
    return rgb, alpha


def flat_item(colour=(40, 70, 160), size=(800, 600)):
    """A notebook seen from straight above: a flat rectangle, evenly lit, with an even soft drop
    shadow all round (no contact shadow under a base)."""
    w, h = size
    bg = np.full((h, w, 3), 240, np.float32)
    m = np.zeros((h * 4, w * 4), np.uint8)
    cv2.rectangle(m, (4 * 250, 4 * 140), (4 * 550, 4 * 460), 255, -1)
    alpha = cv2.resize(m.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
    shadow = cv2.GaussianBlur(alpha, (0, 0), 12) * 0.12
    bg *= (1 - shadow)[..., None]
    img = np.float32(colour)[None, None] * alpha[..., None] + bg * (1 - alpha[..., None])
    return np.clip(img, 0, 255).round().astype(np.uint8), alpha


def tall_bottle(colour=(30, 110, 60), size=(600, 800)):
    w, h = size
    rgb, _ = synth.mug_photo(size=size, color=colour, jpeg_quality=None)  # for the backdrop + shadow
    bg = synth.backdrop(h, w, *synth.BACKDROPS["white"])
    m = np.zeros((h, w), np.uint8)
    cv2.rectangle(m, (w // 2 - 70, 250), (w // 2 + 70, 700), 255, -1)
    cv2.rectangle(m, (w // 2 - 25, 170), (w // 2 + 25, 250), 255, -1)
    alpha = cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), 1.0)
    shadow = np.zeros((h, w), np.float32)
    cv2.ellipse(shadow, (w // 2, 700), (90, 10), 0, 0, 360, 1.0, -1)
    bg *= (1 - cv2.GaussianBlur(shadow, (0, 0), 8) * 0.4)[..., None]
    img = (np.float32(colour) / 255)[None, None] * alpha[..., None] + bg * (1 - alpha[..., None])
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), alpha


def save(tmp_path, name, rgb):
    path = tmp_path / name
    Image.fromarray(rgb).save(path)
    return path


def surface_gloss(prompt: str) -> float:
    p = parse_prompt(prompt)
    base = V.VOCABULARY["surface"]["words"][p.surface.material]["gloss"] if p.surface.material else 0.0
    return base + p.g("gloss_add")


def backdrop_lch(s) -> tuple[float, float, float | None]:
    p = parse_prompt(s.prompt)
    name = p.backdrop.colours[0]
    return lch(to_lab(np.array(V.colour_rgb(name), np.uint8)[None])[0])


def test_red_glossy_mug_gets_complementary_or_neutral_backdrop_and_reflective_surface():
    rgb, alpha = glossy_mug()
    t = measure(rgb, alpha)
    assert t.finish == "glossy" and t.main.name == "red" and t.view == "front"
    out = suggest_from_traits(t, 6)
    first = out[0]
    assert first.palette in ("complementary", "neutral")
    L, c, h = backdrop_lch(first)
    assert h is None or abs((h - t.main.hue + 180) % 360 - 180) >= 120  # far from red on the hue wheel
    assert surface_gloss(first.prompt) >= 0.5, first.prompt            # reflective surface
    assert "softbox" in first.lighting
    assert first.arrangement == "tabletop" and first.request["placement"] == "surface"
    kinds = {s.palette for s in out}
    assert {"complementary", "neutral", "analogous"} <= kinds
    # every glossy suggestion stands on a reflective surface
    assert all(surface_gloss(s.prompt) >= 0.5 for s in out), [s.prompt for s in out]


def test_matte_mug_gets_soft_light_and_matte_surfaces():
    rgb, alpha = glossy_mug(highlight=False)
    t = measure(rgb, alpha)
    assert t.finish == "matte"
    out = suggest_from_traits(t, 6)
    assert all(surface_gloss(s.prompt) < 0.3 for s in out), [s.prompt for s in out]
    assert all("soft" in s.lighting or "window" in s.lighting for s in out)


def test_flat_top_view_item_gets_a_flat_lay():
    rgb, alpha = flat_item()
    t = measure(rgb, alpha)
    assert t.view == "top", t.notes
    out = suggest_from_traits(t, 4)
    assert {s.arrangement for s in out} == {"flat lay"}
    assert all(s.request["placement"] == "center" for s in out)
    assert all(s.background == "" and s.surface.startswith("on ") for s in out)


def test_tall_item_gets_a_podium_and_front_view():
    rgb, alpha = tall_bottle()
    t = measure(rgb, alpha)
    assert t.shape == "tall" and t.view == "front"
    out = suggest_from_traits(t, 3)
    assert all(s.arrangement == "podium" and "podium" in s.surface for s in out)
    assert parse_prompt(out[0].prompt).podium == "cylinder"


def hanging_shirt(colour=(60, 120, 90), size=(600, 800)):
    """A T-shirt on a hanger: a thin hook on top, the widest rows (sleeves) in the upper part."""
    w, h = size
    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (300, 60), (300, 120), 255, 8)
    cv2.ellipse(m, (300, 60), (18, 18), 0, 180, 360, 255, 8)
    pts = np.array([[300, 120], [140, 170], [60, 300], [130, 340], [170, 260], [170, 700], [430, 700],
                    [430, 260], [470, 340], [540, 300], [460, 170]], np.int32)
    cv2.fillPoly(m, [pts], 255)
    alpha = cv2.GaussianBlur(m.astype(np.float32) / 255, (0, 0), 1.0)
    img = np.float32(colour)[None, None] * alpha[..., None] + 235.0 * (1 - alpha[..., None])
    return img.round().astype(np.uint8), alpha


def test_item_on_a_hanger_is_hung_against_a_wall():
    t = measure(*hanging_shirt())
    assert t.narrow_top and t.widest_at <= 0.4
    out = suggest_from_traits(t, 3)
    assert all(s.arrangement == "hanging" and s.surface == "" and s.background.endswith("wall") for s in out)
    assert all(s.request["placement"] == "center" and parse_prompt(s.prompt).layout == "sweep" for s in out)


@pytest.mark.parametrize("colour", [(180, 40, 40), (40, 70, 160), (230, 200, 40), (30, 30, 30), (235, 235, 235),
                                    (120, 60, 140)])
def test_every_suggestion_is_fully_understood_by_the_studio_engine(colour):
    rgb, alpha = glossy_mug(colour, highlight=colour[0] < 200)
    out = suggest_from_traits(measure(rgb, alpha), 12)
    assert len(out) == 12 and len({s.prompt for s in out}) == 12
    for s in out:
        assert parse_prompt(s.prompt).unused == (), s.prompt
        assert s.diffusion_prompt.endswith(s.prompt)
        assert set(FIELDS) <= set(s.to_dict())


def test_caption_noun_steers_category_and_goes_into_the_diffusion_prompt():
    rgb, alpha = glossy_mug(highlight=False)
    t = measure(rgb, alpha)
    shoes = suggest_from_traits(t, 3, noun="brown leather shoes")
    assert "floor" in shoes[0].surface and shoes[0].diffusion_prompt.startswith("product photo of a brown leather shoes")
    cosmetics = suggest_from_traits(t, 3, noun="perfume bottle")
    assert any("water" in s.surroundings for s in cosmetics[:3]) or "marble" in cosmetics[0].surface
    food = suggest_from_traits(t, 2, noun="cookie")
    assert "countertop" in food[0].surface
    assert all(parse_prompt(s.prompt).unused == () for s in shoes + cosmetics + food)
    assert all("shoe" not in s.prompt for s in shoes)  # the noun is never in the studio prompt


def test_same_photo_same_suggestions(tmp_path):
    rgb, _ = glossy_mug()
    path = save(tmp_path, "mug.png", rgb)
    a = [s.to_dict() for s in suggest(path, 6)]
    b = [s.to_dict() for s in suggest(str(path), 6)]
    assert a == b and len(a) == 6


def test_cli_suggest_json_and_errors(tmp_path, cli):
    rgb, _ = glossy_mug()
    path = save(tmp_path, "mug.png", rgb)
    r1 = cli("prompt", "suggest", path, "-n", "4", "--json")
    assert r1.returncode == 0, r1.stderr
    items = json.loads(r1.stdout)
    assert len(items) == 4
    for it in items:
        assert set(FIELDS) | {"prompt"} <= set(it)
        assert parse_prompt(it["prompt"]).unused == ()
    r2 = cli("prompt", "suggest", path, "-n", "4", "--json")
    assert r2.stdout == r1.stdout                      # deterministic across processes
    plain = cli("prompt", "suggest", path, "-n", "2")
    assert plain.returncode == 0 and plain.stdout.startswith("1. " + items[0]["prompt"])
    bad = cli("prompt", "suggest", path, "-n", "40")
    assert bad.returncode == 2 and bad.stderr.strip() == "packshot: error: n must be 1..12, got 40"
    missing = cli("prompt", "suggest", tmp_path / "nope.jpg")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1 and "nope.jpg" in missing.stderr


def left_lit_scene(size=(900, 600)):
    """A warm beige wall over a darker wooden-brown floor, lit from the left, a red box in it."""
    w, h = size
    img = np.zeros((h, w, 3), np.float32)
    img[: int(h * 0.62)] = (225, 205, 175)
    img[int(h * 0.62):] = (120, 80, 50)
    ramp = np.linspace(1.08, 0.7, w, dtype=np.float32)[None, :, None]
    img = img * ramp
    cv2.rectangle(img, (400, 250), (520, 420), (170, 30, 30), -1)
    return np.clip(img, 0, 255).round().astype(np.uint8)


def test_describe_measures_a_scene_without_its_product(tmp_path, cli):
    path = save(tmp_path, "scene.png", left_lit_scene())
    r = cli("prompt", "describe", path, "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert set(FIELDS) | {"prompt", "source", "measured"} <= set(d)
    assert "from the left" in d["lighting"]
    assert parse_prompt(d["prompt"]).unused == ()
    assert "red" not in d["prompt"]                    # the product is not described
    bg = parse_prompt(d["background"]).backdrop.colours[0]
    sf = parse_prompt(d["surface"]).backdrop.colours or parse_prompt(d["surface"]).surface.colours
    assert sum(V.colour_rgb(bg)) > sum(V.colour_rgb(sf[0]))  # light wall over a darker floor
    assert all(v == "measured" for v in d["source"].values())
    again = cli("prompt", "describe", path, "--json")
    assert again.stdout == r.stdout


def test_suggestions_on_seller_photos(shared_data):
    seeds = shared_data / "seed_products"
    photos = {"soap": seeds / "nivedkris_product1_shaving_soap/product1.jpg",
              "bottle": seeds / "nivedkris_product3_aftershave_bottle/product3.jpg",
              "loafers": seeds / "nivedkris_product4_loafers/product4.jpg"}
    arrangements = {}
    for name, path in photos.items():
        out = suggest(path, 6)
        assert len(out) == 6 and all(parse_prompt(s.prompt).unused == () for s in out)
        arrangements[name] = out[0].arrangement
    assert arrangements["bottle"] == "podium"          # tall: podium, never a flat lay
    assert arrangements["loafers"] == "tabletop"


# -- captioner: a tiny randomly initialised BLIP saved with save_pretrained, loaded by the user path --
@pytest.fixture(scope="module")
def tiny_blip(tmp_path_factory):
    pytest.importorskip("transformers")
    from tiny_blip import build_tiny_blip

    return build_tiny_blip(tmp_path_factory.mktemp("blip") / "tiny-blip")


def test_captioner_suggestions_through_the_cli(tiny_blip, tmp_path, cli):
    from packshot.captioner import noun_of
    from packshot.config import Settings
    from packshot.captioner import caption_image
    from packshot.prompts.suggest import CATEGORIES, category_of

    rgb, alpha = glossy_mug(highlight=False)  # matte: the category's surface comes first
    path = save(tmp_path, "mug.png", rgb)
    r = cli("prompt", "suggest", path, "-n", "3", "--json", "--captioner", tiny_blip)
    assert r.returncode == 0, r.stderr
    items = json.loads(r.stdout)
    rgba = np.dstack([rgb, (alpha * 255).round().astype(np.uint8)])
    caption = caption_image(rgba, str(tiny_blip), Settings())  # the same caption the CLI got (greedy)
    noun = noun_of(caption)
    assert noun is not None, caption  # the tiny vocabulary's random decoder names a known noun
    cat = category_of(noun)
    assert all(it["diffusion_prompt"].startswith(f"product photo of a{'n' if noun[0] in 'aeiou' else ''} {noun}, ")
               for it in items)
    assert all(noun not in it["prompt"].split() and parse_prompt(it["prompt"]).unused == () for it in items)
    first_surface = items[0]["surface"]
    assert any(first_surface == s for s in CATEGORIES[cat]["surfaces"]) or cat == "garment", (cat, first_surface)
    env_run = cli("prompt", "suggest", path, "-n", "3", "--json", env={"PACKSHOT_CAPTIONER": str(tiny_blip)})
    assert env_run.stdout == r.stdout                       # the setting and the option are the same path


def test_captioner_describe_parses_into_the_five_fields(tiny_blip, tmp_path, cli):
    path = save(tmp_path, "scene.png", left_lit_scene())
    r = cli("prompt", "describe", path, "--json", "--captioner", tiny_blip)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["caption"] and all(isinstance(d[f], str) for f in FIELDS)
    assert set(d["source"].values()) <= {"caption", "measured"} and "caption" in d["source"].values()
    assert parse_prompt(d["prompt"]).unused == ()          # only scene words; no product noun
    for noun in ("shoes", "bottle", "mug", "cookie"):
        assert noun not in d["prompt"].split()


def test_captioner_errors_are_one_line(tiny_blip, tmp_path, cli):
    import shutil

    path = save(tmp_path, "mug.png", glossy_mug()[0])
    env = {"PACKSHOT_MODEL_DIR": str(tmp_path / "models")}
    missing = cli("prompt", "suggest", path, "--captioner", "blip-caption-base", env=env)
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [missing.stderr.strip()]
    assert "packshot models pull blip-caption-base" in missing.stderr
    wrong = tmp_path / "not-blip"
    wrong.mkdir()
    (wrong / "config.json").write_text(json.dumps({"model_type": "bert"}))
    r = cli("prompt", "describe", path, "--captioner", wrong)
    assert r.returncode == 2 and "is a bert model" in r.stderr and "blip" in r.stderr
    broken = tmp_path / "broken-blip"
    shutil.copytree(tiny_blip, broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 64)
    r = cli("prompt", "suggest", path, "--captioner", broken)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "could not be loaded" in r.stderr
    assert "Traceback" not in r.stderr
