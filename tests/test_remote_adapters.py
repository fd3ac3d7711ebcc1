"""Remote GPU workers run what the server's own workers run (issue 12 x issue 15): a generation job with a
trained adapter, a job on an uploaded background photo, and training itself, on ``packshot worker --api URL
--worker-key KEY`` processes that share nothing with the server but redis (own empty data dir, own model
dir, no database URL).

Real processes on 127.0.0.1: redis-server, ``packshot serve --queue celery`` and remote workers. The base
model is a tiny randomly initialised SD pipeline saved in the real diffusers layout, in the server's model
dir and (a copy) in each worker's.
"""
from __future__ import annotations

import io
import json
import time
import shutil
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from services import Server, create_product, photo_bytes, redis_url, wait_for, wait_job  # noqa: F401
from test_remote_workers import TIMING, broker_db, remote_worker, worker_key

API_KEY = "key-remote-adapters-1"
GEN = {"engine": "diffusion", "model": "tiny-sd", "prompt": "<product> on a wooden table", "size": "64x64",
       "steps": 2, "n": 1, "seed": 5}


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> tuple[Path, Path]:
    """(the server's model dir, a worker's model dir): the same tiny SD pipeline in each."""
    import tiny_pipelines as tp

    root = tmp_path_factory.mktemp("remote-models")
    tp.build_sd_text2img(root / "server" / "tiny-sd")
    shutil.copytree(root / "server" / "tiny-sd", root / "worker" / "tiny-sd")
    return root / "server", root / "worker"


def _env(model_dir: Path, **more) -> dict:
    return {"PACKSHOT_MODEL_DIR": str(model_dir), "PACKSHOT_DEVICE": "cpu",
            "PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000, **more}


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory, model_dirs):  # noqa: F811
    tmp = tmp_path_factory.mktemp("remote-adapters")
    server_models, worker_models = model_dirs
    broker = broker_db(redis_url, 8)
    data = tmp / "server"
    key = worker_key(data, "gpu-1")
    server = Server(data, queue="celery", broker=broker, api_keys=(API_KEY,), env=_env(server_models),
                    args=TIMING[:2]).start()
    worker = remote_worker(tmp, "gpu-1", broker, server.url, key, env=_env(worker_models))
    worker.start()
    yield server, worker, worker_models
    worker.stop()
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def _done_adapter(server: Server, product_id: str, base: Path) -> dict:
    """A finished adapter row of ``API_KEY`` on the server, its folder built with tests/tiny_adapters.py
    (the generation side does not depend on the training code)."""
    from tiny_adapters import build_lora

    from packshot.api.middleware import hash_key
    from packshot.config import Settings
    from packshot.store import Store
    from packshot.store.adapters import create_training, finish_training

    store = Store(Settings(data_dir=server.data_dir))
    try:
        request = {"method": "lora", "base": "tiny-sd", "steps": 30, "resolution": 64, "rank": 4, "seed": 0}
        row = create_training(store, hash_key(API_KEY), product_id, None, request, "mug-lora")
        folder = build_lora(server.data_dir / "adapters" / row.id, base, name="mug-lora")
        (folder / "checkpoints" / "step-000010").mkdir(parents=True)  # never sent to workers
        (folder / "checkpoints" / "step-000010" / "state.bin").write_bytes(b"x" * 1000)
        assert store.claim("test-trainer:1", row.id) is not None
        meta = json.loads((folder / "packshot_adapter.json").read_text())
        assert finish_training(store, row.id, "test-trainer:1", meta, 30, 0.1, None)
        return {"id": row.id, "name": meta["name"], "token": meta["token"]}
    finally:
        store.engine.dispose()


def test_a_generation_job_with_an_adapter_runs_on_a_remote_worker(cluster, model_dirs):
    server, worker, worker_models = cluster
    c = server.client()
    product = create_product(c, "mug", [photo_bytes(size=(160, 120), fmt="PNG")])
    adapter = _done_adapter(server, product["id"], model_dirs[0] / "tiny-sd")
    r = c.post("/api/v1/jobs", json={**GEN, "product_id": product["id"], "adapters": [f"{adapter['id']}:0.8"]})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], 240)
    assert job["status"] == "succeeded", (job, worker.log()[-3000:])
    assert f"packshot.run_job[{job['id']}" in worker.log()  # it ran on the remote worker
    params = c.get(f"/api/v1/results/{job['result_ids'][0]}").json()["parameters"]
    assert adapter["name"] in params["Adapters"] and "0.8" in params["Adapters"], params
    assert adapter["token"] in params["Final prompt"] and "<product>" not in params["Final prompt"]
    # the worker unpacked the bundle whole under its own model dir, keyed by its sha256, without checkpoints
    cached = [p for p in (worker_models / "adapters" / ".remote").iterdir()]
    assert len(cached) == 1 and len(cached[0].name) == 64, cached
    assert (cached[0] / "packshot_adapter.json").is_file() and (cached[0] / "pytorch_lora_weights.safetensors").is_file()
    assert not (cached[0] / "checkpoints").exists()
    sha = cached[0].name
    # a bundle is served to a worker only for a running job that uses it
    route = f"{server.url}/api/v1/worker/blobs/{sha}"
    key = worker.args[worker.args.index("--worker-key") + 1]
    for params_ in ({}, {"job": job["id"]}):  # no job named; the job is finished
        g = httpx.get(route, params=params_, headers={"X-Worker-Key": key})
        assert g.status_code == 404 and "not an input of a running job" in g.json()["detail"], g.text
    assert httpx.get(route, params={"job": job["id"]}, headers={"X-API-Key": API_KEY}).status_code == 401
    # a second job reuses the unpacked folder (no second download)
    r = c.post("/api/v1/jobs", json={**GEN, "seed": 6, "product_id": product["id"], "adapters": [adapter["id"]]})
    assert wait_job(c, r.json()["id"], 240)["status"] == "succeeded"
    assert [p.name for p in (worker_models / "adapters" / ".remote").iterdir()] == [sha]


def _room(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    room = np.stack([60 + x * 120 // w, 90 + y * 100 // h, np.full_like(x, 140)], axis=2)
    return room.astype(np.uint8)


def test_a_job_on_an_uploaded_background_runs_on_a_remote_worker(cluster):
    server, worker, _ = cluster
    c = server.client()
    product = create_product(c, "bottle", [photo_bytes(size=(300, 200), fmt="PNG", seed=2)])
    buf = io.BytesIO()
    room = _room(300, 200)
    Image.fromarray(room).save(buf, "PNG")
    bg = c.post("/api/v1/backgrounds", files={"photo": ("room.png", buf.getvalue(), "application/octet-stream")})
    assert bg.status_code == 201, bg.text
    r = c.post("/api/v1/jobs", json={"product_id": product["id"], "background_id": bg.json()["id"], "n": 1,
                                      "seed": 1, "keep_framing": True})
    assert r.status_code == 202, r.text
    job = wait_job(c, r.json()["id"], 180)
    assert job["status"] == "succeeded", (job, worker.log()[-3000:])
    assert f"packshot.run_job[{job['id']}" in worker.log()
    res = c.get(f"/api/v1/results/{job['result_ids'][0]}").json()
    assert res["parameters"]["Background"] == "photo uploaded"
    img = np.asarray(Image.open(io.BytesIO(c.get(f"/api/v1/results/{job['result_ids'][0]}/image").content))
                     .convert("RGB"))
    assert img.shape == (200, 300, 3)
    assert np.abs(img[:8].astype(int) - room[:8].astype(int)).max() <= 1, "the room's own pixels, above the product"


# -- training on remote workers ---------------------------------------------------------------------------
TRAIN = {"base": "tiny-sd", "method": "lora", "resolution": 64, "rank": 4, "seed": 3}


def _photos(n: int) -> list[bytes]:
    return [photo_bytes(size=(160, 120), fmt="PNG", seed=i) for i in range(n)]


def _adapter(c: httpx.Client, aid: str, until=("done", "failed", "cancelled"), timeout: float = 300) -> dict:
    def done():
        a = c.get(f"/api/v1/adapters/{aid}").json()
        return a if a["status"] in until else None

    return wait_for(done, timeout, f"adapter {aid} to reach {'/'.join(until)}", interval=0.2)


def test_training_runs_on_a_remote_worker_and_its_adapter_generates_there(cluster):
    from packshot.models.adapters import read_adapter

    server, worker, _ = cluster
    c = server.client()
    product = create_product(c, "red mug", _photos(3))
    r = c.post(f"/api/v1/products/{product['id']}/adapters", json={**TRAIN, "steps": 6, "checkpoint_every": 3})
    assert r.status_code == 202, r.text
    done = _adapter(c, r.json()["id"])
    assert done["status"] == "done", (done, worker.log()[-3000:])
    assert f"packshot.run_job[{done['id']}" in worker.log()  # trained on the remote worker
    assert done["step"] == done["total"] == 6 and done["loss"] > 0 and done["resumed_from"] is None
    meta = done["metadata"]
    assert meta["method"] == "lora" and meta["steps"] == 6 and len(meta["photos"]) == 3
    # the server unpacked the uploaded folder: a whole adapter in the shared format, no checkpoints left
    folder = server.data_dir / "adapters" / done["id"]
    info = read_adapter(folder)
    assert info.method == "lora" and info.weights_file.is_file() and len(info.references) == 3
    assert not (folder / "checkpoints").exists()
    assert not [p for p in (server.data_dir / "adapters").iterdir() if "." in p.name]  # no .part/.new/.ckpt left
    own = Path(worker.args[worker.args.index("--data-dir") + 1])
    # the worker's own training folder is gone (removed right after its upload was accepted, which is
    # when the server marks the adapter done: allow the worker a moment)
    deadline = time.monotonic() + 20
    while list((own / "training").iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not list((own / "training").iterdir())
    # and the adapter generates, on the remote worker too
    r = c.post("/api/v1/jobs", json={**GEN, "product_id": product["id"], "adapters": [f"{done['id']}:0.7"]})
    job = wait_job(c, r.json()["id"], 240)
    assert job["status"] == "succeeded", (job, worker.log()[-3000:])
    params = c.get(f"/api/v1/results/{job['result_ids'][0]}").json()["parameters"]
    assert done["name"] in params["Adapters"] and "0.7" in params["Adapters"]


def test_kill9_of_a_remote_worker_mid_training_resumes_on_another_from_the_uploaded_checkpoint(
        redis_url, tmp_path, model_dirs):  # noqa: F811
    server_models, worker_models = model_dirs
    broker = broker_db(redis_url, 9)
    data = tmp_path / "server"
    k1, k2 = worker_key(data, "first"), worker_key(data, "second")
    server = Server(data, queue="celery", broker=broker, api_keys=(API_KEY,), env=_env(server_models),
                    args=TIMING[:2]).start()
    slow = _env(worker_models, PACKSHOT_TEST_STEP_DELAY="0.4")
    first = remote_worker(tmp_path, "first", broker, server.url, k1, env=slow)
    second = remote_worker(tmp_path, "second", broker, server.url, k2, env=slow)
    try:
        first.start()
        c = server.client()
        product = create_product(c, "resume", _photos(3))
        r = c.post(f"/api/v1/products/{product['id']}/adapters", json={**TRAIN, "steps": 12, "checkpoint_every": 3})
        aid = r.json()["id"]
        folder = data / "adapters" / aid / "checkpoints"
        # the checkpoint at step 3 is uploaded at the next step: wait until the server holds it
        wait_for(lambda: folder.is_dir() and any(p.name.startswith("step-") for p in folder.iterdir()), 240,
                 "the first checkpoint to reach the server")
        first.kill9()
        mid = c.get(f"/api/v1/adapters/{aid}").json()
        assert mid["status"] == "running" and mid["metadata"] is None and mid["step"] >= 3
        saved = sorted(p.name for p in folder.iterdir() if p.name.startswith("step-"))
        assert len(saved) == 1 and (folder / saved[0] / "state.pt").is_file(), saved  # older ones dropped
        last = int(saved[0].split("-")[1])
        second.start()
        done = _adapter(c, aid)
        assert done["status"] == "done", (done, second.log()[-3000:])
        assert done["resumed_from"] == last and last >= 3
        assert done["step"] == done["total"] == 12 and done["metadata"]["steps"] == 12
        assert done["attempts"] >= 2
        assert f"downloaded the checkpoint at step {last}" in second.log()
        assert "resuming from the checkpoint" in second.log()
    finally:
        for proc in (first, second, server):
            proc.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_cancel_of_a_remote_training_leaves_nothing_on_the_server_or_the_worker(cluster):
    server, worker, _ = cluster
    c = server.client()
    product = create_product(c, "cancel me", _photos(3))
    aid = c.post(f"/api/v1/products/{product['id']}/adapters",
                 json={**TRAIN, "steps": 400, "checkpoint_every": 2}).json()["id"]
    folder = server.data_dir / "adapters" / aid
    wait_for(lambda: (folder / "checkpoints").is_dir(), 240, "a checkpoint of the remote training on the server")
    assert c.post(f"/api/v1/adapters/{aid}/cancel").status_code in (200, 202)
    final = _adapter(c, aid, timeout=120)
    assert final["status"] == "cancelled" and final["metadata"] is None
    assert not folder.exists()  # the uploaded checkpoints went with it
    own = Path(worker.args[worker.args.index("--data-dir") + 1])
    wait_for(lambda: not (own / "training" / aid).exists(), 30, "the worker's training folder to be removed")


def test_an_adapter_or_background_deleted_while_its_job_waits_fails_the_job_with_one_line(cluster, model_dirs):
    server, worker, _ = cluster
    c = server.client()
    product = create_product(c, "gone", [photo_bytes(size=(300, 200), fmt="PNG", seed=4)])
    adapter = _done_adapter(server, product["id"], model_dirs[0] / "tiny-sd")
    buf = io.BytesIO()
    Image.fromarray(_room(300, 200)).save(buf, "PNG")
    bg = c.post("/api/v1/backgrounds", files={"photo": ("room.png", buf.getvalue(), "application/octet-stream")})
    worker.stop()  # the jobs wait in the broker
    try:
        with_adapter = c.post("/api/v1/jobs", json={**GEN, "product_id": product["id"],
                                                    "adapters": [adapter["id"]]}).json()["id"]
        with_bg = c.post("/api/v1/jobs", json={"product_id": product["id"], "background_id": bg.json()["id"],
                                               "n": 1, "keep_framing": True}).json()["id"]
        assert c.delete(f"/api/v1/adapters/{adapter['id']}").status_code == 204
        assert c.delete(f"/api/v1/backgrounds/{bg.json()['id']}").status_code == 204
    finally:
        worker.start()
    for jid, name in ((with_adapter, adapter["id"]), (with_bg, bg.json()["id"])):
        job = wait_job(c, jid, 120)
        assert job["status"] == "failed" and name in job["error"] and "\n" not in job["error"], job


def test_a_bundle_is_unpacked_whole_or_not_at_all(tmp_path):
    """``unpack_bundle`` (what a worker does with an adapter or checkpoint it downloaded): members with
    absolute paths, ``..`` or links out of the folder are refused with one line, and nothing is left."""
    import tarfile

    from packshot.errors import InvalidInputError
    from packshot.store.adapters import bundle_bytes, unpack_bundle

    src = tmp_path / "adapter"
    (src / "references").mkdir(parents=True)
    (src / "packshot_adapter.json").write_text("{}")
    (src / "references" / "photo-1.png").write_bytes(b"png")
    (src / "checkpoints" / "step-000002").mkdir(parents=True)
    (src / "checkpoints" / "step-000002" / "state.pt").write_bytes(b"state")
    data = bundle_bytes(src)
    assert bundle_bytes(src) == data  # deterministic: the same folder, the same sha256
    out = unpack_bundle(data, tmp_path / "cache" / "a")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [
        "packshot_adapter.json", "references", "references/photo-1.png"]  # no checkpoints
    for name, kind in (("../evil.txt", tarfile.REGTYPE), ("/tmp/evil.txt", tarfile.REGTYPE),
                       ("link", tarfile.SYMTYPE)):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo(name)
            info.type = kind
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = 4
                tar.addfile(info, io.BytesIO(b"evil"))
        with pytest.raises(InvalidInputError) as e:
            unpack_bundle(buf.getvalue(), tmp_path / "cache" / "bad")
        assert "\n" not in str(e.value) and "adapter bundle" in str(e.value)
        assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["a"]  # no .part, no "bad"
    assert not (tmp_path / "evil.txt").exists()


def test_the_workers_adapter_cache_keeps_the_most_recently_used(tmp_path):
    import os
    import time

    from packshot.jobs.remote import prune_adapter_cache

    now = time.time()
    for i in range(6):  # 0 is the most recently used, i unused for i x 1000 s
        d = tmp_path / f"{i:064x}"
        d.mkdir()
        os.utime(d, (now - i * 1000, now - i * 1000))
    (tmp_path / "f.part-12").mkdir()  # not a bundle folder: left alone
    # beyond the 2 newest, only those unused for over an hour go (2 and 3 may belong to running jobs)
    assert prune_adapter_cache(tmp_path, keep=2, min_age_s=3600) == 2
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([f"{i:064x}" for i in (0, 1, 2, 3)] + ["f.part-12"])
