"""`packshot check`: every rule catches a planted violation, a compliant image passes every rule, and
`--fix` writes a compliant copy where a fix is honest and explains where it is not. Through the CLI
as a process (exit codes 0 / 1 / 2) and the library."""
from __future__ import annotations

import json
import os

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from packshot.io import SOURCE_TYPE_TRAINED, encode_image, save_image
from packshot.marketplace import check_image, markdown_table
from packshot.marketplace.rules import MARKETPLACES
from synth import mug_photo

# planted violation -> the rule (amazon) that must catch it
PLANTED = {
    "off250.png": "background",
    "fill70.png": "fill",
    "px900.png": "size",
    "border3.png": "borders",
    "cmyk.jpg": "colour",
    "big12.png": "file_size",
    "text.png": "text",
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """A compliant Amazon main image made by packshot, and one copy per planted violation."""
    import packshot

    d = tmp_path_factory.mktemp("check")
    rgb, _ = mug_photo((800, 600), jpeg_quality=None)
    ok = packshot.generate(rgb, preset="amazon", n=1, seed=1).candidates[0].image
    save_image(ok, d / "ok.png")
    off = ok.copy()
    off[np.all(ok == 255, axis=2)] = 250
    save_image(off, d / "off250.png")
    small = cv2.resize(ok, None, fx=0.70 / 0.85, fy=0.70 / 0.85, interpolation=cv2.INTER_AREA)
    canvas = np.full_like(ok, 255)
    y, x = (2000 - small.shape[0]) // 2, (2000 - small.shape[1]) // 2
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    save_image(canvas, d / "fill70.png")
    save_image(cv2.resize(ok, (900, 900), interpolation=cv2.INTER_AREA), d / "px900.png")
    framed = ok.copy()
    for sl in (np.s_[:3], np.s_[-3:], np.s_[:, :3], np.s_[:, -3:]):
        framed[sl] = 128
    save_image(framed, d / "border3.png")
    Image.fromarray(ok).convert("CMYK").save(d / "cmyk.jpg", quality=92)
    info = PngImagePlugin.PngInfo()
    info.add_text("padding", os.urandom(11 * 512 * 1024).hex())  # 11 MiB of metadata + the pixels
    Image.fromarray(ok).save(d / "big12.png", pnginfo=info)
    stamped = ok.copy()
    cv2.putText(stamped, "SALE 50% OFF", (80, 1900), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (200, 0, 0), 4, cv2.LINE_AA)
    save_image(stamped, d / "text.png")
    tiny = cv2.resize(ok, (300, 300), interpolation=cv2.INTER_AREA)
    save_image(tiny, d / "tiny.png")
    return d


def test_planted_violations_each_caught_and_compliant_passes(images, cli):
    assert (images / "big12.png").stat().st_size > 12 * 10**6
    names = ["ok.png", *PLANTED]
    r = cli("check", *[images / n for n in names], "--marketplace", "amazon", "--json")
    assert r.returncode == 1, r.stderr
    reports = {os.path.basename(rep["source"]): rep for rep in json.loads(r.stdout)["reports"]}
    ok = reports["ok.png"]
    assert ok["passed"] and {x["status"] for x in ok["rules"]} == {"pass"}, ok
    assert {x["check"] for x in ok["rules"]} == {"size", "background", "fill", "text", "colour", "format",
                                                 "file_size", "borders"}
    for name, rule in PLANTED.items():
        rules = {x["check"]: x for x in reports[name]["rules"]}
        assert rules[rule]["status"] == "fail", (name, rules[rule])
        assert not reports[name]["passed"]
    # the measured values are reported, not just verdicts
    by = {n: {x["check"]: x["value"] for x in reports[n]["rules"]} for n in reports}
    assert "(250, 250, 250)" in by["off250.png"]["background"]
    assert by["fill70.png"]["fill"].startswith("70.")
    assert by["px900.png"]["size"] == "900x900 px"
    assert by["border3.png"]["borders"] == "top 3, right 3, bottom 3, left 3 px"
    assert by["cmyk.jpg"]["colour"].startswith("CMYK")
    assert by["text.png"]["text"].startswith("1 line")
    # only the planted rule (and, for the border, the frame purity) fails
    for name, rule in PLANTED.items():
        failed = {x["check"] for x in reports[name]["rules"] if x["status"] == "fail"}
        assert failed <= {rule, "background"}, (name, failed)

    r = cli("check", images / "ok.png")
    assert r.returncode == 0 and "amazon: PASS" in r.stdout and "fill       85.0%" in r.stdout


def test_fix_passes_where_honest_and_explains_where_not(images, cli, tmp_path):
    names = [n for n in PLANTED if n != "text.png"]
    r = cli("check", *[images / n for n in names], "--fix", "-o", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    fixed = sorted(tmp_path.iterdir())
    assert len(fixed) == len(names)
    for f in fixed:
        rep = check_image(f, "amazon")
        assert rep.passed, (f.name, [x for x in rep.results if x.status != "pass"])
    assert "cut out again and placed centred on pure white" in r.stdout
    assert "cropped the border (top 3, right 3, bottom 3, left 3 px)" in r.stdout
    # the product's opaque pixels are pasted, not repainted: the off-white fix keeps the mug's colours
    ok = np.asarray(Image.open(images / "ok.png").convert("RGB"))
    fix = np.asarray(Image.open(tmp_path / "off250.amazon.png").convert("RGB"))
    (ay, ax), (by, bx) = (np.argwhere(im.min(axis=2) < 240).min(axis=0) for im in (ok, fix))
    a = ok[ay + 500:ay + 900, ax + 300:ax + 700].astype(int)
    b = fix[by + 500:by + 900, bx + 300:bx + 700].astype(int)
    assert np.array_equal(a, b)

    out = tmp_path / "refused"
    r = cli("check", images / "text.png", images / "tiny.png", "--fix", "-o", out)
    assert r.returncode == 1
    assert "not fixed: " in r.stdout and "removing them would invent pixels" in r.stdout
    assert "upscaled" in r.stdout and "more than 2x" in r.stdout
    assert not out.exists() or not any(out.iterdir())  # nothing written for refused fixes


def test_other_marketplaces_and_ai_tag(images, tmp_path):
    ok = np.asarray(Image.open(images / "ok.png").convert("RGB"))
    tagged = tmp_path / "tagged.png"
    tagged.write_bytes(encode_image(ok, "png", parameters="x\nSteps: 20, Sampler: Euler", source_type=SOURCE_TYPE_TRAINED))
    untagged = tmp_path / "untagged.png"
    untagged.write_bytes(encode_image(ok, "png", parameters="x\nSteps: 20, Sampler: Euler"))
    assert {r.check: r.status for r in check_image(tagged, "google").results}["ai_tag"] == "pass"
    rep = check_image(untagged, "google")
    ai = {r.check: r for r in rep.results}["ai_tag"]
    assert ai.status == "fail" and "missing" in ai.value and not rep.passed
    # walmart wants 1500 px and a square: the 2000 px square passes, the 900 px fails on size
    assert check_image(images / "ok.png", "walmart").passed
    assert {r.check: r.status for r in check_image(images / "px900.png", "walmart").results}["size"] == "fail"
    # a lifestyle scene has no plain backdrop: fill and text are n/a (said), not guessed
    scene = np.dstack([np.tile(np.linspace(30, 220, 1600, dtype=np.uint8), (1600, 1))] * 3)
    save_image(scene, tmp_path / "scene.png")
    res = {r.check: r for r in check_image(tmp_path / "scene.png", "ebay").results}
    assert res["fill"].status == "n/a" and res["text"].status == "n/a" and res["borders"].status == "pass"
    # etsy's 4:3 is a recommendation: a square gives a warning, not a failure
    rep = check_image(images / "ok.png", "etsy")
    assert {r.check: r.status for r in rep.results}["aspect"] == "warn"
    assert {r.check: r.status for r in rep.results}["file_size"] == "warn"  # 1.8 MB > 1 MB
    assert rep.passed


def test_rules_table_and_bad_input(cli, tmp_path):
    table = markdown_table()
    for name in MARKETPLACES:
        assert f"| {name} |" in table
    assert table.count("https://") >= len(MARKETPLACES)
    r = cli("check", "--rules")
    assert r.returncode == 0 and r.stdout.strip() == table
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    r = cli("check", bad)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "bad.jpg" in r.stderr and "Traceback" not in r.stderr
    r = cli("check", bad, "--marketplace", "temu")
    assert r.returncode == 2 and "unknown marketplace 'temu'" in r.stderr
    r = cli("check", tmp_path / "missing.png")
    assert r.returncode == 2 and "missing.png" in r.stderr


def test_fix_on_a_lifestyle_scene_rescales_crops_and_pads(tmp_path):
    from packshot.marketplace.fix import fix_image

    yy, xx = np.mgrid[0:400, 0:400]
    scene = np.dstack([(xx * 0.5 + 40), (yy * 0.4 + 60), np.full_like(xx, 120.0)]).astype(np.uint8)
    scene[:4] = 20  # a 4 px dark band at the top: a border
    save_image(scene, tmp_path / "scene.png")
    rep = check_image(tmp_path / "scene.png", "ebay")
    bad = {r.check for r in rep.results if r.status == "fail"}
    assert bad == {"size", "borders"}, [(r.check, r.value) for r in rep.results]
    res = fix_image(tmp_path / "scene.png", "ebay", tmp_path / "fixed.png")
    assert res.after.passed, [(r.check, r.value) for r in res.after.results if r.status != "pass"]
    assert res.actions[0].startswith("cropped the border (top 4, right 0")
    assert "rescaled 1.25x to 500x495" in res.actions  # the longer side 400 px -> 500 px
    with Image.open(res.output) as im:
        assert max(im.size) == 500
    # walmart wants a square on white: a plain 3:2 product shot is re-laid out on a white square
    rgb, _ = mug_photo((1800, 1200), "white", jpeg_quality=None)
    save_image(rgb, tmp_path / "wide.png")
    res = fix_image(tmp_path / "wide.png", "walmart", tmp_path / "wide-fixed.png")
    assert res.after.passed and Image.open(res.output).size == (1800, 1800)
