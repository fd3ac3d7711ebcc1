"""The library API: typed results, lazy imports, one schema with the CLI."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import packshot
from packshot.errors import InvalidInputError, NoProductFoundError, UnknownNameError
from packshot.types import Cutout, GenerateResult
from synth import iou, mug_photo


def test_import_and_help_stay_light():
    code = ("import sys, packshot, packshot.cli; packshot.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'pymatting', 'fastapi', 'cv2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.replace("'", '"')) == []


def test_cutout_and_generate_return_typed_results(tmp_path):
    rgb, truth = mug_photo((400, 300), "paper", seed=4)
    cut = packshot.cutout(rgb)
    assert isinstance(cut, Cutout) and cut.alpha.shape == truth.shape and cut.alpha.dtype == np.float32
    assert iou(cut.alpha, truth) > 0.95
    res = packshot.generate(cut, "slate surface, cool light from the right", n=3, seed=9, size="320x320")
    assert isinstance(res, GenerateResult) and len(res.candidates) == 3
    overall = [c.scores["overall"] for c in res.candidates]
    assert overall == sorted(overall, reverse=True)  # ranked best first
    assert {c.seed for c in res.candidates} == {9, 10, 11}
    assert all(c.image.shape == (320, 320, 3) and c.image.dtype == np.uint8 for c in res.candidates)
    path = packshot.save_result(res, tmp_path)
    doc = json.loads(path.read_text())
    assert [c["rank"] for c in doc["candidates"]] == [1, 2, 3]
    assert doc["request"] == res.request.model_dump(mode="json")  # the same schema the CLI and API use


def test_library_errors_name_the_value():
    rgb, _ = mug_photo((200, 150), "white")
    with pytest.raises(UnknownNameError, match="'nope'.*studio"):
        packshot.generate(rgb, "x", engine="nope")
    with pytest.raises(InvalidInputError, match="margin"):
        packshot.generate(rgb, "x", margin=0.9)
    with pytest.raises(NoProductFoundError):
        packshot.cutout(np.full((100, 100, 3), 250, np.uint8))
