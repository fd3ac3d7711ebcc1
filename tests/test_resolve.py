"""A request is checked and resolved once, up front (packshot.resolve), and what a new user
tripped over: file modes, duplicate candidates, grammar, notes, swallowed import errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import packshot
from conftest import run_cli
from packshot.config import Settings
from packshot.errors import InvalidInputError, ModelError, UnknownNameError
from packshot.models import ModelCache, model_cache
from packshot.pipeline import Pipeline
from packshot.resolve import Resolved, check_inputs
from packshot.schema import GenerateRequest
from synth import mug_photo


@pytest.fixture(scope="module")
def mug_file(tmp_path_factory) -> Path:
    rgb, _ = mug_photo((400, 300), "paper", seed=4)
    path = tmp_path_factory.mktemp("mug") / "mug.png"
    Image.fromarray(rgb).save(path)
    return path


class Counting:
    """Counts the segmentations a Pipeline runs (wraps each segmenter it builds)."""

    def __init__(self, pipeline: Pipeline):
        self.calls = 0
        real = pipeline.segmenter

        def segmenter(*args, **kwargs):
            seg = real(*args, **kwargs)
            outer = self

            class Wrapped:
                name = seg.name

                def segment(self, *a, **k):
                    outer.calls += 1
                    return seg.segment(*a, **k)
            return Wrapped()
        pipeline.segmenter = segmenter


# -- check_inputs: everything decided once -----------------------------------------------------------

def test_check_inputs_resolves_preset_seeds_shadow_and_segmenter_once():
    req = GenerateRequest(preset="amazon", prompt="on marble")
    r = check_inputs(req, photo_size=(400, 300), settings=Settings())
    assert isinstance(r, Resolved)
    assert r.preset.name == "amazon" and r.background_rgb == (255, 255, 255) and r.plain_white
    assert r.shadow is False and r.canvas_size == (2000, 2000)
    assert r.segmenter != "auto" and r.engine == "studio"
    # a fixed-scene preset: one candidate unless n is asked for, with a note saying why
    assert r.request.n == 1 and r.seeds == (r.request.seed,) and any("one candidate" in n for n in r.notes)
    asked = check_inputs(GenerateRequest(preset="amazon", n=3, seed=7), photo_size=(400, 300))
    assert asked.request.n == 3 and asked.seeds == (7, 8, 9) and not asked.notes
    # a scene preset keeps n (each seed is a different scene); shadows stay on
    ebay = check_inputs(GenerateRequest(preset="ebay", seed=1), photo_size=(400, 300))
    assert ebay.request.n == 4 and ebay.shadow and ebay.background_rgb is None
    # seeds are drawn once and recorded in the effective request; resolving again keeps them
    again = check_inputs(r.request, photo_size=(400, 300))
    assert again.seeds == r.seeds and again.request.n == 1


@pytest.mark.parametrize("fields, size, error, needle", [
    ({"segment": {"points": [(400, 10)]}}, (400, 300), InvalidInputError, "point 400,10 is outside the 400x300"),
    ({"segment": {"boxes": [(0, 0, 401, 300)]}}, (400, 300), InvalidInputError, "box 0,0,401,300"),
    ({"segment": {"engine": "magic"}}, (400, 300), UnknownNameError, "'magic'"),
    ({"preset": "walmart-xl"}, (400, 300), UnknownNameError, "'walmart-xl'"),
    ({"engine": "dalle"}, (400, 300), UnknownNameError, "'dalle'"),
    ({"size": "8000x8000"}, (400, 300), InvalidInputError, "8000x8000"),
])
def test_check_inputs_with_only_the_photo_size_names_the_bad_value(fields, size, error, needle):
    with pytest.raises(error, match=needle.replace("(", r"\(")):
        check_inputs(GenerateRequest(**fields), photo_size=size, settings=Settings(max_output_side=4096))


def test_api_job_body_resolves_like_the_cli():
    """A job body without n and a fixed-scene preset: one candidate, as on the command line."""
    pytest.importorskip("fastapi")
    from packshot.api.schemas import JobCreate

    body = JobCreate(product_id="p1", preset="amazon", prompt="on marble")
    assert check_inputs(body.generate_request(), photo_size=(400, 300)).request.n == 1
    asked = JobCreate(product_id="p1", preset="amazon", n=2)
    assert check_inputs(asked.generate_request(), photo_size=(400, 300)).request.n == 2


def test_library_rejects_bad_requests_before_segmenting(tmp_path):
    rgb, _ = mug_photo((400, 300), "paper", seed=4)
    pipeline = Pipeline(Settings(model_dir=tmp_path / "models", max_output_side=4096))
    counter = Counting(pipeline)
    bad = [
        ({"segment": {"points": [(999, 5)]}}, InvalidInputError),
        ({"preset": "nope"}, UnknownNameError),
        ({"size": "5000x5000"}, InvalidInputError),
    ]
    for fields, error in bad:
        with pytest.raises(error):
            pipeline.generate(rgb, fields)
    assert counter.calls == 0
    res = pipeline.generate(rgb, {"n": 1, "seed": 3, "size": "256x256"})
    assert counter.calls == 1 and len(res.candidates) == 1


def test_cli_rejects_bad_requests_before_segmenting(mug_file, tmp_path):
    """The real CLI entry point in its own process, with every segmentation counted."""
    code = textwrap.dedent(f"""
        import sys
        from packshot.segment import classic
        calls = []
        real = classic.ClassicSegmenter.segment
        classic.ClassicSegmenter.segment = lambda self, *a, **k: calls.append(1) or real(self, *a, **k)
        from packshot.cli import main
        rc = main(sys.argv[1:])
        print("SEGMENTATIONS", len(calls))
        sys.exit(rc)
    """)
    env = {**os.environ, "PACKSHOT_MODEL_DIR": str(tmp_path / "models")}
    base = [sys.executable, "-c", code, "generate", str(mug_file), "--cutout-engine", "classic"]
    for args, needle in [(["--point", "500,10"], "500,10"), (["--preset", "nope"], "nope"),
                         (["--cutout-engine", "magic"], "magic")]:
        out = tmp_path / "out"
        r = subprocess.run([*base, *args, "-o", str(out)], capture_output=True, text=True, env=env)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("packshot: error:") and needle in r.stderr and len(r.stderr.splitlines()) == 1
        assert "SEGMENTATIONS 0" in r.stdout and not out.exists()
    r = subprocess.run([*base, "-n", "1", "--size", "256x256", "-o", str(tmp_path / "ok")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "SEGMENTATIONS 1" in r.stdout


def test_diffusion_requests_bound_to_fail_are_refused_before_segmenting(tmp_path):
    """The engine's own check() runs in check_inputs (missing weights, a path that is no model);
    its model-kind and reference-image rules are tested in test_diffusion.py."""
    rgb, _ = mug_photo((400, 300), "paper", seed=4)
    pipeline = Pipeline(Settings(model_dir=tmp_path / "models"))
    counter = Counting(pipeline)
    for fields, needle in [({"model": "sd15-inpaint"}, "sd15-inpaint"),
                           ({"model": str(tmp_path / "no-such-model")}, "no-such-model"),
                           ({"mode": "img2img"}, "needs a model")]:
        with pytest.raises(ModelError, match=needle):
            pipeline.generate(rgb, {"engine": "diffusion", **fields})
    assert counter.calls == 0


def test_auto_is_resolved_and_the_seed_drawn_once_per_generation(monkeypatch, tmp_path):
    import packshot.resolve as resolve_mod
    import packshot.segment as segment

    calls = {"resolve": 0, "seeds": 0}
    real_resolve, real_seeds = segment.resolve_engine, resolve_mod.draw_seeds

    def counting_resolve(*a, **k):
        calls["resolve"] += 1
        return real_resolve(*a, **k)

    def counting_seeds(*a, **k):
        calls["seeds"] += 1
        return real_seeds(*a, **k)

    monkeypatch.setattr(segment, "resolve_engine", counting_resolve)
    monkeypatch.setattr(resolve_mod, "draw_seeds", counting_seeds)
    rgb, _ = mug_photo((400, 300), "paper", seed=4)
    res = Pipeline(Settings(model_dir=tmp_path)).generate(rgb, {"n": 2, "size": "256x256"})
    assert calls == {"resolve": 1, "seeds": 1}
    seeds = sorted(c.seed for c in res.candidates)
    assert res.request.seed == seeds[0] and seeds[1] == seeds[0] + 1  # the drawn seed is recorded
    path = packshot.save_result(res, tmp_path / "out")
    assert json.loads(path.read_text())["request"]["seed"] == seeds[0]


# -- model caches: owned by the Pipeline, keyed by device and dtype -------------------------------------

def test_model_cache_keys_include_device_and_dtype():
    cpu, cuda = Settings(device="cpu"), Settings(device="cuda")
    assert model_cache(cpu) is not model_cache(cuda)
    assert model_cache(cpu) is model_cache(Settings(device="cpu"))
    own = ModelCache(2, device="cuda:1", dtype="float16")
    own.get("sam:/m", object)
    assert own.keys() == [("cuda:1", "float16", "sam:/m")] and "sam:/m" in own
    a, b = Pipeline(cpu), Pipeline(Settings(device="cpu", dtype="float32"))
    assert a.models is not b.models and a.models is not model_cache(cpu)


def test_two_pipelines_on_different_devices_load_their_own_model(tmp_path):
    pytest.importorskip("diffusers")
    sys.path.insert(0, str(Path(__file__).parent))
    import tiny_pipelines as tp

    model = tp.build_sd_inpaint(tmp_path / "sd-inpaint")
    rgb, alpha = mug_photo((128, 96), jpeg_quality=None, seed=3)
    cut = packshot.types.Cutout(packshot.types.Photo(rgb, source="mug"),
                                packshot.types.Matte(alpha=alpha, engine="truth"))
    pipelines = [Pipeline(Settings(model_dir=tmp_path, device=d)) for d in ("cpu", "auto")]

    def loads() -> int:
        caches = {id(c): c for p in pipelines for c in (p.models, model_cache(p.settings))}
        return sum(c.stats["loads"] for c in caches.values())

    request = {"engine": "diffusion", "model": str(model), "steps": 2, "n": 1, "seed": 5, "keep_framing": True}
    images = []
    base = loads()  # the process-wide caches may hold loads from earlier tests in this process
    for i, p in enumerate(pipelines):
        images.append(p.generate(cut, request).candidates[0].image)
        assert loads() - base == i + 1   # the second device does not reuse the first one's model
        p.generate(cut, request)
        assert loads() - base == i + 1   # ... but each reuses its own
    for p in pipelines:
        keys = [*p.models.keys(), *model_cache(p.settings).keys()]
        assert keys and all(k[:2] == (p.settings.device, p.settings.dtype) for k in keys)
    assert np.array_equal(images[0], images[1])  # the same model on the same CPU: the same image


# -- what a new user tripped over ----------------------------------------------------------------------

def _umask_cli(umask: int, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "packshot", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=lambda: os.umask(umask))


def test_written_files_follow_the_umask(mug_file, tmp_path):
    r = _umask_cli(0o022, "generate", mug_file, "-n", "2", "--seed", "1", "--size", "256x256",
                   "-o", tmp_path / "g")
    assert r.returncode == 0, r.stderr
    files = sorted((tmp_path / "g").iterdir())
    assert len(files) == 4  # 2 candidates, cutout.png, results.json; no temp files left
    assert {f.name: oct(f.stat().st_mode & 0o777) for f in files} == {f.name: "0o644" for f in files}
    r = _umask_cli(0o022, "cutout", mug_file, "-o", tmp_path / "c.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "c.png").stat().st_mode & 0o777 == 0o644
    r = _umask_cli(0o077, "cutout", mug_file, "-o", tmp_path / "private.png")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "private.png").stat().st_mode & 0o777 == 0o600


def test_amazon_preset_with_default_n_writes_one_candidate(mug_file, tmp_path):
    r = run_cli("generate", mug_file, "--preset", "amazon", "-o", tmp_path / "a")
    assert r.returncode == 0, r.stderr
    doc = json.loads((tmp_path / "a" / "results.json").read_text())
    assert len(doc["candidates"]) == 1 and doc["request"]["n"] == 1
    assert sorted(p.name for p in (tmp_path / "a").glob("candidate_*")) == [doc["candidates"][0]["file"]]
    assert r.stdout.startswith("wrote 1 candidate to ")  # singular
    assert "note: preset amazon: one candidate" in r.stdout
    r = run_cli("generate", mug_file, "--preset", "amazon", "-n", "2", "-o", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("wrote 2 candidates to ") and "one candidate" not in r.stdout


def test_no_notes_for_the_expected_case(mug_file, tmp_path):
    r = run_cli("generate", mug_file, "-n", "1", "--seed", "2", "--size", "256x256", "--cutout-engine", "classic",
                "-o", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    notes = [line for line in r.stdout.splitlines() if line.startswith("note:")]
    assert not [n for n in notes if n.startswith("note: auto:") or "SAM" in n or "one candidate" in n
                or "shadow" in n], notes


def test_a_broken_internal_module_raises_instead_of_being_skipped(monkeypatch, tmp_path):
    rgb, _ = mug_photo((200, 150), "paper", seed=4)
    # None in sys.modules makes "import packshot.segment.sam" raise ImportError, as a broken module would
    monkeypatch.setitem(sys.modules, "packshot.segment.sam", None)
    with pytest.raises(ImportError, match="packshot.segment.sam"):
        Pipeline(Settings(model_dir=tmp_path)).generate(rgb, {"n": 1, "size": "128x128", "segment": {"engine": "auto"}})
    monkeypatch.setitem(sys.modules, "packshot.backgrounds.studio", None)
    with pytest.raises(ImportError, match="packshot.backgrounds.studio"):
        Pipeline(Settings(model_dir=tmp_path)).generate(rgb, {"n": 1, "size": "128x128",
                                                             "segment": {"engine": "classic"}})


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_broken_internal_module_is_not_reported_as_a_missing_extra(command, tmp_path):
    code = ("import sys; sys.modules['packshot.jobs.celery_app'] = sys.modules['packshot.jobs'] = None; "
            f"from packshot.cli import main; sys.exit(main([{command!r}, '--port', '1']))" if command == "serve" else
            "import sys; sys.modules['packshot.jobs.celery_app'] = None; "
            f"from packshot.cli import main; sys.exit(main([{command!r}]))")
    env = {**os.environ, "PACKSHOT_DATA_DIR": str(tmp_path)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "internal error: ModuleNotFoundError" in r.stderr and "packshot.jobs" in r.stderr
    assert "extra" not in r.stderr


def test_cli_options_come_from_the_schema():
    """Each request field is a CLI option with the schema's description and bounds (help lives once)."""
    r = run_cli("generate", "--help")
    assert r.returncode == 0
    help_text = " ".join(r.stdout.split())
    for name, field in GenerateRequest.model_fields.items():
        if name in ("engine", "segment"):
            continue  # --engine routes to both stages; segment's fields are the cutout hints
        first_words = " ".join((field.description or "").rstrip(".").split()[:3])
        assert first_words in help_text, (name, first_words)
    assert "1 <= n <= 16; default 4" in help_text and "--point X,Y" in help_text
    assert "--shadow, --no-shadow" in help_text and "{png,jpeg,webp}" in help_text
