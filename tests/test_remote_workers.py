"""Remote workers (issue 15): ``packshot worker --broker … --api URL --worker-key KEY`` processes that
share nothing with the server but redis: each has its own empty data dir and no database URL.

Real processes on 127.0.0.1: redis-server, ``packshot serve --queue celery`` and two or three
``packshot worker`` processes. Worker keys are made with the CLI (``packshot worker --new-key``).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services import ROOT, Server, Worker, _env, create_product, redis_url, wait_for, wait_job  # noqa: F401
from tcp_proxy import Proxy
from test_faults import assert_once

API_KEY = "user-key-1"
JOB = {"size": "256x256", "prompt": "on a slate tile, soft light"}
TIMING = ("--stale-after", "4", "--visibility-timeout", "6")


def worker_key(data_dir, name: str, *more: str) -> str:
    """``packshot worker --new-key NAME --data-dir DIR``: the key is the last line printed."""
    r = subprocess.run([sys.executable, "-m", "packshot", "worker", "--data-dir", str(data_dir), *more,
                        "--new-key", name], capture_output=True, text=True, env=_env({}), cwd=str(ROOT), timeout=120)
    assert r.returncode == 0, r.stderr
    key = r.stdout.strip().splitlines()[-1]
    assert key.startswith("pswk_") and len(key) > 40
    return key


def remote_worker(tmp_path, name: str, broker: str, api: str, key: str, env: dict | None = None) -> Worker:
    """A worker with its own EMPTY data dir, no database URL: only the broker, the API and a key."""
    own = tmp_path / f"{name}-data"
    own.mkdir()
    return Worker(own, broker, env={"PACKSHOT_DEVICE": "cpu", **(env or {})}, name=name,
                  args=(*TIMING, "--api", api, "--worker-key", key))


def broker_db(redis_url: str, n: int) -> str:  # noqa: F811
    return redis_url.rsplit("/", 1)[0] + f"/{n}"


@pytest.fixture(scope="module")
def cluster(redis_url, tmp_path_factory):  # noqa: F811
    tmp = tmp_path_factory.mktemp("remote")
    broker = broker_db(redis_url, 3)
    data = tmp / "server"
    keys = {n: worker_key(data, n) for n in ("gpu-a", "gpu-b")}
    server = Server(data, queue="celery", broker=broker, api_keys=(API_KEY,), args=TIMING[:2]).start()
    workers = [remote_worker(tmp, n, broker, server.url, keys[n]) for n in keys]
    for w in workers:
        w.start()
    yield server, workers, keys, tmp
    for w in workers:
        w.stop()
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_remote_workers_run_jobs_results_through_the_api(cluster):
    server, workers, _, tmp = cluster
    c = server.client()
    p = create_product(c, "remote")
    ids = [c.post("/api/v1/jobs", json={**JOB, "n": 1, "seed": i, "product_id": p["id"]}).json()["id"]
           for i in range(5)]
    two = c.post("/api/v1/jobs", json={**JOB, "n": 2, "seed": 50, "product_id": p["id"]}).json()["id"]
    done = [wait_job(c, i, 120) for i in [*ids, two]]
    assert [d["status"] for d in done] == ["succeeded"] * 6, done
    assert_once(c, done[-1], 2)
    for d in done:
        img = c.get(f"/api/v1/results/{d['result_ids'][0]}/image")
        assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
    # the workers shared nothing: their own data dirs hold no database, only a cache of inputs
    for w in workers:
        own = Path(w.args[w.args.index("--data-dir") + 1])
        assert own.parent == tmp and not list(own.rglob("packshot.db*")) and "--database-url" not in w.args
    ran = [sum(f"packshot.run_job[{i}" in w.log() for i in [*ids, two]) for w in workers]
    assert sum(ran) >= 6, ran
    # what each worker serves, printed at start
    for w in workers:
        assert "queues gpu,cpu; device cpu" in w.log() and "resident models: none (at most 2)" in w.log(), w.log()[-2000:]
    # heartbeats: GET /api/v1/workers (an ordinary API route)
    def idle():  # the jobs are done: the next heartbeat of each worker says so
        got = c.get("/api/v1/workers").json()
        return got if got["count"] == 2 and all(not w["current_jobs"] for w in got["items"]) else None

    listing = wait_for(idle, 30, "both workers to report no current job")
    for item in listing["items"]:
        assert item["key_name"] in ("gpu-a", "gpu-b") and item["device"] == "cpu"
        assert item["free_memory"] > 0 and item["total_memory"] >= item["free_memory"]
        assert item["queues"] == ["gpu", "cpu"] and isinstance(item["models_loaded"], list)
        assert item["seconds_since_seen"] < 15
    # /metrics per queue (operators: from the server's host, no API key)
    text = httpx.get(server.url + "/metrics").text
    assert 'packshot_queue_workers{queue="cpu"} 2.0' in text and 'packshot_queue_workers{queue="gpu"} 2.0' in text
    assert 'packshot_queue_dispatched_total{queue="cpu"}' in text and 'packshot_queue_waiting{queue="cpu"}' in text


def test_current_job_shows_in_the_heartbeat_and_cancel_reaches_the_worker(cluster):
    server, workers, _, _ = cluster
    c = server.client()
    p = create_product(c, "slow")
    job = c.post("/api/v1/jobs", json={**JOB, "n": 16, "size": "1024x1024", "seed": 3,
                                       "product_id": p["id"]}).json()
    wait_for(lambda: any(job["id"] in w["current_jobs"] for w in c.get("/api/v1/workers").json()["items"]), 60,
             "the job to show as a worker's current job")
    c.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert wait_job(c, job["id"], 60)["status"] == "cancelled"


def test_worker_keys_are_a_separate_revocable_credential(cluster):
    server, _, keys, tmp = cluster
    route = server.url + "/api/v1/worker/heartbeat"
    beat = {"name": "probe:1"}
    # a worker key works on worker routes only
    assert httpx.post(route, json=beat, headers={"X-Worker-Key": keys["gpu-a"]}).status_code == 200
    r = httpx.get(server.url + "/api/v1/products", headers={"X-API-Key": keys["gpu-a"]})
    assert r.status_code == 401, r.text
    r = httpx.get(server.url + "/api/v1/products", headers={"X-Worker-Key": keys["gpu-a"]})
    assert r.status_code in (401, 403), r.text
    # an API key is refused on worker routes, in either header
    for headers in ({"X-API-Key": API_KEY}, {"Authorization": f"Bearer {API_KEY}"}, {"X-Worker-Key": API_KEY}):
        r = httpx.post(route, json=beat, headers=headers)
        assert r.status_code == 401 and "worker key" in r.json()["detail"], (headers, r.text)
    # a key made, used, then revoked with the CLI while the server runs
    data = server.data_dir
    spare = worker_key(data, "spare")
    assert httpx.post(route, json=beat, headers={"X-Worker-Key": spare}).status_code == 200
    r = subprocess.run([sys.executable, "-m", "packshot", "worker", "--data-dir", str(data), "--revoke-key",
                        "spare"], capture_output=True, text=True, env=_env({}), cwd=str(ROOT), timeout=120)
    assert r.returncode == 0 and "revoked worker key 'spare'" in r.stdout, r.stderr
    r = httpx.post(route, json=beat, headers={"X-Worker-Key": spare})
    assert r.status_code == 401 and r.json()["detail"] == "invalid or revoked worker key"
    r = subprocess.run([sys.executable, "-m", "packshot", "worker", "--data-dir", str(data), "--list-keys"],
                       capture_output=True, text=True, env=_env({}), cwd=str(ROOT), timeout=120)
    listed = {line.split()[1]: line for line in r.stdout.splitlines()}
    assert "revoked" in listed["spare"] and "active" in listed["gpu-a"] and spare not in r.stdout
    # a worker started with the revoked key stops at once with one line
    w = remote_worker(tmp, "revoked", "redis://127.0.0.1:1/0", server.url, spare)
    w.spawn()
    assert w.proc.wait(60) == 2
    assert "refused the worker key" in w.log() and "Traceback" not in w.log(), w.log()


def test_kill9_a_remote_worker_mid_job_completes_once_and_a_cut_upload_resumes(redis_url, tmp_path):  # noqa: F811
    broker = broker_db(redis_url, 4)
    data = tmp_path / "server"
    k1, k2 = worker_key(data, "first"), worker_key(data, "second")
    server = Server(data, queue="celery", broker=broker, api_keys=(API_KEY,), args=TIMING[:2]).start()
    # the second worker reaches the API through a proxy that cuts its 3rd upload chunk mid-request
    proxy = Proxy(server.port, drop_on=b"PATCH /api/v1/worker/uploads/", drop_at=3)
    first = remote_worker(tmp_path, "first", broker, server.url, k1, env={"PACKSHOT_TEST_STEP_DELAY": "0.4"})
    second = remote_worker(tmp_path, "second", broker, proxy.url, k2, env={"PACKSHOT_TEST_UPLOAD_CHUNK": "16384"})
    try:
        first.start()
        c = server.client()
        p = create_product(c)
        job = c.post("/api/v1/jobs", json={**JOB, "n": 4, "seed": 100, "product_id": p["id"]}).json()
        wait_for(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] >= 0.8, 90,
                 "the job to be half-way (compositing or saving)")
        first.kill9()
        mid = c.get(f"/api/v1/jobs/{job['id']}").json()
        assert mid["status"] == "running" and mid["result_ids"] == []  # nothing half-written
        second.start()
        done = wait_job(c, job["id"], 120)
        assert done["attempts"] >= 2
        assert_once(c, done, 4)
        # the upload was cut once and resumed where the server's copy ended
        assert proxy.dropped == 1
        resumed = [line for line in second.log().splitlines() if "connection dropped" in line and "resuming at byte" in line]
        assert resumed and int(resumed[0].split("at byte ")[1].split()[0]) >= 16384, second.log()[-3000:]
        for rid in done["result_ids"]:
            img = c.get(f"/api/v1/results/{rid}/image")
            assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
        # the killed worker's message comes again (visibility timeout): still written once
        wait_for(lambda: sum("packshot.run_job[" + job["id"] in line and "received" in line
                             for line in second.log().splitlines()) >= 2, 150,
                 "the killed worker's message to be delivered again")
        again = c.get(f"/api/v1/jobs/{job['id']}").json()
        assert again["result_ids"] == done["result_ids"] and again["attempts"] == done["attempts"]
        assert not list((data / "uploads").glob("*.part"))  # no partial upload left behind
    finally:
        for proc in (first, second, server):
            proc.stop()
        proxy.close()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_jobs_are_routed_by_what_they_need_and_bad_worker_options_give_one_line(tmp_path):
    from packshot.jobs.celery_app import queue_for

    assert queue_for({"engine": "studio", "segment": {"engine": "auto"}}) == "cpu"
    assert queue_for({"engine": "diffusion"}) == "gpu"
    assert queue_for({"engine": "studio", "segment": {"engine": "sam"}}) == "gpu"
    assert queue_for({"engine": "studio", "segment": {"text": "the mug"}}) == "gpu"
    assert queue_for({"engine": "studio"}, kind="train") == "gpu"  # training: GPU workers only
    for args, words in ((["--queues", "gpu,tpu"], "--queues 'gpu,tpu'"),
                        (["--api", "ftp://example.com"], "is not an http(s)"),
                        (["--api", "http://127.0.0.1:1"], "--api needs --worker-key"),
                        (["--api", "http://127.0.0.1:1", "--worker-key", "pswk_x", "--database-url", "sqlite://"],
                         "takes no --database-url")):
        r = subprocess.run([sys.executable, "-m", "packshot", "worker", "--data-dir", str(tmp_path), *args],
                           capture_output=True, text=True, env=_env({}), cwd=str(ROOT), timeout=120)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and words in lines[0], (args, r.stderr)


def test_heartbeat_names_the_resident_models():
    from packshot.config import Settings
    from packshot.jobs.remote import models_loaded
    from packshot.models import model_cache

    settings = Settings(resident_models=7)  # a cache of its own
    assert models_loaded(settings) == []
    cache = model_cache(settings)
    cache.get("sam:/srv/models/sam-vit-base", lambda: object())
    cache.get(("diffusion", "/srv/models/sd15-inpaint", "float16", "cuda", None), lambda: object())
    assert models_loaded(settings) == ["sam:sam-vit-base", "diffusion:sd15-inpaint"]
    cache.clear()
