"""Product fidelity: the similarity of a generated product to the reference photos, and the
keep/drop filter (``min_similarity``, ``keep``).

No real image encoder can be had here (no weights download): the orderings below are asserted on
the CLASSICAL parts of the score alone (colour, shape, detail). The encoder path is shown to run end
to end with tiny randomly initialised DINOv2 / CLIP encoders saved in the real on-disk format
(tests/tiny_encoders.py); their numbers mean nothing, so only presence and range are asserted.

Generated candidates are planted through a test-only background engine registered in the ENGINES
registry (tests/planted_engine.py): its scenes carry ``product_generated=True`` exactly as a
text2img/img2img engine with an adapter does. Real seller photos are read in place from
../shared/data (skipped, with the reason, when that folder is missing).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import planted_engine
import similarity_cases as cases
from packshot.config import Settings
from packshot.errors import MissingWeightsError, ModelError
from packshot.score.filter import keep_filter
from packshot.score.similarity import NO_ENCODER_NOTE, ProductView, ReferenceSet
from packshot.types import Candidate, Scene
from synth import mug_photo

HERE = Path(__file__).parent
SOAP = cases.PRODUCTS[0]
PARTS = ("similarity_colour", "similarity_shape", "similarity_detail")


@pytest.fixture(scope="module")
def cutouts(shared_data):
    return {p.name: cases.load_cutout(shared_data, p) for p in cases.PRODUCTS}


# -- the score on planted cases (classical parts only) ---------------------------------------------
@pytest.mark.parametrize("product", cases.PRODUCTS, ids=lambda p: p.name)
def test_rotated_or_relit_scores_above_every_distortion(cutouts, product):
    """Classical parts only (no encoder here): for every real product, each legitimate change
    (rotated 20°, rotated -30° and flipped, gamma, 70 % exposure, warm light, shown at 160 px)
    scores higher than each distortion (print painted over, hue shifted 90°, a part removed, and
    on labelled products a few words rewritten)."""
    rgb, alpha = cutouts[product.name]
    refs = ReferenceSet([ProductView.from_rgba(rgb, alpha, name="ref")])
    scores = {}
    for name, (r, a) in cases.variants(rgb, alpha, product).items():
        res = refs.score(ProductView.from_rgba(r, a))
        assert set(res.parts) == set(PARTS) and NO_ENCODER_NOTE in res.notes
        assert all(0.0 <= v <= 1.0 for v in res.scores().values())
        scores[name] = res.score
    bad = [*cases.BAD, *([cases.TEXT] if product.text_box else [])]
    assert set(scores) == {*cases.GOOD, *bad}
    worst_good = min(scores[n] for n in cases.GOOD)
    best_bad = max(scores[n] for n in bad)
    assert worst_good > best_bad, scores
    # each distortion is caught by the part made for it
    parts = {n: refs.score(ProductView.from_rgba(*cases.variants(rgb, alpha, product)[n])).parts for n in bad}
    assert parts["print painted over"]["similarity_detail"] < 0.5
    assert parts["hue shifted"]["similarity_colour"] < 0.8
    assert parts["part removed"]["similarity_shape"] < 0.2
    if product.text_box:
        assert parts[cases.TEXT]["similarity_detail"] < 0.5


def test_identical_product_scores_one_and_plain_product_skips_detail():
    rgb = np.zeros((200, 120, 3), np.uint8)
    rgb[:] = (200, 60, 40)
    alpha = np.zeros((200, 120), np.float32)
    alpha[20:180, 20:100] = 1.0
    refs = ReferenceSet([ProductView.from_rgba(rgb, alpha, name="plain")])
    res = refs.score(ProductView.from_rgba(rgb, alpha))
    assert res.score == pytest.approx(1.0, abs=1e-6)
    assert "similarity_detail" not in res.parts  # a plain box has no print to compare
    assert any("too little print" in n for n in res.notes)
    with pytest.raises(ValueError, match="empty"):
        ProductView.from_rgba(rgb, np.zeros_like(alpha))


# -- the encoder path (tiny random encoders) --------------------------------------------------------
@pytest.mark.parametrize("kind", ["dinov2", "clip"])
def test_tiny_encoder_runs_end_to_end(tmp_path, cutouts, kind, monkeypatch):
    """A tiny random encoder saved with save_pretrained is loaded through Settings(similarity_model=)
    and adds ``similarity_embed`` in [0, 1] to every generated candidate (values are meaningless)."""
    import packshot
    from tiny_encoders import build_tiny_clip_vision, build_tiny_dinov2

    folder = (build_tiny_dinov2 if kind == "dinov2" else build_tiny_clip_vision)(tmp_path / kind)
    planted = _plant(tmp_path / "planted", cutouts[SOAP.name], SOAP, ["rotated 20°", "part removed"])
    monkeypatch.setenv(planted_engine.ENV, str(planted))
    planted_engine.register()
    settings = Settings(similarity_model=str(folder), model_dir=tmp_path / "models")
    res = packshot.generate(mug_photo(size=(320, 240))[0], "on a table", engine="planted", n=2, seed=3,
                            size="256x256", settings=settings)
    assert len(res.candidates) == 2
    for c in res.candidates:
        assert 0.0 <= c.scores["similarity_embed"] <= 1.0 and 0.0 <= c.scores["similarity"] <= 1.0
    assert NO_ENCODER_NOTE not in res.notes


def test_similarity_model_that_is_not_an_encoder_is_one_line(tmp_path, cli):
    bad = tmp_path / "notenc"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps({"model_type": "bert"}))
    from packshot.score.encoders import resolve_encoder
    with pytest.raises(ModelError, match="DINOv2 or CLIP"):
        resolve_encoder(Settings(similarity_model=str(bad)))
    with pytest.raises(MissingWeightsError):
        resolve_encoder(Settings(similarity_model=str(tmp_path / "missing"), model_dir=tmp_path))
    photo = tmp_path / "p.png"
    Image.fromarray(mug_photo(size=(200, 160))[0]).save(photo)
    r = cli("generate", photo, "-o", tmp_path / "out", "--min-similarity", "0.5",
            env={"PACKSHOT_SIMILARITY_MODEL": str(bad), "PACKSHOT_MODEL_DIR": str(tmp_path)})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "notenc" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


# -- the filter ----------------------------------------------------------------------------------
def _cand(seed: int, sim: float | None, overall: float) -> Candidate:
    scores = {"overall": overall, **({"similarity": sim} if sim is not None else {})}
    return Candidate(image=np.zeros((2, 2, 3), np.uint8), seed=seed, engine="x", prompt="", parameters={},
                     scene=Scene(rgb=np.zeros((2, 2, 3), np.uint8), seed=seed, engine="x"), scores=scores)


def test_keep_filter_reasons_and_notes():
    ranked = [_cand(1, 0.9, 0.9), _cand(2, 0.4, 0.8), _cand(3, 0.7, 0.7), _cand(4, 0.3, 0.6), _cand(5, 0.8, 0.5)]
    out = keep_filter(ranked, 0.6, 2)
    assert [c.seed for c in out.kept] == [1, 3]
    assert [(c.seed, c.dropped_reason) for c in out.dropped] == [
        (2, "similarity 0.40 < 0.6"), (4, "similarity 0.30 < 0.6"), (5, "ranked below keep=2")]
    assert out.notes == ["dropped 3 of 5: similarity 0.40, 0.30 < 0.6; 1 ranked below keep=2"]
    exempt = keep_filter([_cand(1, None, 0.9), _cand(2, None, 0.8)], 0.95, None)
    assert len(exempt.kept) == 2 and not exempt.dropped
    assert "generated products only: 2 candidates" in exempt.notes[0]


def test_exact_paste_back_is_exempt_and_keep_applies_to_any_engine():
    import packshot

    res = packshot.generate(mug_photo(size=(320, 240))[0], "on a table", n=3, seed=1, size="256x256",
                            min_similarity=0.99, keep=2)
    assert len(res.candidates) == 2 and len(res.dropped) == 1
    assert all("similarity" not in c.scores for c in res.candidates + res.dropped)
    assert res.dropped[0].dropped_reason == "ranked below keep=2"
    assert res.dropped[0].scores["overall"] <= min(c.scores["overall"] for c in res.candidates)
    assert any("generated products only" in n for n in res.notes)


# -- keep / drop through the library and the CLI (a process) ---------------------------------------
GOOD_PLANTED = ["rotated 20°", "rotated -30° + flipped", "relit: gamma 1.5", "relit: warm light"]
BAD_PLANTED = ["print painted over", "text changed", "part removed"]


def _plant(folder: Path, cutout, product, names) -> Path:
    """The named variants on a plain backdrop, as 00.png, 01.png, ... (candidate i gets file i)."""
    folder.mkdir(parents=True, exist_ok=True)
    variants = cases.variants(*cutout, product)
    for i, name in enumerate(names):
        Image.fromarray(cases.on_backdrop(*variants[name])).save(folder / f"{i:02d}.png")
    return folder


@pytest.fixture(scope="module")
def planted_soap(cutouts, tmp_path_factory):
    """7 planted generated candidates of the soap tin: seeds 20..23 good, 24..26 bad."""
    return _plant(tmp_path_factory.mktemp("planted"), cutouts[SOAP.name], SOAP, GOOD_PLANTED + BAD_PLANTED)


BAD_SEEDS = {24, 25, 26}


def test_library_min_similarity_and_keep_drop_exactly_the_bad(planted_soap, shared_data, monkeypatch):
    import packshot

    monkeypatch.setenv(planted_engine.ENV, str(planted_soap))
    planted_engine.register()
    photo = shared_data / SOAP.path
    res = packshot.generate(photo, "on a table", engine="planted", n=7, seed=20, size="384x384",
                            min_similarity=0.8)
    assert {c.seed for c in res.dropped} == BAD_SEEDS
    assert {c.seed for c in res.candidates} == {20, 21, 22, 23}
    assert all(c.scores["similarity"] < 0.8 for c in res.dropped)
    assert any(n.startswith("dropped 3 of 7: similarity") for n in res.notes)
    # keep alone: similarity weighs in the ranking, so the best 4 are the good ones
    res = packshot.generate(photo, "on a table", engine="planted", n=7, seed=20, size="384x384", keep=4)
    assert {c.seed for c in res.dropped} == BAD_SEEDS
    assert all(c.dropped_reason == "ranked below keep=4" for c in res.dropped)


def test_all_dropped_still_writes_a_whole_result(planted_soap, shared_data, monkeypatch, tmp_path):
    import packshot

    monkeypatch.setenv(planted_engine.ENV, str(planted_soap))
    planted_engine.register()
    res = packshot.generate(shared_data / SOAP.path, "on a table", engine="planted", n=3, seed=20,
                            size="256x256", min_similarity=1.0)
    assert res.candidates == []
    assert {c.seed for c in res.dropped} == {20, 21, 22}
    doc = json.loads(packshot.save_result(res, tmp_path / "out").read_text())
    assert doc["candidates"] == [] and len(doc["dropped"]) == 3
    assert all(d["reason"].startswith("similarity ") and d["reason"].endswith("< 1") for d in doc["dropped"])
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cutout.png", "results.json"]


def test_cli_min_similarity_and_keep(planted_soap, shared_data, tmp_path):
    photo = shared_data / SOAP.path
    out = tmp_path / "out"
    env = {**os.environ, planted_engine.ENV: str(planted_soap)}
    r = subprocess.run([sys.executable, str(HERE / "planted_cli.py"), "generate", str(photo), "--prompt",
                        "on a table", "--engine", "planted", "-n", "7", "--seed", "20", "--size", "384x384",
                        "--min-similarity", "0.8", "--keep", "3", "-o", str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "kept 3 of 7, dropped 4 (similarity < 0.8; keep=3)" in r.stdout
    doc = json.loads((out / "results.json").read_text())
    dropped = {d["seed"]: d for d in doc["dropped"]}
    by_sim = {s for s, d in dropped.items() if d["reason"].startswith("similarity")}
    by_keep = {s for s, d in dropped.items() if d["reason"] == "ranked below keep=3"}
    assert by_sim == BAD_SEEDS and len(by_keep) == 1 and by_keep < {20, 21, 22, 23}
    for seed, d in dropped.items():
        assert "file" not in d and 0.0 <= d["scores"]["similarity"] <= 1.0
        assert f"dropped seed {seed}: similarity {d['scores']['similarity']:.3f}" in r.stdout
    kept = doc["candidates"]
    assert len(kept) == 3 and {c["seed"] for c in kept} | set(dropped) == set(range(20, 27))
    photo_sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    for c in kept:
        text = Image.open(out / c["file"]).text["parameters"]
        assert f"Seed: {c['seed']}" in text and f"Similarity: {c['parameters']['Similarity']}" in text
        assert photo_sha in text and photo_sha in c["parameters"]["Reference hashes"]
        assert c["scores"]["similarity"] >= 0.8 and set(PARTS) <= set(c["scores"])
    assert len(list(out.glob("candidate_*.png"))) == 3  # nothing written for the dropped ones


def test_job_records_the_dropped_with_each_kept_result(tmp_path):
    """A queued job (the in-process runner) keeps the dropped candidates' seeds, scores and reasons
    in the stored results' parameters, where the API returns them."""
    from packshot.jobs import make_queue
    from packshot.store import PhotoUpload, Store
    from services import photo_bytes, wait_for

    settings = Settings(data_dir=tmp_path)
    store = Store(settings)
    product = store.create_product("", "mug", [PhotoUpload(photo_bytes(), "image/png", 400, 300)])
    queue = make_queue(settings, store)
    job = store.create_job("", product.id, None, {"n": 3, "seed": 5, "size": "256x256", "keep": 1})
    queue.start()
    try:
        queue.submit(job.id)
        wait_for(lambda: store.get_job("", job.id).status in ("succeeded", "failed"), 120, "the job")
        done = store.get_job("", job.id)
        assert done.status == "succeeded" and len(done.result_ids) == 1, done.message
        kept = store.get_result("", done.result_ids[0])
        dropped = kept.parameters["Dropped"]
        assert sorted(d["seed"] for d in dropped) == sorted({5, 6, 7} - {kept.seed})
        assert all(d["reason"] == "ranked below keep=1" and "overall" in d["scores"] for d in dropped)
    finally:
        queue.stop()
        store.close()


def test_cli_text2img_with_an_adapter_records_the_similarity(tmp_path, cli):
    """A real (tiny, random) SD text2img pipeline with a tiny LoRA adapter through the CLI: the
    product is painted by the model, so each candidate is cut out and scored against the photo's and
    the adapter's reference cut-outs. The tiny model paints noise: presence and range only."""
    import tiny_adapters as ta
    import tiny_pipelines as tp

    base = tp.build_sd_text2img(tmp_path / "sd-t2i")
    adapter = ta.build_lora(tmp_path / "adapters" / "mug-lora", base)
    rgb, alpha = mug_photo((128, 96), jpeg_quality=None, seed=3)
    photo = tmp_path / "mug.png"
    Image.fromarray(np.dstack([rgb, np.round(alpha * 255).astype(np.uint8)]), "RGBA").save(photo)
    out = tmp_path / "out"
    r = cli("generate", photo, "--engine", "diffusion", "--model", base, "--mode", "text2img", "--keep-framing",
            "--adapter", adapter, "--prompt", "<product> on a table", "--product", "mug", "--steps", "2",
            "-n", "2", "--seed", "11", "--min-similarity", "0", "-o", out,
            env={"PACKSHOT_MODEL_DIR": str(tmp_path / "models"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["candidates"]) == 2 and doc["dropped"] == []
    ref_sha = hashlib.sha256((adapter / "references" / "photo-1.png").read_bytes()).hexdigest()
    photo_sha = hashlib.sha256(photo.read_bytes()).hexdigest()
    for c in doc["candidates"]:
        assert 0.0 <= c["scores"]["similarity"] <= 1.0, c["scores"]
        assert c["parameters"]["Similarity"] == round(c["scores"]["similarity"], 4)
        hashes = c["parameters"]["Reference hashes"]
        assert f"mug.png: {photo_sha}" in hashes and f"mug-lora/photo-1.png: {ref_sha}" in hashes
        text = Image.open(out / c["file"]).text["parameters"]
        assert ref_sha in text and "Adapters: " in text and "Similarity: " in text


def test_adapter_references_carry_their_training_photos_hashes(tmp_path):
    """references/NN-*.png (as `packshot train` writes them) are matched to the metadata's photos[NN-1]:
    the hash recorded is the training photo's; a reference without a number keeps its own file hash."""
    from safetensors.numpy import save_file

    from packshot.models.adapters import LORA_FILE, write_metadata
    from packshot.score.references import reference_views
    from packshot.types import Cutout, Matte, Photo

    folder = tmp_path / "adapters" / "mug"
    (folder / "references").mkdir(parents=True)
    save_file({"unet.down.to_q.lora_A.weight": np.zeros((4, 8), np.float32)}, str(folder / LORA_FILE))
    rgba = np.zeros((60, 40, 4), np.uint8)
    rgba[10:50, 8:32] = (200, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(folder / "references" / "01-front.png")
    Image.fromarray(rgba, "RGBA").save(folder / "references" / "extra.png")
    write_metadata(folder, {"name": "mug", "method": "lora", "token": "sks",
                            "base": {"ref": "x", "id": None, "family": "sd", "fingerprint": "0" * 16},
                            "photos": [{"name": "front.jpg", "sha256": "a" * 64}]})
    rgb, alpha = mug_photo(size=(160, 120), jpeg_quality=None)
    cut = Cutout(Photo(rgb=rgb, source="<memory>"), Matte(alpha=alpha, engine="truth"))
    settings = Settings(model_dir=tmp_path)
    views = reference_views(cut, ["mug:0.7"], settings)  # by name, with a weight
    assert [(v.name, v.source) for v in views] == [("photo", "photo"), ("mug/front.jpg", "adapter mug"),
                                                   ("mug/extra.png", "adapter mug")]
    assert views[0].sha256 == hashlib.sha256(rgb.tobytes()).hexdigest()
    assert views[1].sha256 == "a" * 64
    assert views[2].sha256 == hashlib.sha256((folder / "references" / "extra.png").read_bytes()).hexdigest()
