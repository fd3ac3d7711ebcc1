"""The built-in queue: bounded model slots, persistence, cancel, progress; in-process and over HTTP."""
from __future__ import annotations

import io
import json
import threading
import time

import pytest
from PIL import Image

from packshot.config import Settings
from packshot.jobs import QueueOptions, make_queue
from packshot.jobs.slots import ModelSlots, SlotsBusyError
from packshot.pipeline import Pipeline
from packshot.store import PhotoUpload, Store
from services import Server, assert_error, create_product, photo_bytes, wait_for, wait_job

JOB = {"n": 2, "size": "256x256", "seed": 1}


def test_slots_bound_concurrency_and_a_timed_out_wait_releases_nothing():
    slots = ModelSlots(2)
    inside, peak, lock = [0], [0], threading.Lock()

    def hold():
        with slots.hold():
            with lock:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
            time.sleep(0.05)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=hold) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 2 and slots.busy == 0
    with slots.hold(), slots.hold():
        with pytest.raises(SlotsBusyError, match="2 model slots"):
            with slots.hold(timeout=0.05):
                pass  # never reached: the wait timed out
        assert slots.busy == 2
    # the failed wait gave nothing back: exactly two slots exist, not three
    with slots.hold(), slots.hold():
        with pytest.raises(SlotsBusyError):
            with slots.hold(timeout=0.01):
                pass
    assert slots.busy == 0


class CountingPipeline:
    """The real Pipeline, counting how many generations run at once."""

    def __init__(self, settings):
        self.real = Pipeline(settings)
        self.now = self.peak = self.calls = 0
        self.lock = threading.Lock()

    def __getattr__(self, name):  # check, engine, ...: the real Pipeline's
        return getattr(self.real, name)

    def generate(self, *args, **kwargs):
        with self.lock:
            self.now += 1
            self.calls += 1
            self.peak = max(self.peak, self.now)
        try:
            return self.real.generate(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def test_local_queue_runs_every_job_with_at_most_model_slots_at_once(tmp_path):
    settings = Settings(data_dir=tmp_path, model_slots=2)
    store = Store(settings)
    product = store.create_product("", "mug", [PhotoUpload(photo_bytes(), "image/png", 400, 300)])
    queue = make_queue(settings, store, QueueOptions(step_delay_s=0.02))
    pipeline = CountingPipeline(settings)
    queue.runner._pipeline = pipeline  # the runner builds one per process; we hand it the counting one
    ids = [store.create_job("", product.id, None, {**JOB, "n": 1, "seed": i}).id for i in range(6)]
    queue.start()
    try:
        for i in ids:
            queue.submit(i)
        wait_for(lambda: all(store.get_job("", i).status == "succeeded" for i in ids), 120, "6 jobs")
    finally:
        queue.stop()
        store.close()
    assert pipeline.calls == 6 and pipeline.peak == 2


def test_a_job_left_running_by_a_dead_process_runs_again_at_start(tmp_path):
    settings = Settings(data_dir=tmp_path, model_slots=1)
    store = Store(settings)
    product = store.create_product("", "mug", [PhotoUpload(photo_bytes(), "image/png", 400, 300)])
    job = store.create_job("", product.id, None, JOB)
    dead = f"{__import__('socket').gethostname()}:999999999:0"
    assert store.claim(dead, job.id) is not None  # "running" under a process that no longer exists
    queue = make_queue(settings, store)
    queue.start()
    try:
        wait_for(lambda: store.get_job("", job.id).status == "succeeded", 60, "the interrupted job")
        done = store.get_job("", job.id)
        assert done.attempts == 2 and len(done.result_ids) == 2
    finally:
        queue.stop()
        store.close()


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    """One model slot and a delay in every progress step (the test hook), so jobs can be caught
    queued and running."""
    srv = Server(tmp_path_factory.mktemp("slow") / "data", args=("--model-slots", "1"),
                 env={"PACKSHOT_TEST_STEP_DELAY": "0.4"}).start()
    yield srv
    srv.stop()


def test_cancel_a_queued_and_a_running_job(slow_server):
    c = slow_server.client()
    p = create_product(c)
    first = c.post("/api/v1/jobs", json={**JOB, "n": 4, "product_id": p["id"]}).json()
    second = c.post("/api/v1/jobs", json={**JOB, "product_id": p["id"]}).json()
    wait_job(c, first["id"], 60, until=("running",))
    assert c.get(f"/api/v1/jobs/{second['id']}").json()["status"] == "queued"  # the one slot is busy
    r = c.post(f"/api/v1/jobs/{second['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = c.post(f"/api/v1/jobs/{first['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] in ("running", "cancelled")
    done = wait_job(c, first["id"], 30)
    assert done["status"] == "cancelled" and done["result_ids"] == [] and done["error"] is None
    time.sleep(1.0)
    never = c.get(f"/api/v1/jobs/{second['id']}").json()
    assert never["status"] == "cancelled" and never["attempts"] == 0 and never["started_at"] is None
    assert c.post(f"/api/v1/jobs/{first['id']}/cancel").json()["status"] == "cancelled"  # idempotent
    assert c.get(f"/api/v1/products/{p['id']}/history").json()["count"] == 0


def test_progress_is_visible_by_polling_and_sse(slow_server):
    c = slow_server.client()
    p = create_product(c)
    job = c.post("/api/v1/jobs", json={**JOB, "product_id": p["id"]}).json()
    seen = []
    with c.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:
        for line in stream.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
                if len(seen) == 3:  # mid-way, polling shows the same job moving
                    polled = c.get(f"/api/v1/jobs/{job['id']}").json()
                    assert polled["status"] in ("running", "succeeded") and polled["progress"] >= seen[-1]["progress"]
    stages = [e["stage"] for e in seen]
    progress = [e["progress"] for e in seen]
    assert seen[-1]["status"] == "succeeded" and progress == sorted(progress)
    assert len(set(progress)) >= 4 and {"segment", "composite", "save"} <= set(stages), stages
    assert all(0.0 <= x <= 1.0 for x in progress) and any(0.0 < x < 1.0 for x in progress)


def test_failed_job_reports_one_line_error(slow_server):
    c = slow_server.client()
    buf = io.BytesIO()
    Image.new("RGB", (200, 150), (240, 240, 240)).save(buf, "PNG")  # only backdrop: no product in it
    p = create_product(c, "blank", [buf.getvalue()])
    job = wait_job(c, c.post("/api/v1/jobs", json={**JOB, "n": 1, "product_id": p["id"]}).json()["id"], 60)
    assert job["status"] == "failed" and job["error"] and "\n" not in job["error"] and job["result_ids"] == []
    assert "internal error" not in job["error"]
    assert_error(c.get(f"/api/v1/photos/{p['photos'][0]['id']}/cutout.png"), 422)
