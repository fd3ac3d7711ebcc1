"""Service hardening (issue 16), through real ``packshot serve`` processes on SQLite and PostgreSQL:
the delete/upload race on shared blobs, bad text everywhere, requests bound to fail refused at
submission, the canvas limits, partial outputs of cancelled/deleted jobs, and file modes.

Every answer read through ``Server.client`` is checked for SQL, tracebacks and server paths
(``services.check_leaks``).
"""
from __future__ import annotations

import io
import json
import stat
import threading
import time
import typing

import httpx
import pytest
from PIL import Image

from services import Server, assert_error, create_product, database_url, postgres, wait_for, \
    wait_job  # noqa: F401  (postgres: fixture)

KEY_A, KEY_B = "key-hardening-a", "key-hardening-b"
SMALL_JOB = {"n": 1, "size": "64x64", "prompt": "white studio"}


def png(w: int, h: int, seed: int = 0) -> bytes:
    """A small product photo: a dark block on a light backdrop, unique per seed."""
    im = Image.new("RGB", (w, h), (235, 235, 235))
    im.paste((40 + seed % 150, 60, 90), (w // 4, h // 4, 3 * w // 4, 3 * h // 4))
    im.putpixel((0, 0), (seed % 256, seed // 256 % 256, 7))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def blob_files(server: Server) -> list[str]:
    return sorted(str(p.relative_to(server.data_dir)) for p in (server.data_dir / "blobs").rglob("*") if p.is_file())


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(request, tmp_path_factory):
    data = tmp_path_factory.mktemp(f"hard-{request.param}") / "data"
    srv = Server(data, database_url=database_url(request.param, request), api_keys=(KEY_A, KEY_B),
                 env={"PACKSHOT_RATE_LIMIT_PER_MINUTE": 1_000_000, "PACKSHOT_MODEL_SLOTS": 2})
    srv.kind = request.param
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


# -- 1. the race ------------------------------------------------------------------------------------
def test_delete_racing_an_identical_upload_of_another_key_loses_nothing(server, a, b):
    """200 rounds: A creates and deletes a product while B uploads the identical PNG at the same
    moment. Every B photo stays readable (byte for byte); jobs on every 25th run."""
    rounds, kept = 200, []
    for i in range(rounds):
        data = png(48, 32, seed=i)
        pa = create_product(a, f"a{i}", [data])
        go = threading.Barrier(2)
        out: dict[str, typing.Any] = {}

        def delete():
            go.wait()
            out["del"] = a.delete(f"/api/v1/products/{pa['id']}").status_code

        def upload():
            go.wait()
            out["b"] = create_product(b, f"b{i}", [data])

        threads = [threading.Thread(target=delete), threading.Thread(target=upload)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert out["del"] == 204
        kept.append((out["b"], data))
    for pb, data in kept:
        r = b.get(pb["photos"][0]["image_url"])
        assert r.status_code == 200 and r.content == data, (pb["id"], r.status_code, r.text[:200])
    # jobs on a spread of them (a job takes seconds here; the photo bytes are what the race is about)
    jobs = [b.post("/api/v1/jobs", json={**SMALL_JOB, "seed": 1, "product_id": pb["id"]}).json()
            for pb, _ in kept[::25]]
    for job in jobs:
        assert wait_job(b, job["id"], 300)["status"] == "succeeded", job
    assert b.get(kept[0][0]["photos"][0]["cutout_url"]).status_code == 200
    for pb, _ in kept:  # clean up: the last references go, so do the files
        assert b.delete(f"/api/v1/products/{pb['id']}").status_code == 204
    assert blob_files(server) == []


# -- 2. bad text ------------------------------------------------------------------------------------
def _text_fields() -> list[str]:
    """Every str field of the job body (GenerateRequest + product/photo ids), segment's included."""
    from packshot.api.schemas import JobCreate
    from packshot.schema import SegmentOptions

    def strs(model, prefix=""):
        out = []
        for name, f in model.model_fields.items():
            if str in (typing.get_args(f.annotation) or (f.annotation,)) or f.annotation is str:
                out.append(prefix + name)
        return out

    return strs(JobCreate) + strs(SegmentOptions, "segment.")


def _with(field: str, value, base: dict) -> dict:
    body = json.loads(json.dumps(base))
    if field.startswith("segment."):
        body.setdefault("segment", {})[field.split(".", 1)[1]] = value
    else:
        body[field] = value
    return body


def test_nul_and_invalid_utf8_in_every_text_field_and_path_parameter_get_422(server, a):
    p = create_product(a, "text checks", [png(64, 48, seed=900)])
    base = {**SMALL_JOB, "product_id": p["id"]}
    fields = _text_fields()
    assert {"prompt", "negative_prompt", "scheduler", "model", "product_id", "segment.text"} <= set(fields)
    for field in fields:
        assert_error(a.post("/api/v1/jobs", json=_with(field, "a\u0000b", base)), 422, field.split(".")[-1])
        raw = json.dumps(_with(field, "a\ud800b", base)).encode()  # a lone surrogate: not UTF-8 text
        assert_error(a.post("/api/v1/jobs", content=raw, headers={"content-type": "application/json"}), 422)
        raw = json.dumps(_with(field, "aXXb", base)).encode().replace(b"aXXb", b"a\xff\xfeb")  # bytes, not UTF-8
        assert_error(a.post("/api/v1/jobs", content=raw, headers={"content-type": "application/json"}), 422)
    for bad in ("a\u0000b",):
        assert_error(a.post("/api/v1/prompts/build", json={"surface": bad}), 422)
    # the product name, a multipart text field
    for name, words in ((b"mug\x00", "NUL"), (b"mug \xff\xfe", "UTF-8")):
        files = {"photo": ("p.png", png(40, 30), "image/png")}
        req = httpx.Request("POST", "http://x/api/v1/products", files=files, data={"name": "PLACEHOLDER"})
        body = req.read().replace(b"PLACEHOLDER", name)
        r = a.post("/api/v1/products", content=body, headers={"content-type": req.headers["content-type"]})
        assert_error(r, 422, words)
    # every path parameter and a query parameter
    for bad in ("a%00b", "a%FFb", "%C0%AF"):
        for method, path in (("GET", "/api/v1/products/{}"), ("DELETE", "/api/v1/products/{}"),
                             ("GET", "/api/v1/photos/{}/image"), ("GET", "/api/v1/photos/{}/cutout.png"),
                             ("POST", "/api/v1/photos/{}/cutout/preview"), ("GET", "/api/v1/jobs/{}"),
                             ("POST", "/api/v1/jobs/{}/cancel"), ("GET", "/api/v1/jobs/{}/events"),
                             ("GET", "/api/v1/results/{}"), ("GET", "/api/v1/results/{}/image"),
                             ("DELETE", "/api/v1/results/{}"), ("GET", "/api/v1/products/{}/history")):
            r = a.request(method, path.format(bad), json={} if method == "POST" else None)
            assert_error(r, 422, "path")
        assert_error(a.get(f"/api/v1/jobs?product_id={bad}"), 422, "query")
    names = [x["name"] for x in a.get("/api/v1/products").json()["items"]]
    assert all("\x00" not in n and "\ufffd" not in n for n in names)


def test_a_million_points_is_refused_fast_and_health_stays_fast(server, a):
    p = create_product(a, "points", [png(64, 48, seed=901)])
    body = json.dumps({**SMALL_JOB, "product_id": p["id"], "segment": {"points": [[1, 1]] * 1_000_000}})
    t0 = time.perf_counter()
    r = a.post("/api/v1/jobs", content=body, headers={"content-type": "application/json"})
    took = time.perf_counter() - t0
    assert_error(r, 422, "JSON body")
    assert took < 2.0, took
    # within the byte limit, a list over its bound is refused naming it
    body = {**SMALL_JOB, "product_id": p["id"], "segment": {"neg_points": [[1, 1]] * 201}}
    assert_error(a.post("/api/v1/jobs", json=body), 422, "neg_points", "200")
    assert_error(a.post("/api/v1/jobs", json={**body, "scheduler": "x" * 81, "segment": {}}), 422, "scheduler")
    t0 = time.perf_counter()
    assert httpx.get(server.url + "/health").status_code == 200
    assert time.perf_counter() - t0 < 0.5
    assert a.get("/api/v1/jobs?limit=100").json()["count"] == 0  # nothing was stored


# -- 3. requests bound to fail: refused at submission ---------------------------------------------------
def test_requests_bound_to_fail_are_refused_at_submission(server, a, tmp_path):
    p = create_product(a, "submission", [png(200, 150, seed=902)])
    job = {**SMALL_JOB, "product_id": p["id"]}
    cases = [
        ({"engine": "diffusion"}, "none is present"),                          # no weights on this server
        ({"engine": "diffusion", "model": "no-such-model"}, "no-such-model"),   # unknown model
        ({"engine": "diffusion", "mode": "img2img"}, ""),
        ({"engine": "no-such-engine"}, "no-such-engine"),
        ({"preset": "no-such-preset"}, "no-such-preset"),
        ({"segment": {"points": [[500, 10]]}}, "500,10"),                       # out-of-range hints
        ({"segment": {"boxes": [[10, 10, 250, 100]]}}, "10,10,250,100"),
    ]
    for extra, word in cases:
        r = a.post("/api/v1/jobs", json={**job, **extra})
        assert 400 <= r.status_code < 500, (extra, r.status_code, r.text)
        assert_error(r, r.status_code, *([word] if word else []))
    # the interactive cutout refuses a box outside the photo too (it used to clamp it silently)
    assert_error(a.post(f"/api/v1/photos/{p['photos'][0]['id']}/cutout/preview",
                        json={"boxes": [[-50, 10, 100, 100]]}), 422, "outside")
    assert a.get(f"/api/v1/jobs?product_id={p['id']}").json()["count"] == 0


def test_keep_framing_and_n_times_canvas_are_bounded(server, a):
    wide = create_product(a, "wide", [png(4200, 64, seed=903)])
    r = a.post("/api/v1/jobs", json={"product_id": wide["id"], "keep_framing": True, "n": 1})
    assert_error(r, 422, "4200x64", "keep_framing")
    p = create_product(a, "big canvas", [png(64, 48, seed=904)])
    r = a.post("/api/v1/jobs", json={"product_id": p["id"], "size": "4096x4096", "n": 16})
    assert_error(r, 422, "n=16", "per-job limit")
    ok = a.post("/api/v1/jobs", json={"product_id": p["id"], "size": "4096x4096", "n": 1, "seed": 3})
    assert ok.status_code == 202, ok.text
    a.post(f"/api/v1/jobs/{ok.json()['id']}/cancel")


# -- 4. web safety on this keyed server ---------------------------------------------------------------
def test_security_headers_on_every_answer_and_hosts_checked(server, a):
    for r in (a.get("/"), a.get("/health"), a.get("/api/v1/products"), a.get("/api/v1/nope"),
              a.get("/static/js/main.js"), server.client(None).get("/api/v1/products")):
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", r.url
        assert "frame-ancestors 'none'" in h["content-security-policy"]
        assert "script-src 'self'" in h["content-security-policy"] and "unsafe-inline" not in \
            h["content-security-policy"].split("script-src")[1].split(";")[0]
    assert_error(a.get("/health", headers={"host": "evil.example"}), 400, "evil.example")


# -- 5. file modes --------------------------------------------------------------------------------------
def test_data_dir_database_and_blobs_are_private(server, a):
    create_product(a, "modes", [png(40, 30, seed=905)])
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    files = [p for p in (server.data_dir / "blobs").rglob("*")]
    assert files and all(stat.S_IMODE(p.stat().st_mode) == (0o700 if p.is_dir() else 0o600) for p in files)
    if server.kind == "sqlite":
        for name in ("packshot.db", "packshot.db-wal"):
            path = server.data_dir / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name


# -- 6. partial outputs of cancelled and deleted jobs ----------------------------------------------------
@pytest.fixture(scope="module")
def slow_server(tmp_path_factory):
    srv = Server(tmp_path_factory.mktemp("hard-slow") / "data",
                 env={"PACKSHOT_TEST_STEP_DELAY": "0.25", "PACKSHOT_RATE_LIMIT_PER_MINUTE": 1_000_000})
    srv.start()
    yield srv
    srv.stop()


def _saving(c, job_id: str) -> None:
    wait_for(lambda: c.get(f"/api/v1/jobs/{job_id}").json()["stage"] == "save", 120, "the job to be saving")


def test_cancel_or_delete_during_save_leaves_no_blob_files(slow_server):
    srv = slow_server
    c = srv.client()
    p = create_product(c, "cancel me", [png(96, 64, seed=906)])
    photo_files = blob_files(srv)
    job = c.post("/api/v1/jobs", json={**SMALL_JOB, "n": 6, "product_id": p["id"]}).json()
    _saving(c, job["id"])
    assert len(blob_files(srv)) > len(photo_files)  # some candidates are written, none committed
    r = c.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert blob_files(srv) == photo_files
    job = c.post("/api/v1/jobs", json={**SMALL_JOB, "n": 6, "product_id": p["id"]}).json()
    _saving(c, job["id"])
    assert c.delete(f"/api/v1/products/{p['id']}").status_code == 204
    assert blob_files(srv) == []


def test_kill9_mid_save_then_restart_leaves_no_orphan_blobs(tmp_path):
    import sqlite3

    srv = Server(tmp_path / "data", env={"PACKSHOT_TEST_STEP_DELAY": "0.25"}).start()
    try:
        c = srv.client()
        p = create_product(c, "crash", [png(96, 64, seed=907)])
        photo_files = blob_files(srv)
        job = c.post("/api/v1/jobs", json={**SMALL_JOB, "n": 6, "product_id": p["id"]}).json()
        _saving(c, job["id"])
        srv.kill9()
        assert len(blob_files(srv)) > len(photo_files)  # the dead job's images, named by no row
        with sqlite3.connect(srv.data_dir / "packshot.db") as db:  # the job is not to run again
            db.execute("UPDATE jobs SET status='cancelled' WHERE id=?", (job["id"],))
        srv.env = {}
        srv.start()
        wait_for(lambda: blob_files(srv) == photo_files, 20, "the start-up sweep to remove the orphans")
        assert c.get(p["photos"][0]["image_url"]).status_code == 200
    finally:
        srv.stop()
