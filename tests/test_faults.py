"""Crashes: kill -9 a worker or the server in the middle of real jobs; nothing accepted is lost and
nothing is written twice.

Jobs are slowed down with the runner's test hook PACKSHOT_TEST_STEP_DELAY (a sleep in every progress
step of a real generation), so that a process can be killed while a job is half-way.
"""
from __future__ import annotations

import sqlite3

import pytest

from services import Server, Worker, create_product, database_url, photo_bytes, postgres, redis_url, \
    wait_for, wait_job  # noqa: F401  (fixtures)

JOB = {"size": "256x256", "prompt": "on a slate tile, soft light"}


def results_of(c, product_id: str) -> list[dict]:
    hist = c.get(f"/api/v1/products/{product_id}/history").json()
    assert hist["count"] == len(hist["items"])
    return hist["items"]


def assert_once(c, job: dict, n: int) -> None:
    """The job has exactly n results, ranks 1..n, no duplicates anywhere in its product's history."""
    assert job["status"] == "succeeded", job
    assert len(job["result_ids"]) == len(set(job["result_ids"])) == n
    mine = [r for r in results_of(c, job["product_id"]) if r["job_id"] == job["id"]]
    assert sorted(r["rank"] for r in mine) == list(range(1, n + 1))
    assert {r["id"] for r in mine} == set(job["result_ids"])
    assert len({r["seed"] for r in mine}) == n


def test_kill9_a_celery_worker_mid_job_the_job_completes_once(redis_url, tmp_path):  # noqa: F811
    data = tmp_path / "data"
    timing = ("--stale-after", "4")
    server = Server(data, queue="celery", broker=redis_url, args=timing).start()
    first = Worker(data, redis_url, env={"PACKSHOT_TEST_STEP_DELAY": "0.4"},
                   args=(*timing, "--visibility-timeout", "6"), name="first").start()
    second = Worker(data, redis_url, args=(*timing, "--visibility-timeout", "6"), name="second")
    try:
        c = server.client()
        p = create_product(c)
        job = c.post("/api/v1/jobs", json={**JOB, "n": 4, "seed": 100, "product_id": p["id"]}).json()
        wait_for(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] >= 0.8, 60,
                 "the job to be half-way (compositing or saving)")
        first.kill9()
        mid = c.get(f"/api/v1/jobs/{job['id']}").json()
        assert mid["status"] == "running" and mid["result_ids"] == []  # nothing half-written
        second.start()
        done = wait_job(c, job["id"], 90)
        assert done["attempts"] >= 2
        assert_once(c, done, 4)
        # the killed worker's message is redelivered too (visibility timeout): still no duplicates
        def deliveries():
            return {line.split("[", 1)[1].split("]", 1)[0] for line in second.log().splitlines()
                    if "packshot.run_job[" + job["id"] in line and "received" in line}

        wait_for(lambda: len(deliveries()) >= 2, 40, "the killed worker's message to be delivered again")
        again = c.get(f"/api/v1/jobs/{job['id']}").json()
        assert again["result_ids"] == done["result_ids"] and again["attempts"] == done["attempts"]
        assert_once(c, again, 4)
    finally:
        for proc in (first, second, server):
            proc.stop()


def test_kill9_the_server_mid_job_the_job_completes_once(tmp_path):
    server = Server(tmp_path / "data", env={"PACKSHOT_TEST_STEP_DELAY": "0.6"}).start()
    try:
        c = server.client()
        p = create_product(c)
        job = c.post("/api/v1/jobs", json={**JOB, "n": 4, "seed": 7, "product_id": p["id"]}).json()
        # killed while saving: some result images are in the blob store, none is committed yet
        wait_for(lambda: c.get(f"/api/v1/jobs/{job['id']}").json()["progress"] >= 0.93, 60,
                 "the job to be saving its results")
        server.kill9()
        server.env = {}
        server.start()
        done = wait_job(c, job["id"], 60)
        assert done["attempts"] == 2
        assert_once(c, done, 4)
    finally:
        server.stop()


@pytest.mark.parametrize("db", ["sqlite", "postgres"])
def test_kill9_the_server_everything_is_intact_after_restart(db, request, tmp_path):
    server = Server(tmp_path / "data", database_url=database_url(db, request)).start()
    try:
        c = server.client()
        products = [create_product(c, f"product {i}", [photo_bytes(seed=i)]) for i in range(2)]
        jobs = [wait_job(c, c.post("/api/v1/jobs", json={**JOB, "n": 2, "seed": i, "product_id": p["id"]}
                                   ).json()["id"]) for i, p in enumerate(products)]
        r0, r1 = jobs[0]["result_ids"]
        c.put(f"/api/v1/results/{r0}/rating", json={"stars": 5})
        c.put(f"/api/v1/results/{r1}/saved", json={"saved": True})
        last = c.put(f"/api/v1/results/{jobs[1]['result_ids'][0]}/rating", json={"stars": 2})
        assert last.status_code == 200  # answered: it must survive a kill -9 that follows at once
        before = {p["id"]: results_of(c, p["id"]) for p in products}
        listing = c.get("/api/v1/products").json()
        images = {r["id"]: c.get(r["image_url"]).content for rs in before.values() for r in rs}
        server.kill9()
        server.start()
        assert c.get("/api/v1/products").json() == listing
        after = {p["id"]: results_of(c, p["id"]) for p in products}
        assert after == before
        assert {r["id"]: c.get(r["image_url"]).content for rs in after.values() for r in rs} == images
        ratings = {r["id"]: (r["rating"], r["saved"]) for rs in after.values() for r in rs}
        assert ratings[r0] == (5, False) and ratings[r1] == (None, True)
        assert ratings[jobs[1]["result_ids"][0]] == (2, False)
    finally:
        server.stop()


@pytest.mark.parametrize("how", ["kill9", "sigterm"])
def test_queued_jobs_survive_a_restart(how, tmp_path):
    server = Server(tmp_path / "data", args=("--model-slots", "1"), env={"PACKSHOT_TEST_STEP_DELAY": "0.3"}).start()
    try:
        c = server.client()
        p = create_product(c)
        ids = [c.post("/api/v1/jobs", json={**JOB, "n": 2, "seed": 10 * i, "product_id": p["id"]}).json()["id"]
               for i in range(3)]
        wait_job(c, ids[0], 60, until=("running",))
        assert [c.get(f"/api/v1/jobs/{i}").json()["status"] for i in ids[1:]] == ["queued", "queued"]
        if how == "kill9":
            server.kill9()
        else:  # a clean stop hands the running job back to the queue
            server.stop()
            with sqlite3.connect(tmp_path / "data" / "packshot.db") as db:
                statuses = dict(db.execute("SELECT id, status FROM jobs").fetchall())
            assert [statuses[i] for i in ids] == ["queued"] * 3
        server.env = {}
        server.start()
        for i in ids:
            assert_once(c, wait_job(c, i, 90), 2)
        assert len(results_of(c, p["id"])) == 6
    finally:
        server.stop()
