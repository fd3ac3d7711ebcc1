"""Training adapters (issue 12, engineer A): ``packshot train`` as a process and ``packshot.train``
on tiny randomly initialised SD / SDXL pipelines saved in diffusers' on-disk layout (see
tests/tiny_pipelines.py), at 64-128 px on CPU.

What is checked: the masked loss falls over 30 steps; the LoRA file reloads into a FRESH diffusers
pipeline through ``load_lora_weights`` and changes its output, while a pipeline without it is
bit-identical; kill -9 mid-run + ``--resume`` replays the uninterrupted run's loss curve; a
textual-inversion embedding round-trips through ``load_textual_inversion``; bad bases/photos give
one line, exit 2 and nothing written; DreamBooth-LoRA with prior preservation; SDXL; cancel;
early stop; an inpainting base.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli

pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("peft")

import tiny_pipelines as tp  # noqa: E402
from synth import mug_photo  # noqa: E402

RES = "64"
LR = "2e-2"       # a tiny random UNet needs a large step to show learning within 30 steps
LORA_ARGS = ("--steps", "30", "--learning-rate", LR, "--rank", "4", "--checkpoint-every", "10")


@pytest.fixture(scope="session")
def sd_base(tmp_path_factory) -> Path:
    return tp.build_sd_text2img(tmp_path_factory.mktemp("tiny") / "sd")


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[Path]:
    """Three photos of one red mug on white (slightly different shade, noise and framing)."""
    d = tmp_path_factory.mktemp("photos")
    out = []
    for i, (size, colour) in enumerate([((160, 120), (180, 40, 40)), ((150, 130), (170, 45, 40)),
                                        ((170, 120), (190, 35, 45))]):
        rgb, _ = mug_photo(size, color=colour, seed=i, jpeg_quality=None)
        p = d / f"mug-{i}.png"
        Image.fromarray(rgb).save(p)
        out.append(p)
    return out


def _train(photos, base, out, *extra, timeout=300):
    return run_cli("train", *photos, "--base", base, "-o", out, "--resolution", RES, "--seed", "7", *extra,
                   timeout=timeout)


def _losses(folder: Path) -> list[float]:
    return json.loads((folder / "training_log.json").read_text())["losses"]


def _pipe(base: Path):
    from diffusers import DiffusionPipeline
    p = DiffusionPipeline.from_pretrained(base, local_files_only=True)
    p.set_progress_bar_config(disable=True)
    return p


def _render(pipe, prompt: str, size: int = 64) -> np.ndarray:
    import torch
    return pipe(prompt, num_inference_steps=2, height=size, width=size, output_type="np",
                generator=torch.Generator("cpu").manual_seed(0)).images[0]


def _one_line_exit_2(r, *words):
    assert r.returncode == 2, (r.returncode, r.stderr)
    lines = [ln for ln in r.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("packshot: error:"), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert "Traceback" not in r.stderr


# -- LoRA through the CLI ---------------------------------------------------------------------------

@pytest.fixture(scope="session")
def lora_adapter(sd_base, photos, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lora") / "mug"
    r = _train(photos, sd_base, out, *LORA_ARGS)
    assert r.returncode == 0, r.stderr
    assert f"wrote adapter 'mug' to {out}" in r.stdout and "final loss" in r.stdout
    return out


def test_lora_30_steps_lower_the_masked_loss(lora_adapter, photos, sd_base):
    from packshot.models.adapters import base_fingerprint, read_adapter, sha256_file

    losses = _losses(lora_adapter)
    assert len(losses) == 30 and all(np.isfinite(losses))
    first, last = np.mean(losses[:10]), np.mean(losses[-10:])
    assert last < first * 0.95, (first, last)
    info = read_adapter(lora_adapter)
    meta = info.meta
    assert (info.name, info.method, info.token, info.family) == ("mug", "lora", "ohwx", "sd")
    assert info.fingerprint == base_fingerprint(sd_base) and info.base_ref == str(sd_base)
    assert meta["steps"] == 30 and meta["final_loss"] == pytest.approx(losses[-1])
    assert meta["masked_loss"] is True and meta["seed"] == 7 and meta["resolution"] == 64
    assert [p["sha256"] for p in meta["photos"]] == [sha256_file(p) for p in photos]
    assert meta["packshot_version"] and meta["captions"][0] == "a photo of ohwx product"
    refs = info.references
    assert len(refs) == 3
    ref = np.asarray(Image.open(refs[0]))
    assert ref.shape[2] == 4 and ref[..., 3].min() == 0 and ref[..., 3].max() == 255 and max(ref.shape[:2]) <= 512
    assert sorted(p.name for p in (lora_adapter / "checkpoints").iterdir()) == [
        "run.json", "step-000010", "step-000020", "step-000030"]


def test_lora_reloads_into_a_fresh_pipeline_and_changes_the_output(lora_adapter, sd_base):
    never = _render(_pipe(sd_base), "a photo of ohwx product")
    other = _render(_pipe(sd_base), "a photo of ohwx product")
    assert np.array_equal(never, other)          # same seed, no adapter: bit-identical
    pipe = _pipe(sd_base)
    pipe.load_lora_weights(lora_adapter)
    with_lora = _render(pipe, "a photo of ohwx product")
    assert np.abs(with_lora - never).max() > 1e-3
    pipe.unload_lora_weights()
    assert np.array_equal(_render(pipe, "a photo of ohwx product"), never)


def test_resume_after_kill_9_replays_the_uninterrupted_loss_curve(lora_adapter, sd_base, photos, tmp_path):
    """kill -9 after a checkpoint, --resume: the steps after the checkpoint repeat the loss curve
    of the uninterrupted run (lora_adapter: the same photos and options, never interrupted)."""
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "packshot", "train", *map(str, photos), "--base", str(sd_base), "-o", str(killed),
           "--resolution", RES, "--seed", "7", *LORA_ARGS]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoints" / "step-000010"
    deadline = time.monotonic() + 240
    while not ckpt.is_dir() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ckpt.is_dir(), "no checkpoint appeared"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "packshot_adapter.json").exists()    # killed before the end: no metadata
    r = _train(photos, sd_base, killed, *LORA_ARGS, "--resume")
    assert r.returncode == 0, r.stderr
    resumed = json.loads((killed / "training_log.json").read_text())
    assert resumed["resumed_from"] in (10, 20) and f"resumed from step {resumed['resumed_from']}" in r.stdout
    a, b = _losses(lora_adapter), resumed["losses"]
    assert len(a) == len(b) == 30
    k = resumed["resumed_from"]
    np.testing.assert_allclose(b[k:], a[k:], rtol=1e-5, atol=1e-7)
    from safetensors.torch import load_file
    wa, wb = load_file(lora_adapter / "pytorch_lora_weights.safetensors"), load_file(killed / "pytorch_lora_weights.safetensors")
    assert wa.keys() == wb.keys()
    for key in wa:
        np.testing.assert_allclose(wa[key].numpy(), wb[key].numpy(), rtol=1e-4, atol=1e-6)


def test_resume_with_other_photos_is_refused(sd_base, photos, tmp_path):
    from packshot.errors import CancelledError
    from packshot.train import train

    out, cancel = tmp_path / "a", threading.Event()
    with pytest.raises(CancelledError):
        train(photos, {"base": str(sd_base), "steps": 4, "resolution": 64, "seed": 1}, out,
              progress=lambda step, total, loss: cancel.set(), cancel=cancel)
    r = _train([photos[1], photos[0], photos[2]], sd_base, out, "--steps", "4", "--resume")
    _one_line_exit_2(r, "cannot resume", "photos")
    r = _train(photos, sd_base, out, "--steps", "4")
    _one_line_exit_2(r, "--resume")
    assert not (out / "packshot_adapter.json").exists()


# -- textual inversion -------------------------------------------------------------------------------

def test_textual_inversion_round_trips(sd_base, photos, tmp_path):
    import torch
    from safetensors.torch import load_file

    out = tmp_path / "ti"
    r = _train(photos, sd_base, out, "--method", "textual-inversion", "--steps", "12", "--learning-rate", "5e-2",
               "--token", "<mug>", "--product", "mug")
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "packshot_adapter.json").read_text())
    assert meta["method"] == "textual-inversion" and meta["token"] == "<mug>" and meta["rank"] is None
    saved = load_file(out / "learned_embeds.safetensors")
    assert list(saved) == ["<mug>"] and saved["<mug>"].shape == (1, tp.TEXT_DIM)
    assert not (out / "pytorch_lora_weights.safetensors").exists()

    base = _pipe(sd_base)
    plain_before = _render(base, "a photo of a mug")
    pipe = _pipe(sd_base)
    pipe.load_textual_inversion(out, token="<mug>")
    tid = pipe.tokenizer.convert_tokens_to_ids("<mug>")
    assert tid != pipe.tokenizer.unk_token_id and tid >= len(base.tokenizer)
    row = pipe.text_encoder.get_input_embeddings().weight[tid].detach()
    assert torch.equal(row, saved["<mug>"][0])
    init = base.text_encoder.get_input_embeddings().weight[base.tokenizer.encode("mug", add_special_tokens=False)[0]]
    assert not torch.allclose(row, init.detach())                       # it learned
    assert np.abs(_render(pipe, "a photo of <mug>") - _render(pipe, "a photo of mug")).max() > 1e-4
    assert np.array_equal(_render(pipe, "a photo of a mug"), plain_before)   # other prompts untouched


# -- bad input: one line, exit 2, nothing written ------------------------------------------------------

def test_wrong_or_missing_base_gives_one_line_and_exit_2(photos, tmp_path):
    out = tmp_path / "out"
    not_pipeline = tmp_path / "folder"
    not_pipeline.mkdir()
    (not_pipeline / "notes.txt").write_text("hello")
    _one_line_exit_2(_train(photos, not_pipeline, out, "--steps", "2"), str(not_pipeline), "not a diffusers")
    _one_line_exit_2(_train(photos, tmp_path / "nope", out, "--steps", "2"), "nope")
    _one_line_exit_2(run_cli("train", *photos, "-o", out, "--steps", "2"), "base")
    cn = tp.build_controlnet(tmp_path / "cn")
    _one_line_exit_2(_train(photos, cn, out, "--steps", "2"), "ControlNetModel")
    assert not out.exists()


def test_bad_photos_give_one_line_and_exit_2(sd_base, photos, tmp_path):
    out = tmp_path / "out"
    _one_line_exit_2(_train(photos[:2], sd_base, out), "3 to 20", "got 2")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    _one_line_exit_2(_train([*photos[:2], broken], sd_base, out), "broken.png")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (120, 120), (255, 255, 255)).save(blank)
    _one_line_exit_2(_train([*photos[:2], blank], sd_base, out), "blank.png")
    _one_line_exit_2(_train(photos, sd_base, out, "--mixed-precision", "fp16"), "CUDA")
    _one_line_exit_2(_train(photos, sd_base, out, "--adam-8bit"), "adam_8bit")
    _one_line_exit_2(_train(photos, sd_base, out, "--prior-preservation"), "dreambooth-lora")
    assert not out.exists()


# -- DreamBooth-LoRA with prior preservation ------------------------------------------------------------

def test_dreambooth_lora_with_prior_preservation(sd_base, photos, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "db"
    r = _train(photos, sd_base, out, "--method", "dreambooth-lora", "--prior-preservation", "--prior-images", "2",
               "--prior-weight", "0.5", "--steps", "4", "--product", "mug", "--learning-rate", "1e-3")
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "packshot_adapter.json").read_text())
    assert meta["method"] == "dreambooth-lora" and meta["prior_preservation"] == {"images": 2, "weight": 0.5}
    assert sorted(p.name for p in (out / "class_images").iterdir()) == ["0000.png", "0001.png"]
    keys = load_file(out / "pytorch_lora_weights.safetensors").keys()
    assert any(k.startswith("unet.") for k in keys) and any(k.startswith("text_encoder.") for k in keys)
    pipe = _pipe(sd_base)
    ids = pipe.tokenizer(["a photo of ohwx mug"], return_tensors="pt").input_ids
    before = pipe.text_encoder(ids)[0].detach()
    pipe.load_lora_weights(out)
    assert (pipe.text_encoder(ids)[0].detach() - before).abs().max() > 0     # the text encoder LoRA applies


# -- library: SDXL, inpainting base, cancel, early stop ---------------------------------------------------

def test_sdxl_lora_and_textual_inversion(photos, tmp_path):
    from safetensors.torch import load_file

    from packshot.train import train

    base = tp.build_sdxl_text2img(tmp_path / "sdxl")
    res = train(photos, {"base": str(base), "steps": 3, "resolution": 64, "seed": 3, "rank": 2,
                         "learning_rate": 1e-2}, tmp_path / "xl-lora")
    assert res.adapter.family == "sdxl" and res.steps == 3 and np.isfinite(res.final_loss)
    pipe = _pipe(base)
    before = _render(pipe, "a photo of ohwx product")
    pipe.load_lora_weights(res.path)
    assert np.abs(_render(pipe, "a photo of ohwx product") - before).max() > 1e-4
    ti = train(photos, {"base": str(base), "method": "textual-inversion", "token": "<xl>", "steps": 2,
                        "resolution": 64, "seed": 3}, tmp_path / "xl-ti")
    emb = load_file(ti.path / "learned_embeds.safetensors")
    assert set(emb) == {"clip_l", "clip_g"} and emb["clip_l"].shape == emb["clip_g"].shape == (1, tp.TEXT_DIM)
    pipe = _pipe(base)
    pipe.load_textual_inversion(emb["clip_l"], token="<xl>", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer)
    pipe.load_textual_inversion(emb["clip_g"], token="<xl>", text_encoder=pipe.text_encoder_2,
                                tokenizer=pipe.tokenizer_2)
    assert _render(pipe, "a photo of <xl>").shape == (64, 64, 3)
    db = train(photos, {"base": str(base), "method": "dreambooth-lora", "steps": 1, "resolution": 64, "seed": 3,
                        "prior_preservation": True, "prior_images": 1}, tmp_path / "xl-db")
    keys = load_file(db.path / "pytorch_lora_weights.safetensors").keys()
    assert {k.split(".")[0] for k in keys} == {"unet", "text_encoder", "text_encoder_2"}


def test_inpainting_base_trains_also_with_gradient_checkpointing(photos, tmp_path):
    from packshot.train import train

    base = tp.build_sd_inpaint(tmp_path / "inpaint")
    req = {"base": str(base), "steps": 3, "resolution": 64, "seed": 1, "method": "dreambooth-lora"}
    res = train(photos, req, tmp_path / "ad")
    assert res.adapter.meta["base"]["inpaint"] is True and len(res.losses) == 3
    checkpointed = train(photos, {**req, "gradient_checkpointing": True}, tmp_path / "gc")
    assert checkpointed.adapter.meta["gradient_checkpointing"] is True
    np.testing.assert_allclose(checkpointed.losses, res.losses, rtol=1e-4)   # same maths, less memory
    pipe = _pipe(base)
    pipe.load_lora_weights(res.path)


def test_cancel_saves_a_checkpoint_then_resume_finishes(sd_base, photos, tmp_path):
    from packshot.errors import CancelledError
    from packshot.train import train

    cancel = threading.Event()
    seen = []

    def progress(step, total, loss):
        seen.append((step, total, loss))
        if step == 3:
            cancel.set()

    req = {"base": str(sd_base), "steps": 6, "resolution": 64, "seed": 2, "checkpoint_every": 100}
    with pytest.raises(CancelledError, match="step 3"):
        train(photos, req, tmp_path / "c", progress=progress, cancel=cancel)
    assert [s[:2] for s in seen] == [(1, 6), (2, 6), (3, 6)] and all(np.isfinite(s[2]) for s in seen)
    assert (tmp_path / "c" / "checkpoints" / "step-000003" / "state.pt").is_file()
    assert not (tmp_path / "c" / "packshot_adapter.json").exists()
    res = train(photos, req, tmp_path / "c", resume=True)
    assert res.resumed_from == 3 and res.steps == 6
    assert res.losses[:3] == pytest.approx([s[2] for s in seen], rel=1e-6)


def test_early_stop_and_library_import_stays_light(sd_base, photos, tmp_path):
    from packshot.train import train

    res = train(photos, {"base": str(sd_base), "steps": 300, "early_stop": 3, "resolution": 64, "seed": 5,
                         "learning_rate": 1e-6}, tmp_path / "es")
    assert res.stopped_early and 3 < res.steps < 300 and res.adapter.meta["stopped_early"] is True
    code = ("import sys, packshot; assert callable(packshot.train); assert 'torch' not in sys.modules; "
            "from packshot.train import TrainResult, train; assert callable(packshot.train); "
            "assert 'torch' not in sys.modules; print('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.stdout.strip() == "ok", r.stderr


def test_captioner_captions_and_precomputed_cutouts(sd_base, photos, tmp_path):
    """A configured captioner (tiny random BLIP) adds its caption and names the product; cut-outs
    the caller already has (the API's) are used as given."""
    import packshot
    from packshot.captioner import caption_product, noun_of
    from packshot.config import Settings
    from packshot.train import train
    from tiny_blip import build_tiny_blip

    settings = Settings(captioner=str(build_tiny_blip(tmp_path / "blip")), model_dir=tmp_path / "models")
    cuts = [packshot.cutout(p) for p in photos]
    res = train(photos, {"base": str(sd_base), "steps": 1, "resolution": 64, "seed": 1, "name": "blip-mug"},
                settings=settings, cutouts=cuts)
    assert res.path == tmp_path / "models" / "adapters" / "blip-mug"       # named: <model_dir>/adapters/<name>
    meta = res.adapter.meta
    captions = [caption_product(c.rgba(), None, settings) for c in cuts]
    product = next((n for n in map(noun_of, captions) if n), None) or "product"
    assert meta["captioner"] is True and meta["product"] == product
    assert meta["captions"] == [f"a photo of ohwx {product}, {c}" for c in captions]


def test_progress_bar_on_a_terminal(sd_base, photos, tmp_path):
    """On a terminal the step, the total and the loss are shown on stderr; piped output is quiet."""
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "packshot", "train", *map(str, photos), "--base", str(sd_base),
                             "-o", str(tmp_path / "bar"), "--steps", "3", "--resolution", "64"],
                            stdout=subprocess.PIPE, stderr=slave, text=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    out, _ = proc.communicate(timeout=300)
    os.close(master)
    shown = b"".join(chunks).decode(errors="replace")
    assert proc.returncode == 0, shown
    assert "\rtrain      3/3 [########################] loss " in shown
    assert "wrote adapter 'bar'" in out and "train " not in out


def test_real_seller_photos_train_through_the_cli(shared_data, sd_base, tmp_path):
    """Real 2400 px seller JPEGs (read in place): cut out by packshot, hashed, cropped; references
    are the products' RGBA cut-outs at <= 512 px with a real matte (opaque inside, clear outside)."""
    from packshot.models.adapters import sha256_file

    seed = shared_data / "seed_products"
    photos = [seed / "nivedkris_product1_shaving_soap" / "product1.jpg",
              seed / "nivedkris_product3_aftershave_bottle" / "product3.jpg",
              seed / "nivedkris_product4_loafers" / "product4.jpg"]
    if not all(p.is_file() for p in photos):
        pytest.skip("the seed product photos are missing")
    out = tmp_path / "real"
    r = _train(photos, sd_base, out, "--steps", "2")
    assert r.returncode == 0, r.stderr
    meta = json.loads((out / "packshot_adapter.json").read_text())
    assert [p["sha256"] for p in meta["photos"]] == [sha256_file(p) for p in photos]
    for ref in sorted((out / "references").glob("*.png")):
        rgba = np.asarray(Image.open(ref))
        assert max(rgba.shape[:2]) == 512 and rgba.shape[2] == 4
        a = rgba[..., 3]
        assert (a == 255).mean() > 0.3 and (a == 0).mean() > 0.02, ref.name   # a product, cropped to it
