"""The main job through the CLI as a process: bad input, presets, canvases, determinism, outputs."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from conftest import run_cli
from synth import mug_photo


@pytest.fixture(scope="module")
def mug(tmp_path_factory):
    d = tmp_path_factory.mktemp("mug")
    rgb, alpha = mug_photo((480, 360), "grey", seed=1)
    path = d / "mug.jpg"
    Image.fromarray(rgb).save(path, quality=95)
    return path


def _assert_one_line_error(proc, needle: str):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr
    assert len(err.splitlines()) == 1, err
    assert err.startswith("packshot: error:") or err.startswith("usage:") or "error:" in err
    assert needle.lower() in err.lower(), err


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, mug):
    d = tmp_path_factory.mktemp("bad")
    (d / "notes.jpg").write_text("this is a text file, not a photo")
    (d / "empty.png").write_bytes(b"")
    data = mug.read_bytes()
    (d / "truncated.jpg").write_bytes(data[: len(data) // 3])
    Image.new("RGB", (3000, 2000), (200, 10, 10)).save(d / "huge.png")
    Image.new("RGB", (300, 200), (250, 250, 250)).save(d / "blank.png")
    return d


@pytest.mark.parametrize("name,needle,env", [
    ("notes.jpg", "not an image", {}),
    ("empty.png", "empty file", {}),
    ("truncated.jpg", "truncated", {}),
    ("huge.png", "over the limit", {"PACKSHOT_MAX_PIXELS": "1000000"}),
    ("blank.png", "no product", {}),
    ("missing.jpg", "no such file", {}),
])
@pytest.mark.parametrize("command", ["cutout", "generate"])
def test_bad_input_one_line_exit_2_nothing_written(bad_files, tmp_path, name, needle, env, command):
    out = tmp_path / ("out.png" if command == "cutout" else "outdir")
    proc = run_cli(command, bad_files / name, "-o", out, env=env)
    _assert_one_line_error(proc, needle)
    assert name in proc.stderr  # the message names the file
    assert not out.exists() or (out.is_dir() and not any(out.iterdir()))


@pytest.mark.parametrize("args,needle", [
    (["--size", "12x9000"], "size"),
    (["--size", "big"], "size"),
    (["--preset", "walmart"], "walmart"),
    (["--engine", "dalle"], "dalle"),
    (["-n", "0"], "n"),
    (["--seed", "-4"], "seed"),
    (["--keep-framing", "--preset", "amazon"], "keep_framing"),
    (["--point", "9999,9999"], "outside"),
    (["--box", "5,5,1,1"], "box"),
])
def test_bad_options(mug, tmp_path, args, needle):
    proc = run_cli("generate", mug, "-o", tmp_path / "o", *args)
    _assert_one_line_error(proc, needle)
    assert not (tmp_path / "o").exists()


def test_generate_writes_candidates_cutout_and_results(mug, tmp_path):
    out = tmp_path / "o"
    proc = run_cli("generate", mug, "--prompt", "on a marble table, soft morning light from the left, "
                   "with balloons", "-n", "3", "--seed", "11", "--size", "512x512", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # quiet when piped: no progress bar
    doc = json.loads((out / "results.json").read_text())
    assert len(doc["candidates"]) == 3
    assert sorted(c["seed"] for c in doc["candidates"]) == [11, 12, 13]
    for c in doc["candidates"]:
        assert {"file", "seed", "engine", "prompt", "parameters", "timings", "notes", "scores"} <= set(c)
        assert c["engine"] == "studio" and c["parameters"]["Seed"] == c["seed"]
        with Image.open(out / c["file"]) as im:
            assert im.size == (512, 512)
            assert im.info["parameters"].startswith("on a marble table")
            assert f"Seed: {c['seed']}" in im.info["parameters"]
            xmp = im.info.get("XML:com.adobe.xmp", "")
            assert "DigitalSourceType" in xmp
    notes = " ".join(n for c in doc["candidates"] for n in c["notes"])
    assert "balloons" in notes  # words the studio engine does not use are listed, not dropped
    with Image.open(out / "cutout.png") as cut:
        assert cut.mode == "RGBA" and cut.size == (480, 360)


def test_same_seed_byte_identical(mug, tmp_path):
    files = []
    for run in ("a", "b"):
        proc = run_cli("generate", mug, "--prompt", "wood table, warm light", "-n", "2", "--seed", "5",
                       "--size", "384x384", "-o", tmp_path / run)
        assert proc.returncode == 0, proc.stderr
        files.append(sorted(p.name for p in (tmp_path / run).glob("candidate_*")))
    assert files[0] == files[1]
    for name in files[0]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    other = run_cli("generate", mug, "--prompt", "wood table, warm light", "-n", "1", "--seed", "50",
                    "--size", "384x384", "-o", tmp_path / "c")
    assert other.returncode == 0
    a = np.asarray(Image.open(next((tmp_path / "a").glob("candidate_*_seed5.png"))))
    c = np.asarray(Image.open(next((tmp_path / "c").glob("candidate_*"))))
    assert np.abs(a.astype(int) - c).mean() > 1.0  # another seed, another candidate


def test_amazon_preset(mug, tmp_path):
    proc = run_cli("generate", mug, "--preset", "amazon", "-n", "1", "--seed", "1", "-o", tmp_path / "a")
    assert proc.returncode == 0, proc.stderr
    img = np.asarray(Image.open(next((tmp_path / "a").glob("candidate_*"))).convert("RGB"))
    h, w, _ = img.shape
    assert min(h, w) >= 1600
    border = np.concatenate([img[:5].reshape(-1, 3), img[-5:].reshape(-1, 3),
                             img[:, :5].reshape(-1, 3), img[:, -5:].reshape(-1, 3)])
    assert (border == 255).all(), "amazon border must be pure white 255,255,255"
    ys, xs = np.nonzero((img < 255).any(axis=2))
    fill = max(xs.max() - xs.min() + 1, ys.max() - ys.min() + 1) / max(h, w)
    assert abs(fill - 0.85) <= 0.02, fill


@pytest.mark.parametrize("args,size", [
    (["--aspect", "1:1"], None), (["--aspect", "4:5"], None), (["--aspect", "16:9"], None),
    (["--size", "640x480"], (640, 480)), ([], (480, 360)),
])
def test_canvases_never_stretch_the_product(mug, tmp_path, args, size):
    proc = run_cli("generate", mug, "-n", "1", "--seed", "2", "-o", tmp_path / "o", *args)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "o" / "results.json").read_text())
    W, H = doc["canvas"]
    if size:
        assert (W, H) == size
    if args and args[0] == "--aspect":
        a, b = map(int, args[1].split(":"))
        assert abs(W / H - a / b) < 0.01
    x0, y0, x1, y1 = doc["cutout"]["bbox"]
    px0, py0, px1, py1 = doc["placement"]["product_box"]
    assert abs((px1 - px0) / (py1 - py0) - (x1 - x0) / (y1 - y0)) < 0.02  # aspect kept
    assert 0 <= px0 and 0 <= py0 and px1 <= W and py1 <= H  # never cropped


def test_help_is_fast_and_lists_commands():
    proc = run_cli("--help")
    assert proc.returncode == 0
    for cmd in ("cutout", "generate", "presets"):
        assert cmd in proc.stdout
