"""Diffusion engine on tiny randomly initialised pipelines saved in the real diffusers layout.

Acceptance runs go through ``python -m packshot generate`` as a process; the rest drives
``DiffusionEngine.render`` with the exact matte of a synthetic mug (128x96, 2 steps, CPU).
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from packshot.backgrounds import SceneJob
from packshot.backgrounds.diffusion import (DiffusionEngine, ModelInfo, canny_control, depth_control, plan_geometry,
                                            ring_mask)
from packshot.backgrounds.diffusion import seams
from packshot.config import Settings
from packshot.errors import DependencyMissingError, InvalidInputError, ModelError, UnknownNameError
from packshot.layout import place, plan
from packshot.models import model_cache
from packshot.schema import GenerateRequest
from packshot.types import Cutout, Matte, Photo
from synth import mug_photo

SIZE = (128, 96)


# -- fixtures: tiny models, built once per session ------------------------------------------------

@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    import tiny_pipelines as tp

    root = tmp_path_factory.mktemp("tiny_diffusion")
    out = {
        "sd": tp.build_sd_inpaint(root / "sd-inpaint"),
        "sd_t2i": tp.build_sd_text2img(root / "sd-t2i"),
        "sdxl": tp.build_sdxl_inpaint(root / "sdxl-inpaint"),
        "sdxl_t2i": tp.build_sdxl_text2img(root / "sdxl-t2i"),
        "cn": tp.build_controlnet(root / "controlnet-sd"),
        "cn9": tp.build_controlnet(root / "controlnet-inpaint", in_channels=9),
        "sd512": tp.build_sd_inpaint(root / "sd-inpaint-512", sample_size=64),
        "cn_xl": tp.build_controlnet(root / "controlnet-sdxl", sdxl=True),
        "ip": tp.build_ip_adapter(root / "ip-adapter-sd"),
        "single": tp.build_single_file(root / "sd-inpaint-single.safetensors"),
        "corrupt": tp.corrupt_copy(root / "sd-inpaint", root / "sd-inpaint-corrupt", "unet"),
    }
    return out


@pytest.fixture(scope="session")
def mug(tmp_path_factory):
    """(rgb, truth alpha, PNG path) of a 128x96 synthetic mug photo.

    The PNG carries the exact matte as its alpha channel (a cut-out product photo), so that the CLI
    runs test the diffusion stage, not the segmenter (which has its own tests)."""
    rgb, alpha = mug_photo(SIZE, jpeg_quality=None, seed=3)
    path = tmp_path_factory.mktemp("mug") / "mug.png"
    a8 = np.round(alpha * 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, a8]), "RGBA").save(path)
    return rgb, a8.astype(np.float32) / 255.0, path


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(model_dir=tmp_path / "models", device="cpu")


def _job(mug, **fields) -> SceneJob:
    rgb, alpha, _ = mug
    fields = {"engine": "diffusion", "steps": 2, "n": 1, "seed": 5, "prompt": "on a wooden table", **fields}
    if not any(k in fields for k in ("size", "aspect", "preset")):
        fields.setdefault("keep_framing", True)
    req = GenerateRequest(**fields)
    cut = Cutout(Photo(rgb, source="mug"), Matte(alpha=alpha, engine="truth"))
    seeds = tuple(req.seed + i for i in range(req.n))
    return SceneJob(request=req, layer=place(cut, plan(cut, req)), seeds=seeds, photo=cut.photo)


def _env(tmp_path: Path) -> dict:
    """Isolated from any real weights on this machine: an empty model dir and HF cache."""
    return {"PACKSHOT_MODEL_DIR": str(tmp_path / "models"), "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_OFFLINE": "1"}


def _generate_cli(tmp_path, mug, model, name, *extra):
    out = tmp_path / name
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", model, "--steps", "2", "-n", "2",
                "--keep-framing", "--seed", "11", "-o", out, *extra, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    return out


def _check_outputs(out: Path, photo_rgb: np.ndarray) -> dict:
    """Two candidates + results.json exist; the opaque product pixels are the photo's, bit-exact."""
    doc = json.loads((out / "results.json").read_text())
    files = [c["file"] for c in doc["candidates"]]
    assert len(files) == 2 and all((out / f).exists() for f in files)
    assert sorted(c["seed"] for c in doc["candidates"]) == [11, 12]
    cut_alpha = np.asarray(Image.open(out / "cutout.png"))[..., 3]
    opaque = cut_alpha == 255
    assert opaque.sum() > 500
    for f in files:
        img = np.asarray(Image.open(out / f).convert("RGB"))
        assert img.shape == photo_rgb.shape
        assert np.array_equal(img[opaque], photo_rgb[opaque])
        assert not np.array_equal(img[~opaque], photo_rgb[~opaque])  # the background was repainted
    return doc


def _pixels(out: Path, seed: int) -> np.ndarray:
    doc = json.loads((out / "results.json").read_text())
    f = next(c["file"] for c in doc["candidates"] if c["seed"] == seed)
    return np.asarray(Image.open(out / f).convert("RGB"))


# -- acceptance through the CLI, as a process ---------------------------------------------------------

def test_cli_tiny_sd_inpaint_exact_product_and_same_seed_same_bytes(tmp_path, tiny, mug):
    a = _generate_cli(tmp_path, mug, tiny["sd"], "a")
    doc = _check_outputs(a, mug[0])
    params = doc["candidates"][0]["parameters"]
    assert params["Mode"] == "inpaint" and params["Model"] == "sd-inpaint" and params["Steps"] == 2
    assert params["Sampler"] == "PNDMScheduler" and params["Device"] == "cpu float32"
    assert params["Denoising strength"] == 1.0 and "Seed" in params
    assert "raw_product_change" in doc["candidates"][0]["scores"]  # the score stage saw raw_product
    b = _generate_cli(tmp_path, mug, tiny["sd"], "b")
    for seed in (11, 12):
        name = next(c["file"] for c in doc["candidates"] if c["seed"] == seed)
        assert (a / name).read_bytes() == (b / name).read_bytes()


@pytest.mark.parametrize("key, mode", [("sdxl", "auto"), ("sd_t2i", "text2img")])
def test_cli_tiny_sdxl_and_text2img(tmp_path, tiny, mug, key, mode, settings):
    out = _generate_cli(tmp_path, mug, tiny[key], key, "--mode", mode)
    doc = _check_outputs(out, mug[0])
    params = doc["candidates"][0]["parameters"]
    assert params["Mode"] == ("inpaint" if key == "sdxl" else "text2img")
    assert params["Sampler"] == ("EulerDiscreteScheduler" if key == "sdxl" else "PNDMScheduler")
    # same seed, another process (this one): the same backdrop pixels
    from packshot.pipeline import Pipeline
    res = Pipeline(settings).generate(str(mug[2]), engine="diffusion", model=str(tiny[key]), steps=2, n=2,
                                      keep_framing=True, seed=11, mode=mode)
    for cand in res.candidates:
        assert np.array_equal(cand.image, _pixels(out, cand.seed))


@pytest.mark.parametrize("case", ["missing", "wrong-kind", "size", "corrupt"])
def test_cli_errors_are_one_line_exit_2(tmp_path, tiny, mug, case):
    args = {
        "missing": ["--model", "sd15-inpaint"],
        "wrong-kind": ["--model", str(tiny["sd_t2i"]), "--mode", "inpaint"],
        "size": ["--model", str(tiny["sd"]), "--size", "4096x64"],
        "corrupt": ["--model", str(tiny["corrupt"])],
    }[case]
    framing = [] if case == "size" else ["--keep-framing"]
    r = run_cli("generate", mug[2], "--engine", "diffusion", *args, *framing, "--steps", "2", "-n", "1",
                "-o", tmp_path / "out", env=_env(tmp_path))
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr and r.stderr.startswith("packshot: error:")
    want = {"missing": "fetch them with: packshot models pull sd15-inpaint",
            "wrong-kind": "text-to-image model (UNet in_channels=4); inpainting needs an inpainting checkpoint",
            "size": "is a size model 'sd-inpaint' cannot take",
            "corrupt": "sd-inpaint-corrupt is corrupt or incomplete: unet"}[case]
    assert want in r.stderr
    assert not (tmp_path / "out" / "results.json").exists()


# -- caching, batching, determinism ---------------------------------------------------------------------

def test_second_call_reuses_the_loaded_pipeline(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    cache = model_cache(settings)
    job = _job(mug, model=str(tiny["sd"]))
    first = engine.render(job)
    loads, hits = cache.stats["loads"], cache.stats["hits"]
    second = DiffusionEngine(settings).render(job)   # another engine instance, as another job would
    assert cache.stats["loads"] == loads and cache.stats["hits"] == hits + 1
    assert second[0].timings["model_load"] == 0.0
    assert np.array_equal(first[0].rgb, second[0].rgb)


def test_batched_candidates_equal_single_calls(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    engine.cpu_batch = 3   # all three in one call (the default batches as memory allows)
    batch = engine.render(_job(mug, model=str(tiny["sd"]), n=3, seed=7))
    single = engine.render(_job(mug, model=str(tiny["sd"]), n=1, seed=8))
    assert [s.seed for s in batch] == [7, 8, 9]
    diff = np.abs(batch[1].rgb.astype(int) - single[0].rgb.astype(int))
    assert diff.max() <= 2  # float rounding of a batched conv; the same seed, the same image
    assert np.abs(batch[0].rgb.astype(int) - batch[1].rgb.astype(int)).max() > 20  # seeds differ


def test_scene_fields_progress_and_params(tiny, mug, settings):
    events = []
    scenes = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sdxl"]), n=2, steps=3, strength=1.0),
                                              lambda stage, f, msg: events.append((stage, f, msg)))
    steps = [e for e in events if e[2].startswith("step ")]
    assert [e[2] for e in steps] == ["step 1/3", "step 2/3", "step 3/3"]   # both candidates in one batched call
    assert all(e[0] == "background" for e in events) and events[-1][1] == 1.0
    fr = [e[1] for e in events]
    assert fr == sorted(fr)
    s = scenes[0]
    assert s.engine == "diffusion" and s.generated and not s.needs_shadow
    assert s.rgb.shape == (96, 128, 3) and s.rgb.dtype == np.uint8
    assert s.raw_product is not None and s.raw_product.shape == (96, 128, 3) and s.raw_product.dtype == np.uint8
    assert s.params["Steps"] == 3 and s.params["CFG scale"] == 7.5 and s.params["Model"] == "sdxl-inpaint"


def test_scheduler_by_name_and_unknown_name(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model=str(tiny["sd"]), scheduler="EulerAncestralDiscreteScheduler"))[0]
    assert s.params["Sampler"] == "EulerAncestralDiscreteScheduler"
    s2 = engine.render(_job(mug, model=str(tiny["sd"]), scheduler="dpmsolvermultistepscheduler"))[0]
    assert s2.params["Sampler"] == "DPMSolverMultistepScheduler"
    s3 = engine.render(_job(mug, model=str(tiny["sd"])))[0]      # back to the model's own
    assert s3.params["Sampler"] == "PNDMScheduler"
    with pytest.raises(UnknownNameError, match="unknown scheduler 'Turbo'; valid: DDIMScheduler"):
        engine.render(_job(mug, model=str(tiny["sd"]), scheduler="Turbo"))


# -- geometry: pad, never stretch, scale into the model's range ---------------------------------------------

def test_outpaint_on_a_new_canvas_with_padding(tiny, mug, settings):
    scenes = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd"]), size="100x75"))
    s = scenes[0]
    assert s.rgb.shape == (75, 100, 3) and s.raw_product.shape == (75, 100, 3)
    assert s.params["Mode"] == "outpaint" and s.params["Working size"] == "144x112"   # the bucket nearest 4:3
    assert s.params["Fill"] == "blur" and s.params["Downscaler"] == "area"


def test_large_canvas_generated_at_the_models_scale_then_resized(tiny, mug, settings):
    s = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd"]), size="400x300"))[0]
    assert s.rgb.shape == (300, 400, 3)
    assert s.params["Working size"] == "144x112"    # native 128 px: uniform scale 0.36 -> 144x108, padded to the bucket
    assert any("generated at 144x108" in n and "bucket 144x112" in n for n in s.notes)


def test_plan_geometry_buckets_and_limits():
    sd = ModelInfo(path=Path("x"), name="sd", format="diffusers", family="sd", in_channels=9, native=512, min_side=64)
    xl = ModelInfo(path=Path("x"), name="xl", format="diffusers", family="sdxl", in_channels=9, native=1024,
                   min_side=128)
    assert plan_geometry((2048, 2048), sd).padded == (512, 512)      # a marketplace canvas: the native size
    assert plan_geometry((2048, 2048), xl).padded == (1024, 1024)
    for canvas in ((2000, 1500), (1500, 2000), (1920, 1080), (901, 601), (200, 150)):
        for info in (sd, xl):
            g = plan_geometry(canvas, info)
            bw, bh = g.padded
            assert bw % 64 == 0 and bh % 64 == 0 and 0.85 <= bw * bh / info.native ** 2 <= 1.1
            assert abs(np.log(bw / bh) - np.log(canvas[0] / canvas[1])) < 0.2          # the nearest aspect
            assert g.work[0] <= bw and g.work[1] <= bh and max(bw - g.work[0], bh - g.work[1]) <= 0.2 * max(bw, bh)
            assert g.work[0] / g.work[1] == pytest.approx(canvas[0] / canvas[1], rel=0.02)  # never stretched
    assert plan_geometry((2000, 1500), xl).padded == (1152, 896)
    with pytest.raises(ModelError, match="4096x64 is a size model 'sd' cannot take"):
        plan_geometry((4096, 64), sd)
    g = plan_geometry((200, 150), sd)
    assert g.to_canvas(np.zeros((*g.padded[::-1], 3), np.uint8)).shape == (150, 200, 3)


# -- modes and notes -----------------------------------------------------------------------------------

def test_text2img_scene_and_notes_for_settings_that_do_not_apply(tiny, mug, settings):
    s = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img", strength=0.5,
                                              control_image="depth", guidance=1.0))[0]
    assert s.needs_shadow and s.generated and s.raw_product is None
    assert "Denoising strength" not in s.params and s.params["Mode"] == "text2img"
    notes = " | ".join(s.notes)
    assert "strength 0.5 does not apply to text2img" in notes
    assert "control_image 'depth' needs a ControlNet" in notes
    assert "the negative prompt is not used" in notes


def test_img2img_restyles_a_reference(tiny, mug, settings, tmp_path):
    ref = tmp_path / "ref.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))).save(ref)
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model=str(tiny["sd_t2i"]), reference_image=str(ref), strength=0.6, steps=4))[0]
    assert s.params["Mode"] == "img2img" and s.params["Denoising strength"] == 0.6 and s.needs_shadow
    assert any("mode auto" in n and "img2img" in n for n in s.notes)
    with pytest.raises(InvalidInputError, match="give reference_image"):
        engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="img2img"))
    with pytest.raises(ModelError, match="inpainting model .*img2img needs a text-to-image"):
        engine.render(_job(mug, model=str(tiny["sd"]), mode="img2img", reference_image=str(ref)))


def test_seam_pass_repaints_only_a_ring_around_the_product(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    plain = engine.render(_job(mug, model=str(tiny["sd"])))[0]
    seam = engine.render(_job(mug, model=str(tiny["sd"]), seam_pass=True))[0]
    assert seam.params["Seam pass"] == "strength 0.35, ring 4 px"
    changed = np.abs(seam.rgb.astype(int) - plain.rgb.astype(int)).max(axis=2) > 0
    assert changed.any()
    near = ring_mask(mug[1], 4 + 8) > 0  # the ring plus its feathering
    assert not changed[~near].any()
    assert np.array_equal(seam.raw_product, plain.raw_product)  # raw = the model's first pass


def test_text2img_seam_pass_harmonises_with_the_product(tiny, mug, settings):
    s = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img",
                                              seam_pass=True))[0]
    assert s.raw_product is not None and "Seam pass" in s.params


def test_wrong_kind_and_no_step_errors(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    with pytest.raises(ModelError, match="inpainting model .*text2img needs a text-to-image"):
        engine.render(_job(mug, model=str(tiny["sd"]), mode="text2img"))
    with pytest.raises(ModelError, match="is a ControlNetModel folder, not a diffusion pipeline"):
        engine.render(_job(mug, model=str(tiny["cn"])))
    with pytest.raises(InvalidInputError, match="steps 2 x strength 0.3 leaves no denoising step"):
        engine.render(_job(mug, model=str(tiny["sd"]), strength=0.3))


def test_plain_background_preset_runs_no_model(mug, settings):
    loads = model_cache(settings).stats["loads"]
    scenes = DiffusionEngine(settings).render(_job(mug, preset="amazon", n=2))
    assert model_cache(settings).stats["loads"] == loads
    assert all((s.rgb == 255).all() and not s.generated for s in scenes)
    assert "plain RGB 255,255,255" in scenes[0].notes[0]


# -- conditioning --------------------------------------------------------------------------------------

def test_control_images_from_the_layout(mug):
    layer = _job(mug).layer
    canny, depth = canny_control(layer.rgb, layer.alpha), depth_control(layer)
    assert canny.shape == depth.shape == (96, 128, 3)
    import cv2
    inside = mug[1] >= 0.99
    near = cv2.dilate((mug[1] >= 0.02).astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    edges = canny[..., 0] > 0
    assert edges[near].sum() > 50 and not edges[~near].any()  # the product's edges, nothing elsewhere
    assert depth[..., 0][inside].min() > depth[..., 0][mug[1] < 0.01].max()  # the product is nearest


@pytest.mark.parametrize("control", ["canny", "depth"])
def test_controlnet_inpaint(tiny, mug, settings, control):
    s = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd"]), controlnet=str(tiny["cn"]),
                                              control_image=control, n=2))
    assert s[0].params["ControlNet"] == f"controlnet-sd ({control}, scale 0.5, end 0.7)"
    assert s[0].rgb.shape == (96, 128, 3)


def test_controlnet_text2img_sdxl_and_mismatch(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model=str(tiny["sdxl_t2i"]), controlnet=str(tiny["cn_xl"]), mode="text2img"))[0]
    assert s.params["ControlNet"] == "controlnet-sdxl (canny, scale 0.5, end 0.7)"
    with pytest.raises(ModelError, match="ControlNet 'controlnet-sdxl' is for SDXL but model 'sd-inpaint'"):
        engine.render(_job(mug, model=str(tiny["sd"]), controlnet=str(tiny["cn_xl"])))


def test_ip_adapter_with_a_reference_photo(tiny, mug, settings):
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model=str(tiny["sd"]), ip_adapter=str(tiny["ip"]), reference_image=str(mug[2])))[0]
    assert s.params["IP-Adapter"] == "ip-adapter-sd (scale 0.6)"
    assert s.rgb.shape == (96, 128, 3)
    with pytest.raises(InvalidInputError, match="ip_adapter takes the style of a reference photo"):
        engine.render(_job(mug, model=str(tiny["sd"]), ip_adapter=str(tiny["ip"])))


def test_ip_adapter_by_registry_id_uses_the_h94_layout(tiny, mug, tmp_path):
    # h94/IP-Adapter as `models pull ip-adapter-sd15` lays it out: models/ip-adapter_sd15.safetensors + models/image_encoder
    dest = tmp_path / "models" / "ip-adapter-sd15"
    shutil.copytree(tiny["ip"], dest)
    (dest / "models" / "ip-adapter_tiny.safetensors").rename(dest / "models" / "ip-adapter_sd15.safetensors")
    engine = DiffusionEngine(Settings(model_dir=tmp_path / "models", device="cpu"))
    s = engine.render(_job(mug, model=str(tiny["sd"]), ip_adapter="ip-adapter-sd15", reference_image=str(mug[2])))[0]
    assert s.params["IP-Adapter"] == "ip-adapter-sd15 (scale 0.6)"
    shutil.copytree(dest, tmp_path / "models" / "ip-adapter-sdxl")
    with pytest.raises(ModelError, match="IP-Adapter 'ip-adapter-sdxl' is for sdxl but model 'sd-inpaint'"):
        engine.render(_job(mug, model=str(tiny["sd"]), ip_adapter="ip-adapter-sdxl", reference_image=str(mug[2])))


# -- single-file checkpoints, broken folders, missing extras ---------------------------------------------

def test_single_file_checkpoint_matches_the_folder(tiny, mug, tmp_path):
    # the file holds the same weights as tiny["sd"] (same builder seed), in the original LDM layout;
    # the configs come from the base model's folder in the model dir (as `models pull --config-only` gives)
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    engine = DiffusionEngine(settings)
    with pytest.raises(ModelError, match="packshot models pull sd15-inpaint --config-only"):
        engine.render(_job(mug, model=str(tiny["single"])))
    cfg = tmp_path / "models" / "sd15-inpaint"
    shutil.copytree(tiny["sd"], cfg, ignore=shutil.ignore_patterns("*.safetensors"))
    single = engine.render(_job(mug, model=str(tiny["single"])))[0]
    folder = engine.render(_job(mug, model=str(tiny["sd"])))[0]
    assert single.params["Model"] == "sd-inpaint-single.safetensors"
    assert np.abs(single.rgb.astype(int) - folder.rgb.astype(int)).max() <= 1


def test_corrupt_folder_caught_from_the_library(tiny, mug, settings, tmp_path):
    # headers intact, but the UNet config does not match its weights: diffusers raises on load
    bad = tmp_path / "mismatch"
    shutil.copytree(tiny["sd"], bad)
    cfg = json.loads((bad / "unet" / "config.json").read_text())
    cfg["block_out_channels"] = [16, 32]
    (bad / "unet" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match=r"cannot load model .*mismatch"):
        DiffusionEngine(settings).render(_job(mug, model=str(bad)))


def test_missing_ai_extra_is_a_dependency_error(tiny, mug, settings, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now raises ImportError
    with pytest.raises(DependencyMissingError, match=r"the diffusion engine needs the 'ai' extra"):
        DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd"])))


def test_pickle_single_file_needs_the_opt_in(tiny, mug, tmp_path):
    import torch
    from safetensors.torch import load_file
    ckpt = tmp_path / "sd-inpaint.ckpt"
    torch.save({"state_dict": load_file(str(tiny["single"]))}, ckpt)
    shutil.copytree(tiny["sd"], tmp_path / "models" / "sd15-inpaint", ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelError, match="pickle checkpoint; loading it can run code"):
        DiffusionEngine(Settings(model_dir=tmp_path / "models", device="cpu")).render(_job(mug, model=str(ckpt)))
    s = DiffusionEngine(Settings(model_dir=tmp_path / "models", device="cpu", allow_pickle_weights=True)).render(
        _job(mug, model=str(ckpt)))[0]
    assert s.params["Model"] == "sd-inpaint.ckpt" and s.params["Mode"] == "inpaint"


def test_registry_id_and_default_model_from_the_model_dir(tiny, mug, tmp_path):
    settings = Settings(model_dir=tmp_path / "models", device="cpu")
    shutil.copytree(tiny["sd"], tmp_path / "models" / "sd15-inpaint")
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model="sd15-inpaint"))[0]
    assert s.params["Model"] == "sd15-inpaint"
    d = engine.render(_job(mug))[0]                      # no model given: the first default present
    assert d.params["Model"] == "sd15-inpaint"
    assert any(n.startswith("model: used sd15-inpaint (the first present of sdxl-inpaint") for n in d.notes)
    with pytest.raises(ModelError, match="'controlnet-canny-sd15' is a controlnet model"):
        engine.render(_job(mug, model="controlnet-canny-sd15"))


def test_memory_options_are_applied_or_reported(tiny, mug, tmp_path):
    settings = Settings(model_dir=tmp_path, device="cpu", cpu_offload=True, attention_slicing=True, vae_tiling=True)
    engine = DiffusionEngine(settings)
    s = engine.render(_job(mug, model=str(tiny["sd"])))[0]
    assert "cpu_offload applies to GPUs only: the model runs on cpu" in s.notes
    holder, _ = engine.load(engine.plan(_job(mug, model=str(tiny["sd"]))),
                            __import__("packshot.models.devices", fromlist=["runtime"]).runtime(settings))
    assert holder.pipe.vae.use_tiling
    assert s.rgb.shape == (96, 128, 3)


# -- issue 11: native working size, seams, strength, the object-aware ControlNet, from_pipe, check ------

def test_cli_2048_request_runs_at_the_family_bucket_and_keeps_the_product_exact(tmp_path, tiny, mug):
    out = tmp_path / "big"
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", tiny["sd512"], "--steps", "2", "-n", "1",
                "--size", "2048x2048", "--seed", "3", "--product", "mug", "-o", out, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "results.json").read_text())
    cand = doc["candidates"][0]
    params = cand["parameters"]
    assert params["Working size"] == "512x512" and params["Upscaler"] == "Lanczos"   # native 512 px: SD's bucket
    assert params["Mode"] == "outpaint" and params["Denoising strength"] == 1.0
    assert params["Final prompt"].startswith("a mug, pure white studio background, professional product photography")
    img = np.asarray(Image.open(out / cand["file"]).convert("RGB"))
    assert img.shape == (2048, 2048, 3)
    # the product, placed at full output resolution, is pasted back bit for bit
    req = GenerateRequest(engine="diffusion", size="2048x2048")
    cut = Cutout(Photo(mug[0], source="mug"), Matte(alpha=mug[1], engine="truth"))
    layer = place(cut, plan(cut, req))
    opaque = layer.alpha >= 1.0
    assert opaque.sum() > 100_000 and np.array_equal(img[opaque], layer.rgb[opaque])


def _band_error(mask_fn, alpha_w: np.ndarray, scale: int) -> tuple[int, int]:
    """Synthetic round trip of a perfect inpainting model: latent blocks the pipeline keeps show the
    init (product over a grey fill), repainted blocks the scene (a blue). After the exact paste-back,
    (fringe pixels, band pixels off the scene colour by > 30 in the 12 px band outside the product)."""
    mask = mask_fn(alpha_w)
    kept = seams.latent_kept(mask, scale)
    product, grey, scene = np.array([200, 60, 40.]), np.array([127, 127, 127.]), np.array([40, 80, 200.])
    a = alpha_w[..., None]
    init = product * a + grey * (1 - a)
    model = np.where(kept[..., None], init, scene)
    final = product * a + model * (1 - a)
    import cv2
    outside = (alpha_w < 0.02).astype(np.uint8)
    band = (cv2.distanceTransform(outside, cv2.DIST_L2, 3) <= 12) & (outside > 0)
    return seams.fringe_pixels(mask, alpha_w, scale), int((np.abs(final[band] - scene).max(axis=1) > 30).sum())


def test_repaint_mask_leaves_no_grey_block_fringe_at_the_product_edge(mug):
    import torch
    from diffusers.image_processor import VaeImageProcessor
    from packshot.layout import place as place_layer
    info = ModelInfo(path=Path("x"), name="sd", format="diffusers", family="sd", in_channels=9, native=512,
                     min_side=64)
    req = GenerateRequest(engine="diffusion", size="2048x2048")
    cut = Cutout(Photo(mug[0], source="mug"), Matte(alpha=mug[1], engine="truth"))
    g = plan_geometry((2048, 2048), info)
    alpha_w = g.to_work(place_layer(cut, plan(cut, req)).alpha.astype(np.float32), pad_value=0.0)
    new = seams.repaint_mask(alpha_w, 8)
    # our model of the pipeline's mask -> latent step is diffusers' own (binarize, nearest interpolate)
    proc = VaeImageProcessor(vae_scale_factor=8, do_normalize=False, do_binarize=True, do_convert_grayscale=True)
    for mask in (new, seams.exact_mask(alpha_w)):
        m = proc.preprocess(Image.fromarray(mask, "L"), height=512, width=512)
        lat = torch.nn.functional.interpolate(m, size=(64, 64))[0, 0].numpy() < 0.5
        assert np.array_equal(np.repeat(np.repeat(lat, 8, 0), 8, 1), seams.latent_kept(mask, 8))
    old_px, old_err = _band_error(seams.exact_mask, alpha_w, 8)
    new_px, new_err = _band_error(lambda a: seams.repaint_mask(a, 8), alpha_w, 8)
    assert old_px > 1000 and old_err > 10         # the old mask: grey blocks straddling the edge (measured 1871, 16)
    assert new_px == 0 and new_err == 0          # grown + max-pooled: every background block is repainted
    # the band repainted inside the product is thin: a few working px plus block rounding
    grown = (new > 0) & (alpha_w >= seams.KEEP_ALPHA)
    import cv2
    inside = cv2.distanceTransform((alpha_w >= seams.KEEP_ALPHA).astype(np.uint8), cv2.DIST_L2, 3)
    assert grown.any() and inside[grown].max() <= seams.MASK_GROW + 8 * 1.5


def test_outpaint_fills_follow_the_product_not_a_flat_colour(mug):
    layer = _job(mug, size="256x192").layer
    known = layer.alpha >= 1.0
    blur = seams.outpaint_init(layer.rgb, layer.alpha, "blur", (127, 127, 127))
    edge = seams.outpaint_init(layer.rgb, layer.alpha, "edge", (127, 127, 127))
    flat = seams.outpaint_init(layer.rgb, layer.alpha, "flat", (127, 127, 127))
    for img in (blur, edge, flat):
        assert np.array_equal(img[known], layer.rgb[known])       # the product is untouched
    assert (flat[layer.alpha == 0] == 127).all()
    mean = layer.rgb[known].mean(0)
    far = (0, 0)                                                   # a corner, far from the product
    assert np.abs(blur[far].astype(float) - mean).max() < 40      # far away: about the product's mean colour
    ys, xs = np.nonzero(layer.alpha >= seams.KEEP_ALPHA)
    y0, x0 = ys.min(), xs[ys.argmin()]                 # the product's top: straight above it, its colour
    assert layer.alpha[y0 - 10, x0] == 0 and tuple(edge[y0 - 10, x0]) == tuple(layer.rgb[y0, x0])


def test_strength_defaults_per_model_and_mode(tiny, mug, settings, tmp_path):
    engine = DiffusionEngine(settings)
    xl = engine.render(_job(mug, model=str(tiny["sdxl"]), steps=4))[0]
    assert xl.params["Denoising strength"] == 0.99 and any("0.99 (the model default): 3 of 4" in n for n in xl.notes)
    assert engine.render(_job(mug, model=str(tiny["sd"])))[0].params["Denoising strength"] == 1.0
    ref = tmp_path / "ref.png"
    Image.fromarray(mug[0]).save(ref)
    i2i = engine.render(_job(mug, model=str(tiny["sd_t2i"]), reference_image=str(ref), mode="img2img", steps=4))[0]
    assert i2i.params["Denoising strength"] == 0.7


def test_img2img_at_default_strength_is_closer_to_its_reference_than_text2img(tiny, mug, settings, tmp_path):
    """A random tiny VAE cannot reproduce the reference itself, so "the reference" is what this
    model's VAE makes of it (encode + decode at the working size): img2img at its default strength
    (0.7) keeps part of the reference's latents, text2img starts from pure noise."""
    import cv2
    import torch
    from packshot.models.devices import runtime
    ref_rgb = np.zeros((96, 128, 3), np.uint8)
    ref_rgb[:, :64] = (230, 40, 30)
    ref_rgb[:, 64:] = (20, 60, 220)
    ref = tmp_path / "ref.png"
    Image.fromarray(ref_rgb).save(ref)
    engine = DiffusionEngine(settings)
    errs = {}
    for mode in ("img2img", "text2img"):
        job = _job(mug, model=str(tiny["sd_t2i"]), mode=mode, reference_image=str(ref), steps=10, n=4, seed=21)
        scenes = engine.render(job)
        if mode == "img2img":
            assert scenes[0].params["Denoising strength"] == 0.7
            plan_ = engine.plan(job)
            g = plan_.geometry
            pipe = engine.load(plan_, runtime(settings))[0].pipe
            x = pipe.image_processor.preprocess(Image.fromarray(cv2.resize(ref_rgb, g.padded)), height=g.padded[1],
                                                width=g.padded[0])
            with torch.no_grad():
                y = pipe.vae.decode(pipe.vae.encode(x).latent_dist.mode()).sample
            seen = g.to_canvas((np.clip(pipe.image_processor.postprocess(y, output_type="np")[0], 0, 1) * 255)
                               .round().astype(np.uint8)).astype(float)
        errs[mode] = [float(np.abs(s.rgb.astype(float) - seen).mean()) for s in scenes]
    assert max(errs["img2img"]) < min(errs["text2img"]), errs     # measured: 37.7-38.9 vs 39.9-42.0


def test_cli_nine_channel_inpainting_controlnet_end_to_end(tmp_path, tiny, mug):
    out = _generate_cli(tmp_path, mug, tiny["sd"], "cn9", "--controlnet", tiny["cn9"])
    doc = _check_outputs(out, mug[0])
    params = doc["candidates"][0]["parameters"]
    assert params["ControlNet"] == "controlnet-inpaint (inpaint mask, scale 0.5, end 0.7)"
    from packshot.pipeline import Pipeline
    res = Pipeline(Settings(model_dir=tmp_path / "models", device="cpu")).generate(
        str(mug[2]), engine="diffusion", model=str(tiny["sd"]), steps=2, n=1, keep_framing=True, seed=11)
    # the ControlNet steered: not the plain pipeline's pixels for the same seed
    assert np.abs(_pixels(out, 11).astype(int) - res.candidates[0].image.astype(int)).max() > 10


def test_nine_channel_controlnet_refused_on_a_text_to_image_model(tiny, mug, settings):
    with pytest.raises(ModelError, match="is an inpainting ControlNet .*use it with its inpainting model"):
        DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd_t2i"]), controlnet=str(tiny["cn9"]),
                                              mode="text2img"))


def _params_of(pipe) -> dict[int, int]:
    import torch
    out = {}
    for comp in pipe.components.values():
        if isinstance(comp, torch.nn.Module):
            for p in comp.parameters():
                out[p.data_ptr()] = p.numel()
    return out


def test_controlnet_variant_shares_the_loaded_model_through_from_pipe(tiny, mug, settings):
    from packshot.models.devices import runtime
    engine = DiffusionEngine(settings)
    rt = runtime(settings)
    base, _ = engine.load(engine.plan(_job(mug, model=str(tiny["sd"]))), rt)
    loads = engine.models.stats["loads"]
    variant, loaded_now = engine.load(engine.plan(_job(mug, model=str(tiny["sd"]), controlnet=str(tiny["cn"]))), rt)
    assert loaded_now and engine.models.stats["loads"] == loads + 1
    assert variant.pipe.unet is base.pipe.unet and variant.pipe.vae is base.pipe.vae
    b, v = _params_of(base.pipe), _params_of(variant.pipe)
    cn = {p.data_ptr(): p.numel() for p in variant.pipe.controlnet.parameters()}
    resident = {**b, **v}
    assert sum(resident.values()) == sum(b.values()) + sum(cn.values())   # only the ControlNet was added
    assert variant.lock is base.lock


def test_check_refuses_requests_bound_to_fail_before_any_work(tiny, settings, tmp_path):
    engine = DiffusionEngine(settings)
    ok = GenerateRequest(engine="diffusion", model=str(tiny["sd"]))
    engine.check(ok, settings)
    engine.check(GenerateRequest(engine="diffusion", preset="amazon"), settings)   # plain white: no model runs
    bad = {
        "wrong kind": (GenerateRequest(engine="diffusion", model=str(tiny["sd_t2i"]), mode="inpaint"),
                       ModelError, "inpainting needs an inpainting checkpoint"),
        "missing": (GenerateRequest(engine="diffusion", model="sd15-inpaint"), Exception,
                    "packshot models pull sd15-inpaint"),
        "no reference": (GenerateRequest(engine="diffusion", model=str(tiny["sd_t2i"]), mode="img2img"),
                         InvalidInputError, "give reference_image"),
        "reference missing": (GenerateRequest(engine="diffusion", model=str(tiny["sd_t2i"]), mode="img2img",
                                              reference_image=str(tmp_path / "nope.png")),
                              InvalidInputError, "nope.png'?: no such file"),
        "no step": (GenerateRequest(engine="diffusion", model=str(tiny["sd"]), steps=2, strength=0.3),
                    InvalidInputError, "leaves no denoising step"),
    }
    for why, (req, exc, msg) in bad.items():
        with pytest.raises(exc, match=msg):
            engine.check(req, settings)


def test_final_prompt_names_the_product_and_is_recorded(tiny, mug, settings):
    s = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sdxl"]), segment={"text": "the mug"}))[0]
    assert s.params["Final prompt"] == ("a mug, on a wooden table, professional product photography, sharp focus, "
                                        "high detail, soft studio lighting")
    from packshot.backgrounds.diffusion.prompts import NEGATIVE_PROMPTS
    assert s.params["negative_prompt"] == NEGATIVE_PROMPTS["sdxl"]
    bare = DiffusionEngine(settings).render(_job(mug, model=str(tiny["sd"]), prompt_style="none",
                                                 negative_prompt="people"))[0]
    assert bare.params["Final prompt"] == "on a wooden table" and bare.params["negative_prompt"] == "people"


def test_resident_models_are_unloaded_when_a_new_one_would_not_fit(tiny, mug, settings, monkeypatch):
    from packshot.models import ModelCache
    engine = DiffusionEngine(settings, models=ModelCache(2))     # a Pipeline's own cache, empty
    engine.render(_job(mug, model=str(tiny["sd"])))
    assert len(engine.models) == 1
    monkeypatch.setattr("packshot.models.devices.free_bytes", lambda device: 1000)   # "no memory left"
    s = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img"))[0]
    assert len(engine.models) == 1
    assert any(n.startswith("unloaded 1 resident model to make room for sd-t2i") for n in s.notes)
