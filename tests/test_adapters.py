"""Generating with trained adapters (issue 12): LoRA, DreamBooth-LoRA and textual inversion on the
tiny saved pipelines, adapters as first-class models (find, list, base check), ``<product>`` ->
trigger token, product pasted back exactly in inpaint/outpaint, painted by the model in
text2img/img2img.

Adapters are built directly with peft/diffusers (tests/tiny_adapters.py), independent of the
training code. Acceptance runs go through ``python -m packshot`` as a process.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from packshot.backgrounds import SceneJob
from packshot.backgrounds.diffusion import DiffusionEngine
from packshot.config import Settings
from packshot.errors import InvalidInputError, ModelError, UnknownNameError
from packshot.layout import place, plan
from packshot.models import ModelCache
from packshot.models.adapters import check_adapter_base, find_adapter, list_adapters, scan_adapters
from packshot.schema import GenerateRequest
from packshot.types import Cutout, Matte, Photo
from synth import mug_photo

SIZE = (128, 96)


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    import tiny_adapters as ta
    import tiny_pipelines as tp

    root = tmp_path_factory.mktemp("tiny_adapters")
    m = {"sd": tp.build_sd_inpaint(root / "sd-inpaint"), "sd_t2i": tp.build_sd_text2img(root / "sd-t2i"),
         "sdxl_t2i": tp.build_sdxl_text2img(root / "sdxl-t2i")}
    a = root / "adapters"
    m.update({
        "lora": ta.build_lora(a / "mug-lora", m["sd_t2i"]),
        "lora2": ta.build_lora(a / "style-lora", m["sd_t2i"], name="style-lora", token="zwx", seed=7),
        "db": ta.build_lora(a / "mug-db", m["sd_t2i"], name="mug-db", token="qrt", text_encoder=True, seed=3),
        "ti": ta.build_ti(a / "mug-ti", m["sd_t2i"]),
        "lora_xl": ta.build_lora(a / "mug-lora-xl", m["sdxl_t2i"], name="mug-lora-xl"),
        "ti_xl": ta.build_ti(a / "mug-ti-xl", m["sdxl_t2i"], name="mug-ti-xl"),
    })
    return m


@pytest.fixture(scope="session")
def mug(tmp_path_factory):
    """(rgb, alpha, RGBA PNG path): the exact matte as alpha, so runs test the diffusion stage."""
    rgb, alpha = mug_photo(SIZE, jpeg_quality=None, seed=3)
    path = tmp_path_factory.mktemp("mug") / "mug.png"
    a8 = np.round(alpha * 255).astype(np.uint8)
    Image.fromarray(np.dstack([rgb, a8]), "RGBA").save(path)
    ref = path.parent / "reference.png"
    Image.fromarray(np.tile(np.linspace(0, 255, 64, dtype=np.uint8)[None, :, None], (48, 1, 3))).save(ref)
    return rgb, a8.astype(np.float32) / 255.0, path, ref


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(model_dir=tmp_path / "models", device="cpu")


def _engine(settings) -> DiffusionEngine:
    return DiffusionEngine(settings, models=ModelCache(2))    # its own cache: loads counted from zero


def _job(mug, **fields) -> SceneJob:
    rgb, alpha = mug[0], mug[1]
    fields = {"engine": "diffusion", "steps": 2, "n": 1, "seed": 5, "prompt": "on a wooden table", **fields}
    if not any(k in fields for k in ("size", "aspect", "preset")):
        fields.setdefault("keep_framing", True)
    req = GenerateRequest(**fields)
    cut = Cutout(Photo(rgb, source="mug"), Matte(alpha=alpha, engine="truth"))
    return SceneJob(request=req, layer=place(cut, plan(cut, req)), seeds=tuple(req.seed + i for i in range(req.n)),
                    photo=cut.photo)


def _env(tmp_path: Path) -> dict:
    return {"PACKSHOT_MODEL_DIR": str(tmp_path / "models"), "HF_HOME": str(tmp_path / "hf"),
            "HF_HUB_CACHE": str(tmp_path / "hf" / "hub"), "HF_HUB_OFFLINE": "1"}


def _one_line_exit_2(r, out: Path, *wants: str) -> None:
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("packshot: error:"), r.stderr
    assert "Traceback" not in r.stderr
    for want in wants:
        assert want in r.stderr, (want, r.stderr)
    assert not out.exists() or not any(out.iterdir())


# -- through the CLI, as a process ----------------------------------------------------------------------

MODES = {  # mode -> (model key, extra CLI args)
    "inpaint": ("sd", ["--keep-framing"]),
    "outpaint": ("sd", ["--size", "160x120"]),
    "text2img": ("sd_t2i", ["--mode", "text2img", "--keep-framing"]),
    "img2img": ("sd_t2i", ["--mode", "img2img", "--strength", "0.5", "--steps", "4", "--keep-framing"]),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_cli_adapter_in_every_mode_changes_the_output(tmp_path, tiny, mug, settings, mode):
    key, extra = MODES[mode]
    if mode == "img2img":
        extra += ["--reference-image", str(mug[3])]
    out = tmp_path / "out"
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", tiny[key], "--adapter", tiny["lora"],
                "--prompt", "<product> on a wooden table", "--product", "mug", "--steps", "2", "-n", "1",
                "--seed", "11", "-o", out, *extra, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "results.json").read_text())
    cand = doc["candidates"][0]
    params = cand["parameters"]
    assert params["Mode"] == mode and params["Adapters"] == "mug-lora:1 (lora, sks)"
    assert params["Final prompt"].startswith("sks mug on a wooden table")
    png = Image.open(out / cand["file"])
    assert 'Adapters: "mug-lora:1 (lora, sks)"' in png.info["parameters"]
    assert 'Final prompt: "sks mug on a wooden table' in png.info["parameters"]
    img = np.asarray(png.convert("RGB"))
    # the same request without the adapter, in this process: another image
    from packshot.pipeline import Pipeline
    req = dict(engine="diffusion", model=str(tiny[key]), prompt="<product> on a wooden table", product="mug",
               steps=4 if mode == "img2img" else 2, n=1, seed=11)
    req.update({"inpaint": dict(keep_framing=True), "outpaint": dict(size="160x120"),
                "text2img": dict(mode="text2img", keep_framing=True),
                "img2img": dict(mode="img2img", strength=0.5, keep_framing=True, reference_image=str(mug[3]))}[mode])
    plain = Pipeline(settings).generate(str(mug[2]), **req).candidates[0]
    assert plain.image.shape == img.shape
    assert np.abs(plain.image.astype(int) - img.astype(int)).max() > 10      # the adapter changed the image
    cut_alpha = np.asarray(Image.open(out / "cutout.png"))[..., 3]
    if mode == "inpaint":   # keep-framing: the product's opaque pixels are the photo's, bit-exact
        opaque = cut_alpha == 255
        assert opaque.sum() > 500 and np.array_equal(img[opaque], mug[0][opaque])
    elif mode == "outpaint":   # the product is pasted where the plain run pasted it: identical there only
        same = np.all(plain.image == img, axis=2)
        assert 500 < same.sum() < 0.5 * same.size
    else:   # the model painted the product: nothing pasted back
        opaque = cut_alpha == 255
        assert not np.array_equal(img[opaque], mug[0][opaque])


def test_cli_adapters_by_name_with_weights_repeatable(tmp_path, tiny, mug):
    named = tmp_path / "models" / "adapters"
    named.mkdir(parents=True)
    shutil.copytree(tiny["lora"], named / "mug-lora")
    shutil.copytree(tiny["ti"], named / "mug-ti")
    out = tmp_path / "out"
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", tiny["sd_t2i"], "--mode", "text2img",
                "--adapter", "mug-lora:0.5", "--adapter", "mug-ti", "--adapter", f"{tiny['lora2']}:0.25",
                "--prompt", "<product> on a shelf", "--negative-prompt", "blurry <product>", "--prompt-style", "none",
                "--steps", "2", "-n", "1", "--seed", "3", "--keep-framing", "-o", out, env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "Warning" not in r.stderr and "Traceback" not in r.stderr     # two LoRAs on one model: no library noise
    cand = json.loads((out / "results.json").read_text())["candidates"][0]
    p = cand["parameters"]
    assert p["Adapters"] == ("mug-lora:0.5 (lora, sks), mug-ti:1 (textual-inversion, <mug-ti>), "
                             "style-lora:0.25 (lora, zwx)")
    assert p["Final prompt"] == "sks on a shelf" and p["negative_prompt"] == "blurry sks"
    assert any("'<product>' became the first adapter's token 'sks'" in n for n in cand["notes"])


@pytest.mark.parametrize("case", ["sd-on-sdxl", "sdxl-on-sd", "unknown-name", "garbage-weights", "broken-json",
                                  "no-metadata"])
def test_cli_bad_adapter_one_line_exit_2_nothing_written(tmp_path, tiny, mug, case):
    model = {"sd-on-sdxl": "sdxl_t2i"}.get(case, "sd_t2i")
    adapter = str({"sd-on-sdxl": tiny["lora"], "sdxl-on-sd": tiny["lora_xl"]}.get(case, tmp_path / "bad"))
    named = tmp_path / "models" / "adapters"
    shutil.copytree(tiny["ti"], named / "mug-ti")
    if case in ("garbage-weights", "broken-json", "no-metadata"):
        shutil.copytree(tiny["lora"], adapter)
        if case == "garbage-weights":
            garbage = b"\x10\x00\x00\x00\x00\x00\x00\x00garbage!"
            (Path(adapter) / "pytorch_lora_weights.safetensors").write_bytes(garbage)
        elif case == "broken-json":
            (Path(adapter) / "packshot_adapter.json").write_text('{"name": "x", "method": ')
        else:
            (Path(adapter) / "packshot_adapter.json").unlink()
    elif case == "unknown-name":
        adapter = "nosuch"
    out = tmp_path / "out"
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", tiny[model], "--mode", "text2img",
                "--adapter", adapter, "--steps", "2", "-n", "1", "--keep-framing", "-o", out, env=_env(tmp_path))
    want = {"sd-on-sdxl": ["adapter 'mug-lora' was trained for", "(SD 1.x/2.x), not for sdxl-t2i (SDXL)"],
            "sdxl-on-sd": ["adapter 'mug-lora-xl' was trained for", "(SDXL), not for sd-t2i (SD 1.x/2.x)"],
            "unknown-name": ["unknown adapter 'nosuch'; valid: mug-ti"],
            "garbage-weights": ["adapter 'mug-lora'", "pytorch_lora_weights.safetensors"],
            "broken-json": ["packshot_adapter.json is corrupt"],
            "no-metadata": ["is not a packshot adapter (no packshot_adapter.json)"]}[case]
    _one_line_exit_2(r, out, *want)


def test_cli_models_list_shows_adapters(tmp_path, tiny):
    named = tmp_path / "models" / "adapters"
    shutil.copytree(tiny["lora"], named / "mug-lora")
    shutil.copytree(tiny["ti_xl"], named / "mug-ti-xl")
    shutil.copytree(tiny["lora"], named / "broken")
    (named / "broken" / "pytorch_lora_weights.safetensors").write_bytes(b"nope")
    r = run_cli("models", "list", env=_env(tmp_path))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("ADAPTER"))
    assert lines[head].split()[:6] == ["ADAPTER", "METHOD", "BASE", "TOKEN", "STEPS", "LOSS"]
    row = next(line for line in lines[head:] if line.startswith("mug-lora "))
    assert "lora" in row and "sd-t2i (SD 1.x/2.x)" in row and "sks" in row and "30" in row and "0.123" in row
    assert str(named / "mug-lora") in row
    assert any(line.startswith("mug-ti-xl ") and "textual-inversion" in line and "(SDXL)" in line for line in lines)
    assert any(line.startswith("note: adapter") and "broken" in line for line in lines)
    js = run_cli("models", "list", "--json", env=_env(tmp_path))
    rows = [x for x in json.loads(js.stdout) if x["kind"] == "adapter"]
    assert {x["id"]: x["status"] for x in rows} == {"mug-lora": "present", "mug-ti-xl": "present", "broken": "broken"}
    lora = next(x for x in rows if x["id"] == "mug-lora")
    assert lora["method"] == "lora" and lora["token"] == "sks" and lora["steps"] == 30 and lora["final_loss"] == 0.123


# -- the engine, in process ------------------------------------------------------------------------------

def test_no_adapter_or_weight_zero_is_bit_identical_after_an_adapter_was_loaded(tiny, mug, settings):
    engine = _engine(settings)
    base = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img"))[0]
    lora = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img", adapters=[str(tiny["lora"])]))[0]
    assert np.abs(lora.rgb.astype(int) - base.rgb.astype(int)).max() > 10
    assert lora.product_generated and not lora.needs_shadow and not base.product_generated
    after = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img"))[0]
    assert np.array_equal(after.rgb, base.rgb)                       # the cached pipeline had it loaded
    zero = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img", adapters=[f"{tiny['lora']}:0"]))[0]
    assert np.array_equal(zero.rgb, base.rgb) and not zero.product_generated
    assert any("at weight 0: not applied" in n for n in zero.notes)
    fresh = _engine(settings).render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img"))[0]
    assert np.array_equal(fresh.rgb, base.rgb)                      # a pipeline that never saw it


def test_textual_inversion_only_changes_prompts_that_use_its_token(tiny, mug, settings):
    engine = _engine(settings)
    model = str(tiny["sd"])
    base = engine.render(_job(mug, model=model))[0]
    with_ti = engine.render(_job(mug, model=model, adapters=[str(tiny["ti"])]))[0]   # token not in the prompt
    assert np.array_equal(with_ti.rgb, base.rgb)
    assert any("does not use the adapters' token (<mug-ti>)" in n for n in with_ti.notes)
    used = engine.render(_job(mug, model=model, adapters=[str(tiny["ti"])], prompt="<product> on a wooden table"))[0]
    assert used.params["Final prompt"].startswith("<mug-ti> on a wooden table")
    again = engine.render(_job(mug, model=model, prompt="<mug-ti> on a wooden table"))[0]   # still loaded
    assert np.array_equal(again.rgb, used.rgb)
    words = engine.render(_job(mug, model=model, prompt="<product> on a wooden table", product="cup"))[0]
    assert words.params["Final prompt"].startswith("cup on a wooden table")
    assert any("no adapter: '<product>' became 'cup'" in n for n in words.notes)
    assert not np.array_equal(used.rgb, words.rgb)
    assert np.abs(used.rgb.astype(int) - base.rgb.astype(int)).max() > 5


def test_inpaint_and_outpaint_keep_the_product_exact_with_an_adapter(tiny, mug, settings):
    from packshot.composite import compose
    engine = _engine(settings)
    for fields in ({}, {"size": "160x120", "keep_framing": False}):
        job = _job(mug, model=str(tiny["sd"]), adapters=[str(tiny["db"])], prompt="<product> on marble", **fields)
        scene = engine.render(job)[0]
        assert not scene.product_generated and scene.params["Mode"] == ("outpaint" if fields else "inpaint")
        img = compose(scene, job.layer)
        opaque = job.layer.alpha >= 1.0
        assert opaque.sum() > 500 and np.array_equal(img[opaque], job.layer.rgb[opaque])


def test_text2img_scene_is_returned_unchanged_by_the_compositor(tiny, mug, settings):
    from packshot.composite import compose
    engine = _engine(settings)
    job = _job(mug, model=str(tiny["sd_t2i"]), mode="text2img", adapters=[str(tiny["lora"])], product="mug",
               seam_pass=True)
    scene = engine.render(job)[0]
    assert scene.product_generated and scene.params["Final prompt"].startswith("a photo of sks mug, on a wooden table")
    assert any("'a photo of sks mug' put in front" in n for n in scene.notes)
    assert any("seam pass skipped" in n for n in scene.notes) and "Seam pass" not in scene.params
    assert np.array_equal(compose(scene, job.layer), scene.rgb)


def test_adapter_loads_once_and_never_a_second_base(tiny, mug, settings):
    engine = _engine(settings)
    job = _job(mug, model=str(tiny["sd_t2i"]), mode="text2img", adapters=[str(tiny["lora"]), str(tiny["ti"])])
    first = engine.render(job)[0]
    assert engine.models.stats["loads"] == 1
    holder = engine.models._items[engine.models.keys()[0]]
    ptrs = {p.data_ptr() for p in holder.pipe.vae.parameters()}
    second = engine.render(job)[0]
    assert engine.models.stats["loads"] == 1 and engine.models.stats["hits"] >= 1    # the same base pipeline
    assert holder.adapters.stats == {"lora_loads": 1, "ti_loads": 1, "lora_evictions": 0}
    assert np.array_equal(first.rgb, second.rgb) and second.timings["model_load"] == 0.0
    assert {p.data_ptr() for p in holder.pipe.vae.parameters()} == ptrs
    other = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img", adapters=[str(tiny["lora2"])]))[0]
    assert holder.adapters.stats["lora_loads"] == 2 and engine.models.stats["loads"] == 1
    assert not np.array_equal(other.rgb, first.rgb)


def test_sdxl_lora_and_textual_inversion(tiny, mug, settings):
    engine = _engine(settings)
    model = str(tiny["sdxl_t2i"])
    base = engine.render(_job(mug, model=model, mode="text2img", prompt="<product> on a table"))[0]
    for key in ("lora_xl", "ti_xl"):
        s = engine.render(_job(mug, model=model, mode="text2img", prompt="<product> on a table",
                               adapters=[str(tiny[key])]))[0]
        assert s.product_generated and np.abs(s.rgb.astype(int) - base.rgb.astype(int)).max() > 5, key
    after = engine.render(_job(mug, model=model, mode="text2img", prompt="<product> on a table"))[0]
    assert np.array_equal(after.rgb, base.rgb)


# -- finding and checking adapters (no torch) -------------------------------------------------------------

def test_find_list_and_check_base(tiny, tmp_path):
    from packshot.backgrounds.diffusion.inspect import inspect_model
    s = Settings(model_dir=tmp_path / "models")
    named = s.model_dir / "adapters"
    shutil.copytree(tiny["lora"], named / "mug-lora")
    shutil.copytree(tiny["ti"], named / "mug-ti")
    shutil.copytree(tiny["lora"], named / "half")
    (named / "half" / "packshot_adapter.json").write_text("{")
    assert [a.name for a in list_adapters(s)] == ["mug-lora", "mug-ti"]
    assert [p.name for p, _ in scan_adapters(s)[1]] == ["half"]
    assert find_adapter("mug-lora", s).path == named / "mug-lora"
    assert find_adapter(str(tiny["lora"]), s).path == tiny["lora"]            # a folder, as the API passes it
    with pytest.raises(UnknownNameError, match="unknown adapter 'nope'; valid: mug-lora, mug-ti"):
        find_adapter("nope", s)
    with pytest.raises(InvalidInputError, match="no such folder"):
        find_adapter(str(tmp_path / "missing"), s)
    with pytest.raises(ModelError, match="corrupt"):
        find_adapter("half", s)
    info = find_adapter("mug-lora", s)
    assert check_adapter_base(info, tiny["sd_t2i"]) is None
    inpaint = inspect_model(tiny["sd"], "sd-inpaint", s)                     # same architecture, another base
    assert "same architecture" in check_adapter_base(info, inpaint)
    with pytest.raises(InvalidInputError, match=r"not for sdxl-t2i \(SDXL\)"):
        check_adapter_base(info, tiny["sdxl_t2i"])
    meta = json.loads((named / "mug-lora" / "packshot_adapter.json").read_text())
    meta["base"].update(ref="sd2-base", fingerprint="0123456789abcdef")      # SD 2.x-like: same family
    (named / "mug-lora" / "packshot_adapter.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidInputError, match=r"trained for sd2-base \(SD 1.x/2.x, architecture 0123456789abcdef\), "
                                                r"not for sd-t2i \(SD 1.x/2.x, architecture [0-9a-f]{16}\)"):
        check_adapter_base(find_adapter("mug-lora", s), tiny["sd_t2i"])


def test_library_raises_the_packshot_errors(tiny, mug, settings):
    import packshot
    base = dict(engine="diffusion", model=str(tiny["sdxl_t2i"]), mode="text2img", steps=2, n=1, keep_framing=True,
                settings=settings)
    with pytest.raises(InvalidInputError, match="was trained for .* not for sdxl-t2i"):
        packshot.generate(str(mug[2]), "on a table", adapters=[str(tiny["lora"])], **base)
    with pytest.raises(UnknownNameError, match="unknown adapter 'gone'"):
        packshot.generate(str(mug[2]), "on a table", adapters=["gone"], **base)
    with pytest.raises(InvalidInputError, match="given twice"):
        packshot.generate(str(mug[2]), "on a table", adapters=[str(tiny["lora_xl"]), f"{tiny['lora_xl']}:0.5"], **base)
    bad = settings.model_dir / "adapters" / "bad"
    shutil.copytree(tiny["ti_xl"], bad)
    (bad / "learned_embeds.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="adapter 'mug-ti-xl': .*learned_embeds.safetensors is not a safetensors file"):
        packshot.generate(str(mug[2]), "on a table", adapters=["bad"], **base)


# -- an adapter trained by `packshot train`, then used by name -----------------------------------------------

@pytest.mark.parametrize("method", ["lora", "textual-inversion"])
def test_cli_train_then_generate_by_name(tmp_path, tiny, mug, settings, method):
    photos = []
    for i, colour in enumerate([(180, 40, 40), (170, 45, 40), (190, 35, 45)]):
        rgb, _ = mug_photo((160, 120), color=colour, seed=i, jpeg_quality=None)
        photos.append(tmp_path / f"mug-{i}.png")
        Image.fromarray(rgb).save(photos[-1])
    env = _env(tmp_path)
    r = run_cli("train", *photos, "--base", tiny["sd_t2i"], "--method", method, "--name", "red-mug", "--steps", "4",
                "--resolution", "64", "--learning-rate", "5e-2", "--seed", "7", env=env)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "models" / "adapters" / "red-mug"
    assert (folder / "packshot_adapter.json").is_file()
    listed = run_cli("models", "list", env=env)
    row = next(line for line in listed.stdout.splitlines() if line.startswith("red-mug "))
    assert method in row and "sd-t2i (SD 1.x/2.x)" in row and str(folder) in row
    out = tmp_path / "out"
    r = run_cli("generate", mug[2], "--engine", "diffusion", "--model", tiny["sd_t2i"], "--mode", "text2img",
                "--adapter", "red-mug", "--prompt", "<product> on a wooden table", "--steps", "2", "-n", "1",
                "--seed", "3", "--keep-framing", "-o", out, env=env)
    assert r.returncode == 0, r.stderr
    cand = json.loads((out / "results.json").read_text())["candidates"][0]
    token = json.loads((folder / "packshot_adapter.json").read_text())["token"]
    assert cand["parameters"]["Adapters"] == f"red-mug:1 ({method}, {token})"
    assert cand["parameters"]["Final prompt"].startswith(f"{token} on a wooden table")
    img = np.asarray(Image.open(out / cand["file"]).convert("RGB"))
    from packshot.pipeline import Pipeline
    plain = Pipeline(settings).generate(str(mug[2]), engine="diffusion", model=str(tiny["sd_t2i"]), mode="text2img",
                                        prompt=f"{token} on a wooden table", steps=2, n=1, seed=3,
                                        keep_framing=True).candidates[0]
    assert np.abs(plain.image.astype(int) - img.astype(int)).max() > 0     # the trained adapter changed it


def test_controlnet_variant_shares_and_sees_the_adapters(tiny, mug, settings, tmp_path):
    import tiny_pipelines as tp
    cn = tp.build_controlnet(tmp_path / "cn")
    engine = _engine(settings)
    fields = dict(model=str(tiny["sd_t2i"]), mode="text2img", controlnet=str(cn), prompt="<product> on a table")
    plain = engine.render(_job(mug, **fields))[0]
    with_lora = engine.render(_job(mug, **fields, adapters=[str(tiny["lora"])]))[0]
    assert np.abs(with_lora.rgb.astype(int) - plain.rgb.astype(int)).max() > 10
    holders = [engine.models._items[k] for k in engine.models.keys()]
    assert len(holders) == 2 and holders[0].adapters is holders[1].adapters      # base and variant: one state
    base_only = engine.render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img", prompt="<product> on a table"))[0]
    fresh = _engine(settings).render(_job(mug, model=str(tiny["sd_t2i"]), mode="text2img",
                                          prompt="<product> on a table"))[0]
    assert np.array_equal(base_only.rgb, fresh.rgb)                              # the variant's LoRA is off again
    assert engine.render(_job(mug, **fields))[0].rgb.tobytes() == plain.rgb.tobytes()


def test_adapters_need_a_generative_engine(tiny, mug, settings):
    import packshot
    with pytest.raises(InvalidInputError, match="adapters run on a generative engine .* not on engine 'studio'"):
        packshot.generate(str(mug[2]), "on a table", engine="studio", adapters=[str(tiny["lora"])], settings=settings)


def test_textual_inversion_multi_vector_and_same_token_from_another_file(tiny, mug, settings, tmp_path):
    import tiny_adapters as ta
    other = ta.build_ti(tmp_path / "other-ti", tiny["sd_t2i"], name="other-ti", seed=9, vectors=3)  # token <mug-ti>
    fields = dict(model=str(tiny["sd_t2i"]), mode="text2img", prompt="<product> on a table")
    engine = _engine(settings)
    first = engine.render(_job(mug, **fields, adapters=[str(tiny["ti"])]))[0]
    second = engine.render(_job(mug, **fields, adapters=[str(other)]))[0]      # replaces the token's embedding
    assert not np.array_equal(first.rgb, second.rgb)
    fresh = _engine(settings).render(_job(mug, **fields, adapters=[str(other)]))[0]
    assert np.array_equal(second.rgb, fresh.rgb)
    back = engine.render(_job(mug, **fields, adapters=[str(tiny["ti"])]))[0]
    assert np.array_equal(back.rgb, first.rgb)
    with pytest.raises(InvalidInputError, match="both bind the textual-inversion token '<mug-ti>'"):
        engine.render(_job(mug, **fields, adapters=[str(tiny["ti"]), str(other)]))


def test_least_recently_used_lora_is_dropped_and_reloads_the_same(tiny, mug, settings, monkeypatch):
    import packshot.backgrounds.diffusion.adapters as da
    monkeypatch.setattr(da, "MAX_LORAS", 1)
    engine = _engine(settings)
    fields = dict(model=str(tiny["sd_t2i"]), mode="text2img", prompt="<product> on a table")
    first = engine.render(_job(mug, **fields, adapters=[str(tiny["lora"])]))[0]
    other = engine.render(_job(mug, **fields, adapters=[str(tiny["lora2"])]))[0]
    back = engine.render(_job(mug, **fields, adapters=[str(tiny["lora"])]))[0]
    holder = engine.models._items[engine.models.keys()[0]]
    assert holder.adapters.stats["lora_evictions"] == 2 and holder.adapters.stats["lora_loads"] == 3
    assert len(holder.adapters.loras) == 1 and not np.array_equal(first.rgb, other.rgb)
    assert np.array_equal(back.rgb, first.rgb)
    both = engine.render(_job(mug, **fields, adapters=[str(tiny["lora"]), str(tiny["lora2"])]))[0]   # both needed
    assert len(holder.adapters.loras) == 2 and not np.array_equal(both.rgb, first.rgb)
