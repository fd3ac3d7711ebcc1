"""Model registry, weights checks, device/dtype selection, LRU model cache, and the
``packshot models list|pull`` commands (run as processes, offline)."""
from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import pytest

from conftest import run_cli
from packshot.config import Settings
from packshot.errors import InvalidInputError, MissingWeightsError, ModelError, UnknownNameError
from packshot.models import (MODELS, ModelCache, ModelSpec, check_pipeline_folder, get_spec, is_present,
                             list_models, model_status, pull, register_model, resolve, safetensors_header)
from packshot.models.devices import runtime, select_device, select_dtype


@pytest.fixture(scope="module")
def tiny_inpaint(tmp_path_factory) -> Path:
    import tiny_pipelines as tp
    return tp.build_sd_inpaint(tmp_path_factory.mktemp("models_tiny") / "sd-inpaint-tiny")


def _env(model_dir: Path, hf_home: Path, **extra) -> dict:
    """An isolated environment: our model dir, an empty HF cache, offline unless told otherwise."""
    return {"PACKSHOT_MODEL_DIR": str(model_dir), "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_HUB_OFFLINE": "1", **extra}


# -- catalog --------------------------------------------------------------------------------------

def test_catalog_has_the_known_weights_with_licences():
    want = {
        "sd15-inpaint": ("sd15-inpaint", "CreativeML OpenRAIL-M"),
        "sd2-inpaint": ("sd2-inpaint", "CreativeML OpenRAIL++-M"),
        "sdxl-inpaint": ("sdxl-inpaint", None),
        "sd15": ("sd15", None), "sdxl": ("sdxl", None),
        "sam-vit-base": ("sam", "Apache-2.0"), "slimsam": ("sam", None),
        "clip-vit-base-patch32": ("clip", "MIT"), "clipseg": ("clipseg", None),
    }
    for mid, (kind, licence) in want.items():
        spec = get_spec(mid)
        assert spec.kind == kind and spec.size_gb > 0 and spec.repo_id.count("/") == 1
        if licence:
            assert spec.licence == licence
    assert get_spec("sdxl-inpaint").repo_id == "diffusers/stable-diffusion-xl-1.0-inpainting-0.1"
    assert get_spec("sam-vit-base").repo_id == "facebook/sam-vit-base"
    assert get_spec("slimsam").repo_id == "Zigeng/SlimSAM-uniform-77"
    assert get_spec("clipseg").repo_id == "CIDAS/clipseg-rd64-refined"
    assert "runwayml/stable-diffusion-inpainting" in get_spec("sd15-inpaint").repo_ids  # the old name
    controls = {(s.extra["base"], s.extra["control"]) for s in MODELS.values() if s.kind == "controlnet"}
    assert controls == {("sd15", "canny"), ("sd15", "depth"), ("sdxl", "canny"), ("sdxl", "depth"),
                        ("sd2", "inpaint-mask")}
    recipe = get_spec("sd2-inpaint").extra["recipe"]     # the recommended SD2 recipe: Yahoo's object-aware ControlNet
    assert get_spec(recipe["controlnet"]).repo_id == "yahoo-inc/photo-background-generation"
    assert get_spec("sdxl-vae-fp16-fix").kind == "vae"
    assert {s.repo_id for s in MODELS.values() if s.kind == "ip-adapter"} == {"h94/IP-Adapter"}
    with pytest.raises(UnknownNameError, match="sd15-inpaint"):
        get_spec("sd99")


# -- resolve ----------------------------------------------------------------------------------------

def test_resolve_paths_ids_aliases_and_missing(tmp_path, tiny_inpaint):
    s = Settings(model_dir=tmp_path / "models")
    assert resolve(str(tiny_inpaint), s) == tiny_inpaint
    with pytest.raises(MissingWeightsError, match="packshot models pull sd15-inpaint"):
        resolve("sd15-inpaint", s)
    with pytest.raises(MissingWeightsError, match="no such file or folder"):
        resolve(str(tmp_path / "nope"), s)
    # a copy under the registry id, then under the old (aliased) repo name
    (tmp_path / "models").mkdir()
    shutil.copytree(tiny_inpaint, tmp_path / "models" / "runwayml--stable-diffusion-inpainting")
    assert resolve("sd15-inpaint", s) == tmp_path / "models" / "runwayml--stable-diffusion-inpainting"
    assert is_present("sd15-inpaint", s) and not is_present("sdxl-inpaint", s)
    with pytest.raises(ModelError, match="is a sam model"):
        resolve("slimsam", s, kinds=("sd15-inpaint",))


def test_safetensors_header_and_folder_checks(tmp_path, tiny_inpaint):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_inpaint, broken)
    assert check_pipeline_folder(broken) is None
    unet = broken / "unet" / "diffusion_pytorch_model.safetensors"
    header = safetensors_header(unet)
    assert any(k.startswith("conv_in") for k in header)
    data = unet.read_bytes()
    unet.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="truncated"):
        safetensors_header(unet)
    assert "unet" in check_pipeline_folder(broken) and "truncated" in check_pipeline_folder(broken)
    unet.unlink()
    assert check_pipeline_folder(broken) == "unet: no weights file"
    (broken / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    assert "only pickle weights" in check_pipeline_folder(broken)
    assert check_pipeline_folder(broken, allow_pickle=True) is None
    shutil.rmtree(broken / "vae")
    assert check_pipeline_folder(broken, allow_pickle=True).startswith("vae/ is missing")
    (broken / "model_index.json").write_text("{not json")
    with pytest.raises(ModelError, match="model_index.json is not valid JSON"):
        check_pipeline_folder(broken)
    garbage = tmp_path / "x.safetensors"
    garbage.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{abc}")
    with pytest.raises(ModelError, match="not valid JSON"):
        safetensors_header(garbage)


def test_model_status_present_incomplete_missing(tmp_path, tiny_inpaint):
    s = Settings(model_dir=tmp_path)
    assert model_status(get_spec("sd15-inpaint"), s).status == "missing"
    shutil.copytree(tiny_inpaint, tmp_path / "sd15-inpaint")
    st = model_status(get_spec("sd15-inpaint"), s)
    assert st.status == "present" and st.where == tmp_path / "sd15-inpaint"
    (tmp_path / "sd15-inpaint" / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    st = model_status(get_spec("sd15-inpaint"), s)
    assert st.status == "incomplete" and "vae" in st.problem
    assert {r.spec.id for r in list_models(s)} == set(MODELS)


# -- devices ----------------------------------------------------------------------------------------

def test_device_and_dtype_selection_on_this_cpu_machine():
    import torch
    if torch.cuda.is_available():  # pragma: no cover - the GPU check is run by the lead
        pytest.skip("this test describes a CPU-only machine")
    assert select_device(Settings()) in ("cpu", "mps")
    rt = runtime(Settings(device="cpu"))
    assert (rt.device, rt.dtype_name, rt.dtype) == ("cpu", "float32", torch.float32)
    assert select_dtype(Settings(dtype="bfloat16"), "cpu") == "bfloat16"
    assert select_dtype(Settings(), "cuda") == "float16"
    with pytest.raises(InvalidInputError, match="float16.*not supported on cpu"):
        select_dtype(Settings(dtype="float16"), "cpu")
    with pytest.raises(InvalidInputError, match="no CUDA GPU"):
        select_device(Settings(device="cuda"))
    with pytest.raises(InvalidInputError, match="'tpu'"):
        select_device(Settings(device="tpu"))
    with pytest.raises(InvalidInputError, match="'int8'"):
        select_dtype(Settings(dtype="int8"), "cpu")


# -- LRU model cache -------------------------------------------------------------------------------

class _Model:
    released: list[str] = []

    def __init__(self, name):
        self.name = name

    def release(self):
        _Model.released.append(self.name)


def test_model_cache_lru_eviction_and_reuse():
    _Model.released.clear()
    cache = ModelCache(capacity=2)
    loads = []

    def loader(name):
        def load():
            loads.append(name)
            return _Model(name)
        return load

    a = cache.get(("a", "cpu"), loader("a"))
    assert cache.get(("a", "cpu"), loader("a")) is a          # second call: no reload
    cache.get("b", loader("b"))
    cache.get(("a", "cpu"), loader("a"))                       # touch a: b is now least recent
    cache.get("c", loader("c"))                                # evicts b
    assert loads == ["a", "b", "c"]
    assert cache.keys() == [("a", "cpu"), "c"] and "b" not in cache and len(cache) == 2
    assert _Model.released == ["b"]
    assert cache.stats["loads"] == 3 and cache.stats["hits"] == 2 and cache.stats["evictions"] == 1
    cache.get("b", loader("b"))                                # reloads b, evicts a
    assert loads[-1] == "b" and _Model.released == ["b", "a"]
    cache.clear()
    assert len(cache) == 0


def test_model_cache_failed_load_caches_nothing_and_concurrent_callers_load_once():
    cache = ModelCache(capacity=2)

    def bad():
        raise ModelError("broken")

    with pytest.raises(ModelError):
        cache.get("k", bad)
    assert "k" not in cache and cache.stats["loads"] == 0
    calls = []

    def slow():
        calls.append(1)
        time.sleep(0.2)
        return object()

    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.get("m", slow))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1


# -- the CLI, as a process --------------------------------------------------------------------------

def test_cli_models_list_shows_present_and_missing(tmp_path, tiny_inpaint):
    shutil.copytree(tiny_inpaint, tmp_path / "models" / "sd15-inpaint")
    r = run_cli("models", "list", env=_env(tmp_path / "models", tmp_path / "hf"))
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line and not line.startswith(("ID", "model", "note"))}
    assert set(lines) == set(MODELS)
    assert "present" in lines["sd15-inpaint"] and str(tmp_path / "models" / "sd15-inpaint") in lines["sd15-inpaint"]
    assert "CreativeML OpenRAIL-M" in lines["sd15-inpaint"] and "4.3 GB" in lines["sd15-inpaint"]
    assert "missing" in lines["sdxl-inpaint"] and "packshot models pull sdxl-inpaint" in lines["sdxl-inpaint"]
    r = run_cli("models", "list", "--json", env=_env(tmp_path / "models", tmp_path / "hf"))
    rows = {row["id"]: row for row in json.loads(r.stdout)}
    assert rows["sd15-inpaint"]["status"] == "present" and rows["slimsam"]["status"] == "missing"
    assert rows["sam-vit-base"]["licence"] == "Apache-2.0" and rows["sam-vit-base"]["commercial_ok"] is True


def test_models_list_flags_non_commercial_licences(capsys, tmp_path, monkeypatch):
    from packshot.cli import main
    monkeypatch.setenv("PACKSHOT_MODEL_DIR", str(tmp_path))
    register_model(ModelSpec("nc-test", "sd15", "example/nc-test", "CC-BY-NC-4.0", False, 1.0))
    try:
        assert main(["models", "list"]) == 0
        line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("nc-test"))
        assert "CC-BY-NC-4.0 (NON-COMMERCIAL)" in line
    finally:
        del MODELS["nc-test"]


@pytest.mark.parametrize("env_extra, why", [
    ({"HF_HUB_OFFLINE": "1"}, "offline (HF_HUB_OFFLINE=1)"),
    # online mode, but the Hub address answers nothing (a closed local port): no network
    ({"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_ETAG_TIMEOUT": "2"}, "cannot be reached"),
])
def test_cli_models_pull_offline_is_one_line_exit_2(tmp_path, env_extra, why):
    r = run_cli("models", "pull", "slimsam", env=_env(tmp_path / "models", tmp_path / "hf", **env_extra),
                timeout=120)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("packshot: error: cannot download 'slimsam'") and why in r.stderr
    assert not (tmp_path / "models" / "slimsam").exists()  # nothing half-written


def test_cli_models_pull_unknown_id(tmp_path):
    r = run_cli("models", "pull", "no-such-model", env=_env(tmp_path, tmp_path / "hf"))
    assert r.returncode == 2 and "unknown model 'no-such-model'; valid:" in r.stderr and "Traceback" not in r.stderr


def test_pull_choose_files_fp16_variants_and_no_pickle():
    from packshot.models.hub import choose_files
    names = ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
             "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
             "vae/diffusion_pytorch_model.safetensors", "sd-v1-5-inpainting.ckpt"]
    every = choose_files(names, None, fp16=False)
    assert not any(n.endswith((".bin", ".ckpt")) for n in every)           # never pickle
    fp16 = choose_files(names, ["*.json", "unet/diffusion_pytorch_model.safetensors",
                                "vae/diffusion_pytorch_model.safetensors"], fp16=True)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" in fp16          # the variant where there is one
    assert "unet/diffusion_pytorch_model.safetensors" not in fp16
    assert "vae/diffusion_pytorch_model.safetensors" in fp16                # none: full precision


def _fake_repo(tiny_inpaint: Path, dest: Path) -> Path:
    shutil.copytree(tiny_inpaint, dest)
    (dest / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"a pickle the pull must not fetch")
    return dest


def test_cli_pull_from_a_hub_verifies_sha256_and_resumes(tmp_path, tiny_inpaint):
    """The real huggingface_hub client (HfApi.model_info, hf_hub_url, hf_hub_download) against a
    local fake Hub (HF_ENDPOINT): an interrupted weights file is resumed by the next pull with an
    HTTP Range request; every file matches the Hub's published sha256 / blob id."""
    from fake_hub import FakeHub
    repo_dir = _fake_repo(tiny_inpaint, tmp_path / "repo")
    unet = "unet/diffusion_pytorch_model.safetensors"
    with FakeHub("stable-diffusion-v1-5/stable-diffusion-inpainting", repo_dir) as hub:
        hub.cut_once = {unet}
        env = _env(tmp_path / "models", tmp_path / "hf", HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url,
                   PACKSHOT_DEVICE="cpu")
        first = run_cli("models", "pull", "sd15-inpaint", env=env)
        assert first.returncode == 2 and "Traceback" not in first.stderr, first.stderr
        assert first.stderr.startswith("packshot: error:") and "run again to resume" in first.stderr
        dest = tmp_path / "models" / "sd15-inpaint"
        part = dest / (unet + ".part")
        assert part.exists() and 0 < part.stat().st_size < (repo_dir / unet).stat().st_size
        assert not (dest / unet).exists()                         # nothing half-written under the real name
        have = part.stat().st_size
        second = run_cli("models", "pull", "sd15-inpaint", env=env)
        assert second.returncode == 0, second.stderr
        ranges = [r for m, p, r in hub.requests if m == "GET" and p.endswith(unet) and r]
        assert ranges == [f"bytes={have}-"]                       # resumed where the first pull stopped
    for name in ("model_index.json", "unet/config.json", unet, "vae/diffusion_pytorch_model.safetensors",
                 "text_encoder/model.safetensors", "tokenizer/tokenizer.json"):
        assert (dest / name).read_bytes() == (repo_dir / name).read_bytes(), name
    assert not (dest / "unet" / "diffusion_pytorch_model.bin").exists()      # no pickle
    assert not part.exists() and check_pipeline_folder(dest) is None


def test_cli_pull_refuses_a_file_whose_sha256_differs(tmp_path, tiny_inpaint):
    from fake_hub import FakeHub
    repo_dir = _fake_repo(tiny_inpaint, tmp_path / "repo")
    vae = "vae/diffusion_pytorch_model.safetensors"
    with FakeHub("stable-diffusion-v1-5/stable-diffusion-inpainting", repo_dir) as hub:
        hub.wrong_sha = {vae}
        r = run_cli("models", "pull", "sd15-inpaint", env=_env(tmp_path / "models", tmp_path / "hf",
                                                               HF_HUB_OFFLINE="0", HF_ENDPOINT=hub.url))
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert "wrong checksum" in r.stderr and "diffusion_pytorch_model.safetensors" in r.stderr
    dest = tmp_path / "models" / "sd15-inpaint"
    assert not (dest / vae).exists() and not (dest / (vae + ".part")).exists()
