"""The REST API over HTTP against a real ``packshot serve`` process, on SQLite and on PostgreSQL.

Small photos (400x300) and small canvases (256x256) keep each job well under a second.
"""
from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from services import FINISHED, Server, assert_error, create_product, database_url, photo_bytes, postgres, \
    wait_job  # noqa: F401  (postgres: fixture)

KEY_A, KEY_B, METRICS_KEY = "key-alpha-123", "key-bravo-456", "key-operator-789"
MAX_UPLOAD, MAX_PIXELS = 1_500_000, 1_000_000
JOB = {"n": 2, "size": "256x256", "prompt": "on a white marble table, soft light"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    data = tmp_path_factory.mktemp(f"api-{request.param}") / "data"
    srv = Server(data, database_url=database_url(request.param, request), api_keys=(KEY_A, KEY_B),
                 env={"PACKSHOT_MAX_UPLOAD_BYTES": MAX_UPLOAD, "PACKSHOT_MAX_PIXELS": MAX_PIXELS,
                      "PACKSHOT_RATE_LIMIT_PER_MINUTE": 100000, "PACKSHOT_METRICS_KEY": METRICS_KEY})
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log(), srv.log()[-4000:]


@pytest.fixture(scope="module")
def a(server):
    with server.client(KEY_A) as c:
        yield c


@pytest.fixture(scope="module")
def b(server):
    with server.client(KEY_B) as c:
        yield c


@pytest.fixture(scope="module")
def product(a):
    return create_product(a, "red mug")


def blob_files(server) -> set[str]:
    return {p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file() and not p.name.startswith(".")}


def png_info(data: bytes) -> tuple[Image.Image, dict]:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im, dict(im.info)


# -- service routes ------------------------------------------------------------------------------
def test_health_is_open_and_everything_else_needs_a_key(server, a):
    r = server.client(None).get("/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["version"]
    for path in ("/openapi.json", "/metrics", "/api/v1/products", "/api/v1/engines", "/docs"):
        assert_error(server.client(None).get(path), 401, "API key")
        assert_error(server.client("wrong-key").get(path), 401, "invalid API key")
    spec = a.get("/openapi.json").json()
    required = {("/api/v1/products", "post"), ("/api/v1/products", "get"), ("/api/v1/products/{product_id}", "get"),
                ("/api/v1/jobs", "post"), ("/api/v1/jobs/{job_id}", "get"), ("/api/v1/jobs/{job_id}/cancel", "post"),
                ("/api/v1/results/{result_id}/image", "get"), ("/api/v1/results/{result_id}/rating", "put"),
                ("/api/v1/products/{product_id}/history", "get"), ("/health", "get")}
    assert all(m in spec["paths"].get(p, {}) for p, m in required), sorted(spec["paths"])
    assert a.get("/docs").status_code == 200
    bearer = server.client(None)
    bearer.headers["Authorization"] = f"Bearer {KEY_A}"
    assert bearer.get("/api/v1/products").status_code == 200
    assert_error(a.get("/metrics"), 403, "operators")  # an ordinary key does not open /metrics
    metrics = server.client(METRICS_KEY).get("/metrics")
    assert metrics.status_code == 200 and "packshot_http_requests_total" in metrics.text
    assert 'packshot_jobs{status="queued"}' in metrics.text


# -- products ----------------------------------------------------------------------------------
def test_products_with_several_photos_and_delete_removes_their_blobs(server, a):
    jpeg, png = photo_bytes(fmt="JPEG", seed=1), photo_bytes((300, 400), fmt="PNG", seed=2)
    before = blob_files(server)
    p = create_product(a, "two photos", [jpeg, png])
    assert p["name"] == "two photos" and p["result_count"] == 0 and len(p["id"]) == 32
    (p1, p2) = p["photos"]
    assert (p1["width"], p1["height"], p1["media_type"]) == (400, 300, "image/jpeg")
    assert (p2["width"], p2["height"], p2["media_type"]) == (300, 400, "image/png")
    assert p["cover_url"] == p1["image_url"] and p1["cutout_url"].endswith("/cutout.png")
    assert a.get(p1["image_url"]).content == jpeg and a.get(p2["image_url"]).content == png
    assert a.get(f"/api/v1/products/{p['id']}").json()["photos"] == p["photos"]
    listed = a.get("/api/v1/products").json()
    assert listed["count"] == len(listed["items"]) and p["id"] in {x["id"] for x in listed["items"]}
    added = blob_files(server) - before
    assert len(added) == 2  # content-addressed: names are sha256 digests, never client names
    assert all(len(n) == 64 for n in added) and not any(n.startswith("p") and "." in n for n in added)
    r = a.delete(f"/api/v1/products/{p['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_error(a.get(f"/api/v1/products/{p['id']}"), 404, p["id"])
    assert_error(a.get(p1["image_url"]), 404)
    assert not (added & blob_files(server))


# -- jobs, results, history ------------------------------------------------------------------------
def test_job_lifecycle_with_sse_progress_results_rating_saved_and_history(a, product):
    r = a.post("/api/v1/jobs", json={**JOB, "product_id": product["id"], "seed": 11})
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["photo_id"] == product["photos"][0]["id"]
    assert job["request"]["seed"] == 11 and job["request"]["size"] == "256x256"
    events = []
    with a.stream("GET", f"/api/v1/jobs/{job['id']}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        for line in stream.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    progress = [e["progress"] for e in events]
    assert events[-1]["status"] == "succeeded" and progress == sorted(progress) and progress[-1] == 1.0
    done = a.get(f"/api/v1/jobs/{job['id']}").json()
    assert done["status"] == "succeeded" and done["error"] is None and len(done["result_ids"]) == 2
    results = [a.get(f"/api/v1/results/{rid}").json() for rid in done["result_ids"]]
    assert [x["rank"] for x in results] == [1, 2] and {x["seed"] for x in results} == {11, 12}
    best = results[0]
    assert (best["width"], best["height"]) == (256, 256) and best["rating"] is None and not best["saved"]
    assert best["parameters"]["Seed"] == best["seed"] and best["scores"]
    # image: PNG master with the A1111 parameters chunk; JPEG and WebP on request
    png = a.get(best["image_url"])
    im, info = png_info(png.content)
    assert png.headers["content-type"] == "image/png" and im.size == (256, 256)
    assert f"Seed: {best['seed']}" in info["parameters"] and info["parameters"].startswith(JOB["prompt"])
    for fmt, pil in (("jpeg", "JPEG"), ("webp", "WEBP")):
        r = a.get(best["image_url"], params={"format": fmt})
        assert r.status_code == 200 and r.headers["content-type"] == f"image/{fmt}"
        assert Image.open(io.BytesIO(r.content)).format == pil
    assert_error(a.get(best["image_url"], params={"format": "gif"}), 422, "format")
    # rating and saved flag
    rated = a.put(f"/api/v1/results/{best['id']}/rating", json={"stars": 4}).json()
    assert rated["rating"] == 4
    assert a.put(f"/api/v1/results/{best['id']}/saved", json={"saved": True}).json()["saved"] is True
    # the same seed makes the same images (the seed is part of the job)
    again = wait_job(a, a.post("/api/v1/jobs", json={**JOB, "product_id": product["id"], "seed": 11}).json()["id"])
    assert a.get(f"/api/v1/results/{again['result_ids'][0]}/image").content == png.content
    # a job without a seed gets one, recorded in its request
    unseeded = a.post("/api/v1/jobs", json={**JOB, "n": 1, "product_id": product["id"]}).json()
    assert isinstance(unseeded["request"]["seed"], int)
    wait_job(a, unseeded["id"])
    # history: newest first, filters
    hist = a.get(f"/api/v1/products/{product['id']}/history").json()
    assert hist["count"] == len(hist["items"]) >= 5
    assert hist["items"][0]["job_id"] == unseeded["id"]
    created = [x["created_at"] for x in hist["items"]]
    assert created == sorted(created, reverse=True)
    saved = a.get(f"/api/v1/products/{product['id']}/history", params={"saved": "true"}).json()
    assert [x["id"] for x in saved["items"]] == [best["id"]]
    good = a.get(f"/api/v1/products/{product['id']}/history", params={"min_rating": 4}).json()
    assert [x["id"] for x in good["items"]] == [best["id"]]
    assert a.get(f"/api/v1/products/{product['id']}").json()["result_count"] == hist["count"]
    jobs = a.get("/api/v1/jobs", params={"product_id": product["id"]}).json()
    assert jobs["count"] >= 3 and all(j["product_id"] == product["id"] for j in jobs["items"])
    # delete one result
    assert a.delete(f"/api/v1/results/{results[1]['id']}").status_code == 204
    assert_error(a.get(f"/api/v1/results/{results[1]['id']}"), 404)
    assert a.get(f"/api/v1/products/{product['id']}/history").json()["count"] == hist["count"] - 1


def test_cutout_preview_commit_and_jobs_use_the_committed_cutout(a):
    p = create_product(a, "cutout mug", [photo_bytes(seed=5)])
    photo = p["photos"][0]
    base = f"/api/v1/photos/{photo['id']}"
    r = a.post(f"{base}/cutout/preview", json={"points": [[150, 150]], "neg_points": [], "boxes": []})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    mask = Image.open(io.BytesIO(r.content))
    assert mask.mode == "L" and mask.size == (int(r.headers["X-Mask-Width"]), int(r.headers["X-Mask-Height"]))
    assert (int(r.headers["X-Photo-Width"]), int(r.headers["X-Photo-Height"])) == (400, 300)
    assert abs(mask.size[0] / mask.size[1] - 400 / 300) < 0.02
    m = np.asarray(mask)
    sx, sy = mask.size[0] / 400, mask.size[1] / 300
    assert m[int(150 * sy), int(150 * sx)] > 128 and m[5, 5] < 128  # the mug is in, the corner is out
    # automatic cutout before anything is committed
    auto = Image.open(io.BytesIO(a.get(f"{base}/cutout.png").content))
    assert auto.mode == "RGBA" and auto.size == (400, 300)
    before = wait_job(a, a.post("/api/v1/jobs", json={**JOB, "n": 1, "seed": 3, "product_id": p["id"]}).json()["id"])
    # commit with a box around the left part only: the saved cutout is cut to the box
    r = a.put(f"{base}/cutout", json={"points": [[150, 150]], "boxes": [[60, 40, 200, 280]]})
    assert r.status_code == 200, r.text
    committed = r.json()
    x0, y0, x1, y1 = committed["bbox"]
    assert committed["photo_id"] == photo["id"] and 0 <= x0 < x1 <= 400 and 0 <= y0 < y1 <= 300
    assert committed["cutout_url"] == photo["cutout_url"]
    cut = np.asarray(Image.open(io.BytesIO(a.get(f"{base}/cutout.png").content)))
    assert cut.shape == (300, 400, 4) and cut[:, 205:, 3].max() == 0 and cut[150, 150, 3] == 255
    assert a.get(f"/api/v1/products/{p['id']}").json()["photos"][0]["cutout_committed"] is True
    after = wait_job(a, a.post("/api/v1/jobs", json={**JOB, "n": 1, "seed": 3, "product_id": p["id"]}).json()["id"])
    img_before = a.get(f"/api/v1/results/{before['result_ids'][0]}/image").content
    img_after = a.get(f"/api/v1/results/{after['result_ids'][0]}/image").content
    assert img_before != img_after  # same seed and request: only the committed cutout differs
    # bad hints
    assert_error(a.post(f"{base}/cutout/preview", json={"points": [[400, 10]]}), 422, "outside")
    assert_error(a.post(f"{base}/cutout/preview", json={"boxes": [[500, 500, 600, 600]]}), 422, "box")
    assert_error(a.post(f"{base}/cutout/preview", json={"engine": "magic"}), 422, "engine")


def test_catalogue_and_prompt_helpers(a):
    eng = a.get("/api/v1/engines").json()
    studio = next(e for e in eng["background"] if e["name"] == "studio")
    assert studio["available"] and studio["capabilities"]["needs_weights"] is False
    diffusion = next(e for e in eng["background"] if e["name"] == "diffusion")
    assert diffusion["available"] or diffusion["reason"]
    assert {e["name"] for e in eng["segment"]} >= {"classic", "sam"}
    amazon = next(p for p in eng["presets"] if p["name"] == "amazon")
    assert amazon["size"] == [2000, 2000] and amazon["background_rgb"] == [255, 255, 255] and amazon["rules"]
    models = a.get("/api/v1/models").json()["items"]
    assert models and all({"id", "kind", "licence", "commercial_ok", "present", "size_gb"} <= m.keys() for m in models)
    r1, r2 = (a.get("/api/v1/prompts/random", params={"seed": 42}).json() for _ in range(2))
    assert r1 == r2 and r1["prompt"] and set(r1["fields"]) <= {"surface", "surroundings", "background", "lighting", "mood"}
    ex = a.get("/api/v1/prompts/examples").json()["items"]
    assert ex and all(e["title"] and e["prompt"] for e in ex)
    built = a.post("/api/v1/prompts/build", json={"surface": "on a walnut table", "lighting": "soft window light"})
    assert built.status_code == 200 and "walnut" in built.json()["prompt"] and "window" in built.json()["prompt"]
    assert_error(a.post("/api/v1/prompts/build", json={"colour": "red"}), 422, "colour")


# -- bad input ------------------------------------------------------------------------------------
def test_bad_uploads_get_4xx_json_naming_the_problem(server, a):
    def post(files, name="x"):
        return a.post("/api/v1/products", data={"name": name}, files=files)

    good = photo_bytes()
    assert_error(post([("photo", ("a.jpg", b"this is not an image", "image/jpeg"))]), 400, "photo 1", "not an image")
    assert_error(post([("photo", ("a.png", good[: len(good) // 2], "image/png"))]), 400, "photo 1")
    assert_error(post([("photo", ("ok.jpg", good, "image/jpeg")), ("photo", ("e.png", b"", "image/png"))]),
                 400, "photo 2", "empty")
    big = np.random.default_rng(0).integers(0, 255, (900, 900, 3), np.uint8)  # ~2.4 MB as PNG
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "PNG", compress_level=0)
    assert len(buf.getvalue()) > MAX_UPLOAD
    assert_error(post([("photo", ("big.png", buf.getvalue(), "image/png"))]), 413, "limit")
    many = io.BytesIO()
    Image.new("RGB", (1500, 1000), (200, 200, 200)).save(many, "PNG")  # small file, 1.5 MP > 1 MP
    assert_error(post([("photo", ("wide.png", many.getvalue(), "image/png"))]), 413, "pixels")
    assert_error(post([]), 422, "photo")
    assert_error(a.post("/api/v1/products", data={"name": ""}, files=[("photo", ("a.jpg", good, "image/jpeg"))]),
                 422, "name")
    assert_error(a.post("/api/v1/products", content=b"x" * (MAX_UPLOAD + 2 * 1024 * 1024),
                        headers={"content-type": "application/octet-stream"}), 413, "limit")
    # a file name is never used as a path
    p = create_product(a, "names", [good])
    r = a.post("/api/v1/products", data={"name": "evil"},
               files=[("photo", ("../../../../tmp/evil.jpg", good, "image/jpeg"))])
    assert r.status_code == 201
    assert not any("evil" in str(path) for path in server.data_dir.rglob("*"))
    a.delete(f"/api/v1/products/{p['id']}")


def test_bad_requests_get_4xx_json(a, product):
    pid = product["id"]
    cases = [
        ({**JOB, "product_id": pid, "n": 0}, 422, "n"),
        ({**JOB, "product_id": pid, "size": "big"}, 422, "size"),
        ({**JOB, "product_id": pid, "size": "5000x5000"}, 422, "limit"),
        ({**JOB, "product_id": pid, "preset": "amazon"}, 422, "preset"),
        ({**JOB, "product_id": pid, "colour": "red"}, 422, "colour"),
        ({**JOB, "product_id": pid, "engine": "magic"}, 400, "valid: studio"),
        ({**JOB, "product_id": pid, "reference_image": "/etc/passwd"}, 422, "reference_image"),
        ({**JOB, "product_id": pid, "background": "/etc/passwd"}, 422, "background"),
        ({**JOB, "product_id": pid, "model": "../../weights"}, 422, "model"),
        ({**JOB, "product_id": pid, "upscaler": "/etc/passwd"}, 422, "upscaler"),
        ({**JOB, "product_id": pid, "segment": {"points": [[5000, 5]]}}, 422, "outside"),
        ({**JOB}, 422, "product_id"),
        ({**JOB, "product_id": "nope"}, 404, "nope"),
        ({**JOB, "product_id": pid, "photo_id": "nope"}, 404, "nope"),
    ]
    for body, status, word in cases:
        assert_error(a.post("/api/v1/jobs", json=body), status, word)
    assert_error(a.post("/api/v1/jobs", content=b"{not json", headers={"content-type": "application/json"}), 422)
    for path in ("/api/v1/products/nope", "/api/v1/jobs/nope", "/api/v1/results/nope", "/api/v1/results/nope/image",
                 "/api/v1/photos/nope/image", "/api/v1/photos/nope/cutout.png", "/api/v1/products/nope/history",
                 "/api/v1/jobs/nope/events"):
        assert_error(a.get(path), 404, "nope")
    assert_error(a.put("/api/v1/results/nope/rating", json={"stars": 3}), 404, "nope")
    assert_error(a.delete("/api/v1/results/nope"), 404, "nope")
    assert_error(a.post("/api/v1/jobs/nope/cancel"), 404, "nope")
    assert_error(a.get("/api/v1/nothing-here"), 404, "no route")
    assert_error(a.delete("/api/v1/engines"), 405)
    job = wait_job(a, a.post("/api/v1/jobs", json={**JOB, "n": 1, "product_id": pid}).json()["id"])
    rid = job["result_ids"][0]
    for stars in (0, 6, "five", None):
        assert_error(a.put(f"/api/v1/results/{rid}/rating", json={"stars": stars}), 422, "stars")
    assert_error(a.put(f"/api/v1/results/{rid}/saved", json={"saved": "maybe"}), 422, "saved")
    assert_error(a.get(f"/api/v1/products/{pid}/history", params={"min_rating": 9}), 422, "min_rating")


def test_each_key_sees_only_its_own_products(a, b, product):
    job = wait_job(a, a.post("/api/v1/jobs", json={**JOB, "n": 1, "product_id": product["id"]}).json()["id"])
    rid, photo = job["result_ids"][0], product["photos"][0]["id"]
    assert product["id"] not in {p["id"] for p in b.get("/api/v1/products").json()["items"]}
    for method, path, body in [
        ("GET", f"/api/v1/products/{product['id']}", None),
        ("DELETE", f"/api/v1/products/{product['id']}", None),
        ("GET", f"/api/v1/products/{product['id']}/history", None),
        ("GET", f"/api/v1/photos/{photo}/image", None),
        ("GET", f"/api/v1/photos/{photo}/cutout.png", None),
        ("POST", f"/api/v1/photos/{photo}/cutout/preview", {"points": [[10, 10]]}),
        ("PUT", f"/api/v1/photos/{photo}/cutout", {}),
        ("GET", f"/api/v1/jobs/{job['id']}", None),
        ("POST", f"/api/v1/jobs/{job['id']}/cancel", None),
        ("GET", f"/api/v1/jobs?product_id={product['id']}", None),
        ("GET", f"/api/v1/results/{rid}", None),
        ("GET", f"/api/v1/results/{rid}/image", None),
        ("PUT", f"/api/v1/results/{rid}/rating", {"stars": 1}),
        ("DELETE", f"/api/v1/results/{rid}", None),
        ("POST", "/api/v1/jobs", {**JOB, "product_id": product["id"]}),
    ]:
        assert_error(b.request(method, path, json=body), 404)
    assert b.get("/api/v1/jobs").json()["count"] == 0
    assert a.get(f"/api/v1/results/{rid}").json()["rating"] is None  # B changed nothing
    assert a.get(f"/api/v1/products/{product['id']}").status_code == 200


def test_rate_limit_per_key(tmp_path):
    srv = Server(tmp_path / "data", api_keys=(KEY_A, KEY_B), env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 5}).start()
    try:
        a, b = srv.client(KEY_A), srv.client(KEY_B)
        codes = [a.get("/api/v1/products").status_code for _ in range(5)]
        assert codes == [200] * 5
        r = a.get("/api/v1/products")
        assert_error(r, 429, "rate limit")
        assert int(r.headers["retry-after"]) >= 1
        assert b.get("/api/v1/products").status_code == 200  # another key has its own bucket
        assert all(srv.client(None).get("/health").status_code == 200 for _ in range(10))  # never limited
    finally:
        srv.stop()
