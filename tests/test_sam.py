"""SAM engine and text-prompt masks, on tiny random checkpoints saved in the real on-disk layout.

Random weights give arbitrary masks, so these tests check plumbing and contracts: shapes and
ranges, that the image embedding is computed once per photo, that every prompt reaches the model
in the model's coordinate frame, that boxes bound the matte, determinism, ranked text
candidates, one-line errors; and the user's path end to end through the CLI as a process.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import synth
import tiny_sam
from conftest import run_cli
from packshot.config import Settings
from packshot.errors import InvalidInputError, MissingWeightsError, ModelError, PackshotError
from packshot.types import Hints, Photo

W, H = 400, 300


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """PACKSHOT_MODEL_DIR layout: tiny models under their registry ids, plus a CLIPSeg."""
    return tiny_sam.build_model_dir(tmp_path_factory.mktemp("models"), sam=True, clip=True, clipseg=True)


@pytest.fixture(scope="module")
def settings(model_dir) -> Settings:
    return Settings(model_dir=model_dir)


@pytest.fixture(scope="module")
def photo() -> Photo:
    rgb, _ = synth.mug_photo((W, H), jpeg_quality=None)
    return Photo(rgb=rgb, source="mug")


@pytest.fixture(scope="module")
def photo_file(tmp_path_factory, photo) -> Path:
    path = tmp_path_factory.mktemp("in") / "mug.png"
    Image.fromarray(photo.rgb).save(path)
    return path


def _segmenter(settings, model=None, **kw):
    from packshot.segment.sam import SamSegmenter
    return SamSegmenter(settings, model, **kw)


class Spy:
    """Counts calls to a model method and records their keyword arguments."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, *args, **kwargs):
        self.calls.append(kwargs)
        return self.fn(*args, **kwargs)


# --------------------------------------------------------------------------------------------
# availability and resolution
# --------------------------------------------------------------------------------------------
def test_sam_available_is_cheap_and_never_imports_torch(model_dir, tmp_path):
    code = ("import sys; from pathlib import Path; from packshot.config import Settings; "
            "from packshot.segment.sam import sam_available; "
            f"print(sam_available(Settings(model_dir=Path({str(tmp_path)!r}))), "
            f"sam_available(Settings(model_dir=Path({str(model_dir)!r}))), "
            f"sam_available(Settings(), {str(model_dir / 'sam-vit-base')!r}), "
            f"sam_available(Settings(), {str(model_dir / 'clip-vit-base-patch32')!r}), "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "True", "True", "False", "False"]


def test_same_weights_through_model_dir_and_explicit_path(settings, model_dir, photo):
    hints = Hints(points=((200, 150),))
    a = _segmenter(settings).segment(photo, hints)
    b = _segmenter(Settings(), str(model_dir / "sam-vit-base")).segment(photo, hints)
    assert a.engine == b.engine == "sam"
    assert a.alpha.shape == (H, W) and a.alpha.dtype == np.float32
    assert 0.0 <= a.alpha.min() and a.alpha.max() <= 1.0
    np.testing.assert_array_equal(a.alpha, b.alpha)


def test_deterministic_across_instances(settings, photo):
    hints = Hints(points=((120, 90), (250, 160)), neg_points=((20, 20),))
    a = _segmenter(settings).segment(photo, hints).alpha
    b = _segmenter(settings).segment(photo, hints).alpha
    np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------------------------
# embed once, prompt many times
# --------------------------------------------------------------------------------------------
def test_embedding_computed_once_for_many_clicks(settings, photo, monkeypatch):
    seg = _segmenter(settings)
    model = seg.bundle().model
    embed_spy, forward_spy = Spy(model.get_image_embeddings), Spy(model.forward)
    monkeypatch.setattr(model, "get_image_embeddings", embed_spy)
    monkeypatch.setattr(model, "forward", forward_spy)

    session = seg.session(photo)
    previews = []
    for i in range(5):
        session.add_point(100 + 40 * i, 150, positive=i % 2 == 0)
        previews.append(session.preview())
    assert len(embed_spy.calls) == 1                 # one ViT pass for five clicks
    assert len(forward_spy.calls) == 5               # one decoder pass per click
    assert all(c["image_embeddings"] is session.embedding.tensor for c in forward_spy.calls)
    assert all("pixel_values" not in c for c in forward_spy.calls)
    assert previews[0].shape == (H, W) and previews[0].dtype == np.float32  # photo < preview_side

    # the same pixels in another Photo object hit the segmenter's cache; other pixels do not
    seg.segment(Photo(rgb=photo.rgb.copy(), source="again"), Hints(points=((200, 150),)))
    assert len(embed_spy.calls) == 1
    other = Photo(rgb=np.ascontiguousarray(photo.rgb[::-1]), source="flipped")
    seg.segment(other, Hints(points=((200, 150),)))
    assert len(embed_spy.calls) == 2
    assert seg.stats["embeddings"] == 2


def test_preview_size_and_commit(settings, photo):
    seg = _segmenter(settings)
    session = seg.session(photo, preview_side=200)
    session.add_point(200, 150)
    prev = session.preview()
    assert session.preview_size == (200, 150)        # longest side 200, aspect kept
    assert prev.shape == (150, 200) and 0.0 <= prev.min() and prev.max() <= 1.0
    full = session.commit()
    assert full.alpha.shape == (H, W) and full.engine == "sam"
    with pytest.raises(InvalidInputError, match="nothing to commit"):
        seg.session(photo).commit()


def test_committed_matte_is_refined_at_full_resolution(settings, photo):
    hints = Hints(boxes=((100, 50, 300, 250),))
    raw = _segmenter(settings, refine=False).segment(photo, hints)
    ref = _segmenter(settings).segment(photo, hints)
    assert raw.foreground is None
    assert ref.foreground.shape == (H, W, 3) and ref.foreground.dtype == np.uint8
    assert any("refined" in n for n in ref.notes) and "sam_refine" in ref.timings
    opaque = ref.alpha == 1.0
    assert opaque.any()
    np.testing.assert_array_equal(ref.foreground[opaque], photo.rgb[opaque])  # opaque pixels untouched
    assert ref.alpha[:, :100].max() == 0.0                                     # still inside the box


def test_sessions_do_not_share_click_state(settings, photo):
    seg = _segmenter(settings)
    s1, s2 = seg.session(photo), seg.session(photo)
    s1.add_point(200, 150)
    s1.add_point(20, 20, positive=False)
    assert s2.hints == Hints()
    assert s1.hints == Hints(points=((200, 150),), neg_points=((20, 20),))
    assert s1.undo() == Hints(points=((200, 150),))
    s1.set_box((50, 40, 350, 280))
    assert s1.hints.boxes == ((50, 40, 350, 280),)
    assert s1.reset() == Hints() and s2.hints == Hints()


# --------------------------------------------------------------------------------------------
# prompts reach the model, in its frame
# --------------------------------------------------------------------------------------------
def test_points_labels_and_boxes_reach_the_model_scaled(settings, photo, monkeypatch):
    seg = _segmenter(settings)
    model = seg.bundle().model
    spy = Spy(model.forward)
    monkeypatch.setattr(model, "forward", spy)
    s = tiny_sam.SAM_IMAGE_SIZE / W                  # longest side -> model input size

    seg.segment(photo, Hints(points=((200, 150),), neg_points=((20, 30),)))
    kw = spy.calls[-1]
    np.testing.assert_allclose(kw["input_points"][0, 0].numpy(), [[200 * s, 150 * s], [20 * s, 30 * s]],
                               atol=0.5)
    assert kw["input_labels"][0, 0].tolist() == [1, 0]
    assert kw["multimask_output"] is False           # several clicks: one mask

    seg.segment(photo, Hints(points=((200, 150),)))
    assert spy.calls[-1]["multimask_output"] is True  # a lone click is ambiguous: three masks

    seg.segment(photo, Hints(boxes=((100, 50, 300, 250), (10, 10, 60, 60)), points=((200, 150),)))
    kw = spy.calls[-1]
    np.testing.assert_allclose(kw["input_boxes"][0].numpy(),
                               [[100 * s, 50 * s, 300 * s, 250 * s], [10 * s, 10 * s, 60 * s, 60 * s]], atol=0.5)
    assert tuple(kw["input_points"].shape) == (1, 2, 1, 2)  # the click goes with each box


def test_negative_point_changes_the_mask(settings, photo):
    seg = _segmenter(settings)
    pos = seg.segment(photo, Hints(points=((200, 150),), neg_points=((300, 100),))).alpha
    both = seg.segment(photo, Hints(points=((200, 150),), neg_points=((60, 250),))).alpha
    assert np.abs(pos - both).max() > 1e-3


def test_boxes_bound_the_matte(settings, photo):
    seg = _segmenter(settings)
    boxes = ((100, 50, 300, 250), (320, 20, 390, 90))
    alpha = seg.segment(photo, Hints(boxes=boxes)).alpha
    inside = np.zeros((H, W), bool)
    for x0, y0, x1, y1 in boxes:
        inside[y0:y1, x0:x1] = True
    assert alpha[~inside].max() == 0.0
    assert alpha[inside].max() > 0.5


def test_no_hints_picks_an_automatic_mask(settings, photo):
    m = _segmenter(settings).segment(photo)
    assert m.alpha.shape == (H, W) and (m.alpha >= 0.5).any()
    assert any("automatic masks" in n for n in m.notes)


def test_mask_nms_matches_a_slow_reference():
    import torch
    from packshot.segment.sam import mask_nms

    rng = np.random.default_rng(3)
    base = rng.random((6, 24, 24)) > 0.5
    masks = np.concatenate([base, base ^ (rng.random((6, 24, 24)) > 0.9), rng.random((8, 24, 24)) > 0.3])
    scores = rng.random(len(masks))

    def reference(m, s, t):
        order = sorted(range(len(m)), key=lambda i: -s[i])
        kept = []
        for i in order:
            ok = True
            for j in kept:
                inter, union = (m[i] & m[j]).sum(), (m[i] | m[j]).sum()
                if union and inter / union > t:
                    ok = False
                    break
            if ok:
                kept.append(i)
        return kept

    for t in (0.5, 0.7, 0.9):
        assert mask_nms(torch.from_numpy(masks), torch.from_numpy(scores), t) == reference(masks, scores, t)


# --------------------------------------------------------------------------------------------
# text prompts
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ranker", ["clip-vit-base-patch32", "clipseg"])
def test_text_candidates_ranked(settings, model_dir, photo, ranker):
    from packshot.segment.text import text_candidates

    seg = _segmenter(settings, text_model=str(model_dir / ranker), refine=False)
    cands = text_candidates(photo, "the mug", k=5, segmenter=seg)
    assert len(cands) == 5
    scores = [s for _, s in cands]
    assert scores == sorted(scores, reverse=True)
    for alpha, _ in cands:
        assert alpha.shape == (H, W) and alpha.dtype == np.float32
    assert len({a.tobytes() for a, _ in cands}) == 5          # five different masks
    assert seg.stats["embeddings"] == 1                     # automatic masks reuse the embedding
    other = [s for _, s in text_candidates(photo, "a bottle of wine", k=5, segmenter=seg)]
    assert other != scores                                  # the text drives the ranking
    best = seg.segment(photo, Hints(text="the mug"))
    np.testing.assert_array_equal(best.alpha, cands[0][0])  # segment() takes the top candidate


def test_text_region_bounds_candidates(settings, photo):
    from packshot.segment.text import text_candidates

    region = (80, 40, 320, 260)
    cands = text_candidates(photo, "the mug", k=3, settings=settings, region=region)
    assert 1 <= len(cands) <= 3
    outside = np.ones((H, W), bool)
    outside[40:260, 80:320] = False
    assert all(a[outside].max() == 0.0 for a, _ in cands)
    session = _segmenter(settings).session(photo)     # the editor's path: box, then words
    session.set_box(region)
    boxed = session.text_candidates("the mug", k=3)
    assert [s for _, s in boxed] == [s for _, s in cands]
    assert session.segmenter.stats["embeddings"] == 1


def test_text_errors(settings, model_dir, photo, tmp_path):
    from packshot.segment.text import text_candidates

    with pytest.raises(InvalidInputError, match="text prompt is empty"):
        text_candidates(photo, "   ", settings=settings)
    only_sam = tmp_path / "only_sam"
    only_sam.mkdir()
    (only_sam / "sam-vit-base").symlink_to(model_dir / "sam-vit-base")
    with pytest.raises(MissingWeightsError, match="packshot models pull clip-vit-base-patch32"):
        text_candidates(photo, "the mug", settings=Settings(model_dir=only_sam))
    with pytest.raises(ModelError, match="'sam' checkpoint"):
        text_candidates(photo, "the mug", settings=settings, text_model=str(model_dir / "sam-vit-base"))


def test_text_model_from_settings_field(model_dir, photo, tmp_path):
    """A ``clip_model`` settings field (PACKSHOT_CLIP_MODEL via Settings.from_env) picks the ranker."""
    from packshot.segment.text import resolve_text_model

    class WithClip(Settings):
        clip_model: str | None = None

    only_sam = tmp_path / "only_sam"
    only_sam.mkdir()
    (only_sam / "sam-vit-base").symlink_to(model_dir / "sam-vit-base")
    st = WithClip(model_dir=only_sam, clip_model=str(model_dir / "clipseg"))
    assert resolve_text_model(st) == model_dir / "clipseg"
    m = _segmenter(st, refine=False).segment(photo, Hints(text="the mug"))
    assert m.alpha.shape == (H, W) and "text 'the mug'" in m.notes[0]


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------
def test_missing_weights_name_the_pull_command(tmp_path):
    with pytest.raises(MissingWeightsError) as e:
        _segmenter(Settings(model_dir=tmp_path))
    assert "packshot models pull sam-vit-base" in str(e.value) and "\n" not in str(e.value)


def test_wrong_kind_and_corrupt_weights(model_dir, tmp_path, photo):
    with pytest.raises(ModelError, match="is a 'clip' checkpoint"):
        _segmenter(Settings(), str(model_dir / "clip-vit-base-patch32"))
    with pytest.raises(ModelError, match="no config.json"):
        _segmenter(Settings(), str(tmp_path))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((model_dir / "sam-vit-base" / "config.json").read_text())
    (broken / "model.safetensors").write_bytes(b"not a safetensors file")
    seg = _segmenter(Settings(), str(broken))
    with pytest.raises(ModelError, match="could not load SAM weights") as e:
        seg.segment(photo, Hints(points=((1, 1),)))
    assert "\n" not in str(e.value)


def test_bad_prompts(settings, photo):
    seg = _segmenter(settings)
    session = seg.session(photo)
    with pytest.raises(InvalidInputError, match="point 400,10 is outside the 400x300 photo"):
        session.preview(Hints(points=((400, 10),)))
    with pytest.raises(InvalidInputError, match="at least one point or box"):
        seg.predict(session.embedding, Hints())


# --------------------------------------------------------------------------------------------
# the CLI, as a process
# --------------------------------------------------------------------------------------------
def _alpha(path: Path) -> np.ndarray:
    img = Image.open(path)
    assert img.mode == "RGBA" and img.size == (W, H)
    return np.asarray(img)[..., 3]


def test_cli_point_and_box(model_dir, photo_file, tmp_path):
    sam = model_dir / "sam-vit-base"
    out = tmp_path / "point.png"
    r = run_cli("cutout", photo_file, "--engine", "sam", "--sam-model", sam, "--point", "200,150",
                "--neg-point", "20,20", "-o", out, env={"PACKSHOT_MODEL_DIR": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert "engine sam" in r.stdout and r.stderr == ""
    assert _alpha(out).max() > 127

    out = tmp_path / "box.png"
    r = run_cli("cutout", photo_file, "--engine", "sam", "--sam-model", sam, "--box", "100,50,300,250",
                "-o", out)
    assert r.returncode == 0, r.stderr
    a = _alpha(out)
    outside = np.ones_like(a, bool)
    outside[50:250, 100:300] = False
    assert a[outside].max() == 0 and a.max() > 127
    assert "product box" in r.stdout


def test_cli_text_through_model_dir(model_dir, photo_file, tmp_path):
    out = tmp_path / "text.png"
    r = run_cli("cutout", photo_file, "--engine", "sam", "--text", "the mug", "-o", out,
                env={"PACKSHOT_MODEL_DIR": str(model_dir)})
    assert r.returncode == 0, r.stderr
    assert "engine sam" in r.stdout and "text 'the mug'" in r.stdout
    assert _alpha(out).max() > 127


def test_cli_generate_with_sam(model_dir, photo_file, tmp_path):
    out = tmp_path / "gen"
    r = run_cli("generate", photo_file, "--engine", "sam", "--sam-model", model_dir / "sam-vit-base",
                "--box", "60,30,340,280", "-n", "1", "--seed", "3", "--size", "256x256", "-o", out, timeout=120)
    assert r.returncode == 0, r.stderr
    doc = json.loads((out / "results.json").read_text())
    assert doc["cutout"]["engine"] == "sam"
    assert doc["request"]["segment"]["engine"] == "sam"
    assert len(doc["candidates"]) == 1 and (out / doc["candidates"][0]["file"]).is_file()


def test_cli_auto_says_which_engine(model_dir, photo_file, tmp_path):
    r = run_cli("cutout", photo_file, "--engine", "auto", "--point", "200,150", "-o", tmp_path / "a.png",
                env={"PACKSHOT_MODEL_DIR": str(model_dir)})
    assert r.returncode == 0, r.stderr
    assert "engine sam" in r.stdout and "used sam" in r.stdout
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("cutout", photo_file, "--engine", "auto", "-o", tmp_path / "b.png",
                env={"PACKSHOT_MODEL_DIR": str(empty)})
    assert r.returncode == 0, r.stderr
    assert "engine classic" in r.stdout and "SAM weights" not in r.stdout  # expected case: no note


def test_cli_missing_and_wrong_weights_exit_2(model_dir, photo_file, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_cli("cutout", photo_file, "--engine", "sam", "--point", "200,150", "-o", tmp_path / "x.png",
                env={"PACKSHOT_MODEL_DIR": str(empty)})
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert "packshot models pull sam-vit-base" in r.stderr
    r = run_cli("cutout", photo_file, "--engine", "sam", "--sam-model", model_dir / "clip-vit-base-patch32",
                "--point", "200,150", "-o", tmp_path / "y.png")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "'clip' checkpoint" in r.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "y.png").exists()


def test_packshot_error_family():
    assert issubclass(MissingWeightsError, PackshotError) and issubclass(ModelError, PackshotError)
