"""Cut-out confidence: what lowers it, that it separates wrong cut-outs from right ones on the seller
photos (and crops that cut a product at the frame), and that it reaches results.json, the CLI and
the ranking (a clearly wrong cut-out never scores 0.96 again)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from packshot.score.ranking import overall, with_cutout_confidence
from packshot.segment.confidence import WARN_BELOW, assess
from packshot.types import Photo


def _disk(h=200, w=300, cx=150, cy=100, r=50):
    y, x = np.mgrid[0:h, 0:w]
    return ((x - cx) ** 2 + (y - cy) ** 2 <= r * r).astype(np.float32)


def test_a_clean_product_is_trusted():
    c = assess(_disk())
    assert c.value == 1.0 and c.reasons == ()


@pytest.mark.parametrize("alpha, words", [
    (np.ones((200, 300), np.float32), "fills nearly all"),
    (_disk(r=3), "almost none"),
    (_disk(cx=0, cy=199, r=120), "touches the frame (bottom, left)"),
    (_disk(r=20, cx=50) + _disk(r=20, cx=150) + _disk(r=20, cx=250), "3 separate large parts"),
])
def test_what_lowers_confidence(alpha, words):
    c = assess(np.clip(alpha, 0, 1))
    assert c.value < 1.0 and any(words in r for r in c.reasons), c


def test_methods_disagreeing_and_an_unsure_model():
    c = assess(_disk(), agreement=0.2)
    assert c.value < WARN_BELOW + 0.2 and "disagree" in c.reasons[0]
    prob = np.full((200, 300), 0.5, np.float32)
    assert any("unsure" in r for r in assess(_disk(), prob=prob).reasons)


SELLER = {  # photo -> whether the learned cut-out is right (judged by eye, see benchmarks/README-cutout.md)
    "aibackgrounds_cookie/cookie.jpg": True,
    "nivedkris_product1_shaving_soap/product1.jpg": True,
    "nivedkris_product3_aftershave_bottle/product3.jpg": True,
    "nivedkris_product4_loafers/product4.jpg": True,
}


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    from test_learned import U2NETP_SHA256  # noqa: F401  (the same real weights)

    from packshot.config import Settings
    from packshot.segment.learned import LearnedSegmenter

    d = tmp_path_factory.mktemp("models")
    r = run_cli("models", "pull", "u2netp", env={"PACKSHOT_MODEL_DIR": str(d)})
    assert r.returncode == 0, r.stderr
    return LearnedSegmenter(Settings(model_dir=d))


def test_confidence_separates_wrong_from_right(learned, shared_data):
    """Right cut-outs of the seller photos stay above the warning line; crops that cut the product
    at the frame (the product is then cut off) and the classic engine's guess of a sweater on a rug
    (rug and chair kept) fall below it."""
    from packshot.segment.classic import ClassicSegmenter

    right, wrong = [], []
    for rel in SELLER:
        rgb = np.asarray(Image.open(shared_data / "seed_products" / rel).convert("RGB"))
        right.append(learned.segment(Photo(rgb, source=rel)).confidence)
        h, w = rgb.shape[:2]
        crop = np.ascontiguousarray(rgb[int(h * 0.45):, int(w * 0.4):])
        wrong.append(learned.segment(Photo(crop, source="crop of " + rel)).confidence)
    sweater = np.asarray(Image.open(shared_data / "seed_products/kryptixone_sweater_ref3/ref3.jpg").convert("RGB"))
    wrong.append(ClassicSegmenter().segment(Photo(sweater, source="ref3.jpg")).confidence)
    assert min(right) >= WARN_BELOW > max(wrong), (right, wrong)


def test_low_confidence_lowers_the_score():
    scores = {"product_change": 0.0, "compliance": 1.0, "object_expansion": 0.01, "seam": 0.5, "fringe": 1.0,
              "separation": 0.95, "exposure": 0.97}
    scores["overall"] = overall(scores)
    assert scores["overall"] > 0.95
    assert with_cutout_confidence(scores, 1.0)["overall"] == pytest.approx(scores["overall"])
    assert with_cutout_confidence(scores, 0.3)["overall"] < 0.8


def test_cli_warns_and_results_json_records_it(tmp_path, shared_data):
    """No trained model here: the classic engine's guess on a photo in context warns once, and the
    generate candidates carry the confidence (results.json) and a lowered overall score."""
    photo = shared_data / "seed_products/kryptixone_sweater_ref3/ref3.jpg"
    env = {"PACKSHOT_MODEL_DIR": str(tmp_path / "none")}
    r = run_cli("cutout", photo, "-o", tmp_path / "c.png", env=env)
    assert r.returncode == 0 and r.stdout.count("warning: low cut-out confidence") == 1, r.stdout
    r = run_cli("generate", photo, "-n", "1", "--seed", "1", "-o", tmp_path / "out", env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["cutout"]["confidence"] < WARN_BELOW and doc["cutout"]["reasons"]
    cand = doc["candidates"][0]
    assert cand["scores"]["cutout_confidence"] == doc["cutout"]["confidence"]
    assert cand["scores"]["overall"] < 0.9
    assert any("low cut-out confidence" in n for n in cand["notes"])
