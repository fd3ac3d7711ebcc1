"""Diffusion backgrounds below the output size: ONNX upscaler, hires second pass, Lanczos; the
captioner's product noun in the final prompt.

Models are tiny and random: an SD inpainting pipeline saved in the diffusers layout
(tiny_pipelines), a x2 / x4 super-resolution net written as a real .onnx file (tiny_upscaler),
a BLIP captioner saved with save_pretrained (tiny_blip). All are loaded through the public paths
(``--upscaler PATH`` / registry id in PACKSHOT_MODEL_DIR, ``--model PATH``, PACKSHOT_CAPTIONER).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from packshot.backgrounds import SceneJob
from packshot.backgrounds.diffusion import DiffusionEngine
from packshot.backgrounds.diffusion.upscale import check_upscaler, model_upscale
from packshot.config import Settings
from packshot.models import new_model_cache
from packshot.errors import InvalidInputError, MissingWeightsError, ModelError
from packshot.layout import place, plan
from packshot.schema import GenerateRequest
from packshot.types import Cutout, Matte, Photo
from synth import mug_photo
from tiny_upscaler import upscaler_model

pytest.importorskip("diffusers")
SIZE = (128, 96)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    import tiny_pipelines as tp
    from tiny_onnx import cutout_model

    root = tmp_path_factory.mktemp("upscale_models")
    return {"sd": tp.build_sd_inpaint(root / "sd-inpaint"), "sd_t2i": tp.build_sd_text2img(root / "sd-t2i"),
            "x2": upscaler_model(root / "tiny-x2.onnx", 2), "x4": upscaler_model(root / "tiny-x4.onnx", 4, side=32),
            "cutout": cutout_model(root / "cutout.onnx")}


@pytest.fixture(scope="module")
def mug(tmp_path_factory):
    rgb, alpha = mug_photo(SIZE, jpeg_quality=None, seed=3)
    path = tmp_path_factory.mktemp("mug") / "mug.png"
    a8 = np.round(alpha * 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, a8]), "RGBA").save(path)
    return rgb, a8.astype(np.float32) / 255.0, path


def _env(tmp_path: Path) -> dict:
    return {"PACKSHOT_MODEL_DIR": str(tmp_path / "models"), "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_OFFLINE": "1"}


def _engine(s: Settings) -> DiffusionEngine:
    """An engine on its own model cache: the tiny pipelines never sit in the process-wide one."""
    return DiffusionEngine(s, models=new_model_cache(s))


def _job(mug, **fields) -> SceneJob:
    rgb, alpha, _ = mug
    fields = {"engine": "diffusion", "steps": 2, "n": 1, "seed": 5, "prompt": "on a wooden table", **fields}
    req = GenerateRequest(**fields)
    cut = Cutout(Photo(rgb, source="mug"), Matte(alpha=alpha, engine="truth"))
    return SceneJob(request=req, layer=place(cut, plan(cut, req)), seeds=(req.seed,), photo=cut.photo)


def _generate(tmp_path, mug, model, name, *extra, env=None):
    out = tmp_path / name
    return out, run_cli("generate", mug[2], "--engine", "diffusion", "--model", model, "--steps", "2", "-n", "1",
                        "--size", "400x300", "--seed", "3", "-o", out, *extra, env=env or _env(tmp_path))


def _one_line_exit_2(r, *words):
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in err, err


# -- the upscaler model on its own -----------------------------------------------------------------------
def test_tiled_model_upscale_sizes_passes_and_no_seams(models):
    s = Settings()
    x2, x4 = check_upscaler(str(models["x2"]), s), check_upscaler(str(models["x4"]), s)
    assert (x2.scale, x2.fixed, x4.scale, x4.fixed, x4.tile) == (2, False, 4, True, 32)
    yy, xx = np.mgrid[0:300, 0:520]
    rgb = np.dstack([xx * 255 // 520, yy * 255 // 300, (xx + yy) * 255 // 820]).astype(np.uint8)  # smooth ramp
    out, passes = model_upscale(x2, rgb, (1040, 600))      # 520 px wide: 3 tiles of 256 across
    assert out.shape == (600, 1040, 3) and passes == 1
    # tiles blended = the whole image through the network in one call (this net takes any size)
    import onnxruntime as ort
    blob = rgb.transpose(2, 0, 1)[None] / np.float32(255)
    whole = ort.InferenceSession(str(models["x2"])).run(None, {"input": blob})[0]
    whole = (np.clip(whole[0].transpose(1, 2, 0), 0, 1) * 255).round()
    assert np.abs(out.astype(int) - whole).max() <= 1
    ref = cv2.resize(rgb, (1040, 600), interpolation=cv2.INTER_LINEAR).astype(int)
    assert np.abs(out.astype(int) - ref).mean() < 20          # the enlarged image plus random detail
    out4, p4 = model_upscale(x4, rgb[:50, :70], (1120, 800))  # x4 twice (x16 > x11.4), fixed 32 px tiles
    assert out4.shape == (800, 1120, 3) and p4 == 2


def test_check_upscaler_errors(models, tmp_path):
    s = Settings(model_dir=tmp_path / "models")
    assert check_upscaler(None, s) is None and check_upscaler("HiRes", s).kind == "hires"
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model" * 100)
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        check_upscaler(str(bad), s)
    with pytest.raises(ModelError, match="is not an upscaler"):
        check_upscaler(str(models["cutout"]), s)
    with pytest.raises(MissingWeightsError, match="packshot models pull realesrgan-x4"):
        check_upscaler("realesrgan-x4", s)
    with pytest.raises(ModelError, match="is a cutout model, not an upscaler"):
        check_upscaler("u2netp", s)
    with pytest.raises(InvalidInputError, match="'bicubic'"):
        check_upscaler("bicubic", s)


# -- end to end through the CLI, as a process ---------------------------------------------------------------
def test_cli_upscaler_by_path_exact_product(tmp_path, models):
    """A 400x300 cut-out photo kept in its framing: the tiny model works at 144x108, the x2 net
    brings the background to 400x300 (two passes), the product pixels are the photo's, bit-exact."""
    rgb, alpha = mug_photo((400, 300), jpeg_quality=None, seed=3)
    photo = tmp_path / "mug400.png"
    Image.fromarray(np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)]), "RGBA").save(photo)
    out = tmp_path / "out"
    r = run_cli("generate", photo, "--engine", "diffusion", "--model", models["sd"], "--steps", "2", "-n", "1",
                "--keep-framing", "--seed", "3", "--upscaler", models["x2"], "-o", out, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    c = json.loads((out / "results.json").read_text())["candidates"][0]
    img = np.asarray(Image.open(out / c["file"]).convert("RGB"))
    assert img.shape == (300, 400, 3)
    opaque = np.asarray(Image.open(out / "cutout.png"))[..., 3] == 255
    assert opaque.sum() > 5000 and np.array_equal(img[opaque], rgb[opaque])
    assert not np.array_equal(img[~opaque], rgb[~opaque])
    params = c["parameters"]
    # 144x108 working size -> 400x300: x2 twice (x4 >= x2.78), then area down to the canvas
    assert params["Upscaler"] == "tiny-x2.onnx (x2 ONNX, 2 passes, 256 px tiles, overlap 16 px)", params
    assert params["Working size"] == "144x112"


def test_upscaler_by_registry_id_in_the_model_dir(tmp_path, models, mug):
    """``realesrgan-x2`` found in model_dir/<id>/<file> (PACKSHOT_MODEL_DIR's setting); it has no
    published size or checksum, so the tiny net stands in for the real file."""
    s = Settings(model_dir=tmp_path / "models", device="cpu")
    dest = s.model_dir / "realesrgan-x2" / "Real-ESRGAN_x2plus.onnx"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(models["x2"].read_bytes())
    engine = _engine(s)
    by_id = engine.render(_job(mug, model=str(models["sd"]), size="200x150", upscaler="realesrgan-x2"))[0]
    by_path = engine.render(_job(mug, model=str(models["sd"]), size="200x150", upscaler=str(models["x2"])))[0]
    lanczos = engine.render(_job(mug, model=str(models["sd"]), size="200x150"))[0]
    assert by_id.params["Upscaler"] == "realesrgan-x2 (x2 ONNX, 1 pass, 256 px tiles, overlap 16 px)"
    assert np.array_equal(by_id.rgb, by_path.rgb) and by_id.rgb.shape == (150, 200, 3)
    assert lanczos.params["Upscaler"] == "Lanczos" and not np.array_equal(by_id.rgb, lanczos.rgb)
    assert any("upscaled with realesrgan-x2 (x2 ONNX)" in n for n in by_id.notes)
    # the setting (PACKSHOT_UPSCALER) is the default for requests that name none
    s2 = Settings(model_dir=s.model_dir, device="cpu", upscaler="realesrgan-x2")
    assert DiffusionEngine(s2).plan(_job(mug, model=str(models["sd"]), size="200x150")).upscaler.name == "realesrgan-x2"
    assert DiffusionEngine(s2).plan(_job(mug, model=str(models["sd"]), size="200x150",
                                         upscaler="lanczos")).upscaler.kind == "lanczos"


def test_cli_bad_upscaler_is_one_line_exit_2(tmp_path, models, mug):
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(models["x2"].read_bytes()[:200])
    _, r = _generate(tmp_path, mug, models["sd"], "bad", "--upscaler", bad)
    _one_line_exit_2(r, "broken.onnx", "not a loadable ONNX model")
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").glob("*.png"))
    _, r = _generate(tmp_path, mug, models["sd"], "missing", "--upscaler", "realesrgan-x4")
    _one_line_exit_2(r, "packshot models pull realesrgan-x4")
    _, r = _generate(tmp_path, mug, models["sd"], "kind", "--upscaler", models["cutout"])
    _one_line_exit_2(r, "is not an upscaler")


# -- the hires second pass ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["sd", "sd_t2i"])
def test_hires_pass_runs_at_the_output_size_and_is_recorded(models, mug, tmp_path, key):
    s = Settings(model_dir=tmp_path / "models", device="cpu")
    engine = _engine(s)
    mode = {"mode": "text2img"} if key == "sd_t2i" else {}
    plain = engine.render(_job(mug, model=str(models[key]), size="200x150", **mode))[0]
    hires = engine.render(_job(mug, model=str(models[key]), size="200x150", upscaler="hires", **mode))[0]
    assert hires.rgb.shape == plain.rgb.shape == (150, 200, 3)
    assert plain.params["Upscaler"] == "Lanczos" and "Hires pass" not in plain.params
    assert hires.params["Upscaler"] == "Lanczos + hires pass"
    assert hires.params["Hires pass"] == "200x152, strength 0.3, 4 steps"
    assert hires.timings["upscale"] > 0
    assert any("upscaled with Lanczos + a hires pass" in n for n in hires.notes)
    diff = np.abs(hires.rgb.astype(int) - plain.rgb.astype(int)).mean()
    assert 0.5 < diff < 60          # re-rendered at low strength: changed, but not a new image
    if key == "sd_t2i":
        return
    # at the output size already: the upscaler is not used, and says so
    small = engine.render(_job(mug, model=str(models[key]), size="128x96", upscaler="hires", **mode))[0]
    assert "Hires pass" not in small.params and any("upscaler 'hires' not used" in n for n in small.notes)


# -- the captioner's noun -----------------------------------------------------------------------------------
def test_captioner_noun_goes_into_the_final_prompt(models, mug, tmp_path):
    pytest.importorskip("transformers")
    from packshot.captioner import caption_image, noun_of
    from tiny_blip import build_tiny_blip

    blip = build_tiny_blip(tmp_path / "tiny-blip")
    s = Settings(model_dir=tmp_path / "models", device="cpu", captioner=str(blip))
    job = _job(mug, model=str(models["sd"]), keep_framing=True)
    scene = _engine(s).render(job)[0]
    layer = job.layer
    rgba = np.dstack([layer.rgb, np.round(np.clip(layer.alpha, 0, 1) * 255).astype(np.uint8)])
    noun = noun_of(caption_image(rgba, None, s))      # the same greedy caption the engine got
    assert noun is not None                           # this tiny BLIP names a noun packshot knows
    assert scene.params["Final prompt"].startswith(f"a {noun}, on a wooden table")
    assert any(f"product noun '{noun}' from the captioner" in n for n in scene.notes)
    # the request's own noun wins; the captioner is not asked
    named = DiffusionEngine(s).plan(_job(mug, model=str(models["sd"]), keep_framing=True, product="teapot"))
    assert named.prompt.startswith("a teapot, on a wooden table")
    assert not any("from the captioner" in n for n in named.notes)
    # a captioner that is not there: one error up front
    with pytest.raises(MissingWeightsError):
        DiffusionEngine(Settings(model_dir=tmp_path / "m2", captioner="blip-caption-base")).check(job.request)
