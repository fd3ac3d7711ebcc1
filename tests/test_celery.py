"""Scale-out path: ``packshot serve --queue celery`` + a real redis-server + a real ``packshot worker``."""
from __future__ import annotations

import json

import pytest

from services import Server, Worker, create_product, redis_url, wait_job  # noqa: F401  (fixture)

JOB = {"n": 2, "size": "256x256", "seed": 5}


@pytest.fixture(scope="module")
def celery_setup(redis_url, tmp_path_factory):  # noqa: F811
    data = tmp_path_factory.mktemp("celery") / "data"
    server = Server(data, queue="celery", broker=redis_url).start()
    worker = Worker(data, redis_url, env={"PACKSHOT_TEST_STEP_DELAY": "0.05"}).start()
    yield server, worker
    worker.stop()
    server.stop()
    assert "Traceback" not in server.log(), server.log()[-3000:]


def test_jobs_run_on_the_worker_not_the_server(celery_setup):
    server, worker = celery_setup
    c = server.client()
    assert c.get("/health").json()["queue"] == "celery"
    p = create_product(c)
    job = c.post("/api/v1/jobs", json={**JOB, "product_id": p["id"]}).json()
    events = []
    with c.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:  # progress from another process
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    done = events[-1]
    assert done["status"] == "succeeded" and len(done["result_ids"]) == 2, done
    assert len({e["progress"] for e in events}) >= 3
    img = c.get(f"/api/v1/results/{done['result_ids'][0]}/image")
    assert img.status_code == 200 and img.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"packshot.run_job[" in worker.log() and job["id"] in worker.log()
    # the worker ran it: the server has no model slots to report
    assert "packshot_model_slots" not in c.get("/metrics").text


def test_many_jobs_and_cancel_through_the_worker(celery_setup):
    server, _ = celery_setup
    c = server.client()
    p = create_product(c, "batch")
    ids = [c.post("/api/v1/jobs", json={**JOB, "n": 1, "seed": i, "product_id": p["id"]}).json()["id"]
           for i in range(4)]
    last = c.post("/api/v1/jobs", json={**JOB, "n": 4, "product_id": p["id"]}).json()["id"]
    c.post(f"/api/v1/jobs/{last}/cancel")
    assert [wait_job(c, i)["status"] for i in ids] == ["succeeded"] * 4
    assert wait_job(c, last)["status"] == "cancelled"
    hist = c.get(f"/api/v1/products/{p['id']}/history").json()
    assert hist["count"] == 4 and len({r["id"] for r in hist["items"]}) == 4


def test_a_worker_with_two_job_threads(redis_url, tmp_path):  # noqa: F811
    broker = redis_url.rsplit("/", 1)[0] + "/1"  # its own queue: the module's worker is not involved
    data = tmp_path / "data"
    server = Server(data, queue="celery", broker=broker).start()
    worker = Worker(data, broker, args=("--concurrency", "2")).start()
    try:
        c = server.client()
        p = create_product(c, "threads")
        ids = [c.post("/api/v1/jobs", json={**JOB, "n": 1, "seed": i, "product_id": p["id"]}).json()["id"]
               for i in range(4)]
        assert [wait_job(c, i)["status"] for i in ids] == ["succeeded"] * 4
        assert "pool threads x2" in worker.log()
        assert all(f"packshot.run_job[{i}" in worker.log() for i in ids)
    finally:
        worker.stop()
        server.stop()
